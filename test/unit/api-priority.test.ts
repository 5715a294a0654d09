import { beforeEach, describe, expect, it } from 'vitest';
import { definition as thumbnailDefinition } from '../../job-types/thumbnail/definition';
import { UPLOAD_PREFIXES, uploadLaneOf } from '../../lambda/shared/contract';
import { parseUploadEvents } from '../../lambda/shared/s3-event';
import { splitSubmitOptions, SubmitOptions } from '../../lambda/shared/schemas';
import { queueUrlOf } from '../../lambda/shared/worker';
import { apiHarness, errorOf, FIXED_NOW, type ApiHarness } from './fixtures/api-harness';

/** Priority lanes and delays on every submit route, over the real definitions and in-memory fakes. */
let h: ApiHarness;
beforeEach(() => {
  h = apiHarness();
});

const FIRST_ID = '00000000-0000-4000-8000-000000000001';
const RANGE = { from: '2026-01-01', to: '2026-01-31' };
const FOUR_DAYS_MS = 4 * 86400 * 1000;
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);

const expectNothingDone = () => {
  expect(h.jobs.size).toBe(0);
  expect(h.sent).toEqual([]);
  expect(h.puts).toEqual([]);
  expect(h.presigned).toEqual([]);
};

const view = async (jobId: string) => (await h.call('GET', '/jobs/{jobId}', { pathParameters: { jobId } })).body as Record<string, unknown>;

