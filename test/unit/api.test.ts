import { beforeEach, describe, expect, it } from 'vitest';
import { sanitizeFilename, decodeS3Key } from '../../lambda/shared/filename';
import { definition as reportDefinition } from '../../job-types/report/definition';
import { apiHarness, errorOf, type ApiHarness } from './fixtures/api-harness';

/** The API core over the real job type definitions, against in-memory fakes: validation, routing, key scheme, job views. */
let h: ApiHarness;
beforeEach(() => {
  h = apiHarness();
});


describe('POST /uploads (presigned)', () => {
  it('records an awaiting_upload job and returns a PUT bound to its key, type and size', async () => {
    const res = await h.call('POST', '/uploads', { json: { filename: 'holiday photo.JPG', contentType: 'image/jpeg', size: 1234 } });
    expect(res.statusCode).toBe(201);
    const body = res.body as Record<string, any>;
    expect(body.method).toBe('PUT');
    // If-None-Match: * is signed into the URL: the upload cannot overwrite an object that exists.
    expect(body.headers).toEqual({ 'Content-Type': 'image/jpeg', 'Content-Length': '1234', 'If-None-Match': '*' });
    expect(body.statusUrl).toBe(`https://api.example/v1/jobs/${body.jobId}`);
    expect(body.expiresAt).toBe('2026-11-23T10:15:00.000Z');
    expect(h.presigned).toEqual([{ key: `uploads/${body.jobId}/holiday photo.JPG`, contentType: 'image/jpeg', size: 1234 }]);
    expect(h.jobs.get(body.jobId)).toMatchObject({
      type: 'thumbnail',
      status: 'awaiting_upload',
      input: { filename: 'holiday photo.JPG', contentType: 'image/jpeg', bytes: 1234, key: `uploads/${body.jobId}/holiday photo.JPG` },
    });
    // The sweeper may fail it once the upload URL has expired (and a minute for an upload in progress).
    expect(h.created).toEqual([expect.objectContaining({ jobId: body.jobId, sweepAfterMs: (900 + 60) * 1000 })]);
    // The upload's S3 event is the message: nothing is enqueued.
    expect(h.sent).toEqual([]);
  });

  it.each([
    [{ filename: 'a.jpg', contentType: 'image/jpeg' }, 400, 'invalid_request', /size/],
    [{ filename: 'a.jpg', contentType: 'image/jpeg', size: -1 }, 400, 'invalid_request', /size/],
    [{ filename: 'a.jpg', contentType: 'image/jpeg', size: 1.5 }, 400, 'invalid_request', /whole number/],
    [{ filename: '', contentType: 'image/jpeg', size: 10 }, 400, 'invalid_request', /filename/],
    [{ filename: 'a.jpg', contentType: 'image/jpeg', size: 10, admin: true }, 400, 'invalid_request', /unknown field.*admin/],
    [{ filename: 42, contentType: 'image/jpeg', size: 10 }, 400, 'invalid_request', /filename/],
    [{ filename: 'a.pdf', contentType: 'application/pdf', size: 10 }, 415, 'unsupported_media_type', /application\/pdf/],
    [{ filename: 'a.svg', contentType: 'image/svg+xml', size: 10 }, 415, 'unsupported_media_type', /svg/],
    [{ filename: 'a.jpg', contentType: 'image/jpeg', size: 26 * 1024 * 1024 }, 413, 'payload_too_large', /limit/],
  ])('refuses %j with %i %s', async (json, status, code, message) => {
    const res = await h.call('POST', '/uploads', { json });
    expect(res.statusCode).toBe(status);
    expect(errorOf(res).code).toBe(code);
    expect(errorOf(res).message).toMatch(message);
    expect(h.jobs.size).toBe(0);
  });

  it('refuses malformed JSON, an empty body and unknown content types with a 4xx JSON error', async () => {
    expect((await h.call('POST', '/uploads', { json: '{"filename": ' })).statusCode).toBe(400);
    expect(errorOf(await h.call('POST', '/uploads', { headers: { 'content-type': 'application/json' } })).message).toMatch(/empty/);
    const res = await h.call('POST', '/uploads', { headers: { 'content-type': 'text/plain' }, body: Buffer.from('hi') });
    expect(res.statusCode).toBe(415);
  });

  it('keeps every key under uploads/{jobId}/ whatever the filename', async () => {
    for (const filename of ['../../etc/passwd', '..\\..\\boot.ini', '/abs/path.jpg', 'a\u0000b\u202e.jpg', '.hidden', '...', '📷 café.jpg']) {
      const res = await h.call('POST', '/uploads', { json: { filename, contentType: 'image/png', size: 10 } });
      expect(res.statusCode).toBe(201);
      const { jobId } = res.body as { jobId: string };
      const key = h.presigned.at(-1)!.key;
      expect(key.startsWith(`uploads/${jobId}/`)).toBe(true);
      const name = key.slice(`uploads/${jobId}/`.length);
      expect(name).not.toMatch(/[/\\\u0000-\u001f\u202e]/);
      expect(name.startsWith('.')).toBe(false);
      expect(name.length).toBeGreaterThan(0);
    }
    expect(h.presigned.at(-1)!.key).toMatch(/📷 café\.jpg$/);
  });
});

