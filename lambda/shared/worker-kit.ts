import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { RunOutcome } from './job-runner';
import { docClient, snsClient } from './clients';
import { intEnv, requireEnv } from './env';
import { JobsRepo } from './jobs-repo';
import { Notifier } from './notifier';

/** What every worker builds once per execution environment (cold start). */
export function workerKit(serviceName: string) {
  const logger = new Logger({ serviceName });
  const metrics = new Metrics({ serviceName, namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'offload' });
  const repo = new JobsRepo(
    docClient(),
    requireEnv('JOBS_TABLE'),
    requireEnv('JOBS_INDEX'),
    intEnv('JOB_TTL_DAYS', 90),
    () => new Date(),
    process.env.LEASES_INDEX ?? 'byLease',
  );
  const notifier = new Notifier(snsClient(), requireEnv('TOPIC_ARN'));
  const settings = {
    maxReceiveCount: intEnv('MAX_RECEIVE_COUNT', 3),
    leaseMs: intEnv('WORKER_TIMEOUT_SECONDS', 30) * 1000,
  };
  const processor = new BatchProcessor(EventType.SQS);
  /** The SQS handler: records processed with partial batch responses, metrics flushed after each batch. */
  const sqsHandler =
    (handleRecord: (record: SQSRecord) => Promise<void>) =>
    async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
      logger.addContext(context);
      try {
        return await processPartialResponse(event, handleRecord, processor, { context });
      } finally {
        metrics.publishStoredMetrics();
      }
    };
  /** Counts one attempt's outcome (processed / failed / failedAttempts) and its duration. */
  const countOutcome = async (started: number, attempt: Promise<RunOutcome>): Promise<RunOutcome> => {
    try {
      const outcome = await attempt;
      if (outcome === 'succeeded') metrics.addMetric('processed', MetricUnit.Count, 1);
      if (outcome === 'failed') metrics.addMetric('failed', MetricUnit.Count, 1);
      return outcome;
    } catch (err) {
      metrics.addMetric('failedAttempts', MetricUnit.Count, 1);
      throw err;
    } finally {
      metrics.addMetric('duration', MetricUnit.Milliseconds, Date.now() - started);
    }
  };
  return { logger, metrics, repo, notifier, settings, sqsHandler, countOutcome };
}

/** ApproximateReceiveCount of an SQS record (1 on the first delivery). */
export function receiveCount(record: SQSRecord): number {
  const n = Number(record.attributes?.ApproximateReceiveCount ?? '1');
  return Number.isFinite(n) && n > 0 ? n : 1;
}

/** The lease owner of one delivery of a message. */
export function attemptOwner(record: SQSRecord): string {
  return `${record.messageId}#${receiveCount(record)}`;
}
