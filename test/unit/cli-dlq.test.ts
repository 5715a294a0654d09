import type { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { manualMove, peekDeadLetters, startMoveTask } from '../../cli/commands/dlq';

/**
 * The DLQ commands' SQS conversations against a scripted fake client: the order of calls is
 * the point (never delete a dead letter before its copy was sent; always make peeked messages
 * visible again).
 */
type Handler = (input: any) => any;

function fakeSqs(handlers: Record<string, Handler>) {
  const calls: Array<{ op: string; input: any }> = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: unknown }) => {
      const op = command.constructor.name.replace(/Command$/, '');
      calls.push({ op, input: command.input });
      const h = handlers[op];
      if (!h) throw new Error(`unexpected ${op}`);
      return h(command.input);
    },
  } as unknown as SQSClient;
  return { client, calls, ops: () => calls.map((c) => c.op) };
}

const empty = { Attributes: { ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' } };
const msg = (i: number) => ({ MessageId: `m${i}`, ReceiptHandle: `r${i}`, Body: `{"n":${i}}`, MessageAttributes: { a: { DataType: 'String', StringValue: `v${i}` } } });

describe('manual redrive', () => {
  it('sends each message to the source queue, then deletes it from the DLQ, until the DLQ is empty', async () => {
    const batches = [[msg(1), msg(2)], [msg(3)], []];
    const sqs = fakeSqs({ ReceiveMessage: () => ({ Messages: batches.shift() }), SendMessage: () => ({}), DeleteMessage: () => ({}), GetQueueAttributes: () => empty });
    const result = await manualMove(sqs.client, 'thumbnails', 'dlq', 'src');
    expect(result).toEqual({ queue: 'thumbnails', method: 'manual', moved: 3, duplicated: 0, failed: 0 });
    expect(sqs.ops()).toEqual([
      'ReceiveMessage',
      'SendMessage',
      'DeleteMessage',
      'SendMessage',
      'DeleteMessage',
      'ReceiveMessage',
      'SendMessage',
      'DeleteMessage',
      'ReceiveMessage',
      'GetQueueAttributes',
    ]);
    const sent = sqs.calls.filter((c) => c.op === 'SendMessage').map((c) => c.input);
    expect(sent[0]).toEqual({ QueueUrl: 'src', MessageBody: '{"n":1}', MessageAttributes: { a: { DataType: 'String', StringValue: 'v1' } } });
    expect(sqs.calls.filter((c) => c.op === 'DeleteMessage').map((c) => c.input)).toEqual(['r1', 'r2', 'r3'].map((r) => ({ QueueUrl: 'dlq', ReceiptHandle: r })));
  });

  it("sends each message back to the lane it came from (its priority attribute or upload key), the high lane when there is one", async () => {
    const upload = (key: string) => JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'raw' }, object: { key, size: 1 } } }] });
    const jobId = '3f1c2a4b-5d6e-4f70-8a9b-0c1d2e3f4a5b';
    const letters = [
      { MessageId: 'h1', ReceiptHandle: 'rh1', Body: `{"jobId":"${jobId}","type":"report"}`, MessageAttributes: { priority: { DataType: 'String', StringValue: 'high' } } },
      { MessageId: 'n1', ReceiptHandle: 'rn1', Body: `{"jobId":"${jobId}","type":"report"}`, MessageAttributes: { priority: { DataType: 'String', StringValue: 'normal' } } },
      { MessageId: 'h2', ReceiptHandle: 'rh2', Body: upload(`priority-uploads/${jobId}/a.jpg`) },
      { MessageId: 'n2', ReceiptHandle: 'rn2', Body: upload(`uploads/${jobId}/a.jpg`) },
      { MessageId: 'p', ReceiptHandle: 'rp', Body: 'poison' },
    ];
    const run = async (highUrl?: string) => {
      const batches = [[...letters], []];
      const sqs = fakeSqs({ ReceiveMessage: () => ({ Messages: batches.shift() }), SendMessage: () => ({}), DeleteMessage: () => ({}), GetQueueAttributes: () => empty });
      expect(await manualMove(sqs.client, 'reports', 'dlq', 'src', { highUrl })).toMatchObject({ moved: 5, failed: 0 });
      return sqs.calls.filter((c) => c.op === 'SendMessage').map((c) => c.input.QueueUrl);
    };
    expect(await run('high')).toEqual(['high', 'src', 'high', 'src', 'src']);
    // A stack from before lanes (no high queue output): everything back to the one queue.
    expect(await run(undefined)).toEqual(['src', 'src', 'src', 'src', 'src']);
  });

  it('looks again when another reader holds messages for a moment, and says what it left behind', async () => {
    const batches = [[], [msg(1)], []];
    let held = 1;
    const sqs = fakeSqs({
      ReceiveMessage: () => ({ Messages: batches.shift() ?? [] }),
      SendMessage: () => ({}),
      DeleteMessage: () => ({}),
      GetQueueAttributes: () => ({ Attributes: { ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: String(held--) } }),
    });
    expect(await manualMove(sqs.client, 'thumbnails', 'dlq', 'src', { retryDelayMs: 1 })).toEqual({ queue: 'thumbnails', method: 'manual', moved: 1, duplicated: 0, failed: 0 });

    const stuck = fakeSqs({ ReceiveMessage: () => ({}), GetQueueAttributes: () => ({ Attributes: { ApproximateNumberOfMessagesNotVisible: '2' } }) });
    expect(await manualMove(stuck.client, 'reports', 'dlq', 'src', { retryDelayMs: 1 })).toMatchObject({ moved: 0, notMoved: 2 });
    expect(stuck.ops().filter((o) => o === 'ReceiveMessage')).toHaveLength(4);
  });

  it('never deletes a message whose send failed, and makes the rest of the batch visible again', async () => {
    let sends = 0;
    const sqs = fakeSqs({
      ReceiveMessage: () => ({ Messages: [msg(1), msg(2), msg(3)] }),
      SendMessage: () => {
        if (++sends === 2) throw Object.assign(new Error('Access to the resource is denied'), { name: 'AccessDenied' });
        return {};
      },
      DeleteMessage: () => ({}),
      ChangeMessageVisibilityBatch: () => ({}),
    });
    const result = await manualMove(sqs.client, 'reports', 'dlq', 'src');
    expect(result).toMatchObject({ moved: 1, failed: 2, error: expect.stringContaining('cannot send message m2 back to the reports queue (it stays in the DLQ): AccessDenied') });
    expect(sqs.ops()).toEqual(['ReceiveMessage', 'SendMessage', 'DeleteMessage', 'SendMessage', 'ChangeMessageVisibilityBatch']);
    expect(sqs.calls.at(-1)!.input.Entries).toEqual([
      { Id: 'm0', ReceiptHandle: 'r2', VisibilityTimeout: 0 },
      { Id: 'm1', ReceiptHandle: 'r3', VisibilityTimeout: 0 },
    ]);
  });

  it('counts a message it sent but could not delete as duplicated', async () => {
    const batches = [[msg(1)], []];
    const sqs = fakeSqs({
      ReceiveMessage: () => ({ Messages: batches.shift() }),
      SendMessage: () => ({}),
      DeleteMessage: () => {
        throw new Error('ReceiptHandleIsInvalid');
      },
      // the undeleted copy is still in the DLQ, invisible: not a reason to look again
      GetQueueAttributes: () => ({ Attributes: { ApproximateNumberOfMessagesNotVisible: '1' } }),
    });
    expect(await manualMove(sqs.client, 'thumbnails', 'dlq', 'src')).toMatchObject({ moved: 0, duplicated: 1, failed: 0 });
  });
});