describe('POST /uploads (direct)', () => {
  it('stores the image under the job key and answers 202', async () => {
    const body = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    const res = await h.call('POST', '/uploads', { headers: { 'content-type': 'image/jpeg' }, body, query: { filename: 'cat.jpg' } });
    expect(res.statusCode).toBe(202);
    const { jobId, statusUrl } = res.body as { jobId: string; statusUrl: string };
    expect(statusUrl).toBe(`https://api.example/v1/jobs/${jobId}`);
    expect(h.puts).toEqual([{ key: `uploads/${jobId}/cat.jpg`, body, contentType: 'image/jpeg' }]);
    expect(h.jobs.get(jobId)).toMatchObject({
      type: 'thumbnail',
      status: 'queued',
      input: { filename: 'cat.jpg', contentType: 'image/jpeg', bytes: body.length, key: `uploads/${jobId}/cat.jpg` },
    });
    // Queued: the sweeper's deadline is the queue's retention (the type's maxQueuedSeconds).
    expect(h.created).toEqual([expect.objectContaining({ jobId, status: 'queued', sweepAfterMs: 4 * 86400 * 1000 })]);
    expect(h.sent).toEqual([]);
  });

  it('fails the job (never leaves it queued) when the upload cannot be stored', async () => {
    h.setFailPut(true);
    const res = await h.call('POST', '/uploads', { headers: { 'content-type': 'image/png' }, body: Buffer.from([1, 2, 3]) });
    const [job] = [...h.jobs.values()];
    expect(job).toMatchObject({ type: 'thumbnail', status: 'failed', error: { code: 'upload_failed' } });
    // Our failure, not the client's: 503 in the error format, naming the failed job.
    expect(res.statusCode).toBe(503);
    expect(errorOf(res)).toEqual({ code: 'upload_failed', message: `the upload could not be stored; please retry (job ${job.jobId} is failed)` });
  });

  it('sends bodies over the direct limit to the presigned flow with 413', async () => {
    const res = await h.call('POST', '/uploads', { headers: { 'content-type': 'image/png' }, body: Buffer.alloc(4 * 1024 * 1024 + 1) });
    expect(res.statusCode).toBe(413);
    expect(errorOf(res).message).toMatch(/uploadUrl/);
    expect(h.puts).toEqual([]);
  });

  it('refuses an empty body and non-image types', async () => {
    expect((await h.call('POST', '/uploads', { headers: { 'content-type': 'image/png' }, body: Buffer.alloc(0) })).statusCode).toBe(400);
    expect((await h.call('POST', '/uploads', { headers: { 'content-type': 'image/x-icon' }, body: Buffer.alloc(3) })).statusCode).toBe(415);
  });
});

