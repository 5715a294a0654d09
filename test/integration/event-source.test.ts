import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqsEventSource, type EventSourceConfig, type Invoke } from '../../local/event-source';
import { parseFaults } from '../../local/faults';
import { LocalFunction } from '../../local/function-pool';
import { startMoto, testCredentials, type Moto } from '../helpers/moto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The local runtime's SQS event source against a real SQS API (moto): partial batch
 * failures, thrown errors, timeouts, the concurrency cap and redrive to the DLQ.
 */
let moto: Moto;
let sqs: SQSClient;
let n = 0;

beforeAll(async () => {
  moto = await startMoto();
  sqs = new SQSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: testCredentials });
}, 60_000);

afterAll(async () => {
  await moto?.stop();
});

async function queuePair(visibility: number, maxReceiveCount = 3) {
  const id = ++n;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `dlq-${id}` }));
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const q = await sqs.send(
    new CreateQueueCommand({
      QueueName: `work-${id}`,
      Attributes: { VisibilityTimeout: String(visibility), RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }) },
    }),
  );
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  return { url: q.QueueUrl!, arn, dlqUrl: dlq.QueueUrl! };
}

function config(q: { url: string; arn: string }, over: Partial<EventSourceConfig> = {}): EventSourceConfig {
  return { label: 'test', queueUrl: q.url, queueArn: q.arn, region: 'us-east-1', batchSize: 10, batchingWindowSeconds: 0, maxConcurrency: 2, reportBatchItemFailures: true, ...over };
}

async function counts(url: string) {
  const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes!;
  return { visible: Number(a.ApproximateNumberOfMessages), inFlight: Number(a.ApproximateNumberOfMessagesNotVisible) };
}

const ok = (result: unknown) => ({ ok: true as const, result, ms: 1 });

