import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { intEnv } from '../shared/env';
import { notify } from '../shared/job-runner';
import type { JobType } from '../shared/model';
import { workerKit } from '../shared/worker-kit';

/**
 * Sweeper (scheduled): no job may stay `processing` for ever. A job is left there when its
 * worker died (timeout, crash, out of memory) on the message's last allowed receive: SQS
 * then moves the message to the DLQ without running any code. Once a lease has been expired
 * for longer than every remaining delivery could take (maxReceiveCount x the queue's
 * visibility timeout), the job is failed with `retries_exhausted` and notified; its message
 * waits in the DLQ, and a redrive processes the job again.
 */
const { logger, metrics, repo, notifier } = workerKit('offload-sweeper');
const graceMs: Record<JobType, number> = {
  thumbnail: intEnv('THUMBNAIL_GRACE_SECONDS', 540) * 1000,
  report: intEnv('REPORT_GRACE_SECONDS', 10800) * 1000,
};

export const handler = async (_event: unknown, context: Context): Promise<{ failed: string[] }> => {
  logger.addContext(context);
  const now = Date.now();
  const failed: string[] = [];
  try {
    for await (const lease of repo.expiredLeases(now - Math.min(...Object.values(graceMs)))) {
      const grace = graceMs[lease.type] ?? Math.max(...Object.values(graceMs));
      if (lease.leaseUntil === undefined || lease.leaseUntil >= now - grace) continue;
      const job = await repo.abandon(lease.jobId, lease.leaseUntil, {
        code: 'retries_exhausted',
        message: 'the worker stopped (timeout or crash) on the last allowed attempt; the message is in the dead-letter queue',
      });
      if (!job) continue;
      await notify({ repo, notifier }, job);
      failed.push(job.jobId);
      logger.warn('abandoned job failed', { jobId: job.jobId, type: job.type, leaseUntil: lease.leaseUntil });
    }
    metrics.addMetric('abandonedJobs', MetricUnit.Count, failed.length);
    return { failed };
  } finally {
    metrics.publishStoredMetrics();
  }
};
