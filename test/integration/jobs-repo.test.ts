import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INDEXES, SWEEP_SHARDS } from '../../lambda/shared/contract';
import { PermanentJobError } from '../../lambda/shared/errors';
import { DEFAULT_CORE_SETTINGS, type CoreSettings } from '../../lambda/shared/job-type';
import { InvalidCursorError, JobsRepo, MAX_FILTERED_READS, SWEEP_SHARD_KEYS, sweepShardOf } from '../../lambda/shared/jobs-repo';
import type { JobRecord } from '../../lambda/shared/model';
import { runJob, RetryLaterError, type RunOptions, type WorkLogger } from '../../lambda/shared/worker';
import { JobsTable } from '../../lib/jobs-table';
import { startMoto, testCredentials, type Moto } from '../helpers/moto';

/**
 * The job state machine against a real DynamoDB API (moto): conditional writes, leases,
 * duplicate deliveries, retries, the sweep deadlines and the sweeper's index, paged lists.
 * The table is created from the jobs table construct's own synthesized definition (keys and
 * both indexes, the sparse byDeadline one included).
 */
let moto: Moto;
let doc: DynamoDBDocumentClient;
let ddb: DynamoDBClient;
const table = 'jobs-test';
let repo: JobsRepo;
/** The repository's clock, injected: a lease or a deadline runs out by moving it on, not by waiting. */
let clock: number;
const advance = (ms: number) => void (clock += ms);
const logger: WorkLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let seq = 0;
/** A fresh job id; its first hex digit picks its sweep shard (`d<digit>`): tests that read a shard use digits no other test uses. */
const id = (first = '0') => `${first}0000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`;
const ERR = { code: 'retries_exhausted', message: 'x' };

beforeAll(async () => {
  moto = await startMoto();
  ddb = new DynamoDBClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: testCredentials });
  doc = DynamoDBDocumentClient.from(ddb, { marshallOptions: { removeUndefinedValues: true } });
  const stack = new Stack(new App(), 'JobsTableOnly');
  new JobsTable(stack, 'Jobs', { removalPolicy: RemovalPolicy.DESTROY });
  const [def] = Object.values(Template.fromStack(stack).findResources('AWS::DynamoDB::Table'));
  const p = def.Properties;
  await ddb.send(
    new CreateTableCommand({
      TableName: table,
      KeySchema: p.KeySchema,
      AttributeDefinitions: p.AttributeDefinitions,
      GlobalSecondaryIndexes: p.GlobalSecondaryIndexes,
      BillingMode: p.BillingMode,
    } as CreateTableCommandInput),
  );
}, 180_000);

afterAll(async () => {
  await moto?.stop();
});

beforeEach(() => {
  clock = Date.parse('2030-06-01T12:00:00.000Z') + seq * 1000;
  repo = new JobsRepo(doc, table, 90, () => new Date(clock));
});

describe('the jobs table', () => {
  it('has the byType and the sparse, sharded byDeadline index', async () => {
    const { Table } = await ddb.send(new DescribeTableCommand({ TableName: table }));
    const byName = Object.fromEntries((Table?.GlobalSecondaryIndexes ?? []).map((i) => [i.IndexName, i]));
    expect(byName[INDEXES.byType].KeySchema).toEqual([
      { AttributeName: 'type', KeyType: 'HASH' },
      { AttributeName: 'createdAt', KeyType: 'RANGE' },
    ]);
    expect(byName[INDEXES.byDeadline].KeySchema).toEqual([
      { AttributeName: 'sweepShard', KeyType: 'HASH' },
      { AttributeName: 'sweepAt', KeyType: 'RANGE' },
    ]);
    expect(byName[INDEXES.byDeadline].Projection).toMatchObject({ ProjectionType: 'INCLUDE' });
    expect([...(byName[INDEXES.byDeadline].Projection?.NonKeyAttributes ?? [])].sort()).toEqual(['cancelRequested', 'status', 'type']);
    expect(Table?.AttributeDefinitions).toContainEqual({ AttributeName: 'sweepAt', AttributeType: 'N' });
    expect(Table?.AttributeDefinitions).toContainEqual({ AttributeName: 'sweepShard', AttributeType: 'S' });
  });

  it('spreads jobs over SWEEP_SHARDS shards by the first hex digit of their id', () => {
    expect(SWEEP_SHARD_KEYS).toHaveLength(SWEEP_SHARDS);
    expect(sweepShardOf('00000000-0000-4000-8000-000000000000')).toBe('d0');
    expect(sweepShardOf('c0000000-0000-4000-8000-000000000000')).toBe('d12');
    expect(sweepShardOf('f0000000-0000-4000-8000-000000000000')).toBe('d15');
    for (const d of '0123456789abcdef') expect(SWEEP_SHARD_KEYS).toContain(sweepShardOf(`${d}0000000-0000-4000-8000-000000000000`));
  });
});

