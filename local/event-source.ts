import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { setMaxListeners } from 'node:events';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { InvokeOptions, InvokeOutcome } from './function-pool';
import { parseFaults, type FaultPlan } from './faults';

export interface EventSourceConfig {
  label: string;
  queueUrl: string;
  queueArn: string;
  region: string;
  batchSize: number;
  batchingWindowSeconds: number;
  maxConcurrency: number;
  reportBatchItemFailures: boolean;
}

export type Invoke = (event: SQSEvent, opts: InvokeOptions) => Promise<InvokeOutcome>;

export interface EventSourceStats {
  invocations: number;
  failedInvocations: number;
  deleted: number;
  maxConcurrent: number;
  faults: Record<string, number>;
  /** `crash` faults that killed their environment, by step (a run can end before the drawn step). */
  crashes: Record<string, number>;
}

/**
 * An SQS event source with Lambda's semantics: up to `maxConcurrency` pollers, each
 * gathering a batch (up to batchSize, within the batching window), invoking the function
 * with the event Lambda sends, then deleting what succeeded: everything on success, all but
 * the reported `batchItemFailures` with ReportBatchItemFailures, nothing when the
 * invocation throws, times out or answers a malformed failure list. Visibility is never
 * changed: failed messages come back after the queue's visibility timeout, and the queue's
 * own redrive policy moves them to the DLQ.
 *
 * Written here rather than with sqs-consumer: Lambda batches can exceed SQS's 10 messages
 * per receive and wait out a batching window, and partial failures decide which of the
 * batch's messages are deleted — sqs-consumer handles neither without working around it.
 */
