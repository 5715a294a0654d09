import { CreateTableCommand, DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PermanentJobError } from '../../lambda/shared/errors';
import { notify, runJob, RetryLaterError } from '../../lambda/shared/job-runner';
import { JobsRepo } from '../../lambda/shared/jobs-repo';
import type { JobRecord } from '../../lambda/shared/model';
import type { Notifier } from '../../lambda/shared/notifier';
import { resourcesOfType, synth } from '../infra/synth';
import { startMoto, testCredentials, type Moto } from '../helpers/moto';

/**
 * The job state machine against a real DynamoDB API (moto): conditional writes, leases,
 * duplicate deliveries, retries, the DLQ path and the sweeper's queries. The table is
 * created from the synthesized template's own definition.
 */
let moto: Moto;
let doc: DynamoDBDocumentClient;
let table: string;
let repo: JobsRepo;
let published: JobRecord[];
/**
 * The repository's clock, injected: lease expiry is a matter of moving it on, not of waiting.
 * It starts at the wall clock (runJob's own age check for a finished job reads Date.now()).
 */
let clock: number;
const advance = (ms: number) => void (clock += ms);
const notifier = { publish: async (job: JobRecord) => void published.push(job) } as unknown as Notifier;
const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
let seq = 0;
const id = () => `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`;

beforeAll(async () => {
  moto = await startMoto();
  const ddb = new DynamoDBClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: testCredentials });
  doc = DynamoDBDocumentClient.from(ddb, { marshallOptions: { removeUndefinedValues: true } });
  const [, def] = resourcesOfType(synth({}, { bundle: false }).json, 'AWS::DynamoDB::Table')[0];
  table = 'jobs-test';
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
}, 60_000);

afterAll(async () => {
  await moto?.stop();
});

beforeEach(() => {
  clock = Date.now();
  repo = new JobsRepo(doc, table, 'byTypeCreatedAt', 90, () => new Date(clock));
  published = [];
});

describe('JobsRepo', () => {
  it('creates a job once', async () => {
    const jobId = id();
    expect(await repo.create({ jobId, type: 'thumbnail', status: 'awaiting_upload' })).toMatchObject({ jobId, attempts: 0 });
    expect(await repo.create({ jobId, type: 'thumbnail', status: 'queued' })).toBeUndefined();
    const job = await repo.get(jobId);
    expect(job?.status).toBe('awaiting_upload');
    expect(job?.expiresAt).toBeGreaterThan(clock / 1000 + 89 * 86400);
  });

  it('lets one invocation hold a job; another claims it only after the lease ran out', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued', input: { filename: 'a.jpg', key: 'k' } });
    const first = await repo.claim(jobId, 'm1#1', 60_000, { bytes: 42 });
    expect(first.claimed).toBe(true);
    expect(first.job).toMatchObject({ status: 'processing', attempts: 1, leaseOwner: 'm1#1', leaseShard: 'held', input: { filename: 'a.jpg', bytes: 42 } });
    const dup = await repo.claim(jobId, 'm1#2', 60_000);
    expect(dup).toMatchObject({ claimed: false, job: { status: 'processing', leaseOwner: 'm1#1' } });

    const expiring = id();
    await repo.create({ jobId: expiring, type: 'thumbnail', status: 'queued' });
    await repo.claim(expiring, 'a#1', 1);
    advance(20);
    const takeover = await repo.claim(expiring, 'a#2', 60_000);
    expect(takeover).toMatchObject({ claimed: true, job: { attempts: 2, leaseOwner: 'a#2' } });
  });

  it('finishes only for the lease holder, and never twice', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued' });
    const { job: claimed } = (await repo.claim(jobId, 'm#1', 60_000)) as { job: JobRecord };
    advance(1234);
    expect(await repo.finish(jobId, 'someone-else', { status: 'succeeded' })).toBeUndefined();
    const done = await repo.finish(jobId, 'm#1', {
      startedAt: claimed.startedAt,
      status: 'succeeded',
      outputs: [{ name: 's', format: 'jpeg', contentType: 'image/jpeg', bytes: 1, key: 'x' }],
      input: { filename: 'f.jpg', key: 'uploads/x/f.jpg', width: 3, height: 2 },
    });
    expect(done).toMatchObject({ status: 'succeeded', outputs: [{ name: 's' }], input: { width: 3, height: 2 } });
    expect(done?.leaseOwner).toBeUndefined();
    expect(done?.leaseShard).toBeUndefined();
    expect(await repo.finish(jobId, 'm#1', { status: 'failed' })).toBeUndefined();
    // processingMs is written with the terminal state, in the same update: completedAt - startedAt.
    expect(done?.processingMs).toBe(Date.parse(done!.completedAt!) - Date.parse(claimed.startedAt!));
    expect(done?.processingMs).toBe(1234);
    expect((await repo.get(jobId))?.processingMs).toBe(done?.processingMs);
    expect(await repo.claim(jobId, 'm#2', 60_000)).toMatchObject({ claimed: false, job: { status: 'succeeded' } });
  });

  it('lists newest first across types, with filters and a working cursor', async () => {
    const local = new JobsRepo(doc, 'jobs-test', 'byTypeCreatedAt', 90);
    const base = Date.parse('2030-01-01T00:00:00Z');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const jobId = id();
      ids.push(jobId);
      await local.create({ jobId, type: i % 2 ? 'report' : 'thumbnail', status: i % 3 ? 'queued' : 'failed', createdAt: new Date(base + i * 1000).toISOString() });
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const res = await local.list({ limit: 3, cursor });
      seen.push(...res.jobs.filter((j) => ids.includes(j.jobId)).map((j) => j.jobId));
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    expect(seen).toEqual([...ids].reverse());
    const failedThumbs = await local.list({ type: 'thumbnail', status: 'failed', limit: 10 });
    expect(failedThumbs.jobs.filter((j) => ids.includes(j.jobId)).map((j) => j.jobId)).toEqual([ids[6], ids[0]]);
    await expect(local.list({ limit: 3, cursor: 'not-a-cursor' })).rejects.toThrow(/cursor/);
  });

  it('streams jobs of a type within a range, oldest first, across pages', async () => {
    const from = '2031-03-01T00:00:00.000Z';
    const want: string[] = [];
    for (let i = 0; i < 12; i++) {
      const jobId = id();
      await repo.create({ jobId, type: 'thumbnail', status: 'succeeded', createdAt: new Date(Date.parse(from) + i * 3600_000).toISOString() });
      want.push(jobId);
    }
    await repo.create({ jobId: id(), type: 'thumbnail', status: 'succeeded', createdAt: '2031-03-02T00:00:00.000Z' });
    const got: string[] = [];
    for await (const j of repo.streamByType('thumbnail', from, '2031-03-01T23:59:59.999Z', 5)) got.push(j.jobId);
    expect(got).toEqual(want);
  });
});

