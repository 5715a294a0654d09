import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, errorFromResponse, type Job } from '../../cli/api-client';
import { JobWatcher } from '../../cli/poll';

type Answer = { status: number; body: string } | Error;

/** A fetch that answers from a script and records the requests. */
function fakeFetch(answers: Answer[]) {
  const calls: Array<{ url: string; method: string; headers: Record<string, string>; body?: string }> = [];
  const impl = (async (url: URL | string, init: RequestInit = {}) => {
    calls.push({ url: String(url), method: init.method ?? 'GET', headers: init.headers as Record<string, string>, body: init.body as string | undefined });
    const a = answers.shift();
    if (!a) throw new Error('no more answers');
    if (a instanceof Error) throw a;
    return new Response(a.body, { status: a.status });
  }) as typeof fetch;
  return { impl, calls };
}

const noSleep = async () => undefined;
const json = (status: number, body: unknown) => ({ status, body: JSON.stringify(body) });

describe('ApiClient', () => {
  it('sends the key and JSON to paths under the base URL', async () => {
    const f = fakeFetch([json(202, { jobId: 'j', statusUrl: 's' })]);
    const c = new ApiClient('https://x.example/prod/', 'k', { fetch: f.impl });
    expect(await c.createReport({ from: '2025-01-01', to: '2025-01-02' })).toEqual({ jobId: 'j', statusUrl: 's' });
    // Through the SDK: POST /jobs with the report type (the same as POST /reports), with an Idempotency-Key.
    expect(f.calls[0]).toMatchObject({
      url: 'https://x.example/prod/jobs',
      method: 'POST',
      headers: { 'x-api-key': 'k', 'content-type': 'application/json', 'idempotency-key': expect.stringMatching(/^[0-9a-f-]{36}$/) },
      body: '{"type":"report","input":{"from":"2025-01-01","to":"2025-01-02"}}',
    });
  });

  it('builds list queries without empty parameters', async () => {
    const f = fakeFetch([json(200, { jobs: [], nextCursor: null })]);
    await new ApiClient('https://x/prod/', 'k', { fetch: f.impl }).listJobs({ type: 'report', status: undefined, limit: 5, cursor: 'a b' });
    expect(f.calls[0].url).toBe('https://x/prod/jobs?type=report&limit=5&cursor=a+b');
  });

  it("turns the API's error body into a typed error", async () => {
    const f = fakeFetch([json(415, { error: { code: 'unsupported_media_type', message: 'content type "application/octet-stream" is not accepted' } })]);
    const err = await new ApiClient('https://x/', 'k', { fetch: f.impl }).createUpload({ filename: 'a.txt', contentType: 'application/octet-stream', size: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 415, code: 'unsupported_media_type', transient: false });
    expect(String(err)).toBe('unsupported_media_type: content type "application/octet-stream" is not accepted');
  });

  it("maps API Gateway's own answers and non-JSON bodies", () => {
    expect(errorFromResponse(403, '{"message":"Forbidden"}')).toMatchObject({ code: 'forbidden', message: 'Forbidden' });
    expect(errorFromResponse(429, '{"message":"Too Many Requests"}')).toMatchObject({ code: 'http_429', transient: true });
    expect(errorFromResponse(502, '<html>\n bad gateway </html>')).toMatchObject({ code: 'http_502', message: '<html> bad gateway </html>' });
    expect(errorFromResponse(500, '')).toMatchObject({ message: 'HTTP 500' });
  });

  it('retries transient failures of GETs, and of POSTs under the same Idempotency-Key (so a retry never makes a second job)', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const f = fakeFetch([refused, json(503, { message: 'Service Unavailable' }), json(200, { jobId: 'j' })]);
    const c = new ApiClient('https://x/', 'k', { fetch: f.impl, sleep: noSleep });
    expect(await c.getJob('j')).toEqual({ jobId: 'j' });
    expect(f.calls).toHaveLength(3);

    const p = fakeFetch([json(429, { message: 'Too Many Requests' }), json(502, { message: 'Bad Gateway' }), json(202, { jobId: 'r', statusUrl: 's' })]);
    expect(await new ApiClient('https://x/', 'k', { fetch: p.impl, sleep: noSleep }).createReport({ from: 'a', to: 'b' })).toEqual({ jobId: 'r', statusUrl: 's' });
    expect(p.calls).toHaveLength(3);
    expect(new Set(p.calls.map((call) => call.headers['idempotency-key'])).size).toBe(1);

    const q = fakeFetch([json(400, { error: { code: 'invalid_request', message: 'from: bad' } })]);
    await expect(new ApiClient('https://x/', 'k', { fetch: q.impl, sleep: noSleep }).createReport({ from: 'a', to: 'b' })).rejects.toMatchObject({ status: 400 });
    expect(q.calls).toHaveLength(1); // a client error is not retried
  });

  it('asks for a long-poll with waitSeconds, within 0..20', async () => {
    const f = fakeFetch([json(200, { jobId: 'j' }), json(200, { jobId: 'j' }), json(200, { jobId: 'j' })]);
    const c = new ApiClient('https://x/prod/', 'k', { fetch: f.impl });
    await c.getJob('j', { waitSeconds: 20 });
    await c.getJob('j', { waitSeconds: 90 });
    await c.getJob('j');
    expect(f.calls.map((call) => call.url)).toEqual(['https://x/prod/jobs/j?waitSeconds=20', 'https://x/prod/jobs/j?waitSeconds=20', 'https://x/prod/jobs/j']);
  });

  it('gives up with a network_error naming the host', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const f = fakeFetch([refused, refused]);
    const err = await new ApiClient('http://127.0.0.1:9/', 'k', { fetch: f.impl, sleep: noSleep, retries: 1 }).getJob('j').catch((e) => e);
    expect(err).toMatchObject({ status: 0, code: 'network_error', message: 'cannot reach http://127.0.0.1:9: ECONNREFUSED' });
  });
});

