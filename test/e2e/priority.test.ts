import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import { queueOutputKeys, UPLOAD_PREFIXES } from '../../lambda/shared/contract';
import { sharedInstance, useSharedInstance } from './client';

/**
 * Priority lanes and delays through local mode (the shared instance): a high job overtakes a
 * backlog of normal ones, a high upload runs through the high lane, a delayed job stays
 * `queued` until its `runAfter`, and bad options are refused. Only this file's jobs are
 * looked at, so it shares the instance.
 */
const ctx = sharedInstance();
useSharedInstance('shared');

/** A range with no upload jobs in it: a report over it is quick and the same every time. */
const EMPTY_RANGE = { from: '2001-01-01', to: '2001-01-01' };

describe('priority lanes', () => {
  it('deploys a high queue per type next to its queue and DLQ', () => {
    for (const type of ctx.outputs.JobTypes.split(',')) {
      const keys = queueOutputKeys(type);
      expect(ctx.outputs[keys.high], type).toMatch(/^http/);
      expect(new Set([ctx.outputs[keys.queue], ctx.outputs[keys.high], ctx.outputs[keys.dlq]]).size).toBe(3);
    }
  });

  it('refuses a bad priority or delaySeconds with 400 naming the field, on every submit route', async () => {
    const cases: Array<[string, Parameters<typeof ctx.call>[2], RegExp]> = [
      ['jobs', { json: { type: 'report', input: EMPTY_RANGE, priority: 'urgent' } }, /^priority: /],
      ['jobs', { json: { type: 'report', input: EMPTY_RANGE, delaySeconds: 901 } }, /^delaySeconds: /],
      ['jobs', { json: { type: 'wordcount', input: { text: 'a' }, delaySeconds: -5 } }, /^delaySeconds: /],
      ['jobs', { json: { type: 'wordcount', input: { text: 'a' }, delaySeconds: 1.5 } }, /^delaySeconds: /],
      ['reports', { json: { ...EMPTY_RANGE, priority: 'HIGH' } }, /^priority: /],
      ['reports', { json: { ...EMPTY_RANGE, delaySeconds: '10' } }, /^delaySeconds: /],
      ['uploads', { json: { filename: 'a.jpg', contentType: 'image/jpeg', size: 10, priority: 'low' } }, /^priority: /],
      ['uploads', { json: { filename: 'a.jpg', contentType: 'image/jpeg', size: 10, delaySeconds: 10 } }, /delaySeconds/],
      ['uploads?priority=soon', { body: Buffer.from([0xff, 0xd8, 0xff]), headers: { 'content-type': 'image/jpeg' } }, /^priority: /],
    ];
    for (const [route, init, message] of cases) {
      const res = await ctx.call('POST', route, init);
      expect(res.status, `${route} ${JSON.stringify(init?.json)}: ${res.text}`).toBe(400);
      expect(res.json.error.code).toBe('invalid_request');
      expect(res.json.error.message).toMatch(message);
    }
  });

  it('starts a high job ahead of a backlog of normal ones queued before it', async () => {
    // Reports run at most 2 at a time on the normal lane; the high lane has pollers of its own.
    const report = async (priority: 'high' | 'normal') => {
      const res = await ctx.call('POST', 'reports', { json: { ...EMPTY_RANGE, priority } });
      expect(res.status, res.text).toBe(202);
      return res.json.jobId as string;
    };
    // The worker's execution environments are shared by its lanes, as on Lambda: warm three
    // first, so the high job finds one idle while the normal lane (2 at a time) holds two,
    // instead of waiting for a cold start the normal jobs do not pay.
    const warm = await Promise.all([0, 1, 2].map(() => report('high')));
    for (const j of await Promise.all(warm.map((id) => ctx.waitForJob(id, 120_000)))) expect(j.status, JSON.stringify(j.error)).toBe('succeeded');

    // Empty-range reports take a fraction of a second each: the backlog must outlast the high
    // job's own submit and pickup even on a loaded machine (16 were once drained 9 deep by then).
    const N = 40;
    const normal = await Promise.all(Array.from({ length: N }, () => report('normal')));
    const high = await ctx.waitForJob(await report('high'), 120_000);
    expect(high.status, JSON.stringify(high.error)).toBe('succeeded');
    expect(high.priority).toBe('high');

    const done = await Promise.all(normal.map((id) => ctx.waitForJob(id, 180_000)));
    for (const j of done) {
      expect(j.status, JSON.stringify(j.error)).toBe('succeeded');
      expect(j.priority).toBe('normal');
    }
    // Every normal job was submitted (and queued) before the high one...
    const highCreated = Date.parse(high.createdAt);
    for (const j of done) expect(Date.parse(j.createdAt)).toBeLessThanOrEqual(highCreated);
    // ...yet the high one started before most of them.
    const highStart = Date.parse(high.startedAt);
    const startedAfter = done.filter((j) => Date.parse(j.startedAt) > highStart).length;
    expect(startedAfter, `normal jobs started after the high one: ${startedAfter} of ${N}`).toBeGreaterThan(N / 2);
  });

  it('runs a high-priority upload through the high lane: key under priority-uploads/, priority in the view, progress per step', async () => {
    const photo = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#cc6633' } }).jpeg().toBuffer();
    const direct = await ctx.call('POST', 'uploads?priority=high&filename=fast.jpg', { body: photo, headers: { 'content-type': 'image/jpeg' } });
    expect(direct.status, direct.text).toBe(202);
    const created = await ctx.call('POST', 'uploads', { json: { filename: 'fast2.jpg', contentType: 'image/jpeg', size: photo.length, priority: 'high' } });
    expect(created.status, created.text).toBe(201);
    expect(new URL(created.json.uploadUrl).pathname).toBe(`/${ctx.outputs.RawBucketName}/${UPLOAD_PREFIXES.high}${created.json.jobId}/fast2.jpg`);
    const put = await fetch(created.json.uploadUrl, { method: 'PUT', headers: created.json.headers, body: new Uint8Array(photo) });
    expect(put.status).toBe(200);

    const s3 = new S3Client(ctx.awsConfig);
    for (const jobId of [direct.json.jobId, created.json.jobId]) {
      const job = await ctx.waitForJob(jobId);
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
      expect(job.priority).toBe('high');
      expect(job.outputs).toHaveLength(6);
      // The last step (every output written) is recorded: 2 steps + 6 outputs.
      expect(job.progress).toEqual({ done: 8, total: 8 });
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: ctx.outputs.RawBucketName, Prefix: `${UPLOAD_PREFIXES.high}${jobId}/` }));
      expect(listed.Contents?.map((o) => o.Key)).toEqual([`${UPLOAD_PREFIXES.high}${jobId}/${job.input.filename}`]);
      const normalLane = await s3.send(new ListObjectsV2Command({ Bucket: ctx.outputs.RawBucketName, Prefix: `${UPLOAD_PREFIXES.normal}${jobId}/` }));
      expect(normalLane.Contents ?? []).toEqual([]);
    }
    s3.destroy();
  });
});