describe('POST /reports', () => {
  it('records the job and queues a small message', async () => {
    const res = await h.call('POST', '/reports', { json: { from: '2026-01-01', to: '2026-01-31' } });
    expect(res.statusCode).toBe(202);
    const { jobId } = res.body as { jobId: string };
    // One small message on the report type's queue: the job id and its type, nothing else.
    expect(h.sent).toEqual([{ type: 'report', message: { jobId, type: 'report' } }]);
    expect(h.jobs.get(jobId)).toMatchObject({ type: 'report', status: 'queued', input: { from: '2026-01-01', to: '2026-01-31' } });
    expect(h.created).toEqual([expect.objectContaining({ jobId, status: 'queued', sweepAfterMs: 4 * 86400 * 1000 })]);
    // The view keeps the first API's params (formats resolved) beside the input as submitted.
    const view = (await h.call('GET', '/jobs/{jobId}', { pathParameters: { jobId } })).body as Record<string, unknown>;
    expect(view).toMatchObject({
      jobId,
      type: 'report',
      status: 'queued',
      input: { from: '2026-01-01', to: '2026-01-31' },
      params: { from: '2026-01-01', to: '2026-01-31', formats: ['csv', 'pdf'] },
      outputs: [],
    });
    expect(view.input).not.toHaveProperty('formats');
  });

  it('keeps formats as given, in the input and in params', async () => {
    const res = await h.call('POST', '/reports', { json: { from: '2026-01-01', to: '2026-01-02', formats: ['pdf'] } });
    const { jobId } = res.body as { jobId: string };
    const view = (await h.call('GET', '/jobs/{jobId}', { pathParameters: { jobId } })).body;
    expect(view).toMatchObject({ input: { formats: ['pdf'] }, params: { formats: ['pdf'] } });
  });

  it.each([
    [{ from: '2026-02-01', to: '2026-01-01' }, /after/],
    [{ from: '2026-02-30', to: '2026-03-01' }, /calendar/],
    [{ from: 'yesterday', to: '2026-03-01' }, /YYYY-MM-DD/],
    [{ from: '2024-01-01', to: '2025-01-01' }, /367 days/],
    [{ from: '2026-01-01', to: '2026-01-02', formats: ['xlsx'] }, /formats/],
    [{ from: '2026-01-01', to: '2026-01-02', formats: [] }, /formats/],
    [{ from: '2026-01-01', to: '2026-01-02', formats: ['csv', 'csv'] }, /repeat/],
    [{ from: '2026-01-01', to: '2026-01-02', sql: 'drop' }, /unknown field.*sql/],
    [{ to: '2026-01-02' }, /from/],
  ])('refuses %j with 400 and says why', async (json, message) => {
    const res = await h.call('POST', '/reports', { json });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('invalid_request');
    expect(errorOf(res).message).toMatch(message);
    expect(h.sent).toEqual([]);
    expect(h.jobs.size).toBe(0);
  });

  it('accepts a full leap year (366 days) and a one-day range', async () => {
    expect((await h.call('POST', '/reports', { json: { from: '2024-01-01', to: '2024-12-31' } })).statusCode).toBe(202);
    expect((await h.call('POST', '/reports', { json: { from: '2026-05-05', to: '2026-05-05', formats: ['pdf'] } })).statusCode).toBe(202);
  });

  it('fails the job (never leaves it queued) when the queue cannot take the message', async () => {
    h.setFailSend(true);
    await expect(h.call('POST', '/reports', { json: { from: '2026-01-01', to: '2026-01-02' } })).rejects.toThrow('queue down');
    const [job] = [...h.jobs.values()];
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('internal_error');
    expect(h.sent).toEqual([]);
  });
});

