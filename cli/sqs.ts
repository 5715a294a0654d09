import {
  ChangeMessageVisibilityBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';

export { oldestAgesFromCloudWatch, queueCounts, queueNameFromUrl, type QueueCounts } from '../lambda/shared/queue-stats';

/**
 * Age of the oldest of (up to 10) messages seen by one receive with VisibilityTimeout 0:
 * they stay visible, and only their receive count moves. Only ever used on a queue without
 * a redrive policy (a DLQ), where a receive count has no consequence; on a source queue it
 * would bring messages closer to the DLQ. A lower bound when the queue holds more than it
 * returned.
 */
export async function peekOldestAge(sqs: Pick<SQSClient, 'send'>, url: string, now = Date.now()): Promise<{ seconds?: number; seen: number }> {
  const res = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['SentTimestamp'] }),
  );
  const sent = (res.Messages ?? []).map((m) => Number(m.Attributes?.SentTimestamp)).filter((t) => Number.isFinite(t) && t > 0);
  if (sent.length === 0) return { seen: 0 };
  return { seconds: Math.max(0, (now - Math.min(...sent)) / 1000), seen: sent.length };
}

/** Makes received messages visible again at once (batches of 10; failures ignored: they reappear after their timeout). */
export async function releaseMessages(sqs: Pick<SQSClient, 'send'>, url: string, messages: Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    const batch = messages.slice(i, i + 10).filter((m) => m.ReceiptHandle);
    if (batch.length === 0) continue;
    await sqs
      .send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: url,
          Entries: batch.map((m, j) => ({ Id: `m${j}`, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
        }),
      )
      .catch(() => undefined);
  }
}

/** Received message attributes as SendMessage accepts them (list values, which SQS reserves, dropped). */
export function sendableAttributes(attrs: Record<string, MessageAttributeValue> | undefined): Record<string, MessageAttributeValue> | undefined {
  if (!attrs) return undefined;
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, v] of Object.entries(attrs)) {
    if (!v?.DataType) continue;
    if (v.StringValue !== undefined) out[name] = { DataType: v.DataType, StringValue: v.StringValue };
    else if (v.BinaryValue !== undefined) out[name] = { DataType: v.DataType, BinaryValue: v.BinaryValue };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Did StartMessageMoveTask fail because the endpoint does not implement it (moto answers 500
 * with an HTML page; others say UnsupportedOperation/InvalidAction/NotImplemented)? Errors
 * of a working implementation (access denied, not a DLQ, a task already running) are not.
 */
export function isUnsupportedOperation(err: unknown): boolean {
  const e = err as { name?: string; message?: string; Code?: string; $metadata?: { httpStatusCode?: number }; $response?: unknown };
  const name = e?.name ?? '';
  const code = e?.Code ?? '';
  const message = e?.message ?? '';
  const status = e?.$metadata?.httpStatusCode ?? 0;
  if (/^(UnsupportedOperation|InvalidAction|UnknownOperation(Exception)?|NotImplemented(Error|Exception)?)$/.test(name)) return true;
  if (/^(UnsupportedOperation|InvalidAction|UnknownOperation(Exception)?|NotImplemented)$/.test(code)) return true;
  if (status === 501) return true;
  if (/not (yet )?implemented|unknown operation|unsupported operation|is not supported|invalid action/i.test(message)) return true;
  // An answer the SDK cannot even parse, with a server error: not an SQS implementation of the call.
  if (status >= 500 && (name === 'SyntaxError' || /deserialization error/i.test(message))) return true;
  return false;
}