describe('JobsRepo', () => {
  it('creates a job once, with a sweep deadline sweepAfterMs from now in its shard', async () => {
    const jobId = id();
    const made = await repo.create({ jobId, type: 'thumbnail', status: 'awaiting_upload', sweepAfterMs: 960_000 });
    expect(made).toMatchObject({ jobId, attempts: 0, status: 'awaiting_upload', sweepShard: sweepShardOf(jobId), sweepAt: clock + 960_000 });
    expect(await repo.create({ jobId, type: 'thumbnail', status: 'queued', sweepAfterMs: 1 })).toBeUndefined();
    const job = await repo.get(jobId);
    expect(job).toMatchObject({ status: 'awaiting_upload', sweepShard: sweepShardOf(jobId), sweepAt: clock + 960_000 });
    expect(job?.expiresAt).toBe(Math.floor(clock / 1000) + 90 * 86400);
  });

  it('lets one invocation hold a job; another claims it only after the lease ran out', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued', input: { filename: 'a.jpg', key: 'k' }, sweepAfterMs: 1000 });
    const first = await repo.claim(jobId, 'm1#1', 60_000, 30_000, { bytes: 42 });
    expect(first.claimed).toBe(true);
    expect(first.job).toMatchObject({
      status: 'processing',
      attempts: 1,
      leaseOwner: 'm1#1',
      leaseUntil: clock + 60_000,
      // The sweeper may fail it once the lease and every remaining delivery (the grace) are out.
      sweepShard: sweepShardOf(jobId),
      sweepAt: clock + 60_000 + 30_000,
      input: { filename: 'a.jpg', key: 'k', bytes: 42 },
    });
    const dup = await repo.claim(jobId, 'm1#2', 60_000, 30_000);
    expect(dup).toMatchObject({ claimed: false, job: { status: 'processing', leaseOwner: 'm1#1' } });

    const expiring = id();
    await repo.create({ jobId: expiring, type: 'thumbnail', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(expiring, 'a#1', 1, 10);
    advance(20);
    const takeover = await repo.claim(expiring, 'a#2', 60_000, 5_000);
    expect(takeover).toMatchObject({ claimed: true, job: { attempts: 2, leaseOwner: 'a#2', sweepAt: clock + 65_000 } });
  });

  it('records progress only for the lease holder', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(jobId, 'm#1', 60_000, 0);
    await repo.progress(jobId, 'm#1', { done: 3, total: 10 });
    await repo.progress(jobId, 'intruder#1', { done: 9, total: 10 });
    expect((await repo.get(jobId))?.progress).toEqual({ done: 3, total: 10 });
  });

  it('finishes only for the lease holder, and never twice; the terminal write leaves the sweep index', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued', sweepAfterMs: 1000 });
    const { job: claimed } = (await repo.claim(jobId, 'm#1', 60_000, 30_000)) as { job: JobRecord };
    advance(1234);
    expect(await repo.finish(jobId, 'someone-else', { status: 'succeeded' })).toBeUndefined();
    const done = await repo.finish(jobId, 'm#1', {
      startedAt: claimed.startedAt,
      status: 'succeeded',
      outputs: [{ name: 's', format: 'jpeg', contentType: 'image/jpeg', bytes: 1, key: 'x' }],
      input: { filename: 'f.jpg', key: 'uploads/x/f.jpg', width: 3, height: 2 },
    });
    expect(done).toMatchObject({ status: 'succeeded', outputs: [{ name: 's' }], input: { width: 3, height: 2 }, completedAt: new Date(clock).toISOString() });
    for (const gone of ['leaseOwner', 'leaseUntil', 'sweepShard', 'sweepAt', 'error'] as const) expect(done).not.toHaveProperty(gone);
    expect(await repo.finish(jobId, 'm#1', { status: 'failed' })).toBeUndefined();
    // processingMs is written with the terminal state, in the same update: completedAt - startedAt.
    expect(done?.processingMs).toBe(Date.parse(done!.completedAt!) - Date.parse(claimed.startedAt!));
    expect(done?.processingMs).toBe(1234);
    expect((await repo.get(jobId))?.processingMs).toBe(done?.processingMs);
    expect(await repo.claim(jobId, 'm#2', 60_000, 0)).toMatchObject({ claimed: false, job: { status: 'succeeded' } });
  });

  it('gives a job back on release: queued, with its last error and a new deadline', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(jobId, 'm#1', 60_000, 30_000);
    advance(500);
    await repo.release(jobId, 'other#1', { code: 'transient', message: 'not mine' }, 1);
    expect((await repo.get(jobId))?.status).toBe('processing');
    await repo.release(jobId, 'm#1', { code: 'transient', message: 'S3 is having a moment' }, 45_000);
    const job = await repo.get(jobId);
    expect(job).toMatchObject({
      status: 'queued',
      lastError: { code: 'transient', message: 'S3 is having a moment' },
      sweepShard: sweepShardOf(jobId),
      sweepAt: clock + 45_000,
      attempts: 1,
    });
    expect(job).not.toHaveProperty('leaseOwner');
    expect(job).not.toHaveProperty('leaseUntil');
    // The next delivery claims it again.
    expect(await repo.claim(jobId, 'm#2', 60_000, 0)).toMatchObject({ claimed: true, job: { attempts: 2 } });
  });

  it('takes back a job that failed retries_exhausted (a redrive), but no other finished job', async () => {
    const exhausted = id();
    await repo.create({ jobId: exhausted, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(exhausted, 'm#3', 60_000, 0);
    await repo.finish(exhausted, 'm#3', { status: 'failed', error: { code: 'retries_exhausted', message: 'gave up' } });
    const redriven = await repo.claim(exhausted, 'redrive#1', 60_000, 1_000);
    expect(redriven).toMatchObject({ claimed: true, job: { status: 'processing', attempts: 2, sweepShard: sweepShardOf(exhausted), sweepAt: clock + 61_000 } });
    expect(redriven.job).not.toHaveProperty('error');
    expect(redriven.job).not.toHaveProperty('completedAt');

    const bad = id();
    await repo.create({ jobId: bad, type: 'thumbnail', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(bad, 'm#1', 60_000, 0);
    await repo.finish(bad, 'm#1', { status: 'failed', error: { code: 'corrupt_image', message: 'bad' } });
    expect(await repo.claim(bad, 'm#2', 60_000, 0)).toMatchObject({ claimed: false, job: { status: 'failed', error: { code: 'corrupt_image' } } });
    expect(await repo.claim(id(), 'm#1', 60_000, 0)).toEqual({ claimed: false, job: undefined });
  });

  it('fails a queued job whose message could not be sent, and nothing that moved on', async () => {
    const queued = id();
    await repo.create({ jobId: queued, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    const error = { code: 'internal_error', message: 'the job could not be queued; please retry' };
    const failed = await repo.failQueued(queued, error);
    expect(failed).toMatchObject({ jobId: queued, status: 'failed', error, outputs: [], completedAt: new Date(clock).toISOString() });
    expect(failed).not.toHaveProperty('sweepShard');
    expect(failed).not.toHaveProperty('sweepAt');
    expect(await repo.failQueued(queued, error)).toBeUndefined(); // failed already: not rewritten
    const running = id();
    await repo.create({ jobId: running, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(running, 'm#1', 60_000, 0);
    expect(await repo.failQueued(running, error)).toBeUndefined();
    expect((await repo.get(running))?.status).toBe('processing');
    const awaiting = id();
    await repo.create({ jobId: awaiting, type: 'thumbnail', status: 'awaiting_upload', sweepAfterMs: 1000 });
    expect(await repo.failQueued(awaiting, error)).toBeUndefined();
    expect((await repo.get(awaiting))?.status).toBe('awaiting_upload');
    const none = id();
    expect(await repo.failQueued(none, error)).toBeUndefined(); // no such job: nothing created
    expect(await repo.get(none)).toBeUndefined();
  });

  it('streams jobs of a type within a range, oldest first, across pages', async () => {
    const from = '2031-03-01T00:00:00.000Z';
    const want: string[] = [];
    for (let i = 0; i < 12; i++) {
      const jobId = id();
      await repo.create({ jobId, type: 'thumbnail', status: 'queued', createdAt: new Date(Date.parse(from) + i * 3600_000).toISOString(), sweepAfterMs: 1 });
      want.push(jobId);
    }
    await repo.create({ jobId: id(), type: 'thumbnail', status: 'queued', createdAt: '2031-03-02T00:00:00.000Z', sweepAfterMs: 1 });
    const got: string[] = [];
    for await (const j of repo.streamByType('thumbnail', from, '2031-03-01T23:59:59.999Z', 5)) got.push(j.jobId);
    expect(got).toEqual(want);
  });
});

describe('JobsRepo.list', () => {
  it('lists newest first across types, with filters and a working cursor', async () => {
    // Types of this test's own, so the jobs other tests make are not in the way.
    const types = ['list-thumbs', 'list-reports'];
    const base = Date.parse('2030-01-01T00:00:00Z');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const jobId = id();
      ids.push(jobId);
      await repo.create({ jobId, type: types[i % 2], status: 'queued', createdAt: new Date(base + i * 1000).toISOString(), sweepAfterMs: 1000 });
      if (i % 3 === 0) await repo.failQueued(jobId, ERR);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (; pages < 20; pages++) {
      const res = await repo.list({ types, limit: 3, cursor });
      expect(res.jobs.length).toBeLessThanOrEqual(3);
      seen.push(...res.jobs.map((j) => j.jobId));
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toBeGreaterThanOrEqual(2);
    const failedThumbs = await repo.list({ types: ['list-thumbs'], status: 'failed', limit: 10 });
    expect(failedThumbs.jobs.map((j) => j.jobId)).toEqual([ids[6], ids[0]]);
    expect(failedThumbs.nextCursor).toBeNull();
    const queuedBoth = await repo.list({ types, status: 'queued', limit: 10 });
    expect(queuedBoth.jobs.map((j) => j.jobId)).toEqual([ids[5], ids[4], ids[2], ids[1]]);
    await expect(repo.list({ types, limit: 3, cursor: 'not-a-cursor' })).rejects.toThrow(/cursor/);
  });

  it('pages on when a type had none of its jobs on the first page (its position is kept as the start)', async () => {
    const types = ['start-a', 'start-b'];
    const base = Date.parse('2030-05-01T00:00:00Z');
    const older = id();
    await repo.create({ jobId: older, type: 'start-b', status: 'queued', createdAt: new Date(base).toISOString(), sweepAfterMs: 1000 });
    const newer: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const jobId = id();
      newer.push(jobId);
      await repo.create({ jobId, type: 'start-a', status: 'queued', createdAt: new Date(base + i * 1000).toISOString(), sweepAfterMs: 1000 });
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const res = await repo.list({ types, limit: 1, cursor });
      seen.push(...res.jobs.map((j) => j.jobId));
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    expect(seen).toEqual([...newer].reverse().concat(older));
  });

  it('refuses a cursor made for one set of types for another', async () => {
    const types = ['cur-a', 'cur-b'];
    const base = Date.parse('2030-03-01T00:00:00Z');
    for (let i = 0; i < 6; i++) {
      await repo.create({ jobId: id(), type: types[i % 2], status: 'queued', createdAt: new Date(base + i * 1000).toISOString(), sweepAfterMs: 1000 });
    }
    // The first page takes one job of each type, so the cursor holds both types' positions.
    const first = await repo.list({ types, limit: 2 });
    expect(first.jobs.map((j) => j.type).sort()).toEqual(types);
    const cursor = first.nextCursor!;
    expect(cursor).toEqual(expect.any(String));
    await expect(repo.list({ types: ['cur-a'], limit: 2, cursor })).rejects.toBeInstanceOf(InvalidCursorError);
    await expect(repo.list({ types: ['cur-a', 'cur-c'], limit: 2, cursor })).rejects.toThrow(/does not belong/);
    await expect(repo.list({ types: ['cur-a', 'cur-b', 'cur-c'], limit: 2, cursor })).rejects.toThrow(/does not belong/);
    // The same set in another order is the same query, and goes on where the first page stopped.
    const second = await repo.list({ types: [...types].reverse(), limit: 2, cursor });
    expect(second.jobs.map((j) => j.createdAt)).toEqual([new Date(base + 3000).toISOString(), new Date(base + 2000).toISOString()]);
    // A cursor naming another type's key under this type's name is not valid either.
    const forged = Buffer.from(JSON.stringify({ 'cur-a': { jobId: id(), type: 'cur-b', createdAt: '2030-03-01T00:00:00.000Z' }, 'cur-b': null })).toString('base64url');
    await expect(repo.list({ types, limit: 2, cursor: forged })).rejects.toThrow(/not valid/);
  });

  it('reads at most MAX_FILTERED_READS items per type and request under a status filter, and answers with a cursor early', async () => {
    const type = 'budget';
    const base = Date.parse('2030-02-01T00:00:00Z');
    const match = id();
    await repo.create({ jobId: match, type, status: 'queued', createdAt: new Date(base).toISOString(), sweepAfterMs: 1000 });
    await repo.failQueued(match, ERR);
    const newer = Array.from({ length: MAX_FILTERED_READS + 50 }, (_, i) => ({ jobId: id(), createdAt: new Date(base + (i + 1) * 1000).toISOString() }));
    for (let i = 0; i < newer.length; i += 25) {
      await Promise.all(newer.slice(i, i + 25).map((j) => repo.create({ ...j, type, status: 'queued', sweepAfterMs: 1000 })));
    }
    // Count what each list request reads from the index (DynamoDB's ScannedCount).
    let scanned = 0;
    const counting = {
      send: async (cmd: unknown) => {
        const out = await doc.send(cmd as QueryCommand);
        if (cmd instanceof QueryCommand) scanned += (out as { ScannedCount?: number }).ScannedCount ?? 0;
        return out;
      },
    } as unknown as DynamoDBDocumentClient;
    const counted = new JobsRepo(counting, table, 90, () => new Date(clock));

    const first = await counted.list({ types: [type], status: 'failed', limit: 10 });
    expect(first.jobs).toEqual([]);
    expect(first.nextCursor).toEqual(expect.any(String));
    expect(scanned).toBeGreaterThan(0);
    expect(scanned).toBeLessThanOrEqual(MAX_FILTERED_READS);

    const found: string[] = [];
    let cursor = first.nextCursor;
    let requests = 1;
    while (cursor && requests < 10) {
      scanned = 0;
      const page = await counted.list({ types: [type], status: 'failed', limit: 10, cursor });
      requests++;
      expect(scanned).toBeLessThanOrEqual(MAX_FILTERED_READS);
      found.push(...page.jobs.map((j) => j.jobId));
      cursor = page.nextCursor;
    }
    expect(found).toEqual([match]);
    expect(cursor).toBeNull();
    expect(requests).toBe(2);
    // Without a filter nothing is spent on non-matching items: a full page at once.
    expect((await repo.list({ types: [type], limit: 10 })).jobs).toHaveLength(10);
  });
});

describe('sweep deadlines', () => {
  const dueIds = async (shard: string, nowMs: number) => {
    const out: { jobId: string; sweepAt?: number; status?: string; type?: string }[] = [];
    for await (const d of repo.due(shard, nowMs)) out.push(d);
    return out;
  };

  it('due() lists only the unfinished jobs of its shard past their deadline, oldest first', async () => {
    // Shards d12 and d13 belong to this test alone.
    const past1 = id('c');
    const past2 = id('c');
    const atNow = id('c');
    const future = id('c');
    const finished = id('c');
    const otherShard = id('d');
    await repo.create({ jobId: past2, type: 'report', status: 'queued', sweepAfterMs: 2_000 });
    await repo.create({ jobId: past1, type: 'thumbnail', status: 'awaiting_upload', sweepAfterMs: 1_000 });
    await repo.create({ jobId: atNow, type: 'report', status: 'queued', sweepAfterMs: 10_000 });
    await repo.create({ jobId: future, type: 'report', status: 'queued', sweepAfterMs: 60_000 });
    await repo.create({ jobId: finished, type: 'report', status: 'queued', sweepAfterMs: 1_000 });
    await repo.claim(finished, 'm#1', 1, 1);
    await repo.finish(finished, 'm#1', { status: 'succeeded' });
    await repo.create({ jobId: otherShard, type: 'report', status: 'queued', sweepAfterMs: 1_000 });

    const now = clock + 10_000;
    const due = await dueIds('d12', now);
    expect(due.map((d) => d.jobId)).toEqual([past1, past2]);
    expect(due[0]).toMatchObject({ jobId: past1, type: 'thumbnail', status: 'awaiting_upload', sweepAt: clock + 1_000 });
    expect(due[1]).toMatchObject({ jobId: past2, type: 'report', status: 'queued', sweepAt: clock + 2_000 });
    expect((await dueIds('d13', now)).map((d) => d.jobId)).toEqual([otherShard]);
    expect(await dueIds('d12', clock)).toEqual([]);
    expect((await dueIds('d12', clock + 60_001)).map((d) => d.jobId)).toEqual([past1, past2, atNow, future]);
  });

  it('sweep() fails a job past its deadline once, conditional on the deadline it read', async () => {
    const shard = 'd14'; // this test's own
    const jobId = id('e');
    await repo.create({ jobId, type: 'thumbnail', status: 'awaiting_upload', sweepAfterMs: 1_000 });
    advance(2_000);
    const [found] = await dueIds(shard, clock);
    expect(found.jobId).toBe(jobId);
    const error = { code: 'upload_expired', message: 'the upload did not arrive before its upload URL expired' };
    const failed = await repo.sweep(jobId, found.sweepAt!, error);
    expect(failed).toMatchObject({ jobId, status: 'failed', error, outputs: [], completedAt: new Date(clock).toISOString() });
    expect(failed).not.toHaveProperty('sweepShard');
    expect(failed).not.toHaveProperty('sweepAt');
    expect(await repo.sweep(jobId, found.sweepAt!, error)).toBeUndefined();
    expect(await dueIds(shard, clock + 86_400_000)).toEqual([]);
    expect(await repo.sweep(id('e'), found.sweepAt!, error)).toBeUndefined(); // no such job: nothing created
  });

  it('a claim or a release between the read and the sweep wins', async () => {
    const shard = 'd15'; // this test's own
    const claimed = id('f');
    const released = id('f');
    await repo.create({ jobId: claimed, type: 'report', status: 'queued', sweepAfterMs: 1_000 });
    await repo.create({ jobId: released, type: 'report', status: 'queued', sweepAfterMs: 1_000 });
    await repo.claim(released, 'm#1', 60_000, 0);
    await repo.release(released, 'm#1', { code: 'transient', message: 'x' }, 1_000);
    advance(2_000);
    const read = await dueIds(shard, clock);
    expect(read.map((d) => d.jobId).sort()).toEqual([claimed, released].sort());
    const at = Object.fromEntries(read.map((d) => [d.jobId, d.sweepAt!]));

    // A late delivery claims one; the other is claimed and given back (a transient error).
    await repo.claim(claimed, 'late#2', 60_000, 30_000);
    await repo.claim(released, 'late#2', 60_000, 30_000);
    await repo.release(released, 'late#2', { code: 'transient', message: 'y' }, 5_000);

    expect(await repo.sweep(claimed, at[claimed], ERR)).toBeUndefined();
    expect(await repo.sweep(released, at[released], ERR)).toBeUndefined();
    expect(await repo.get(claimed)).toMatchObject({ status: 'processing', leaseOwner: 'late#2', sweepAt: clock + 90_000 });
    expect(await repo.get(released)).toMatchObject({ status: 'queued', sweepAt: clock + 5_000 });
    expect(await dueIds(shard, clock)).toEqual([]);
  });
});

describe('runJob against the table', () => {
  const settings: CoreSettings = { ...DEFAULT_CORE_SETTINGS, timeoutSeconds: 60, maxReceiveCount: 3 };
  const visibilityTimeoutSeconds = 360;
  const graceMs = 2 * settings.maxReceiveCount * visibilityTimeoutSeconds * 1000;
  const opts = (jobId: string, receiveCount = 1, owner = `msg#${receiveCount}`): RunOptions => ({
    message: { jobId },
    owner,
    receiveCount,
    settings,
    visibilityTimeoutSeconds,
    remainingMs: () => settings.timeoutSeconds * 1000,
  });
  const deps = () => ({ repo, logger, now: () => clock });
  const boom = async (): Promise<never> => {
    throw new Error('S3 is having a moment');
  };

  it('succeeds, and acknowledges a duplicate delivery without work', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued', sweepAfterMs: 1000 });
    let seenSweepAt: number | undefined;
    expect(
      await runJob(deps(), opts(jobId), async (job) => {
        seenSweepAt = job.sweepAt;
        advance(250);
        return { outputs: [] };
      }),
    ).toBe('succeeded');
    // While it ran, the deadline was the lease plus every remaining delivery.
    expect(seenSweepAt).toBe(clock - 250 + settings.timeoutSeconds * 1000 + graceMs);
    let ran = false;
    expect(await runJob(deps(), opts(jobId, 2), async () => ((ran = true), { outputs: [] }))).toBe('duplicate');
    expect(ran).toBe(false);
    const job = (await repo.get(jobId))!;
    expect(job).toMatchObject({ status: 'succeeded', attempts: 1, processingMs: 250 });
    expect(job.processingMs).toBe(Date.parse(job.completedAt!) - Date.parse(job.startedAt!));
    expect(job).not.toHaveProperty('sweepAt');
  });

  it('reports a message for a job that does not exist as missing', async () => {
    expect(await runJob(deps(), opts(id()), async () => ({ outputs: [] }))).toBe('missing');
  });

  it('fails a permanent error at once, without throwing (the message is acknowledged)', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued', sweepAfterMs: 1000 });
    const outcome = await runJob(deps(), opts(jobId), async () => {
      throw new PermanentJobError('corrupt_image', 'the JPEG ends early');
    });
    expect(outcome).toBe('failed');
    const job = await repo.get(jobId);
    expect(job).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'corrupt_image', message: 'the JPEG ends early' } });
    expect(job).not.toHaveProperty('sweepAt');
  });

  it('retries a transient error, and on the last receive fails it as retries_exhausted (then a redrive runs it again)', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued', sweepAfterMs: 1000 });
    await expect(runJob(deps(), opts(jobId, 1), boom)).rejects.toThrow('moment');
    expect(await repo.get(jobId)).toMatchObject({ status: 'queued', attempts: 1, lastError: { code: 'transient' }, sweepAt: clock + settings.retryMaxSeconds * 1000 + graceMs });
    await expect(runJob(deps(), opts(jobId, 2), boom)).rejects.toThrow('moment');
    expect(await repo.get(jobId)).toMatchObject({ status: 'queued', attempts: 2 });
    await expect(runJob(deps(), opts(jobId, 3), boom)).rejects.toThrow('moment');
    const exhausted = await repo.get(jobId);
    expect(exhausted).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'retries_exhausted' } });
    expect(exhausted?.error?.message).toMatch(/3 attempts.*moment/);
    expect(exhausted).not.toHaveProperty('sweepAt');
    // Redriven from the DLQ: the receive count starts again.
    expect(await runJob(deps(), opts(jobId, 1, 'redrive#1'), async () => ({ outputs: [] }))).toBe('succeeded');
    expect(await repo.get(jobId)).toMatchObject({ status: 'succeeded', attempts: 4 });
  });

  it('asks for a retry while another invocation holds the job', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(jobId, 'other#1', 60_000, 0);
    await expect(runJob(deps(), opts(jobId), async () => ({ outputs: [] }))).rejects.toBeInstanceOf(RetryLaterError);
  });

  it('asks for a retry when its lease was taken over before it could finish', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued', sweepAfterMs: 1000 });
    const outcome = runJob(deps(), opts(jobId), async () => {
      advance(settings.timeoutSeconds * 1000 + 1);
      expect(await repo.claim(jobId, 'msg#2', 60_000, 0)).toMatchObject({ claimed: true });
      return { outputs: [] };
    });
    await expect(outcome).rejects.toBeInstanceOf(RetryLaterError);
    expect(await repo.get(jobId)).toMatchObject({ status: 'processing', leaseOwner: 'msg#2', attempts: 2 });
  });
});