describe('StartMessageMoveTask', () => {
  it('follows the task until it completes', async () => {
    const statuses = [
      { Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 1, TaskHandle: 'h' },
      { Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 7 },
    ];
    const sqs = fakeSqs({ StartMessageMoveTask: () => ({ TaskHandle: 'h' }), ListMessageMoveTasks: () => ({ Results: [statuses.shift()] }) });
    const result = await startMoveTask(sqs.client, 'thumbnails', 'arn:dlq', () => undefined, { pollMs: 1 });
    expect(result).toEqual({ queue: 'thumbnails', method: 'StartMessageMoveTask', moved: 7, duplicated: 0, failed: 0, taskHandle: 'h', taskStatus: 'COMPLETED' });
    expect(sqs.calls[0].input).toEqual({ SourceArn: 'arn:dlq' }); // no destination: back to the source queue
  });

  it('reports a failed task', async () => {
    const sqs = fakeSqs({
      StartMessageMoveTask: () => ({ TaskHandle: 'h' }),
      ListMessageMoveTasks: () => ({ Results: [{ Status: 'FAILED', FailureReason: 'AWS.SimpleQueueService.NonExistentQueue' }] }),
    });
    expect(await startMoveTask(sqs.client, 'reports', 'arn', () => undefined, { pollMs: 1 })).toMatchObject({
      taskStatus: 'FAILED',
      error: 'the message move task failed: AWS.SimpleQueueService.NonExistentQueue',
    });
  });

  it('returns undefined (fall back) when the endpoint does not implement it, and throws on real failures', async () => {
    const lines: string[] = [];
    const moto = fakeSqs({
      StartMessageMoveTask: () => {
        throw Object.assign(new SyntaxError('Unexpected token \'<\'\n  Deserialization error: to see the raw response...'), { $metadata: { httpStatusCode: 500 } });
      },
    });
    expect(await startMoveTask(moto.client, 'thumbnails', 'arn', (l) => lines.push(l))).toBeUndefined();
    expect(lines[0]).toMatch(/^StartMessageMoveTask is not available on this endpoint/);

    const denied = fakeSqs({
      StartMessageMoveTask: () => {
        throw Object.assign(new Error('not authorized to perform sqs:StartMessageMoveTask'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      },
    });
    await expect(startMoveTask(denied.client, 'thumbnails', 'arn', () => undefined)).rejects.toThrow(
      'StartMessageMoveTask on the thumbnails DLQ failed: AccessDenied: not authorized to perform sqs:StartMessageMoveTask',
    );
  });
});

describe('peeking', () => {
  it('collects up to N distinct messages, then makes them all visible again', async () => {
    const batches = [[msg(1), msg(2)], [msg(2), msg(3)], [msg(4)]];
    const sqs = fakeSqs({ ReceiveMessage: () => ({ Messages: batches.shift() ?? [] }), ChangeMessageVisibilityBatch: () => ({}) });
    const got = await peekDeadLetters(sqs.client, 'dlq', 3);
    expect(got.map((m) => m.MessageId)).toEqual(['m1', 'm2', 'm3']);
    expect(sqs.calls.filter((c) => c.op === 'ReceiveMessage').map((c) => c.input.MaxNumberOfMessages)).toEqual([3, 1]);
    const released = sqs.calls.filter((c) => c.op === 'ChangeMessageVisibilityBatch').flatMap((c) => c.input.Entries.map((e: any) => [e.ReceiptHandle, e.VisibilityTimeout]));
    expect(released).toEqual([
      ['r1', 0],
      ['r2', 0],
      ['r3', 0],
    ]);
  });

  it('releases what it holds even when a receive fails', async () => {
    let n = 0;
    const sqs = fakeSqs({
      ReceiveMessage: () => {
        if (n++ === 0) return { Messages: [msg(1)] };
        throw new Error('boom');
      },
      ChangeMessageVisibilityBatch: () => ({}),
    });
    await expect(peekDeadLetters(sqs.client, 'dlq', 10)).rejects.toThrow('boom');
    expect(sqs.ops().at(-1)).toBe('ChangeMessageVisibilityBatch');
  });
});
