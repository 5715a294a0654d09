import { PublishCommand } from '@aws-sdk/client-sns';
import { Logger } from '@aws-lambda-powertools/logger';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import { snsClient } from '../shared/clients';
import { isTerminal } from '../shared/contract';
import { parseEnv, str } from '../shared/env';
import type { CompletionNotification, JobRecord } from '../shared/model';

/**
 * The outbox's relay: the jobs table's stream -> one completion notification per terminal
 * transition. Writers of a terminal state (workers, the sweeper, the API) only write the
 * table; this function alone publishes, with the event source's retries, bisection and
 * DLQ. The event source's filter passes only records whose new image is terminal; a record
 * that does not change the outcome (same status and completedAt) is skipped here.
 */
const env = parseEnv(z.object({ TOPIC_ARN: str() }));
const logger = new Logger({ serviceName: 'offload-notifier' });

/** The notification of a stream record, or undefined when the record is not a transition into a terminal state. */
export function notificationOf(record: DynamoDBRecord): CompletionNotification | undefined {
  const image = record.dynamodb?.NewImage;
  if (!image) return undefined;
  const job = unmarshall(image as Parameters<typeof unmarshall>[0]) as JobRecord;
  if (!isTerminal(job.status) || !job.completedAt) return undefined;
  const old = record.dynamodb?.OldImage ? (unmarshall(record.dynamodb.OldImage as Parameters<typeof unmarshall>[0]) as JobRecord) : undefined;
  if (old && old.status === job.status && old.completedAt === job.completedAt) return undefined;
  return {
    notificationId: `${job.jobId}:${job.completedAt}`,
    jobId: job.jobId,
    type: job.type,
    status: job.status,
    outputs: job.outputs ?? [],
    error: job.error ?? null,
    completedAt: job.completedAt,
  };
}

export const handler = async (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> => {
  logger.addContext(context);
  for (const record of event.Records) {
    const n = notificationOf(record);
    if (!n) continue;
    try {
      await snsClient().send(
        new PublishCommand({
          TopicArn: env.TOPIC_ARN,
          Subject: `offload ${n.type} job ${n.status}`,
          Message: JSON.stringify(n),
          MessageAttributes: {
            type: { DataType: 'String', StringValue: n.type },
            status: { DataType: 'String', StringValue: n.status },
            notificationId: { DataType: 'String', StringValue: n.notificationId },
          },
        }),
      );
      logger.info('notified', { jobId: n.jobId, status: n.status, notificationId: n.notificationId });
    } catch (err) {
      // Records of one shard are in order: retry from this one (the ones before are done).
      logger.error('publish failed; the batch is retried from this record', { jobId: n.jobId, error: err as Error });
      return { batchItemFailures: [{ itemIdentifier: record.dynamodb?.SequenceNumber ?? '' }] };
    }
  }
  return { batchItemFailures: [] };
};
