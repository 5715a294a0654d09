import { beforeEach, describe, expect, it } from 'vitest';
import { IDEMPOTENCY_POLL_MAX_MS, IDEMPOTENCY_TTL_SECONDS, IDEMPOTENCY_WAIT_MS, LONG_POLL_INTERVAL_MS } from '../../lambda/api/app';
import type { JobRecord } from '../../lambda/shared/model';
import { apiHarness, errorOf, FIXED_NOW, type ApiHarness } from './fixtures/api-harness';

/** Cancellation, idempotent submits and long-polls in the API core, against in-memory fakes. */
let h: ApiHarness;
beforeEach(() => {
  h = apiHarness();
});

const REPORT = { from: '2026-01-01', to: '2026-01-31' };
const jobPath = (jobId: string) => ({ pathParameters: { jobId } });

async function submitReport(headers: Record<string, string> = {}, json: unknown = REPORT) {
  return h.call('POST', '/reports', { json, headers: { 'content-type': 'application/json', ...headers } });
}

/** Puts a job of the given state straight into the fake table. */
function seed(over: Partial<JobRecord>): string {
  const jobId = `00000000-0000-4000-9000-${String(h.jobs.size + 1).padStart(12, '0')}`;
  h.jobs.set(jobId, {
    jobId,
    type: 'report',
    status: 'processing',
    createdAt: FIXED_NOW.toISOString(),
    updatedAt: FIXED_NOW.toISOString(),
    attempts: 1,
    input: REPORT,
    ...over,
  });
  return jobId;
}

describe('DELETE /jobs/{jobId}', () => {
  it.each(['queued', 'awaiting_upload'] as const)('cancels a %s job at once: 202 with the job, cancelled', async (status) => {
    const jobId = seed({ status, sweepAt: 1 });
    const res = await h.call('DELETE', '/jobs/{jobId}', jobPath(jobId));
    expect(res.statusCode).toBe(202);
    expect(res.body).toMatchObject({ jobId, status: 'cancelled', completedAt: FIXED_NOW.toISOString(), outputs: [] });
    expect(h.jobs.get(jobId)?.status).toBe('cancelled');
  });

  it('asks a processing job to stop: 202 with cancelRequested, still processing', async () => {
    const jobId = seed({ status: 'processing' });
    const res = await h.call('DELETE', '/jobs/{jobId}', jobPath(jobId));
    expect(res.statusCode).toBe(202);
    expect(res.body).toMatchObject({ jobId, status: 'processing', cancelRequested: true });
    // GET shows it too.
    expect((await h.call('GET', '/jobs/{jobId}', jobPath(jobId))).body).toMatchObject({ cancelRequested: true });
  });

  it.each(['succeeded', 'failed', 'cancelled'] as const)('refuses a %s job with 409 conflict', async (status) => {
    const jobId = seed({ status, completedAt: FIXED_NOW.toISOString() });
    const res = await h.call('DELETE', '/jobs/{jobId}', jobPath(jobId));
    expect(res.statusCode).toBe(409);
    expect(errorOf(res)).toEqual({ code: 'conflict', message: expect.stringContaining(status) });
    expect(h.jobs.get(jobId)?.status).toBe(status);
  });

  it('answers 404 for an unknown or malformed id', async () => {
    expect((await h.call('DELETE', '/jobs/{jobId}', jobPath('00000000-0000-4000-8000-000000000999'))).statusCode).toBe(404);
    const res = await h.call('DELETE', '/jobs/{jobId}', jobPath('idem#abc'));
    expect(res.statusCode).toBe(404);
    expect(errorOf(res).code).toBe('not_found');
  });

  it('names DELETE in the preflight of /jobs/{jobId}, and allows the Idempotency-Key header everywhere', async () => {
    const res = await h.call('OPTIONS', '/jobs/{jobId}');
    expect(res.headers?.['Access-Control-Allow-Methods']).toBe('GET,DELETE,OPTIONS');
    expect(res.headers?.['Access-Control-Allow-Headers']).toContain('Idempotency-Key');
  });
});

