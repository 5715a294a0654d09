import {
  CreateTableCommand,
  DeleteItemCommand,
  DynamoDBClient,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import {
  CreateEventSourceMappingCommand,
  CreateFunctionCommand,
  GetEventSourceMappingCommand,
  LambdaClient,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { InvokeOutcome } from '../../local/function-pool';
import { DynamoStreamEventSource, type StreamInvoke, type StreamSourceConfig } from '../../local/stream-source';
import { startMoto, testCredentials, type Moto } from '../helpers/moto';
import { streamSourceConfig } from '../helpers/stream-config';

/**
 * The local runtime's DynamoDB Streams event source against a real DynamoDB Streams API
 * (moto): order and event shape, filtering, retries, partial batch failures, bisection,
 * the OnFailure destination and stop(). The function is an in-process fake.
 */
const region = 'us-east-1';
let moto: Moto;
let ddb: DynamoDBClient;
let streams: DynamoDBStreamsClient;
let sqs: SQSClient;
let n = 0;
const running: DynamoStreamEventSource[] = [];

beforeAll(async () => {
  moto = await startMoto();
  const cfg = { endpoint: moto.endpoint, region, credentials: testCredentials };
  ddb = new DynamoDBClient(cfg);
  streams = new DynamoDBStreamsClient(cfg);
  sqs = new SQSClient(cfg);
}, 60_000);

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await moto?.stop();
});