describe('runJob', () => {
  const opts = (jobId: string, receiveCount = 1) => ({ jobId, owner: `msg#${receiveCount}`, receiveCount, maxReceiveCount: 3, leaseMs: 60_000 });
  const deps = () => ({ repo, notifier, logger });

  it('succeeds, notifies once, and ignores a duplicate delivery', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued' });
    expect(await runJob(deps(), opts(jobId), async () => ({ outputs: [] }))).toBe('succeeded');
    let ran = false;
    expect(await runJob(deps(), opts(jobId, 2), async () => ((ran = true), { outputs: [] }))).toBe('duplicate');
    expect(ran).toBe(false);
    expect(published.map((j) => [j.jobId, j.status])).toEqual([[jobId, 'succeeded']]);
    const job = (await repo.get(jobId))!;
    expect(job.notifiedAt).toBeDefined();
    expect(job.processingMs).toBe(Date.parse(job.completedAt!) - Date.parse(job.startedAt!));
  });

  it('fails a permanent error at once, without throwing (the message is acknowledged)', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued' });
    const outcome = await runJob(deps(), opts(jobId), async () => {
      throw new PermanentJobError('corrupt_image', 'the JPEG ends early');
    });
    expect(outcome).toBe('failed');
    expect(await repo.get(jobId)).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'corrupt_image', message: 'the JPEG ends early' } });
    expect(published).toHaveLength(1);
  });

  it('retries a transient error, and on the last receive fails it as retries_exhausted (then a redrive runs it again)', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued' });
    const boom = async () => {
      throw new Error('S3 is having a moment');
    };
    await expect(runJob(deps(), opts(jobId, 1), boom)).rejects.toThrow('moment');
    expect(await repo.get(jobId)).toMatchObject({ status: 'queued', attempts: 1, lastError: { code: 'transient' } });
    await expect(runJob(deps(), opts(jobId, 2), boom)).rejects.toThrow('moment');
    expect(published).toHaveLength(0);
    await expect(runJob(deps(), opts(jobId, 3), boom)).rejects.toThrow('moment');
    expect(await repo.get(jobId)).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'retries_exhausted' } });
    expect(published.map((j) => j.error?.code)).toEqual(['retries_exhausted']);
    // Redriven from the DLQ: receive count starts again.
    expect(await runJob(deps(), { ...opts(jobId, 1), owner: 'redrive#1' }, async () => ({ outputs: [] }))).toBe('succeeded');
    expect(await repo.get(jobId)).toMatchObject({ status: 'succeeded', attempts: 4 });
    expect(published.map((j) => j.status)).toEqual(['failed', 'succeeded']);
  });

  it('asks for a retry while another invocation holds the job', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued' });
    await repo.claim(jobId, 'other#1', 60_000);
    await expect(runJob(deps(), opts(jobId), async () => ({ outputs: [] }))).rejects.toBeInstanceOf(RetryLaterError);
  });

  it('re-sends a notification only when the finisher died before sending it', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued' });
    // It finished 30 ms ago (by the repository's clock, which wrote completedAt).
    advance(-30);
    await repo.claim(jobId, 'dead#1', 1);
    await repo.finish(jobId, 'dead#1', { status: 'succeeded' });
    // Just finished (30 ms ago, within a lease of 60 s): its notification may be in flight.
    await expect(runJob(deps(), { ...opts(jobId, 2), leaseMs: 60_000 }, async () => ({ outputs: [] }))).rejects.toBeInstanceOf(RetryLaterError);
    // Finished longer ago than a lease of 10 ms: the finisher died before notifying.
    expect(await runJob(deps(), { ...opts(jobId, 2), leaseMs: 10 }, async () => ({ outputs: [] }))).toBe('duplicate');
    expect(published).toHaveLength(1);
    await notify({ repo, notifier }, (await repo.get(jobId))!).catch(() => undefined);
  });
});