describe('cancellation', () => {
  it.each(['awaiting_upload', 'queued'] as const)('cancels a %s job at once: terminal, out of the sweep index, never claimed after', async (status) => {
    const jobId = id('7');
    await repo.create({ jobId, type: 'thumbnail', status, sweepAfterMs: 1000 });
    advance(10);
    const res = await repo.cancel(jobId);
    expect(res).toMatchObject({ outcome: 'cancelled', job: { status: 'cancelled', completedAt: new Date(clock).toISOString(), outputs: [] } });
    for (const gone of ['sweepShard', 'sweepAt', 'leaseOwner'] as const) expect(res.job).not.toHaveProperty(gone);
    // Its message (or a late upload's event) is refused by the claim: acknowledged without work.
    expect(await repo.claim(jobId, 'late#1', 60_000, 0)).toMatchObject({ claimed: false, job: { status: 'cancelled' } });
    // The sweeper's index no longer holds it.
    advance(10_000);
    const due: string[] = [];
    for await (const d of repo.due(sweepShardOf(jobId), clock)) due.push(d.jobId);
    expect(due).not.toContain(jobId);
    // A second cancel finds it terminal.
    expect(await repo.cancel(jobId)).toMatchObject({ outcome: 'terminal', job: { status: 'cancelled' } });
    // GET /jobs?status=cancelled lists it.
    const listed = await repo.list({ types: ['thumbnail'], status: 'cancelled', limit: 100 });
    expect(listed.jobs.map((j) => j.jobId)).toContain(jobId);
  });

  it('marks a processing job cancelRequested (it stays processing, held by its worker) and the holder ends it cancelled', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(jobId, 'w#1', 60_000, 0);
    expect(await repo.isCancelRequested(jobId)).toBe(false);
    expect(await repo.cancel(jobId)).toMatchObject({ outcome: 'requested', job: { status: 'processing', cancelRequested: true, leaseOwner: 'w#1' } });
    expect(await repo.isCancelRequested(jobId)).toBe(true);
    // Only the lease holder writes the outcome, once: cancelled, or succeeded if the work finished first.
    expect(await repo.finish(jobId, 'other#1', { status: 'cancelled' })).toBeUndefined();
    expect(await repo.finish(jobId, 'w#1', { status: 'cancelled' })).toMatchObject({ status: 'cancelled', cancelRequested: true });
    expect(await repo.finish(jobId, 'w#1', { status: 'succeeded' })).toBeUndefined();
  });

  it('answers terminal for finished jobs and missing for unknown ids and non-job items', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(jobId, 'w#1', 60_000, 0);
    await repo.finish(jobId, 'w#1', { status: 'succeeded' });
    expect(await repo.cancel(jobId)).toMatchObject({ outcome: 'terminal', job: { status: 'succeeded' } });
    expect((await repo.get(jobId))?.cancelRequested).toBeUndefined();
    expect(await repo.cancel(id())).toEqual({ outcome: 'missing' });
    await repo.idemBegin('idem#not-a-job', { fingerprint: 'f', owner: 'o', lockMs: 1000, ttlSeconds: 60 });
    expect(await repo.cancel('idem#not-a-job')).toEqual({ outcome: 'missing' });
  });

  it('the sweeper ends a processing job whose worker died after a cancel was requested cancelled, not failed', async () => {
    const jobId = id('7');
    await repo.create({ jobId, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    const claimed = await repo.claim(jobId, 'w#3', 1000, 1000);
    await repo.cancel(jobId);
    advance(5000);
    const sweepAt = (await repo.get(jobId))!.sweepAt!;
    expect(claimed.job?.sweepAt).toBe(sweepAt);
    // The deadline index carries cancelRequested, as the sweeper reads it.
    const due: any[] = [];
    for await (const d of repo.due(sweepShardOf(jobId), sweepAt + 1)) due.push(d);
    expect(due.find((d) => d.jobId === jobId)).toMatchObject({ status: 'processing', cancelRequested: true, sweepAt });
    const swept = await repo.sweep(jobId, sweepAt, ERR, true);
    expect(swept).toMatchObject({ status: 'cancelled', cancelRequested: true, outputs: [] });
    expect(swept).not.toHaveProperty('error');
    expect(swept).not.toHaveProperty('sweepAt');
    expect(await repo.sweep(jobId, sweepAt, ERR, true)).toBeUndefined();
  });

  it('cancels at once a job released back to queued after its cancel was requested', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    await repo.claim(jobId, 'w#1', 60_000, 0);
    await repo.cancel(jobId);
    await repo.release(jobId, 'w#1', { code: 'transient', message: 'x' }, 1000);
    expect(await repo.cancel(jobId)).toMatchObject({ outcome: 'cancelled', job: { status: 'cancelled' } });
  });

  it('runJob: a worker polling cancelRequested ends its job cancelled; a cancelled job is acknowledged without work', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'report', status: 'queued', sweepAfterMs: 1000 });
    const settings: CoreSettings = { ...DEFAULT_CORE_SETTINGS, timeoutSeconds: 60 };
    const opts = (owner: string): RunOptions => ({ message: { jobId }, owner, receiveCount: 1, settings, visibilityTimeoutSeconds: 360, remainingMs: () => 60_000, cancelPollMs: 20 });
    const outcome = await runJob({ repo, logger, now: () => clock }, opts('w#1'), async (_job, _p, signal) => {
      // The client cancels while the work runs; the work stops when its signal says so.
      expect(await repo.cancel(jobId)).toMatchObject({ outcome: 'requested' });
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
      return { outputs: [] };
    });
    expect(outcome).toBe('cancelled');
    expect(await repo.get(jobId)).toMatchObject({ status: 'cancelled', cancelRequested: true });
    let ran = false;
    expect(await runJob({ repo, logger, now: () => clock }, opts('w#2'), async () => ((ran = true), { outputs: [] }))).toBe('duplicate');
    expect(ran).toBe(false);
  });
});

