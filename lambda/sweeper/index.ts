import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { docClient } from '../shared/clients';
import { PLATFORM_ERROR_CODES } from '../shared/contract';
import { BaseEnv, parseEnv } from '../shared/env';
import { JobsRepo, SWEEP_SHARD_KEYS } from '../shared/jobs-repo';
import type { JobError, JobStatus } from '../shared/model';

/**
 * Sweeper (scheduled): no job stays unfinished for ever, and no dead letter is ever read.
 * Every unfinished job carries a deadline in the sparse byDeadline index, set by each
 * transition to the time after which no delivery can still come for it:
 *
 * - `awaiting_upload`: its upload URL's life (and a minute) -> fails `upload_expired`;
 * - `queued`: the queue's retention (maxQueuedSeconds) after it was queued, or every
 *   remaining delivery after a transient failure -> `retries_exhausted` (its message, if
 *   any, is in the DLQ, or expired);
 * - `processing`: its lease, plus every remaining delivery of its message (maxReceiveCount
 *   x the visibility timeout) -> `retries_exhausted` (its worker died on the last attempt).
 *
 * Each fail is conditional on the deadline it read, so a claim or release in between wins. A
 * job whose cancellation was asked for (`cancelRequested`) ends `cancelled` instead; a
 * cancelled job, like any finished one, has no deadline, so the sweeper never sees it.
 * The terminal write is all it does: the table's stream notifies (the outbox).
 */
const env = parseEnv(BaseEnv);
const logger = new Logger({ serviceName: 'offload-sweeper' });
const metrics = new Metrics({ serviceName: 'offload-sweeper', namespace: 'offload' });
const repo = new JobsRepo(docClient(), env.JOBS_TABLE, env.JOB_TTL_DAYS);

export function sweepError(status: JobStatus): JobError {
  if (status === 'awaiting_upload') {
    return { code: PLATFORM_ERROR_CODES.uploadExpired, message: 'the upload did not arrive before its upload URL expired' };
  }
  if (status === 'processing') {
    return {
      code: PLATFORM_ERROR_CODES.retriesExhausted,
      message: 'the worker stopped (timeout or crash) on the last allowed attempt; the message is in the dead-letter queue',
    };
  }
  return {
    code: PLATFORM_ERROR_CODES.retriesExhausted,
    message: 'no delivery of the job can come any more: its message is in the dead-letter queue or expired',
  };
}

export const handler = async (_event: unknown, context: Context): Promise<{ failed: string[] }> => {
  logger.addContext(context);
  const failed: string[] = [];
  try {
    const now = Date.now();
    await Promise.all(
      SWEEP_SHARD_KEYS.map(async (shard) => {
        for await (const due of repo.due(shard, now)) {
          if (due.sweepAt === undefined || !due.status) continue;
          const job = await repo.sweep(due.jobId, due.sweepAt, sweepError(due.status), due.cancelRequested === true);
          if (!job) continue;
          failed.push(job.jobId);
          logger.warn('unfinished job ended past its deadline', { jobId: job.jobId, type: job.type, was: due.status, status: job.status, code: job.error?.code });
        }
      }),
    );
    metrics.addMetric('sweptJobs', MetricUnit.Count, failed.length);
    return { failed };
  } finally {
    metrics.publishStoredMetrics();
  }
};
