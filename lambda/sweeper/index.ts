import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { sqsClient } from '../shared/clients';
import { intEnv } from '../shared/env';
import { notify } from '../shared/job-runner';
import type { JobType } from '../shared/model';
import { parseUploadEvents } from '../shared/s3-event';
import { ReportMessage } from '../shared/schemas';
import { workerKit } from '../shared/worker-kit';

/**
 * Sweeper (scheduled): no job may stay unfinished for ever. Two ways a job can be left
 * behind when SQS moves its message to the DLQ without any code of ours running:
 *
 * 1. its worker died (timeout, crash) on the last allowed receive: the job is `processing`
 *    under an expired lease. Leases expired for longer than every remaining delivery could
 *    take (maxReceiveCount x visibility timeout) are found through the sparse leases index;
 * 2. every delivery failed before the handler ran (throttling, an init failure): the job is
 *    still `queued`. The sweeper reads each DLQ (making what it read visible again at once,
 *    so the messages stay where they are, redrivable) and fails those jobs.
 *
 * Either way the job fails with `retries_exhausted` and is notified; a redrive of its
 * message processes it again.
 */
const { logger, metrics, repo, notifier } = workerKit('offload-sweeper');
const graceMs: Record<JobType, number> = {
  thumbnail: intEnv('THUMBNAIL_GRACE_SECONDS', 540) * 1000,
  report: intEnv('REPORT_GRACE_SECONDS', 10800) * 1000,
};
const deadLetterQueues: Array<{ type: JobType; url: string | undefined }> = [
  { type: 'thumbnail', url: process.env.THUMBNAIL_DLQ_URL },
  { type: 'report', url: process.env.REPORT_DLQ_URL },
];
/** At most this many DLQ messages are read per queue and run (the rest on the next run). */
const MAX_DLQ_READS = 1000;
const EXHAUSTED = 'retries_exhausted';

export const handler = async (_event: unknown, context: Context): Promise<{ failed: string[] }> => {
  logger.addContext(context);
  const failed: string[] = [];
  try {
    await sweepLeases(failed);
    for (const dlq of deadLetterQueues) if (dlq.url) await sweepDeadLetters(dlq.type, dlq.url, failed);
    metrics.addMetric('abandonedJobs', MetricUnit.Count, failed.length);
    return { failed };
  } finally {
    metrics.publishStoredMetrics();
  }
};

async function sweepLeases(failed: string[]): Promise<void> {
  const now = Date.now();
  for await (const lease of repo.expiredLeases(now - Math.min(...Object.values(graceMs)))) {
    const grace = graceMs[lease.type] ?? Math.max(...Object.values(graceMs));
    if (lease.leaseUntil === undefined || lease.leaseUntil >= now - grace) continue;
    const job = await repo.abandon(lease.jobId, lease.leaseUntil, {
      code: EXHAUSTED,
      message: 'the worker stopped (timeout or crash) on the last allowed attempt; the message is in the dead-letter queue',
    });
    if (!job) continue;
    await notify({ repo, notifier }, job);
    failed.push(job.jobId);
    logger.warn('abandoned job failed', { jobId: job.jobId, type: job.type, leaseUntil: lease.leaseUntil });
  }
}

async function sweepDeadLetters(type: JobType, url: string, failed: string[]): Promise<void> {
  const sqs = sqsClient();
  const read: Message[] = [];
  try {
    // Read what the DLQ holds, each message once (hidden for a few seconds while read).
    while (read.length < MAX_DLQ_READS) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 10, WaitTimeSeconds: 0 }));
      if (!out.Messages?.length) break;
      read.push(...out.Messages);
      // Each read adds one to the messages' receive counts: say which, for whoever counts them.
      logger.info('dead letters read', { type, messageIds: out.Messages.map((m) => m.MessageId) });
    }
    for (const m of read) {
      for (const jobId of jobIdsOf(type, m)) {
        const job = await repo.failDeadLettered(jobId, {
          code: EXHAUSTED,
          message: 'every allowed delivery failed before the job could run; the message is in the dead-letter queue',
        });
        if (!job) continue;
        await notify({ repo, notifier }, job);
        failed.push(job.jobId);
        logger.warn('dead-lettered job failed', { jobId, type });
      }
    }
  } finally {
    // Leave the messages where they were, visible at once: the DLQ is for people and redrives.
    for (let i = 0; i < read.length; i += 10) {
      await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: url,
          Entries: read.slice(i, i + 10).map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
        }),
      );
    }
  }
}

/** The jobs a dead letter stands for; none for a poison message. */
function jobIdsOf(type: JobType, m: Message): string[] {
  try {
    if (type === 'thumbnail') return parseUploadEvents(m.Body ?? '').map((u) => u.jobId);
    const parsed = ReportMessage.safeParse(JSON.parse(m.Body ?? ''));
    return parsed.success ? [parsed.data.jobId] : [];
  } catch {
    return [];
  }
}