describe('SubmitOptions', () => {
  it('takes priority high|normal and a whole delaySeconds 0..900, both optional', () => {
    for (const ok of [{}, { priority: 'high' }, { priority: 'normal' }, { delaySeconds: 0 }, { delaySeconds: 900 }, { priority: 'high', delaySeconds: 30 }]) {
      expect(SubmitOptions.safeParse(ok).success, JSON.stringify(ok)).toBe(true);
    }
    for (const bad of [{ priority: 'urgent' }, { priority: 'HIGH' }, { priority: 1 }, { delaySeconds: -1 }, { delaySeconds: 901 }, { delaySeconds: 1.5 }, { delaySeconds: '10' }]) {
      expect(SubmitOptions.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('splits the options from the route fields, with defaults, and only those a route allows', () => {
    expect(splitSubmitOptions({ from: 'a', priority: 'high' })).toEqual({ options: { priority: 'high', delaySeconds: 0 }, rest: { from: 'a' } });
    expect(splitSubmitOptions({ from: 'a' })).toEqual({ options: { priority: 'normal', delaySeconds: 0 }, rest: { from: 'a' } });
    // A field the route does not take as an option stays with the route's fields (whose strict schema refuses it).
    expect(splitSubmitOptions({ size: 1, delaySeconds: 5 }, ['priority'])).toEqual({ options: { priority: 'normal', delaySeconds: 0 }, rest: { size: 1, delaySeconds: 5 } });
    expect(() => splitSubmitOptions({ priority: 'low' })).toThrow(/^priority: priority must be one of high, normal$/);
    // A `__proto__` key from JSON stays a field of its own (the route's strict schema refuses it).
    const { rest } = splitSubmitOptions(JSON.parse('{"__proto__":{"polluted":1},"a":1}'));
    expect(Object.keys(rest as object)).toEqual(['__proto__', 'a']);
    expect((rest as { polluted?: number }).polluted).toBeUndefined();
  });
});

describe('POST /jobs: priority and delaySeconds', () => {
  const submit = (extra: Record<string, unknown>) => h.call('POST', '/jobs', { json: { type: 'report', input: RANGE, ...extra } });

  it('sends a job without options to the normal lane, at once, and shows priority normal', async () => {
    expect((await submit({})).statusCode).toBe(202);
    expect(h.lanes).toEqual([{ jobId: FIRST_ID, priority: 'normal', delaySeconds: 0 }]);
    const job = await view(FIRST_ID);
    expect(job).toMatchObject({ priority: 'normal', status: 'queued' });
    expect(job).not.toHaveProperty('runAfter');
  });

  it('sends a high job to the high lane and shows priority high', async () => {
    expect((await submit({ priority: 'high' })).statusCode).toBe(202);
    expect(h.lanes).toEqual([{ jobId: FIRST_ID, priority: 'high', delaySeconds: 0 }]);
    expect(h.created).toEqual([expect.objectContaining({ priority: 'high', sweepAfterMs: FOUR_DAYS_MS })]);
    expect(await view(FIRST_ID)).toMatchObject({ priority: 'high' });
  });

  it('delays the message, records runAfter, and moves the sweep deadline by the delay', async () => {
    expect((await submit({ delaySeconds: 90 })).statusCode).toBe(202);
    const runAfter = new Date(FIXED_NOW.getTime() + 90_000).toISOString();
    expect(h.lanes).toEqual([{ jobId: FIRST_ID, priority: 'normal', delaySeconds: 90 }]);
    expect(h.created).toEqual([expect.objectContaining({ status: 'queued', runAfter, sweepAfterMs: FOUR_DAYS_MS + 90_000 })]);
    expect(await view(FIRST_ID)).toMatchObject({ status: 'queued', priority: 'normal', runAfter });
    // delaySeconds 0 is no delay: no runAfter.
    await submit({ delaySeconds: 0, priority: 'high' });
    expect(h.lanes[1]).toMatchObject({ priority: 'high', delaySeconds: 0 });
    expect(h.created[1]).not.toHaveProperty('runAfter');
  });

  it.each([
    [{ priority: 'urgent' }, /^priority: /],
    [{ priority: null }, /^priority: /],
    [{ delaySeconds: 901 }, /^delaySeconds: .*at most 900/],
    [{ delaySeconds: -1 }, /^delaySeconds: .*at least 0/],
    [{ delaySeconds: 2.5 }, /^delaySeconds: .*whole number/],
    [{ delaySeconds: '30' }, /^delaySeconds: /],
  ])('refuses %j with 400 naming the field, creating nothing', async (extra, message) => {
    const res = await submit(extra);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('invalid_request');
    expect(errorOf(res).message).toMatch(message);
    expectNothingDone();
  });

  it('does not take the options inside input (they are the submit\'s, not the type\'s)', async () => {
    const res = await h.call('POST', '/jobs', { json: { type: 'report', input: { ...RANGE, priority: 'high' } } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).message).toMatch(/unknown field\(s\) in input: priority/);
    expectNothingDone();
  });
});

describe('POST /reports: priority and delaySeconds beside the range', () => {
  const report = (json: unknown) => h.call('POST', '/reports', { json });

  it('queues the report on the lane asked, delayed as asked', async () => {
    expect((await report({ ...RANGE, formats: ['csv'], priority: 'high', delaySeconds: 5 })).statusCode).toBe(202);
    expect(h.lanes).toEqual([{ jobId: FIRST_ID, priority: 'high', delaySeconds: 5 }]);
    // The options are not part of the report's input.
    expect(h.jobs.get(FIRST_ID)).toMatchObject({ input: { ...RANGE, formats: ['csv'] }, priority: 'high', runAfter: new Date(FIXED_NOW.getTime() + 5000).toISOString() });
    expect(h.jobs.get(FIRST_ID)!.input).not.toHaveProperty('priority');
  });

  it('refuses a bad priority or delay with 400 naming it', async () => {
    for (const [extra, field] of [[{ priority: 'later' }, 'priority'], [{ delaySeconds: 1000 }, 'delaySeconds']] as const) {
      const res = await report({ ...RANGE, ...extra });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).message.startsWith(`${field}: `)).toBe(true);
    }
    expectNothingDone();
  });
});

describe('POST /uploads: the lane is the key prefix', () => {
  const upload = (extra: Record<string, unknown>) => h.call('POST', '/uploads', { json: { filename: 'a.jpg', contentType: 'image/jpeg', size: 10, ...extra } });

  it('presigns a high upload under priority-uploads/ and a normal one under uploads/', async () => {
    const high = await upload({ priority: 'high' });
    expect(high.statusCode).toBe(201);
    const highId = (high.body as { jobId: string }).jobId;
    expect(h.presigned[0].key).toBe(`priority-uploads/${highId}/a.jpg`);
    expect(h.jobs.get(highId)).toMatchObject({ status: 'awaiting_upload', priority: 'high', input: { key: `priority-uploads/${highId}/a.jpg` } });
    expect(await view(highId)).toMatchObject({ priority: 'high' });

    const normal = await upload({});
    const normalId = (normal.body as { jobId: string }).jobId;
    expect(h.presigned[1].key).toBe(`uploads/${normalId}/a.jpg`);
    expect(h.jobs.get(normalId)).toMatchObject({ priority: 'normal' });
    // Nothing is sent: the upload's S3 event is the message.
    expect(h.sent).toEqual([]);
  });

  it('refuses a __proto__ field as before (it is not a submit option)', async () => {
    const res = await h.call('POST', '/uploads', { json: '{"filename":"a.jpg","contentType":"image/jpeg","size":10,"__proto__":{"x":1}}' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).message).toMatch(/unknown field\(s\): __proto__/);
    expectNothingDone();
  });

  it('refuses delaySeconds (the upload is the trigger) and a bad priority', async () => {
    const delayed = await upload({ delaySeconds: 10 });
    expect(delayed.statusCode).toBe(400);
    expect(errorOf(delayed).message).toMatch(/unknown field\(s\): delaySeconds/);
    const bad = await upload({ priority: 'asap' });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).message).toMatch(/^priority: /);
    expectNothingDone();
  });

  it('stores a direct upload with ?priority=high under priority-uploads/, and refuses another value', async () => {
    const direct = (query: Record<string, string>) =>
      h.call('POST', '/uploads', { headers: { 'content-type': 'image/jpeg' }, body: JPEG, query: { filename: 'cat.jpg', ...query } });
    const high = await direct({ priority: 'high' });
    expect(high.statusCode).toBe(202);
    const jobId = (high.body as { jobId: string }).jobId;
    expect(h.puts.map((p) => p.key)).toEqual([`priority-uploads/${jobId}/cat.jpg`]);
    expect(h.jobs.get(jobId)).toMatchObject({ status: 'queued', priority: 'high' });

    h = apiHarness();
    const bad = await direct({ priority: 'High' });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).message).toMatch(/^priority: /);
    expectNothingDone();
  });
});

