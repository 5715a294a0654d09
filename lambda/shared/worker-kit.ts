import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import { clients } from './clients';
import { intEnv, requireEnv } from './env';
import { JobsRepo } from './jobs-repo';
import { Notifier } from './notifier';

/** What every worker builds once per execution environment (cold start). */
export function workerKit(serviceName: string) {
  const logger = new Logger({ serviceName });
  const metrics = new Metrics({ serviceName, namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'offload' });
  const repo = new JobsRepo(
    clients.doc(),
    requireEnv('JOBS_TABLE'),
    requireEnv('JOBS_INDEX'),
    intEnv('JOB_TTL_DAYS', 90),
    () => new Date(),
    process.env.LEASES_INDEX ?? 'byLease',
  );
  const notifier = new Notifier(clients.sns(), requireEnv('TOPIC_ARN'));
  const settings = {
    maxReceiveCount: intEnv('MAX_RECEIVE_COUNT', 3),
    leaseMs: intEnv('WORKER_TIMEOUT_SECONDS', 30) * 1000,
  };
  return { logger, metrics, repo, notifier, settings };
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