describe('JobWatcher', () => {
  const job = (jobId: string, status: Job['status'], extra: Partial<Job> = {}): Job => ({
    jobId,
    type: 'thumbnail',
    status,
    createdAt: 't',
    updatedAt: `${status}`,
    attempts: 1,
    priority: 'normal',
    input: {},
    outputs: [],
    ...extra,
  });

  it('polls every job until terminal, reports changes once, backs off while nothing changes', async () => {
    const script: Record<string, Job[]> = {
      a: [...Array.from({ length: 5 }, () => job('a', 'queued')), job('a', 'processing'), job('a', 'succeeded')],
      b: [job('b', 'processing'), job('b', 'failed', { error: { code: 'corrupt_image', message: 'bad' } })],
    };
    const sleeps: number[] = [];
    const seen: string[] = [];
    const client = { getJob: async (id: string) => (script[id].length > 1 ? script[id].shift()! : script[id][0]) };
    const w = new JobWatcher(client, (j) => seen.push(`${j.jobId}:${j.status}`), { sleep: async (ms) => void sleeps.push(ms) });
    const [a, b] = await Promise.all([w.watch('a'), w.watch('b')]);
    expect(a.status).toBe('succeeded');
    expect(b.error?.code).toBe('corrupt_image');
    expect(seen).toEqual(['a:queued', 'b:processing', 'b:failed', 'a:processing', 'a:succeeded']);
    // b joins in round 2; rounds 1-3 see changes (500 ms), 4-5 none (x1.5 each), 6 a change again
    expect(sleeps).toEqual([500, 500, 500, 750, 1125, 500]);
  });

  it('survives transient errors, fails on others', async () => {
    let n = 0;
    const flaky = {
      getJob: async (id: string) => {
        n++;
        if (id === 'gone') throw new ApiError(404, 'not_found', 'no job');
        if (n < 3) throw new ApiError(429, 'http_429', 'Too Many Requests');
        return job(id, 'succeeded');
      },
    };
    const w = new JobWatcher(flaky, undefined, { sleep: noSleep });
    expect((await w.watch('ok')).status).toBe('succeeded');
    await expect(new JobWatcher(flaky, undefined, { sleep: noSleep }).watch('gone')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('long-polls while it watches no more jobs than its concurrency, and polls in turn beyond', async () => {
    const asked: Array<[string, number | undefined]> = [];
    const answers: Record<string, Job['status'][]> = {};
    const client = {
      getJob: async (id: string, opts?: { waitSeconds?: number }) => {
        asked.push([id, opts?.waitSeconds]);
        const next = answers[id].length > 1 ? answers[id].shift()! : answers[id][0];
        return job(id, next);
      },
    };
    answers.a = ['processing', 'succeeded'];
    const few = new JobWatcher(client, undefined, { sleep: noSleep, concurrency: 2 });
    expect((await few.watch('a')).status).toBe('succeeded');
    expect(asked).toEqual([
      ['a', 20],
      ['a', 20],
    ]);

    asked.length = 0;
    for (const id of ['p', 'q', 'r']) answers[id] = ['queued', 'succeeded'];
    const many = new JobWatcher(client, undefined, { sleep: noSleep, concurrency: 2 });
    await Promise.all(['p', 'q', 'r'].map((id) => many.watch(id)));
    // Round 1 started with p alone (a long-poll); round 2 reads all three, two at a time, without waiting on the API.
    expect(asked[0]).toEqual(['p', 20]);
    expect(asked.slice(1, 4)).toEqual([
      ['p', undefined],
      ['q', undefined],
      ['r', undefined],
    ]);

    // Never asks the API to hold a request past the watch's own timeout; waitSeconds: 0 polls.
    asked.length = 0;
    answers.t = ['succeeded'];
    await new JobWatcher(client, undefined, { sleep: noSleep, timeoutMs: 7_500 }).watch('t');
    expect(asked[0][1]).toBeLessThanOrEqual(7);
    asked.length = 0;
    answers.u = ['succeeded'];
    await new JobWatcher(client, undefined, { sleep: noSleep, waitSeconds: 0 }).watch('u');
    expect(asked).toEqual([['u', undefined]]);
  });

  it('gives up after the timeout', async () => {
    const stuck = { getJob: async (id: string) => job(id, 'processing') };
    const w = new JobWatcher(stuck, undefined, { sleep: () => new Promise((r) => setTimeout(r, 5)), timeoutMs: 20 });
    await expect(w.watch('x')).rejects.toThrow(/still processing after 0 s/);
  });
});