describe('upload events and lanes', () => {
  const JOB = '3f1c2a4b-5d6e-4f70-8a9b-0c1d2e3f4a5b';
  const event = (...keys: string[]) =>
    JSON.stringify({ Records: keys.map((key) => ({ eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'raw' }, object: { key, size: 5 } } })) });

  it('defines the prefixes once, without overlap (S3 refuses overlapping prefixes for one event type)', () => {
    expect(UPLOAD_PREFIXES).toEqual({ normal: 'uploads/', high: 'priority-uploads/' });
    expect(UPLOAD_PREFIXES.high.startsWith(UPLOAD_PREFIXES.normal) || UPLOAD_PREFIXES.normal.startsWith(UPLOAD_PREFIXES.high)).toBe(false);
    expect(uploadLaneOf('priority-uploads/x/a.jpg')).toEqual({ priority: 'high', prefix: 'priority-uploads/' });
    expect(uploadLaneOf('uploads/x/a.jpg')).toEqual({ priority: 'normal', prefix: 'uploads/' });
    expect(uploadLaneOf('thumbnails/x/a.jpg')).toBeUndefined();
  });

  it('reads the job id and lane from keys under either prefix, and skips others', () => {
    const parsed = parseUploadEvents(event(`priority-uploads/${JOB}/a.jpg`, `uploads/${JOB}/b.jpg`, `elsewhere/${JOB}/c.jpg`));
    expect(parsed.map((u) => [u.jobId, u.priority, u.ours, u.filename])).toEqual([
      [JOB, 'high', true, 'a.jpg'],
      [JOB, 'normal', true, 'b.jpg'],
    ]);
  });

  it("gives an object another tool put under priority-uploads/ a job of its own in the high lane", () => {
    const [job] = thumbnailDefinition.messageJobs!(event('priority-uploads/from-a-tool/photo.jpg'));
    expect(job).toMatchObject({ priority: 'high', createInput: { filename: 'photo.jpg', key: 'priority-uploads/from-a-tool/photo.jpg' } });
    const [ours] = thumbnailDefinition.messageJobs!(event(`priority-uploads/${JOB}/a.jpg`));
    expect(ours).not.toHaveProperty('createInput');
  });

  it("the worker's retry backoff goes to the queue the record came from", () => {
    const urls = ['http://sqs.local/123/Offload-ThumbnailQueue1', 'http://sqs.local/123/Offload-ThumbnailHighQueue2'];
    expect(queueUrlOf('arn:aws:sqs:us-east-1:123:Offload-ThumbnailHighQueue2', urls)).toBe(urls[1]);
    expect(queueUrlOf('arn:aws:sqs:us-east-1:123:Offload-ThumbnailQueue1', urls)).toBe(urls[0]);
    // Unknown (or missing): the normal lane's (the backoff then falls back to the visibility timeout).
    expect(queueUrlOf(undefined, urls)).toBe(urls[0]);
  });
});