describe('Idempotency-Key', () => {
  it('replays the first response of a repeat (same key, same body) with Idempotent-Replayed: true; one job', async () => {
    const first = await submitReport({ 'idempotency-key': 'order-42' });
    expect(first.statusCode).toBe(202);
    expect(first.headers?.['Idempotent-Replayed']).toBeUndefined();
    const again = await submitReport({ 'idempotency-key': 'order-42' });
    expect(again.statusCode).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers?.['Idempotent-Replayed']).toBe('true');
    expect(h.jobs.size).toBe(1);
    expect(h.sent).toHaveLength(1);
    // Remembered for 24 h.
    const [record] = [...h.idem.values()];
    expect(record).toMatchObject({ state: 'done', expiresAt: Math.floor(FIXED_NOW.getTime() / 1000) + IDEMPOTENCY_TTL_SECONDS });
    expect([...h.idem.keys()][0]).toMatch(/^idem#[0-9a-f]{64}$/);
  });

  it('refuses the same key with a different body or on a different route: 422 idempotency_key_reused', async () => {
    expect((await submitReport({ 'idempotency-key': 'k1' })).statusCode).toBe(202);
    const other = await submitReport({ 'idempotency-key': 'k1' }, { ...REPORT, formats: ['csv'] });
    expect(other.statusCode).toBe(422);
    expect(errorOf(other).code).toBe('idempotency_key_reused');
    const route = await h.call('POST', '/jobs', { json: { type: 'report', input: REPORT }, headers: { 'content-type': 'application/json', 'idempotency-key': 'k1' } });
    expect(route.statusCode).toBe(422);
    expect(h.jobs.size).toBe(1);
  });

  it('scopes keys per API key', async () => {
    const a = await h.call('POST', '/reports', { json: REPORT, headers: { 'content-type': 'application/json', 'idempotency-key': 'same' }, apiKeyId: 'key-a' });
    const b = await h.call('POST', '/reports', { json: REPORT, headers: { 'content-type': 'application/json', 'idempotency-key': 'same' }, apiKeyId: 'key-b' });
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    expect(b.headers?.['Idempotent-Replayed']).toBeUndefined();
    expect((a.body as { jobId: string }).jobId).not.toBe((b.body as { jobId: string }).jobId);
    expect(h.jobs.size).toBe(2);
  });

  it.each([
    ['empty', ''],
    ['too long', 'k'.repeat(256)],
    ['non-ASCII', 'clé'],
    ['a control character', 'a\tb'],
  ])('refuses a key that is %s with 400 (nothing created)', async (_what, key) => {
    const res = await submitReport({ 'idempotency-key': key });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toEqual({ code: 'invalid_request', message: expect.stringMatching(/Idempotency-Key/) });
    expect(h.jobs.size).toBe(0);
  });

  it('accepts 255 printable characters', async () => {
    expect((await submitReport({ 'idempotency-key': '~ !'.repeat(85) })).statusCode).toBe(202);
  });

  it('works on every POST route: presigned and direct uploads, POST /jobs', async () => {
    const presign = { json: { filename: 'a.jpg', contentType: 'image/jpeg', size: 10 }, headers: { 'content-type': 'application/json', 'idempotency-key': 'u1' } };
    const p1 = await h.call('POST', '/uploads', presign);
    const p2 = await h.call('POST', '/uploads', presign);
    expect(p1.statusCode).toBe(201);
    expect(p2).toEqual({ ...p1, headers: { 'Idempotent-Replayed': 'true' } });

    const direct = { headers: { 'content-type': 'image/jpeg', 'idempotency-key': 'u2' }, body: Buffer.from([0xff, 0xd8, 0xff, 1]), query: { filename: 'cat.jpg' } };
    const d1 = await h.call('POST', '/uploads', direct);
    const d2 = await h.call('POST', '/uploads', direct);
    expect(d1.statusCode).toBe(202);
    expect(d2.body).toEqual(d1.body);
    expect(h.puts).toHaveLength(1);
    // Another file name is another request.
    expect((await h.call('POST', '/uploads', { ...direct, query: { filename: 'dog.jpg' } })).statusCode).toBe(422);

    const job = { json: { type: 'report', input: REPORT }, headers: { 'content-type': 'application/json', 'idempotency-key': 'j1' } };
    expect((await h.call('POST', '/jobs', job)).statusCode).toBe(202);
    expect((await h.call('POST', '/jobs', job)).headers?.['Idempotent-Replayed']).toBe('true');
    expect(h.jobs.size).toBe(3);
  });

  it('remembers only 2xx: after a 4xx or a failure the same key runs again', async () => {
    const bad = await submitReport({ 'idempotency-key': 'retry-me' }, { from: 'nope', to: '2026-01-01' });
    expect(bad.statusCode).toBe(400);
    // The same key, now with a good body (a new request, since the first did nothing).
    h.setFailSend(true);
    await expect(submitReport({ 'idempotency-key': 'retry-me' })).rejects.toThrow(/queue down/);
    h.setFailSend(false);
    const ok = await submitReport({ 'idempotency-key': 'retry-me' });
    expect(ok.statusCode).toBe(202);
    expect(ok.headers?.['Idempotent-Replayed']).toBeUndefined();
    expect([...h.idem.values()][0].state).toBe('done');
  });

  it.each([20, 100])('%i concurrent identical submits make exactly one job; the others wait for it and replay its answer', async (n) => {
    h = apiHarness({ frozenClock: true });
    const open = h.holdEnqueue();
    const all = Promise.all(Array.from({ length: n }, () => submitReport({ 'idempotency-key': `burst-${n}` })));
    // Every request has tried to take the key before the first one finishes.
    await expect.poll(() => h.idemCalls.filter((c) => c.startsWith('begin')).length).toBe(n);
    open();
    const answers = await all;
    expect(h.jobs.size).toBe(1);
    expect(h.sent).toHaveLength(1);
    const jobId = [...h.jobs.keys()][0];
    expect(answers.every((a) => a.statusCode === 202 && (a.body as { jobId: string }).jobId === jobId)).toBe(true);
    expect(answers.filter((a) => a.headers?.['Idempotent-Replayed'] === 'true')).toHaveLength(n - 1);
  });

  it('answers 409 when the first request is still running after the wait, and takes over a key whose holder died', async () => {
    const open = h.holdEnqueue();
    const first = submitReport({ 'idempotency-key': 'slow' });
    await expect.poll(() => h.idemCalls.length).toBe(1);
    const second = await submitReport({ 'idempotency-key': 'slow' });
    expect(second.statusCode).toBe(409);
    expect(errorOf(second).code).toBe('conflict');
    expect(h.elapsed()).toBeGreaterThanOrEqual(IDEMPOTENCY_WAIT_MS);
    // It read the first request's record less and less often: 100 ms, then x1.5 up to a second.
    expect(h.slept.slice(0, 4)).toEqual([100, 150, 225, 338]);
    expect(Math.max(...h.slept)).toBe(IDEMPOTENCY_POLL_MAX_MS);
    open();
    expect((await first).statusCode).toBe(202);

    // A holder that died: its lock (the function's time) runs out, and the key is taken over.
    const held = apiHarness();
    const stuck = held.holdEnqueue();
    void held.call('POST', '/reports', { json: REPORT, headers: { 'content-type': 'application/json', 'idempotency-key': 'dead' }, remainingMs: () => 3000 });
    await expect.poll(() => held.idemCalls.length).toBe(1);
    held.advance(60_000);
    stuck();
    const retry = await held.call('POST', '/reports', { json: REPORT, headers: { 'content-type': 'application/json', 'idempotency-key': 'dead' } });
    expect(retry.statusCode).toBe(202);
    expect(held.idemCalls.filter((c) => c.startsWith('begin'))).toHaveLength(2);
  });

  it('ignores the header on routes that submit nothing', async () => {
    const jobId = seed({ status: 'queued' });
    const res = await h.call('GET', '/jobs/{jobId}', { ...jobPath(jobId), headers: { 'idempotency-key': '' } });
    expect(res.statusCode).toBe(200);
    expect(h.idem.size).toBe(0);
  });
});