export class SqsEventSource {
  readonly stats: EventSourceStats = { invocations: 0, failedInvocations: 0, deleted: 0, maxConcurrent: 0, faults: {}, crashes: {} };
  private running = 0;
  private stopped = true;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];

  constructor(
    private readonly sqs: SQSClient,
    readonly config: EventSourceConfig,
    private readonly invoke: Invoke,
    private readonly opts: { faults?: FaultPlan; log?: (line: string) => void; waitTimeSeconds?: number } = {},
  ) {}

  start(): void {
    if (!this.stopped) return;
    // One abort listener per concurrent receive.
    setMaxListeners(0, this.abort.signal);
    this.stopped = false;
    this.loops = Array.from({ length: this.config.maxConcurrency }, () => this.loop());
  }

  /** Stops polling; in-flight invocations finish (the pool's own timeout bounds them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await Promise.allSettled(this.loops);
  }

  private async loop(): Promise<void> {
    const faults = this.opts.faults ?? parseFaults(undefined);
    while (!this.stopped) {
      let batch: Message[];
      try {
        batch = await this.collectBatch();
      } catch (err) {
        if (this.stopped) return;
        this.opts.log?.(`[${this.config.label} poller] receive failed: ${(err as Error).message}`);
        await sleep(1000);
        continue;
      }
      if (batch.length === 0) continue;
      const fault = faults.draw();
      if (fault !== 'none') this.stats.faults[fault] = (this.stats.faults[fault] ?? 0) + 1;
      this.running++;
      this.stats.maxConcurrent = Math.max(this.stats.maxConcurrent, this.running);
      try {
        await this.runBatch(batch, fault, faults);
      } finally {
        this.running--;
      }
    }
  }

  private async runBatch(batch: Message[], fault: string, faults: FaultPlan): Promise<void> {
    this.stats.invocations++;
    if (fault === 'throw') {
      this.stats.failedInvocations++;
      this.opts.log?.(`[${this.config.label} poller] fault injected: invocation failed before running (${batch.length} messages)`);
      return;
    }
    const crash = fault === 'crash' ? faults.crashPoint() : undefined;
    const outcome = await this.invoke(
      toEvent(batch, this.config),
      fault === 'timeout' ? { killAfterMs: faults.killDelayMs() } : crash ? { crash: crash.point } : {},
    );
    if (crash && !outcome.ok && outcome.kind === 'crash') this.stats.crashes[crash.step] = (this.stats.crashes[crash.step] ?? 0) + 1;
    if (!outcome.ok) {
      this.stats.failedInvocations++;
      this.opts.log?.(`[${this.config.label} poller] invocation failed (${outcome.kind}): ${outcome.error.errorMessage}; ${batch.length} messages will be retried`);
      return;
    }
    const toDelete = this.succeeded(batch, outcome.result);
    if (fault === 'lose-ack') {
      this.opts.log?.(`[${this.config.label} poller] fault injected: acknowledgement of ${toDelete.length} messages lost`);
      return;
    }
    await this.delete(toDelete);
  }

  /** Which messages of the batch succeeded, read as Lambda reads the function's response. */
  private succeeded(batch: Message[], result: unknown): Message[] {
    if (!this.config.reportBatchItemFailures) return batch;
    if (result === null || result === undefined) return batch;
    const failures = (result as { batchItemFailures?: unknown }).batchItemFailures;
    if (failures === undefined || failures === null) return batch;
    if (!Array.isArray(failures)) return [];
    const ids = new Set<string>();
    for (const f of failures) {
      const id = (f as { itemIdentifier?: unknown })?.itemIdentifier;
      // An empty, missing or unknown identifier fails the whole batch, as on Lambda.
      if (typeof id !== 'string' || !batch.some((m) => m.MessageId === id)) return [];
      ids.add(id);
    }
    return batch.filter((m) => !ids.has(m.MessageId!));
  }

  private async collectBatch(): Promise<Message[]> {
    const batch: Message[] = [];
    const windowMs = this.config.batchingWindowSeconds * 1000;
    let deadline = 0;
    while (batch.length < this.config.batchSize && !this.stopped) {
      const first = batch.length === 0;
      const remaining = first ? (this.opts.waitTimeSeconds ?? 20) * 1000 : deadline - Date.now();
      if (!first && remaining <= 0) break;
      const out = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.config.queueUrl,
          MaxNumberOfMessages: Math.min(10, this.config.batchSize - batch.length),
          WaitTimeSeconds: Math.min(20, Math.ceil(remaining / 1000)),
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: this.abort.signal },
      );
      const got = out.Messages ?? [];
      if (first && got.length > 0) deadline = Date.now() + windowMs;
      batch.push(...got);
      // Without a batching window Lambda invokes with what one poll returned.
      if (windowMs === 0 && batch.length > 0) break;
    }
    return batch;
  }

  private async delete(messages: Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      const out = await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.config.queueUrl,
          Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
      this.stats.deleted += out.Successful?.length ?? 0;
      for (const f of out.Failed ?? []) this.opts.log?.(`[${this.config.label} poller] delete failed: ${f.Message}`);
    }
  }
}

/** The event Lambda sends for a batch of SQS messages. */
export function toEvent(batch: Message[], config: Pick<EventSourceConfig, 'queueArn' | 'region'>): SQSEvent {
  return {
    Records: batch.map(
      (m): SQSRecord => ({
        messageId: m.MessageId!,
        receiptHandle: m.ReceiptHandle!,
        body: m.Body ?? '',
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: m.Attributes?.SenderId ?? 'local',
          ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
          ...(m.Attributes?.MessageGroupId ? { MessageGroupId: m.Attributes.MessageGroupId } : {}),
          ...(m.Attributes?.MessageDeduplicationId ? { MessageDeduplicationId: m.Attributes.MessageDeduplicationId } : {}),
        },
        messageAttributes: Object.fromEntries(
          Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
            k,
            {
              stringValue: v.StringValue,
              binaryValue: v.BinaryValue ? Buffer.from(v.BinaryValue).toString('base64') : undefined,
              stringListValues: [],
              binaryListValues: [],
              dataType: v.DataType ?? 'String',
            },
          ]),
        ),
        md5OfBody: m.MD5OfBody ?? '',
        ...(m.MD5OfMessageAttributes ? { md5OfMessageAttributes: m.MD5OfMessageAttributes } : {}),
        eventSource: 'aws:sqs',
        eventSourceARN: config.queueArn,
        awsRegion: config.region,
      }),
    ),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
