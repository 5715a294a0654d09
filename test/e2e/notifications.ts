import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { vi } from 'vitest';

/**
 * Reads a subscriber queue of the completion topic (raw delivery) until every job in
 * `expected` has a notification and then until the queue is quiet: a receive finds nothing
 * and the queue holds no message, visible or in flight. Every message read is deleted, so
 * none comes back to be counted twice. Returns every notification read, by job id.
 */
export async function drainNotifications(sqs: SQSClient, queueUrl: string, expected: readonly string[], timeoutMs: number): Promise<Map<string, any[]>> {
  const seen = new Map<string, any[]>();
  const receiveOnce = async (): Promise<number> => {
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
    const msgs = got.Messages ?? [];
    for (const m of msgs) {
      const n = JSON.parse(m.Body!);
      seen.set(n.jobId, [...(seen.get(n.jobId) ?? []), n]);
    }
    if (msgs.length > 0) {
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
    return msgs.length;
  };
  await vi.waitFor(
    async () => {
      await receiveOnce();
      const missing = expected.filter((id) => !seen.has(id));
      if (missing.length > 0) throw new Error(`no notification yet for ${missing.join(', ')}`);
    },
    { timeout: timeoutMs, interval: 0 },
  );
  await vi.waitFor(
    async () => {
      if ((await receiveOnce()) > 0) throw new Error('notifications still arriving');
      const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
      if (Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible) > 0) throw new Error('the subscriber queue is not empty');
    },
    { timeout: timeoutMs, interval: 0 },
  );
  return seen;
}
