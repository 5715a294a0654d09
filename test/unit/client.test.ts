import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OffloadClient, OffloadError, parseRetryAfter, signWebhook, verifyWebhook, WebhookVerificationError } from '../../client';

/**
 * The producer SDK against a fake offload API on loopback (real HTTP, real fetch): what it
 * sends (method, path, headers, body) and what it makes of each answer.
 */
interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
type Answer = { status: number; body?: unknown; headers?: Record<string, string>; raw?: string };

let server: http.Server;
let base: string;
const seen: Seen[] = [];
let answers: Array<Answer | ((s: Seen) => Answer)> = [];
const sleeps: number[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      const next = answers.shift() ?? { status: 500, body: { error: { code: 'no_answer_queued', message: s.url } } };
      const a = typeof next === 'function' ? next(s) : next;
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(a.raw ?? (a.body === undefined ? '' : JSON.stringify(a.body)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

beforeEach(() => {
  seen.length = 0;
  answers = [];
  sleeps.length = 0;
});

const client = (opts: Partial<ConstructorParameters<typeof OffloadClient>[0]> = {}) =>
  new OffloadClient({ baseUrl: base, apiKey: 'k-123', sleep: async (ms) => void sleeps.push(ms), random: () => 0.5, ...opts });

const job = (status: string, extra: Record<string, unknown> = {}) => ({
  jobId: '11111111-2222-4333-8444-555555555555',
  type: 'report',
  status,
  createdAt: '2026-12-01T00:00:00.000Z',
  updatedAt: '2026-12-01T00:00:01.000Z',
  attempts: 1,
  input: {},
  outputs: [],
  ...extra,
});

describe('OffloadClient', () => {
  it('submit: POST /jobs with the key, an Idempotency-Key, and the options beside type and input', async () => {
    answers.push({ status: 202, body: { jobId: 'j1', statusUrl: `${base}jobs/j1` } });
    const res = await client().submit('report', { from: '2026-01-01', to: '2026-01-02' }, { priority: 'high', delaySeconds: 30 });
    expect(res).toEqual({ jobId: 'j1', statusUrl: `${base}jobs/j1`, replayed: false });
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/jobs' });
    expect(seen[0].headers['x-api-key']).toBe('k-123');
    expect(seen[0].headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(seen[0].body)).toEqual({ type: 'report', input: { from: '2026-01-01', to: '2026-01-02' }, priority: 'high', delaySeconds: 30 });
  });

  it('submit: retries a 503 and a 429 with the same Idempotency-Key, honouring Retry-After, and reports a replay', async () => {
    answers.push({ status: 503, body: { error: { code: 'upload_failed', message: 'later' } } });
    answers.push({ status: 429, body: { error: { code: 'throttled', message: 'slow down' } }, headers: { 'retry-after': '7' } });
    answers.push({ status: 202, body: { jobId: 'j2', statusUrl: 'x' }, headers: { 'idempotent-replayed': 'true' } });
    const res = await client().submit('report', {}, { idempotencyKey: 'order-42' });
    expect(res.replayed).toBe(true);
    expect(seen.map((s) => s.headers['idempotency-key'])).toEqual(['order-42', 'order-42', 'order-42']);
    // Full jitter (random 0.5 of 250 ms) for the 503, then the 7 s the API asked for.
    expect(sleeps).toEqual([125, 7000]);
  });

  it('gives up after its retries with a typed error', async () => {
    for (let i = 0; i < 3; i++) answers.push({ status: 502, raw: '<html>bad gateway</html>' });
    const err = await client({ retries: 2 }).get('abc').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OffloadError);
    expect(err).toMatchObject({ status: 502, code: 'http_502' });
    expect(seen).toHaveLength(3);
  });

  it('does not retry a client error: 400/404/409/422 come back at once with code and message', async () => {
    answers.push({ status: 409, body: { error: { code: 'conflict', message: 'job is succeeded' } } });
    await expect(client().cancel('j1')).rejects.toMatchObject({ status: 409, code: 'conflict', message: 'job is succeeded', retryAfter: undefined });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'DELETE', url: '/v1/jobs/j1' });
  });

  it('get: GET /jobs/{id}, the id escaped', async () => {
    answers.push({ status: 200, body: job('queued') });
    expect((await client().get('a/b')).status).toBe('queued');
    expect(seen[0].url).toBe('/v1/jobs/a%2Fb');
  });

  it('wait: long-polls until the job is terminal', async () => {
    answers.push({ status: 200, body: job('processing') });
    answers.push({ status: 200, body: job('succeeded', { completedAt: '2026-12-01T00:00:09.000Z' }) });
    const done = await client().wait('j1', { timeoutMs: 60_000 });
    expect(done.status).toBe('succeeded');
    expect(seen.map((s) => new URL(s.url, base).searchParams.get('waitSeconds'))).toEqual(['20', '20']);
  });

  it('wait: rejects with wait_timeout when the job is still running at the deadline, and with the abort reason', async () => {
    answers.push((s) => ({ status: 200, body: job('processing', { seen: s.url }) }));
    await expect(client().wait('j1', { timeoutMs: 0 })).rejects.toMatchObject({ code: 'wait_timeout' });
    expect(new URL(seen[0].url, base).searchParams.get('waitSeconds')).toBe('0');
    const ac = new AbortController();
    ac.abort(new Error('page closed'));
    await expect(client().wait('j1', { signal: ac.signal })).rejects.toThrow('page closed');
  });

  it('list: an async iterator over pages, following nextCursor with the filters', async () => {
    answers.push({ status: 200, body: { jobs: [job('failed')], nextCursor: 'c1' } });
    answers.push({ status: 200, body: { jobs: [job('failed'), job('failed')], nextCursor: null } });
    const pages: number[] = [];
    for await (const page of client().list({ status: 'failed', limit: 2 })) pages.push(page.length);
    expect(pages).toEqual([1, 2]);
    expect(seen.map((s) => s.url)).toEqual(['/v1/jobs?status=failed&limit=2', '/v1/jobs?status=failed&limit=2&cursor=c1']);
  });

  it('upload: asks for a presigned URL, then PUTs the bytes there with its headers, reporting progress', async () => {
    const data = Buffer.alloc(200_000, 7);
    answers.push((s) => ({
      status: 201,
      body: { jobId: 'u1', statusUrl: 'x', uploadUrl: `${base.replace('/v1/', '')}/bucket/uploads/u1/cat.jpg?X-Amz-Signature=abc`, headers: { 'Content-Type': 'image/jpeg', 'If-None-Match': '*' }, seen: s.url },
    }));
    answers.push({ status: 200, raw: '' });
    const progress: number[] = [];
    const res = await client().upload(data, { filename: 'cat.jpg', onProgress: (sent) => progress.push(sent) });
    expect(res.jobId).toBe('u1');
    expect(JSON.parse(seen[0].body)).toEqual({ filename: 'cat.jpg', contentType: 'image/jpeg', size: 200_000 });
    expect(seen[1]).toMatchObject({ method: 'PUT', url: '/bucket/uploads/u1/cat.jpg?X-Amz-Signature=abc' });
    expect(seen[1].headers).toMatchObject({ 'content-type': 'image/jpeg', 'if-none-match': '*', 'content-length': '200000' });
    expect(seen[1].headers['x-api-key']).toBeUndefined(); // the key never goes to storage
    expect(seen[1].body.length).toBe(200_000);
    expect(progress.at(-1)).toBe(200_000);
    expect(progress.length).toBeGreaterThan(1);
  });

  it('upload: a refused PUT (an object already there) is a typed error', async () => {
    answers.push({ status: 201, body: { jobId: 'u2', statusUrl: 'x', uploadUrl: `${base}put-here`, headers: {} } });
    answers.push({ status: 412, raw: '<Error><Code>PreconditionFailed</Code></Error>' });
    await expect(client().upload(Buffer.from('x'), { filename: 'a.png' })).rejects.toMatchObject({ status: 412, code: 'upload_exists' });
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('12')).toBe(12);
    expect(parseRetryAfter('Tue, 01 Dec 2026 00:00:30 GMT', Date.parse('2026-12-01T00:00:00Z'))).toBe(30);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('verifyWebhook', () => {
  const secret = 'whsec_test';
  const body = JSON.stringify({ jobId: 'j1', status: 'succeeded' });
  const now = Date.parse('2026-12-01T12:00:00Z');
  const t = now / 1000;

  it('accepts a body signed with the secret within the tolerance, and returns it parsed', () => {
    expect(verifyWebhook(body, signWebhook(body, secret, t - 10), secret, { now })).toEqual({ jobId: 'j1', status: 'succeeded' });
    expect(verifyWebhook(Buffer.from(body), signWebhook(body, secret, t), secret, { now })).toMatchObject({ jobId: 'j1' });
  });

  it('refuses a changed body, another secret, an old timestamp, and a malformed header', () => {
    const header = signWebhook(body, secret, t);
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof WebhookVerificationError ? e.reason : String(e);
      }
      return 'accepted';
    };
    expect(reason(() => verifyWebhook(body.replace('succeeded', 'failed'), header, secret, { now }))).toBe('signature_mismatch');
    expect(reason(() => verifyWebhook(body, header, 'other', { now }))).toBe('signature_mismatch');
    expect(reason(() => verifyWebhook(body, signWebhook(body, secret, t - 301), secret, { now }))).toBe('timestamp_outside_tolerance');
    expect(reason(() => verifyWebhook(body, signWebhook(body, secret, t - 301), secret, { now, toleranceSeconds: 600 }))).toBe('accepted');
    for (const bad of [undefined, '', 't=abc,v1=00', `v1=${'0'.repeat(64)}`, `t=${t}`, `t=${t},v1=zz`]) {
      expect(reason(() => verifyWebhook(body, bad, secret, { now })), String(bad)).toBe('malformed_header');
    }
  });

  it('accepts any of several v1 signatures (a secret being rotated)', () => {
    const old = signWebhook(body, 'old-secret', t).split(',')[1];
    const header = `${signWebhook(body, secret, t)},${old}`;
    expect(verifyWebhook(body, header, 'old-secret', { now })).toMatchObject({ jobId: 'j1' });
    expect(verifyWebhook(body, header, secret, { now })).toMatchObject({ jobId: 'j1' });
  });
});