describe('GET /jobs', () => {
  it('shows a job with presigned output URLs and no storage keys', async () => {
    const id = '11111111-1111-4111-8111-111111111111';
    h.jobs.set(id, {
      jobId: id,
      type: 'thumbnail',
      status: 'succeeded',
      createdAt: 'a',
      updatedAt: 'b',
      attempts: 1,
      input: { filename: 'x.jpg', contentType: 'image/jpeg', bytes: 5, width: 4, height: 3, key: `uploads/${id}/x.jpg` },
      outputs: [{ name: 'small', format: 'jpeg', contentType: 'image/jpeg', width: 4, height: 3, bytes: 2, key: `thumbnails/${id}/small.jpg` }],
    });
    const res = await h.call('GET', '/jobs/{jobId}', { pathParameters: { jobId: id } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatchObject({
      jobId: id,
      status: 'succeeded',
      type: 'thumbnail',
      input: { filename: 'x.jpg', contentType: 'image/jpeg', bytes: 5, width: 4, height: 3 },
      outputs: [{ name: 'small', url: `https://results.example/thumbnails/${id}/small.jpg?sig=get` }],
    });
    expect((res.body as { input: Record<string, unknown> }).input).not.toHaveProperty('key');
    expect(res.body).not.toHaveProperty('params');
    expect(JSON.stringify(res.body)).not.toContain('"key"');
  });

  it("gives a report's outputs a download name from its range", async () => {
    const id = '33333333-3333-4333-8333-333333333333';
    h.jobs.set(id, {
      jobId: id,
      type: 'report',
      status: 'succeeded',
      createdAt: 'a',
      updatedAt: 'b',
      attempts: 1,
      input: { from: '2026-01-01', to: '2026-01-31' },
      outputs: [{ name: 'report', format: 'csv', contentType: 'text/csv', bytes: 2, key: `${reportDefinition.resultsPrefix}${id}/report.csv` }],
    });
    const res = await h.call('GET', '/jobs/{jobId}', { pathParameters: { jobId: id } });
    expect(res.body).toMatchObject({
      params: { from: '2026-01-01', to: '2026-01-31', formats: ['csv', 'pdf'] },
      outputs: [{ name: 'report', url: `https://results.example/reports/${id}/report.csv?sig=get&name=offload-report-2026-01-01-to-2026-01-31.csv` }],
    });
  });

  it('lists every registered type, or the one asked for, with the status filter passed on', async () => {
    await h.call('POST', '/reports', { json: { from: '2026-01-01', to: '2026-01-02' } });
    await h.call('POST', '/uploads', { json: { filename: 'a.jpg', contentType: 'image/jpeg', size: 1 } });
    const all = await h.call('GET', '/jobs');
    expect(all.statusCode).toBe(200);
    expect((all.body as { jobs: { type: string }[] }).jobs.map((j) => j.type).sort()).toEqual(['report', 'thumbnail']);
    expect(h.lists.at(-1)).toEqual({ types: ['thumbnail', 'report'], limit: 20 });
    const reports = await h.call('GET', '/jobs', { query: { type: 'report', status: 'queued', limit: '5' } });
    expect((reports.body as { jobs: { type: string }[]; nextCursor: null }).jobs.map((j) => j.type)).toEqual(['report']);
    expect(h.lists.at(-1)).toEqual({ types: ['report'], status: 'queued', limit: 5 });
  });

  it('answers 404 JSON for unknown and malformed ids, 400 for bad list queries', async () => {
    expect(errorOf(await h.call('GET', '/jobs/{jobId}', { pathParameters: { jobId: '22222222-2222-4222-8222-222222222222' } })).code).toBe('not_found');
    expect((await h.call('GET', '/jobs/{jobId}', { pathParameters: { jobId: '../../x' } })).statusCode).toBe(404);
    expect((await h.call('GET', '/jobs', { query: { limit: '0' } })).statusCode).toBe(400);
    expect((await h.call('GET', '/jobs', { query: { type: 'video' } })).statusCode).toBe(400);
    expect((await h.call('GET', '/jobs', { query: { bogus: '1' } })).statusCode).toBe(400);
    expect((await h.call('GET', '/jobs', { query: { type: 'thumbnail', limit: '5' } })).statusCode).toBe(200);
    expect((await h.call('DELETE', '/jobs')).statusCode).toBe(404);
  });
});

describe('CORS preflight', () => {
  it('names the methods of the resource', async () => {
    const res = await h.call('OPTIONS', '/jobs/{jobId}');
    expect(res.statusCode).toBe(204);
    expect(res.headers?.['Access-Control-Allow-Methods']).toBe('GET,DELETE,OPTIONS');
    expect(res.headers?.['Access-Control-Allow-Headers']).toMatch(/X-Api-Key/);
    expect((await h.call('OPTIONS', '/uploads')).headers?.['Access-Control-Allow-Methods']).toBe('POST,OPTIONS');
    expect((await h.call('OPTIONS', '/reports')).headers?.['Access-Control-Allow-Methods']).toBe('POST,OPTIONS');
    expect((await h.call('OPTIONS', '/jobs')).headers?.['Access-Control-Allow-Methods']).toBe('POST,GET,OPTIONS');
    expect((await h.call('OPTIONS', '/nowhere')).statusCode).toBe(404);
  });
});

describe('filenames and S3 keys', () => {
  it('sanitizes names but keeps unicode', () => {
    expect(sanitizeFilename('../../etc/passwd')).toBe('passwd');
    expect(sanitizeFilename('C:\\Users\\me\\Pictures\\cat.png')).toBe('cat.png');
    expect(sanitizeFilename('evil\u202egnp.exe')).toBe('evilgnp.exe');
    expect(sanitizeFilename('tab\there\nnewline.jpg')).toBe('tabherenewline.jpg');
    expect(sanitizeFilename('   ')).toBe('upload');
    expect(sanitizeFilename('..')).toBe('upload');
    expect(sanitizeFilename('日本語の写真 🎌.jpeg')).toBe('日本語の写真 🎌.jpeg');
    const long = sanitizeFilename(`${'é'.repeat(300)}.jpeg`);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(200);
    expect(long.endsWith('é.jpeg')).toBe(true);
  });

  it('decodes S3 event keys, + included', () => {
    expect(decodeS3Key('uploads/abc/my+holiday%F0%9F%93%B7+%2B1.jpg')).toBe('uploads/abc/my holiday📷 +1.jpg');
  });
});