describe('idempotency keys', () => {
  const take = (owner: string, fingerprint = 'f1', lockMs = 30_000) => ({ fingerprint, owner, lockMs, ttlSeconds: 86_400 });

  it('lets one request take a key; the others see it pending, then done with the response; not a job anywhere', async () => {
    const key = `idem#${id()}`;
    expect(await repo.idemBegin(key, take('a'))).toEqual({ won: true });
    expect(await repo.idemBegin(key, take('b'))).toEqual({
      won: false,
      record: { state: 'pending', fingerprint: 'f1', owner: 'a', lockUntil: clock + 30_000, expiresAt: Math.floor(clock / 1000) + 86_400 },
    });
    expect(await repo.idemComplete(key, 'b', '{}')).toBe(false);
    expect(await repo.idemComplete(key, 'a', '{"statusCode":202}')).toBe(true);
    expect(await repo.idemGet(key)).toMatchObject({ state: 'done', response: '{"statusCode":202}', owner: 'a' });
    expect(await repo.idemBegin(key, take('c'))).toMatchObject({ won: false, record: { state: 'done' } });
    // No type: in no index (and no status: no notification).
    const raw = await repo.get(key);
    expect(raw).not.toHaveProperty('type');
    expect(raw).not.toHaveProperty('status');
    expect(raw).not.toHaveProperty('sweepShard');
  });

  it('frees a released key and takes over a pending one whose holder died, or an expired one', async () => {
    const released = `idem#${id()}`;
    await repo.idemBegin(released, take('a'));
    await repo.idemRelease(released, 'intruder');
    expect(await repo.idemGet(released)).toMatchObject({ state: 'pending' });
    await repo.idemRelease(released, 'a');
    expect(await repo.idemBegin(released, take('b', 'f2'))).toEqual({ won: true });

    const stale = `idem#${id()}`;
    await repo.idemBegin(stale, take('a', 'f1', 1000));
    expect((await repo.idemBegin(stale, take('b'))).won).toBe(false);
    advance(1001);
    expect(await repo.idemBegin(stale, take('b'))).toEqual({ won: true });
    // The dead holder cannot complete it any more.
    expect(await repo.idemComplete(stale, 'a', '{}')).toBe(false);

    const old = `idem#${id()}`;
    await repo.idemBegin(old, { ...take('a'), ttlSeconds: 10 });
    await repo.idemComplete(old, 'a', '{}');
    advance(11_000);
    expect(await repo.idemGet(old)).toBeUndefined();
    expect(await repo.idemBegin(old, take('b'))).toEqual({ won: true });
  });

  it('gives exactly one of 50 concurrent requests the key', async () => {
    const key = `idem#${id()}`;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => repo.idemBegin(key, take(`r${i}`))));
    expect(results.filter((r) => r.won)).toHaveLength(1);
  });
});