describe('sweeper queries', () => {
  it('finds expired leases and fails each abandoned job once', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued' });
    const { job } = (await repo.claim(jobId, 'dying#3', 1)) as { job: JobRecord };
    advance(20);
    const expired: string[] = [];
    for await (const l of repo.expiredLeases(clock)) expired.push(l.jobId);
    expect(expired).toContain(jobId);
    const failed = await repo.abandon(jobId, job.leaseUntil!, { code: 'retries_exhausted', message: 'worker died' });
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'retries_exhausted' } });
    expect(await repo.abandon(jobId, job.leaseUntil!, { code: 'retries_exhausted', message: 'again' })).toBeUndefined();
    const after: string[] = [];
    for await (const l of repo.expiredLeases(clock)) after.push(l.jobId);
    expect(after).not.toContain(jobId);
  });

  it('fails a dead-lettered job that never ran, but not a finished or live one', async () => {
    const never = id();
    await repo.create({ jobId: never, type: 'thumbnail', status: 'queued' });
    expect(await repo.failDeadLettered(never, { code: 'retries_exhausted', message: 'x' })).toMatchObject({ status: 'failed' });
    const done = id();
    await repo.create({ jobId: done, type: 'thumbnail', status: 'queued' });
    await repo.claim(done, 'm#1', 60_000);
    expect(await repo.failDeadLettered(done, { code: 'retries_exhausted', message: 'x' })).toBeUndefined(); // live lease
    await repo.finish(done, 'm#1', { status: 'succeeded' });
    expect(await repo.failDeadLettered(done, { code: 'retries_exhausted', message: 'x' })).toBeUndefined();
    expect((await repo.get(done))?.status).toBe('succeeded');
    expect(await repo.failDeadLettered(id(), { code: 'retries_exhausted', message: 'x' })).toBeUndefined(); // no such job
  });

  it('fails a queued job whose message could not be sent, and nothing that moved on', async () => {
    const queued = id();
    await repo.create({ jobId: queued, type: 'report', status: 'queued' });
    const error = { code: 'internal_error', message: 'the report could not be queued; please retry' };
    expect(await repo.failQueued(queued, error)).toMatchObject({ jobId: queued, status: 'failed', error, outputs: [] });
    expect(await repo.failQueued(queued, error)).toBeUndefined(); // failed already: not rewritten
    const running = id();
    await repo.create({ jobId: running, type: 'report', status: 'queued' });
    await repo.claim(running, 'm#1', 60_000);
    expect(await repo.failQueued(running, error)).toBeUndefined();
    expect((await repo.get(running))?.status).toBe('processing');
    expect(await repo.failQueued(id(), error)).toBeUndefined(); // no such job: nothing created
    expect(await repo.get(`00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`)).toBeUndefined();
  });

  it('marks a notification sent once, and only for the completion it names', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued' });
    await repo.claim(jobId, 'm#1', 60_000);
    const done = (await repo.finish(jobId, 'm#1', { status: 'succeeded' }))!;
    expect(await repo.markNotified(jobId, '1999-01-01T00:00:00.000Z')).toBe(false);
    expect(await repo.markNotified(jobId, done.completedAt!)).toBe(true);
    expect(await repo.markNotified(jobId, done.completedAt!)).toBe(false);
  });

  it('leaves alone a job whose lease was renewed by a new delivery', async () => {
    const jobId = id();
    await repo.create({ jobId, type: 'thumbnail', status: 'queued' });
    const { job } = (await repo.claim(jobId, 'old#1', 1)) as { job: JobRecord };
    advance(20);
    await repo.claim(jobId, 'new#2', 60_000);
    expect(await repo.abandon(jobId, job.leaseUntil!, { code: 'retries_exhausted', message: 'x' })).toBeUndefined();
    expect((await repo.get(jobId))?.status).toBe('processing');
  });
});