async function table(): Promise<{ name: string; streamArn: string }> {
  const name = `jobs-${++n}`;
  const out = await ddb.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [{ AttributeName: 'jobId', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'jobId', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  return { name, streamArn: out.TableDescription!.LatestStreamArn! };
}

const put = (t: { name: string }, jobId: string, status: string, extra: Record<string, AttributeValue> = {}) =>
  ddb.send(new PutItemCommand({ TableName: t.name, Item: { jobId: { S: jobId }, status: { S: status }, ...extra } }));
const setStatus = (t: { name: string }, jobId: string, status: string) =>
  ddb.send(
    new UpdateItemCommand({
      TableName: t.name,
      Key: { jobId: { S: jobId } },
      UpdateExpression: 'SET #s = :s',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':s': { S: status } },
    }),
  );

function config(t: { streamArn: string }, over: Partial<StreamSourceConfig> = {}): StreamSourceConfig {
  return streamSourceConfig(t.streamArn, { region, reportBatchItemFailures: true, ...over });
}

/** A fake function: records every event, answers with `respond` (default: success). */
function fakeFunction(respond: (event: DynamoDBStreamEvent, call: number) => InvokeOutcome | Promise<InvokeOutcome> = () => ok(null)) {
  const events: DynamoDBStreamEvent[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const invoke: StreamInvoke = async (event) => {
    events.push(structuredClone(event));
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await new Promise((r) => setImmediate(r));
      return await respond(event, events.length);
    } finally {
      inFlight--;
    }
  };
  return { events, invoke, maxInFlight: () => maxInFlight };
}

function start(cfg: StreamSourceConfig, invoke: StreamInvoke, client: Pick<DynamoDBStreamsClient, 'send'> = streams) {
  const source = new DynamoStreamEventSource(client, sqs, cfg, invoke, { pollIntervalMs: 50 });
  running.push(source);
  source.start();
  return source;
}

const ok = (result: unknown): InvokeOutcome => ({ ok: true, result, ms: 1 });
const failed: InvokeOutcome = { ok: false, kind: 'error', error: { errorType: 'Error', errorMessage: 'boom' }, ms: 1 };
const idOf = (r: DynamoDBRecord) => (r.dynamodb!.NewImage ?? r.dynamodb!.OldImage)!.jobId.S!;
const ids = (e: DynamoDBStreamEvent) => e.Records.map(idOf);
const all = (events: DynamoDBStreamEvent[]) => events.flatMap((e) => e.Records);

describe('DynamoStreamEventSource', () => {
  it('sends every record once, in order, one batch at a time, in the event Lambda sends', async () => {
    const t = await table();
    for (const id of ['j1', 'j2', 'j3', 'j4', 'j5']) await put(t, id, 'queued', id === 'j3' ? { blob: { B: Buffer.from('hi') } } : {});
    await setStatus(t, 'j1', 'running');
    await ddb.send(new DeleteItemCommand({ TableName: t.name, Key: { jobId: { S: 'j2' } } }));
    const fn = fakeFunction();
    const source = start(config(t, { batchSize: 3 }), fn.invoke);

    await expect.poll(() => all(fn.events).length).toBe(7);
    const records = all(fn.events);
    expect(records.map((r) => `${r.eventName} ${idOf(r)}`)).toEqual(['INSERT j1', 'INSERT j2', 'INSERT j3', 'INSERT j4', 'INSERT j5', 'MODIFY j1', 'REMOVE j2']);
    const seqs = records.map((r) => BigInt(r.dynamodb!.SequenceNumber!));
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1])).toBe(true);
    expect(fn.events.map((e) => e.Records.length)).toEqual([3, 3, 1]);
    expect(fn.maxInFlight()).toBe(1);

    expect(records[5]).toEqual({
      eventID: expect.any(String),
      eventName: 'MODIFY',
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: region,
      eventSourceARN: t.streamArn,
      dynamodb: {
        ApproximateCreationDateTime: expect.any(Number),
        Keys: { jobId: { S: 'j1' } },
        NewImage: { jobId: { S: 'j1' }, status: { S: 'running' } },
        OldImage: { jobId: { S: 'j1' }, status: { S: 'queued' } },
        SequenceNumber: expect.stringMatching(/^\d+$/),
        SizeBytes: expect.any(Number),
        StreamViewType: 'NEW_AND_OLD_IMAGES',
      },
    });
    expect(Number.isInteger(records[5].dynamodb!.ApproximateCreationDateTime)).toBe(true);
    expect(records[2].dynamodb!.NewImage!.blob).toEqual({ B: Buffer.from('hi').toString('base64') });
    expect(records[6].dynamodb!.NewImage).toBeUndefined();
    expect(records[6].dynamodb!.OldImage).toEqual({ jobId: { S: 'j2' }, status: { S: 'queued' } });
    expect(source.stats).toMatchObject({ shards: 1, read: 7, invocations: 3, succeeded: 7, failedInvocations: 0, retries: 0 });
  });

  it('LATEST starts after what the stream already holds', async () => {
    const t = await table();
    await put(t, 'before', 'queued');
    const fn = fakeFunction();
    const source = start(config(t, { startingPosition: 'LATEST' }), fn.invoke);
    await expect.poll(() => source.stats.shards).toBe(1);
    await put(t, 'after', 'queued');
    await expect.poll(() => all(fn.events).length).toBe(1);
    expect(ids(fn.events[0])).toEqual(['after']);
  });

  it('drops records that match no filter, without invoking', async () => {
    const t = await table();
    const fn = fakeFunction();
    const pattern = { eventName: ['MODIFY'], dynamodb: { NewImage: { status: { S: ['succeeded'] } } } };
    const source = start(config(t, { filterPatterns: [JSON.stringify(pattern)], batchSize: 2 }), fn.invoke);
    for (const id of ['a', 'b', 'c']) await put(t, id, 'queued');
    await setStatus(t, 'a', 'running');
    await setStatus(t, 'a', 'succeeded');
    await setStatus(t, 'b', 'failed');
    await put(t, 'd', 'succeeded'); // an INSERT: dropped
    await setStatus(t, 'c', 'succeeded'); // the last write: once it arrives, everything before was read

    await expect.poll(() => all(fn.events).map(idOf)).toContain('c');
    expect(all(fn.events).map((r) => `${r.eventName} ${idOf(r)} ${r.dynamodb!.NewImage!.status.S}`)).toEqual(['MODIFY a succeeded', 'MODIFY c succeeded']);
    expect(source.stats).toMatchObject({ read: 8, filteredOut: 6, succeeded: 2 });
  });

  it('retries a failed batch (error, then a throw) with exactly its records until it succeeds, holding the shard', async () => {
    const t = await table();
    for (const id of ['j1', 'j2', 'j3', 'j4']) await put(t, id, 'queued');
    const fn = fakeFunction(async (_event, call) => {
      if (call <= 2) return failed;
      if (call === 3) throw new Error('the environment went away');
      return ok(null);
    });
    const source = start(config(t), fn.invoke);
    await expect.poll(() => source.stats.succeeded).toBe(4);
    await put(t, 'j5', 'queued');
    await expect.poll(() => source.stats.succeeded).toBe(5);

    expect(fn.events.map(ids)).toEqual([
      ['j1', 'j2', 'j3', 'j4'],
      ['j1', 'j2', 'j3', 'j4'],
      ['j1', 'j2', 'j3', 'j4'],
      ['j1', 'j2', 'j3', 'j4'],
      ['j5'],
    ]);
    // The retried events are the same records (same sequence numbers and event IDs).
    expect(fn.events[3]).toEqual(fn.events[0]);
    expect(source.stats).toMatchObject({ invocations: 5, failedInvocations: 3, retries: 3, discarded: 0 });
  });

  it('resumes from the lowest reported failure (ReportBatchItemFailures)', async () => {
    const t = await table();
    for (const id of ['j1', 'j2', 'j3', 'j4']) await put(t, id, 'queued');
    const fn = fakeFunction((event, call) => {
      if (call > 1) return ok({ batchItemFailures: [] });
      const seq = (id: string) => event.Records.find((r) => idOf(r) === id)!.dynamodb!.SequenceNumber!;
      return ok({ batchItemFailures: [{ itemIdentifier: seq('j4') }, { itemIdentifier: seq('j3') }] });
    });
    const source = start(config(t), fn.invoke);
    await expect.poll(() => source.stats.succeeded).toBe(4);
    expect(fn.events.map(ids)).toEqual([
      ['j1', 'j2', 'j3', 'j4'],
      ['j3', 'j4'],
    ]);
    expect(source.stats).toMatchObject({ partialFailures: 1, retries: 1, failedInvocations: 0 });
  });

  it('fails the whole batch on a malformed failure list, and ignores the list without ReportBatchItemFailures', async () => {
    const t = await table();
    await put(t, 'j1', 'queued');
    await put(t, 'j2', 'queued');
    const bogus = () => ok({ batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] });
    const fn = fakeFunction((event, call) => (call === 1 ? bogus() : ok(null)));
    const source = start(config(t), fn.invoke);
    await expect.poll(() => source.stats.succeeded).toBe(2);
    expect(fn.events.map(ids)).toEqual([
      ['j1', 'j2'],
      ['j1', 'j2'],
    ]);
    expect(source.stats.failedInvocations).toBe(1);

    const t2 = await table();
    await put(t2, 'k1', 'queued');
    const fn2 = fakeFunction(bogus);
    const source2 = start(config(t2, { reportBatchItemFailures: false }), fn2.invoke);
    await expect.poll(() => source2.stats.succeeded).toBe(1);
    expect(fn2.events).toHaveLength(1);
  });

  it('after MaximumRetryAttempts sends the batch info to the OnFailure queue and goes on', async () => {
    const t = await table();
    const dest = await queue();
    await put(t, 'poison', 'queued');
    await put(t, 'k1', 'queued');
    const fn = fakeFunction((event) => (ids(event).includes('poison') ? failed : ok(null)));
    const cfg = config(t, { batchSize: 2, maximumRetryAttempts: 1, onFailure: { destinationArn: dest.arn, queueUrl: dest.url } });
    const source = start(cfg, fn.invoke);
    await expect.poll(() => source.stats.sentToDestination).toBe(1);
    await put(t, 'k2', 'queued');
    await expect.poll(() => source.stats.succeeded).toBe(1);

    expect(fn.events.map(ids)).toEqual([['poison', 'k1'], ['poison', 'k1'], ['k2']]);
    const [first] = await receive(dest.url, 1);
    const shardId = (await streams.send(new DescribeStreamCommand({ StreamArn: t.streamArn }))).StreamDescription!.Shards![0].ShardId;
    expect(first).toEqual({
      requestContext: { requestId: expect.any(String), functionArn: cfg.functionArn, condition: 'RetryAttemptsExhausted', approximateInvokeCount: 2 },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      version: '1.0',
      timestamp: expect.any(String),
      DDBStreamBatchInfo: {
        shardId,
        startSequenceNumber: fn.events[0].Records[0].dynamodb!.SequenceNumber,
        endSequenceNumber: fn.events[0].Records[1].dynamodb!.SequenceNumber,
        approximateArrivalOfFirstRecord: expect.any(String),
        approximateArrivalOfLastRecord: expect.any(String),
        batchSize: 2,
        streamArn: t.streamArn,
      },
    });
    expect(source.stats).toMatchObject({ discarded: 2, retries: 1, failedInvocations: 2 });
  });

  it('with BisectBatchOnFunctionError isolates the failing record: only it is discarded', async () => {
    const t = await table();
    const dest = await queue();
    for (const id of ['k1', 'poison', 'k2', 'k3']) await put(t, id, 'queued');
    const fn = fakeFunction((event) => (ids(event).includes('poison') ? failed : ok(null)));
    const cfg = config(t, { bisectBatchOnFunctionError: true, maximumRetryAttempts: 1, onFailure: { destinationArn: dest.arn, queueUrl: dest.url } });
    const source = start(cfg, fn.invoke);
    await expect.poll(() => source.stats.succeeded).toBe(3);

    expect(fn.events.map(ids)).toEqual([
      ['k1', 'poison', 'k2', 'k3'], // fails: split
      ['k1', 'poison'], // fails: split
      ['k1'],
      ['poison'], // fails: a single record is retried
      ['poison'], // fails again: retries exhausted
      ['k2', 'k3'],
    ]);
    const [info] = await receive(dest.url, 1);
    const poisonSeq = fn.events[3].Records[0].dynamodb!.SequenceNumber;
    expect(info.DDBStreamBatchInfo).toMatchObject({ batchSize: 1, startSequenceNumber: poisonSeq, endSequenceNumber: poisonSeq });
    expect(source.stats).toMatchObject({ bisections: 2, retries: 1, discarded: 1, sentToDestination: 1 });
  });

  it('discards records older than MaximumRecordAgeInSeconds without invoking', async () => {
    const t = await table();
    const dest = await queue();
    await put(t, 'old', 'queued');
    const fn = fakeFunction();
    // A negative age limit is not allowed by Lambda; 0 makes every record too old here.
    const source = start(config(t, { maximumRecordAgeSeconds: 0, onFailure: { destinationArn: dest.arn, queueUrl: dest.url } }), fn.invoke);
    await expect.poll(() => source.stats.sentToDestination).toBe(1);
    expect(fn.events).toHaveLength(0);
    const [info] = await receive(dest.url, 1);
    expect(info.requestContext).toMatchObject({ condition: 'RecordAgeExceeded', approximateInvokeCount: 0 });
  });

  it('stop() ends polling and retrying', async () => {
    const t = await table();
    await put(t, 'j1', 'queued');
    let calls = 0;
    const counting = { send: (cmd: never, o?: never) => (calls++, streams.send(cmd, o)) } as unknown as Pick<DynamoDBStreamsClient, 'send'>;
    const fn = fakeFunction(() => failed); // retried forever
    const source = start(config(t), fn.invoke, counting);
    await expect.poll(() => source.stats.retries).toBeGreaterThanOrEqual(2);
    await source.stop();
    const after = { calls, invocations: fn.events.length };

    // Another source reads the same stream through to a new record: the stopped one, which
    // polled every 50 ms, has made no call meanwhile.
    await put(t, 'j2', 'queued');
    const other = fakeFunction();
    start(config(t), other.invoke);
    await expect.poll(() => all(other.events).map(idOf)).toEqual(['j1', 'j2']);
    expect({ calls, invocations: fn.events.length }).toEqual(after);
  });

  it('moto leaves the stream alone once its own mapping is disabled (what topology does)', async () => {
    const t = await table();
    const lambda = new LambdaClient({ endpoint: moto.endpoint, region, credentials: testCredentials });
    const role = await createRole('stream-test');
    const fnArn = (
      await lambda.send(
        new CreateFunctionCommand({ FunctionName: `notifier-${n}`, Runtime: 'nodejs20.x', Role: role, Handler: 'index.handler', Code: { ZipFile: EMPTY_ZIP } }),
      )
    ).FunctionArn!;
    const mapping = await lambda.send(
      new CreateEventSourceMappingCommand({
        FunctionName: fnArn,
        EventSourceArn: t.streamArn,
        StartingPosition: 'TRIM_HORIZON',
        FilterCriteria: { Filters: [{ Pattern: '{"eventName":["MODIFY"]}' }] },
        DestinationConfig: { OnFailure: { Destination: 'arn:aws:sqs:us-east-1:123456789012:dlq' } },
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 3,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      }),
    );
    await lambda.send(new UpdateEventSourceMappingCommand({ UUID: mapping.UUID!, Enabled: false }));
    // moto keeps what the mapping says (topology reads it from there).
    expect(await lambda.send(new GetEventSourceMappingCommand({ UUID: mapping.UUID! }))).toMatchObject({
      State: 'Disabled',
      FilterCriteria: { Filters: [{ Pattern: '{"eventName":["MODIFY"]}' }] },
      DestinationConfig: { OnFailure: { Destination: 'arn:aws:sqs:us-east-1:123456789012:dlq' } },
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 3,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });

    await put(t, 'j1', 'queued');
    await put(t, 'j2', 'queued');
    const fn = fakeFunction();
    start(config(t), fn.invoke);
    await vi.waitFor(() => expect(all(fn.events).map(idOf)).toEqual(['j1', 'j2']), { timeout: 30_000, interval: 50 });
  });
});

async function queue(): Promise<{ url: string; arn: string }> {
  const q = await sqs.send(new CreateQueueCommand({ QueueName: `stream-dlq-${++n}` }));
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  return { url: q.QueueUrl!, arn };
}

async function receive(url: string, count: number): Promise<any[]> {
  const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  expect(out.Messages ?? []).toHaveLength(count);
  return (out.Messages ?? []).map((m) => JSON.parse(m.Body!));
}

/** An IAM role in moto (Lambda's CreateFunction checks that it exists); no IAM client in the project. */
async function createRole(name: string): Promise<string> {
  const res = await fetch(`${moto.endpoint}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: new URLSearchParams({ Action: 'CreateRole', Version: '2010-05-08', RoleName: name, AssumeRolePolicyDocument: '{}' }),
  });
  const arn = /<Arn>([^<]+)<\/Arn>/.exec(await res.text())?.[1];
  if (!arn) throw new Error(`CreateRole failed: ${res.status}`);
  return arn;
}

/** An empty zip archive (moto stores the code and never runs it here). */
const EMPTY_ZIP = Buffer.from('UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==', 'base64');