describe('SqsEventSource', () => {
  it('sends the event Lambda sends, and deletes only what the batch response does not report', async () => {
    const q = await queuePair(2);
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: q.url,
        Entries: ['good-1', 'bad', 'good-2'].map((b, i) => ({ Id: String(i), MessageBody: b, MessageAttributes: { kind: { DataType: 'String', StringValue: b } } })),
      }),
    );
    const events: SQSEvent[] = [];
    const invoke: Invoke = async (event) => {
      events.push(event);
      return ok({ batchItemFailures: event.Records.filter((r) => r.body === 'bad').map((r) => ({ itemIdentifier: r.messageId })) });
    };
    const source = new SqsEventSource(sqs, config(q, { maxConcurrency: 2, batchingWindowSeconds: 1 }), invoke, { waitTimeSeconds: 1 });
    source.start();
    await expect.poll(() => source.stats.deleted, { timeout: 10_000, message: 'two deletes' }).toBeGreaterThanOrEqual(2);
    // The failed one comes back after the visibility timeout, received a second time.
    await expect
      .poll(() => events.some((e) => e.Records.some((r) => r.body === 'bad' && r.attributes.ApproximateReceiveCount === '2')), { timeout: 15_000, message: 'redelivery' })
      .toBe(true);
    await source.stop();

    const first = events[0].Records[0];
    expect(first).toMatchObject({
      eventSource: 'aws:sqs',
      eventSourceARN: q.arn,
      awsRegion: 'us-east-1',
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: expect.stringMatching(/^\d+$/), ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d+$/) },
      messageAttributes: { kind: { stringValue: expect.any(String), dataType: 'String' } },
    });
    expect(first.messageId).toBeTruthy();
    expect(first.receiptHandle).toBeTruthy();
    expect(first.md5OfBody).toMatch(/^[0-9a-f]{32}$/);
    const bodies = events.flatMap((e) => e.Records.map((r) => r.body));
    expect(bodies.filter((b) => b.startsWith('good'))).toHaveLength(2); // never redelivered
  });

  it('deletes nothing when the invocation throws; after maxReceiveCount the message is in the DLQ', async () => {
    const q = await queuePair(1, 2);
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'poison' }));
    let calls = 0;
    const invoke: Invoke = async () => {
      calls++;
      return { ok: false, kind: 'error', error: { errorType: 'Error', errorMessage: 'boom' }, ms: 1 };
    };
    const source = new SqsEventSource(sqs, config(q), invoke, { waitTimeSeconds: 1 });
    source.start();
    await expect.poll(async () => (await counts(q.dlqUrl)).visible, { timeout: 20_000, message: 'the DLQ' }).toBe(1);
    await source.stop();
    expect(calls).toBe(2);
    const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.dlqUrl, WaitTimeSeconds: 1 }));
    expect(dead.Messages?.[0].Body).toBe('poison');
  });

  it('treats a malformed batch response (unknown item identifier) as a failure of the whole batch', async () => {
    const q = await queuePair(30);
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'x' }));
    const source = new SqsEventSource(sqs, config(q), async () => ok({ batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] }), { waitTimeSeconds: 1 });
    source.start();
    await expect.poll(() => source.stats.invocations, { timeout: 10_000, message: 'an invocation' }).toBe(1);
    await source.stop();
    expect(source.stats.deleted).toBe(0);
    expect(await counts(q.url)).toEqual({ visible: 0, inFlight: 1 });
  });

  it('never runs more batches at once than maxConcurrency', async () => {
    // A visibility timeout longer than the test can take: no message comes back while its
    // batch is held (a redelivery would be SQS's at-least-once, not what this test counts).
    const q = await queuePair(600);
    for (let i = 0; i < 4; i++) {
      await sqs.send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: Array.from({ length: 10 }, (_, j) => ({ Id: String(j), MessageBody: `m${i}-${j}` })) }));
    }
    let running = 0;
    let peak = 0;
    const sizes: number[] = [];
    // Every batch is held until released: with 40 messages waiting, the pollers fill all
    // maxConcurrency slots whatever the scheduling, and a poller beyond the cap would show.
    let open = false;
    const held: Array<() => void> = [];
    const invoke: Invoke = async (event) => {
      running++;
      peak = Math.max(peak, running);
      sizes.push(event.Records.length);
      if (!open) await new Promise<void>((r) => held.push(r));
      running--;
      return ok(null);
    };
    const source = new SqsEventSource(sqs, config(q, { batchSize: 2, maxConcurrency: 3 }), invoke, { waitTimeSeconds: 1 });
    source.start();
    await expect.poll(() => held.length, { timeout: 30_000, message: 'maxConcurrency batches running at once' }).toBe(3);
    open = true;
    held.splice(0).forEach((release) => release());
    await expect.poll(() => source.stats.deleted, { timeout: 30_000, message: 'all 40 messages' }).toBe(40);
    await source.stop();
    expect(peak).toBe(3);
    expect(source.stats.maxConcurrent).toBe(3);
    // Each message in exactly one batch of at most batchSize (how many one receive returns is SQS's choice).
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(40);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2);
    expect(source.stats.invocations).toBe(sizes.length);
  });

  it('fails the batch when the function times out (the environment is killed)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-fn-'));
    fs.writeFileSync(path.join(dir, 'index.js'), 'exports.handler = async (e) => { if (e.Records[0].body === "slow") await new Promise(() => undefined); return { pid: process.pid }; };');
    const fn = new LocalFunction(
      { label: 'slow', functionName: 'slow', functionArn: 'arn:aws:lambda:us-east-1:1:function:slow', bundleDir: dir, handler: 'index.handler', timeoutSeconds: 1, memoryMb: 128, environment: {} },
      {},
      () => undefined,
    );
    const q = await queuePair(30);
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'slow' }));
    const outcomes: string[] = [];
    const source = new SqsEventSource(sqs, config(q, { maxConcurrency: 1 }), async (event, o) => {
      const out = await fn.invoke(event, o);
      outcomes.push(out.ok ? 'ok' : out.kind);
      return out;
    }, { waitTimeSeconds: 1 });
    source.start();
    await expect.poll(() => outcomes.length, { timeout: 10_000, message: 'the timeout' }).toBe(1);
    await source.stop();
    expect(outcomes).toEqual(['timeout']);
    expect(source.stats.deleted).toBe(0);
    // A fresh environment serves the next invocation.
    const again = await fn.invoke({ Records: [{ body: 'fast' }] });
    expect(again.ok).toBe(true);
    await fn.stop();
  });

  it('injects faults: throw runs nothing, lose-ack runs but deletes nothing', async () => {
    const q = await queuePair(30);
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'a' }));
    let ran = 0;
    const throwing = new SqsEventSource(sqs, config(q), async () => ((ran++), ok(null)), { waitTimeSeconds: 1, faults: parseFaults('throw=1') });
    throwing.start();
    await expect.poll(() => throwing.stats.invocations, { timeout: 10_000, message: 'a throw' }).toBe(1);
    await throwing.stop();
    expect([ran, throwing.stats.deleted, throwing.stats.faults.throw]).toEqual([0, 0, 1]);

    const q2 = await queuePair(30);
    await sqs.send(new SendMessageCommand({ QueueUrl: q2.url, MessageBody: 'b' }));
    const losing = new SqsEventSource(sqs, config(q2), async () => ((ran++), ok(null)), { waitTimeSeconds: 1, faults: parseFaults('lose-ack=1') });
    losing.start();
    await expect.poll(() => losing.stats.invocations, { timeout: 10_000, message: 'a lost ack' }).toBe(1);
    await losing.stop();
    expect([ran, losing.stats.deleted]).toEqual([1, 0]);
    expect(await counts(q2.url)).toEqual({ visible: 0, inFlight: 1 });
    expect(() => parseFaults('throw=2')).toThrow(/bad entry/);
    expect(() => parseFaults('explode=0.1')).toThrow(/bad entry/);
  });
});