describe('GET /jobs/{jobId}?waitSeconds=', () => {
  it('answers as soon as the job is terminal', async () => {
    // The clock stands still: only the job's change can end this wait.
    h = apiHarness({ frozenClock: true });
    const jobId = seed({ status: 'processing' });
    const waiting = h.call('GET', '/jobs/{jobId}', { ...jobPath(jobId), query: { waitSeconds: '20' } });
    await expect.poll(() => h.slept.length).toBeGreaterThanOrEqual(3);
    h.jobs.set(jobId, { ...h.jobs.get(jobId)!, status: 'succeeded', completedAt: FIXED_NOW.toISOString(), outputs: [] });
    const res = await waiting;
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatchObject({ jobId, status: 'succeeded' });
    expect(h.slept.every((ms) => ms <= LONG_POLL_INTERVAL_MS)).toBe(true);
  });

  it('answers with the current state after N seconds', async () => {
    const jobId = seed({ status: 'queued' });
    const res = await h.call('GET', '/jobs/{jobId}', { ...jobPath(jobId), query: { waitSeconds: '3' } });
    expect(res.body).toMatchObject({ status: 'queued' });
    expect(h.elapsed()).toBe(3000);
  });

  it('answers a terminal job and waitSeconds=0 at once', async () => {
    const done = seed({ status: 'failed', completedAt: FIXED_NOW.toISOString() });
    expect((await h.call('GET', '/jobs/{jobId}', { ...jobPath(done), query: { waitSeconds: '20' } })).body).toMatchObject({ status: 'failed' });
    const queued = seed({ status: 'queued' });
    expect((await h.call('GET', '/jobs/{jobId}', { ...jobPath(queued), query: { waitSeconds: '0' } })).body).toMatchObject({ status: 'queued' });
    expect(h.slept).toEqual([]);
  });

  it("stops waiting before the function's time runs out", async () => {
    const jobId = seed({ status: 'processing' });
    const res = await h.call('GET', '/jobs/{jobId}', { ...jobPath(jobId), query: { waitSeconds: '20' }, remainingMs: () => 5000 });
    expect(res.statusCode).toBe(200);
    // On the harness's clock: the 5 s left, less the 1.5 s margin the API keeps to answer in.
    expect(h.elapsed()).toBe(5000 - 1500);
  });

  it.each(['21', '-1', '1.5', 'abc', '', '05'])('refuses waitSeconds=%j with 400', async (waitSeconds) => {
    const jobId = seed({ status: 'queued' });
    const res = await h.call('GET', '/jobs/{jobId}', { ...jobPath(jobId), query: { waitSeconds } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toEqual({ code: 'invalid_request', message: expect.stringMatching(/waitSeconds/) });
  });
});
