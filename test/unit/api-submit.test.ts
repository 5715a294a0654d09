import { beforeEach, describe, expect, it } from 'vitest';
import { apiHarness, errorOf, type ApiHarness } from './fixtures/api-harness';

/** `POST /jobs`, the platform's one submit route for every JSON-input type, over the real definitions. */
let h: ApiHarness;
beforeEach(() => {
  h = apiHarness();
});

const FIRST_ID = '00000000-0000-4000-8000-000000000001';
const submit = (json: unknown) => h.call('POST', '/jobs', { json });

/** A refused request leaves nothing behind: no job, no message. */
const expectNothingDone = () => {
  expect(h.jobs.size).toBe(0);
  expect(h.sent).toEqual([]);
};

describe('POST /jobs', () => {
  it('answers 202 with the job id and its status URL, and enqueues one message to the type', async () => {
    const res = await submit({ type: 'report', input: { from: '2026-01-01', to: '2026-01-31', formats: ['csv'] } });
    expect(res.statusCode).toBe(202);
    expect(res.body).toEqual({ jobId: FIRST_ID, statusUrl: `https://api.example/v1/jobs/${FIRST_ID}` });
    expect(h.sent).toEqual([{ type: 'report', message: { jobId: FIRST_ID, type: 'report' } }]);
    expect(h.jobs.get(FIRST_ID)).toMatchObject({
      jobId: FIRST_ID,
      type: 'report',
      status: 'queued',
      input: { from: '2026-01-01', to: '2026-01-31', formats: ['csv'] },
    });
    // Queued: the sweeper's deadline is the queue's retention (the report type's maxQueuedSeconds).
    expect(h.created).toEqual([expect.objectContaining({ jobId: FIRST_ID, type: 'report', status: 'queued', sweepAfterMs: 4 * 86400 * 1000 })]);
  });

  it('refuses an unknown type with 400 invalid_request naming the known types', async () => {
    const res = await submit({ type: 'video', input: {} });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('invalid_request');
    expect(errorOf(res).message).toMatch(/unknown job type "video"/);
    expect(errorOf(res).message).toMatch(/known types: thumbnail, report/);
    expectNothingDone();
  });

  it.each([
    ['no type', { input: { from: '2026-01-01', to: '2026-01-02' } }, /type/],
    ['a type that is not a string', { type: 42, input: {} }, /type/],
    ['an empty type', { type: '', input: {} }, /^type: unknown job type ""/],
  ])('refuses %s with 400 naming the known types', async (_what, json, message) => {
    const res = await submit(json);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('invalid_request');
    expect(errorOf(res).message).toMatch(message);
    expect(errorOf(res).message).toMatch(/thumbnail, report/);
    expectNothingDone();
  });

  it('refuses a missing input with 400 naming the field', async () => {
    const res = await submit({ type: 'report' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('invalid_request');
    expect(errorOf(res).message).toMatch(/^input: /);
    expectNothingDone();
  });

  it('refuses fields beside type, input and the submit options', async () => {
    const res = await submit({ type: 'report', input: { from: '2026-01-01', to: '2026-01-02' }, urgent: true });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).message).toMatch(/unknown field.*urgent/);
    expectNothingDone();
  });

  it.each([
    [{ from: 'yesterday', to: '2026-03-01' }, /input\.from: .*YYYY-MM-DD/],
    [{ from: '2026-02-30', to: '2026-03-01' }, /input\.from: .*calendar/],
    [{ to: '2026-03-01' }, /input\.from/],
    [{ from: '2026-01-01', to: '2026-01-02', formats: ['xlsx'] }, /input\.formats/],
    [{ from: '2026-01-01', to: '2026-01-02', sql: 'drop' }, /unknown field\(s\) in input: sql/],
  ])("refuses input %j failing the type's schema with 400 naming the field", async (input, message) => {
    const res = await submit({ type: 'report', input });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('invalid_request');
    expect(errorOf(res).message).toMatch(message);
    expectNothingDone();
  });

  it("refuses input failing the type's own checks (with its settings) with 400", async () => {
    const after = await submit({ type: 'report', input: { from: '2026-02-01', to: '2026-01-01' } });
    expect(after.statusCode).toBe(400);
    expect(errorOf(after).message).toMatch(/after/);
    const tooLong = await submit({ type: 'report', input: { from: '2024-01-01', to: '2025-01-01' } });
    expect(tooLong.statusCode).toBe(400);
    expect(errorOf(tooLong).message).toMatch(/367 days; the limit is 366/);
    expectNothingDone();
  });

  it('refuses a file-input type with 400 naming its upload route', async () => {
    const res = await submit({ type: 'thumbnail', input: { filename: 'a.jpg', key: 'uploads/x/a.jpg' } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('invalid_request');
    expect(errorOf(res).message).toMatch(/thumbnail takes a file/);
    expect(errorOf(res).message).toMatch(/POST \/uploads/);
    expectNothingDone();
  });

  it('refuses other content types with 415 and bodies that are not JSON with 400', async () => {
    const text = await h.call('POST', '/jobs', { headers: { 'content-type': 'text/plain' }, body: Buffer.from('{}') });
    expect(text.statusCode).toBe(415);
    expect(errorOf(text).code).toBe('unsupported_media_type');
    const broken = await h.call('POST', '/jobs', { json: '{"type": ' });
    expect(broken.statusCode).toBe(400);
    expect(errorOf(broken).message).toMatch(/not valid JSON/);
    expectNothingDone();
  });

  it('gives a report the same job input through POST /jobs and through POST /reports', async () => {
    const input = { from: '2026-04-01', to: '2026-04-30' };
    const viaJobs = (await submit({ type: 'report', input })).body as { jobId: string };
    const viaReports = (await h.call('POST', '/reports', { json: input })).body as { jobId: string };
    expect(viaJobs.jobId).not.toBe(viaReports.jobId);
    const a = h.jobs.get(viaJobs.jobId)!;
    const b = h.jobs.get(viaReports.jobId)!;
    expect(a.input).toEqual(input);
    expect(b.input).toEqual(a.input);
    expect([a.type, a.status]).toEqual([b.type, b.status]);
    expect(h.sent).toEqual([
      { type: 'report', message: { jobId: viaJobs.jobId, type: 'report' } },
      { type: 'report', message: { jobId: viaReports.jobId, type: 'report' } },
    ]);
    const view = async (jobId: string) => {
      const { jobId: _id, ...rest } = (await h.call('GET', '/jobs/{jobId}', { pathParameters: { jobId } })).body as Record<string, unknown>;
      return rest;
    };
    expect(await view(viaReports.jobId)).toEqual(await view(viaJobs.jobId));
    // Both routes refuse the same bad input with the same reason (the field named from its own root).
    const bad = { from: '2026-02-30', to: '2026-03-01' };
    expect(errorOf(await submit({ type: 'report', input: bad })).message).toMatch(/^input\.from: .*calendar/);
    expect(errorOf(await h.call('POST', '/reports', { json: bad })).message).toMatch(/^from: .*calendar/);
  });

  it('fails the job (internal_error, never left queued) when the queue cannot take its message', async () => {
    h.setFailSend(true);
    await expect(submit({ type: 'report', input: { from: '2026-01-01', to: '2026-01-02' } })).rejects.toThrow('queue down');
    expect([...h.jobs.values()]).toEqual([
      expect.objectContaining({ jobId: FIRST_ID, status: 'failed', error: { code: 'internal_error', message: expect.stringMatching(/could not be queued/) } }),
    ]);
    expect(h.sent).toEqual([]);
  });
});

describe('GET /jobs and GET /openapi.json', () => {
  it('refuses an unknown type filter with 400 naming the known types', async () => {
    const res = await h.call('GET', '/jobs', { query: { type: 'video' } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('invalid_request');
    expect(errorOf(res).message).toMatch(/unknown job type "video"; known types: thumbnail, report/);
    expect(h.lists).toEqual([]);
  });

  it('refuses an unknown status filter with 400', async () => {
    const res = await h.call('GET', '/jobs', { query: { status: 'paused' } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).message).toMatch(/status/);
    expect((await h.call('GET', '/jobs', { query: { status: 'cancelled' } })).statusCode).toBe(200);
    expect(h.lists.at(-1)?.status).toBe('cancelled');
  });

  it('serves the OpenAPI document it was given', async () => {
    const doc = { openapi: '3.0.3', info: { title: 'offload' }, paths: {} };
    const res = await apiHarness({ openapi: doc }).call('GET', '/openapi.json');
    expect(res.statusCode).toBe(200);
    expect(res.body).toEqual(doc);
  });

  it('answers 404 for /openapi.json when it has no document', async () => {
    const res = await h.call('GET', '/openapi.json');
    expect(res.statusCode).toBe(404);
    expect(errorOf(res).code).toBe('not_found');
  });
});