describe('delays', () => {
  it('keeps a delayed job queued, showing runAfter, until then; then it succeeds', async () => {
    const delaySeconds = 6;
    const res = await ctx.call('POST', 'jobs', { json: { type: 'wordcount', input: { text: 'later, not now' }, delaySeconds } });
    expect(res.status, res.text).toBe(202);
    const jobId = res.json.jobId as string;
    const first = (await ctx.call('GET', `jobs/${jobId}`)).json;
    expect(first).toMatchObject({ priority: 'normal', runAfter: expect.any(String) });
    const runAfter = Date.parse(first.runAfter);
    // runAfter is the submit time plus the delay (the record's createdAt is taken a moment after).
    expect(Math.abs(runAfter - delaySeconds * 1000 - Date.parse(first.createdAt))).toBeLessThanOrEqual(1000);

    // Watch it: every answer received before runAfter shows it queued, not started.
    const seenBefore: Array<{ status: string; startedAt?: string }> = [];
    const final = await vi.waitFor(
      async () => {
        const job = (await ctx.call('GET', `jobs/${jobId}`)).json;
        if (Date.now() < runAfter) seenBefore.push({ status: job.status, startedAt: job.startedAt });
        if (job.status !== 'succeeded' && job.status !== 'failed') throw new Error(`job ${jobId} is ${job.status}`);
        return job;
      },
      { timeout: 60_000, interval: 250 },
    );
    expect(seenBefore.length).toBeGreaterThan(0);
    expect(seenBefore.filter((j) => j.status !== 'queued' || j.startedAt !== undefined)).toEqual([]);
    expect(final.status, JSON.stringify(final.error)).toBe('succeeded');
    expect(final.runAfter).toBe(first.runAfter);
    // It started only once its message became visible.
    expect(Date.parse(final.startedAt)).toBeGreaterThanOrEqual(runAfter);
  });

  it('delays a report asked on its own route, and a high job can be delayed too', async () => {
    const res = await ctx.call('POST', 'reports', { json: { ...EMPTY_RANGE, formats: ['csv'], priority: 'high', delaySeconds: 2 } });
    expect(res.status, res.text).toBe(202);
    const queued = (await ctx.call('GET', `jobs/${res.json.jobId}`)).json;
    expect(queued).toMatchObject({ priority: 'high', runAfter: expect.any(String) });
    const job = await ctx.waitForJob(res.json.jobId, 120_000);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    expect(Date.parse(job.startedAt)).toBeGreaterThanOrEqual(Date.parse(queued.runAfter));
  });
});
