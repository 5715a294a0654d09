import * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { PRIORITIES, UPLOAD_PREFIXES, uploadPrefixFor } from '../../lambda/shared/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedInstance, useSharedInstance } from './client';

/**
 * The HTTP API abused, through local mode: malformed and hostile requests of every kind,
 * then a seeded random section. Every invalid request must get a 4xx (never a 5xx, never a
 * 2xx) with the API's error body `{ error: { code, message } }`. Requests that are hostile
 * but valid (odd filenames) may succeed; then the object they lead to must stay under
 * `uploads/{jobId}/` (or `priority-uploads/{jobId}/`, the high lane's prefix). At the end,
 * nothing in the raw bucket lies outside that scheme.
 *
 * Bounded: about 900 requests, the tests ~10-15 s (plus ~20 s of local-mode start).
 * OFFLOAD_FUZZ_SEED=<n> replays another random section.
 */
const ctx = sharedInstance();
useSharedInstance('shared');
let s3: S3Client;
let api: URL;
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const SEED = Number(process.env.OFFLOAD_FUZZ_SEED ?? 0x0ff10ad);
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// What must never reach an S3 key: C0/C1 controls, DEL, bidi embeddings/overrides/isolates, BOM.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufeff]/u;
const MAX_NAME_BYTES = 200;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

let jpeg: Buffer;
/** Jobs this file created on purpose (hostile-but-valid names), checked at the end. */
const created: Array<{ label: string; jobId: string; status: number; body: any }> = [];
/** Of those, the ones whose bytes were uploaded (they run through the worker). */
const uploaded: typeof created = [];

beforeAll(async () => {
  s3 = new S3Client(ctx.awsConfig);
  api = new URL(ctx.apiUrl);
  jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#4080c0' } }).jpeg().toBuffer();
});
afterAll(() => agent.destroy());

interface Res {
  status: number;
  text: string;
  json: any;
  contentType: string;
}

/**
 * One request, sent byte for byte as given (node:http, not fetch: the path is not
 * normalized, the body and headers are exactly these).
 */
function send(method: string, path: string, opts: { headers?: Record<string, string | string[]>; body?: Buffer | string; key?: string | null } = {}): Promise<Res> {
  const headers: Record<string, string | string[]> = { ...(opts.headers ?? {}) };
  if (opts.key !== null) headers['x-api-key'] ??= opts.key ?? ctx.apiKey;
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : opts.body;
  if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: api.hostname, port: api.port, method, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json, contentType: String(res.headers['content-type'] ?? '') });
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path.slice(0, 80)}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

interface Case {
  label: string;
  method: string;
  path: string;
  headers?: Record<string, string | string[]>;
  body?: Buffer | string;
  key?: string | null;
  /** The 4xx status(es) expected; any 4xx when absent. */
  status?: number | number[];
  code?: string;
  /** A hostile but valid request: 201 (presigned) or 202 (direct upload) is allowed too. */
  mayCreate?: boolean;
}

const short = (s: string, n = 120) => (s.length > n ? `${s.slice(0, n)}... (${s.length} chars)` : s);
const show = (s: string) => JSON.stringify(short(s));

/** The API's error contract: 4xx, JSON `{ error: { code, message } }`, non-empty strings. */
function errorProblems(label: string, res: Res, c: Pick<Case, 'status' | 'code'>): string[] {
  const p: string[] = [];
  const where = `${label} -> ${res.status} ${show(res.text)}`;
  if (res.status >= 500) p.push(`5xx: ${where}`);
  else if (res.status < 400) p.push(`not refused: ${where}`);
  else if (c.status !== undefined && ![c.status].flat().includes(res.status)) p.push(`status ${res.status}, expected ${c.status}: ${where}`);
  if (res.status >= 400) {
    const e = res.json?.error;
    if (!res.contentType.startsWith('application/json')) p.push(`content-type ${JSON.stringify(res.contentType)}: ${where}`);
    if (!e || typeof e.code !== 'string' || !/^[a-z_]+$/.test(e.code) || typeof e.message !== 'string' || e.message.trim() === '') {
      p.push(`error body is not { error: { code, message } }: ${where}`);
    } else if (c.code !== undefined && e.code !== c.code) {
      p.push(`code ${e.code}, expected ${c.code}: ${where}`);
    }
    if (res.json && Object.keys(res.json).join() !== 'error') p.push(`error body has other members: ${where}`);
  }
  return p;
}

/** The presigned URL's path: `/{bucket}/uploads/{jobId}/{name}`, name URL-encoded, no `/` once decoded, nothing unsafe. */
function uploadUrlProblems(label: string, body: any): string[] {
  const p: string[] = [];
  const where = `${label}: ${show(JSON.stringify(body))}`;
  if (typeof body?.jobId !== 'string' || !JOB_ID.test(body.jobId)) return [`201 without a job id: ${where}`];
  if (typeof body.uploadUrl !== 'string') return [`201 without an uploadUrl: ${where}`];
  // Read the path from the raw string: a URL parser would resolve dot segments and hide them.
  const m = /^https?:\/\/[^/?#]+(\/[^?#]*)(\?[^#]*)?$/.exec(body.uploadUrl);
  if (!m) return [`uploadUrl is not an http(s) URL: ${where}`];
  const segments = m[1].split('/');
  const [empty, bucket, prefix, jobId, ...rest] = segments;
  if (empty !== '' || bucket !== ctx.outputs.RawBucketName || prefix !== 'uploads' || jobId !== body.jobId || rest.length !== 1) {
    return [`uploadUrl path is not /${ctx.outputs.RawBucketName}/uploads/${body.jobId}/{name}: ${m[1]} (${label})`];
  }
  const encoded = rest[0];
  if (!/^[A-Za-z0-9\-._~%!$&'()*+,;=:@]+$/.test(encoded)) p.push(`name segment is not URL-encoded: ${show(encoded)} (${label})`);
  let name: string;
  try {
    name = decodeURIComponent(encoded);
  } catch {
    return [...p, `name segment does not decode: ${show(encoded)} (${label})`];
  }
  p.push(...nameProblems(label, name));
  return p;
}

function nameProblems(label: string, name: string): string[] {
  const p: string[] = [];
  if (name.length === 0) p.push(`empty name (${label})`);
  if (/[\\/]/.test(name)) p.push(`name ${show(name)} holds a path separator (${label})`);
  if (name === '.' || name === '..' || name.startsWith('.')) p.push(`name ${show(name)} is a dot name (${label})`);
  if (UNSAFE.test(name)) p.push(`name ${show(name)} holds a control or bidi character (${label})`);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) p.push(`name is ${Buffer.byteLength(name)} bytes (${label})`);
  if (LONE_SURROGATE.test(name)) p.push(`name ${show(name)} holds a lone surrogate (${label})`);
  return p;
}

/** Runs the cases with a little concurrency; returns every problem found. */
async function run(cases: Case[], concurrency = 4): Promise<string[]> {
  const problems: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++];
      let res: Res;
      try {
        res = await send(c.method, c.path, c);
      } catch (err) {
        problems.push(`${c.label}: request failed: ${(err as Error).message}`);
        continue;
      }
      if (c.mayCreate && (res.status === 201 || res.status === 202)) {
        if (res.status === 201) problems.push(...uploadUrlProblems(c.label, res.json));
        else if (!JOB_ID.test(res.json?.jobId ?? '')) problems.push(`202 without a job id: ${c.label}`);
        if (res.json?.jobId) created.push({ label: c.label, jobId: res.json.jobId, status: res.status, body: res.json });
        continue;
      }
      problems.push(...errorProblems(c.label, res, c));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return problems;
}

const json = (v: unknown) => JSON.stringify(v);
const upload = (body: Buffer | string, extra: Partial<Case> = {}): Omit<Case, 'label'> => ({
  method: 'POST',
  path: '/uploads',
  headers: { 'content-type': 'application/json' },
  body,
  ...extra,
});
const report = (body: Buffer | string, extra: Partial<Case> = {}): Omit<Case, 'label'> => ({
  method: 'POST',
  path: '/reports',
  headers: { 'content-type': 'application/json' },
  body,
  ...extra,
});
const VALID_UPLOAD = { filename: 'a.jpg', contentType: 'image/jpeg', size: 1000 };
const VALID_REPORT = { from: '2026-01-01', to: '2026-01-31' };
const labelled = (entries: Array<[string, Omit<Case, 'label'>]>): Case[] => entries.map(([label, c]) => ({ label, ...c }));

describe('API abuse', () => {
  it('refuses malformed JSON with 400 invalid_request', async () => {
    const bodies: Array<[string, string | Buffer]> = [
      ['truncated object', '{"filename": "a.jpg", "contentType": "image/jpeg", "si'],
      ['truncated string', '{"filename": "a.jp'],
      ['lone brace', '{'],
      ['trailing comma', '{"filename":"a.jpg","contentType":"image/jpeg","size":10,}'],
      ['single quotes', "{'filename':'a.jpg','contentType':'image/jpeg','size':10}"],
      ['comment', '{"filename":"a.jpg", /* x */ "contentType":"image/jpeg","size":10}'],
      ['NaN', '{"filename":"a.jpg","contentType":"image/jpeg","size":NaN}'],
      ['10000 [ unterminated', '['.repeat(10_000)],
      ['10000 [ closed', '['.repeat(10_000) + ']'.repeat(10_000)],
      ['10000 nested objects', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)],
      ['100000 [ closed', '['.repeat(100_000) + ']'.repeat(100_000)],
      ['deep nesting in a field', `{"filename":${'['.repeat(10_000)}${']'.repeat(10_000)},"contentType":"image/jpeg","size":10}`],
      ['deep nesting in an extra field', `{"filename":"a.jpg","contentType":"image/jpeg","size":10,"x":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`],
      ['invalid UTF-8 outside strings', Buffer.concat([Buffer.from('{"filename":"a.jpg",'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"size":1}')])],
      ['invalid UTF-8 only', Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc])],
      ['UTF-16 body', Buffer.from(json(VALID_UPLOAD), 'utf16le')],
      ['NUL bytes', Buffer.from([0, 0, 0, 0])],
      ['array', '[{"filename":"a.jpg","contentType":"image/jpeg","size":10}]'],
      ['number', '42'],
      ['null', 'null'],
      ['string', '"a.jpg"'],
      ['true', 'true'],
      ['empty object', '{}'],
      ['whitespace only', '   \n\t '],
      ['empty body', ''],
    ];
    const cases: Case[] = [];
    for (const [label, body] of bodies) {
      cases.push({ label: `POST /uploads ${label}`, ...upload(body), status: 400, code: 'invalid_request' });
      cases.push({ label: `POST /reports ${label}`, ...report(body), status: 400, code: 'invalid_request' });
    }
    expect(await run(cases)).toEqual([]);
  });

  it('refuses wrong types, missing fields and extra fields', async () => {
    const wrong: Record<string, unknown[]> = {
      filename: [null, 1, true, [], {}, ['a.jpg'], '', 'x'.repeat(1025)],
      contentType: [null, 1, false, [], {}, '', 'x'.repeat(256)],
      size: [null, '10', '', true, [], {}, 0, -1, -0, 1.5, 1e-9, 1e400, -1e400],
    };
    const cases: Case[] = [];
    for (const [field, values] of Object.entries(wrong)) {
      for (const v of values) {
        // 1e400 is not JSON.stringify-able as a number: write it into the text.
        const body = json({ ...VALID_UPLOAD, [field]: '__V__' }).replace('"__V__"', typeof v === 'number' && !Number.isFinite(v) ? (v > 0 ? '1e400' : '-1e400') : json(v));
        cases.push({ label: `upload ${field}=${short(String(json(v) ?? v), 30)}`, ...upload(body), status: 400, code: 'invalid_request' });
      }
    }
    for (const field of Object.keys(VALID_UPLOAD)) {
      const { [field as keyof typeof VALID_UPLOAD]: _, ...rest } = VALID_UPLOAD;
      cases.push({ label: `upload without ${field}`, ...upload(json(rest)), status: 400, code: 'invalid_request' });
    }
    for (const extra of ['extra', 'jobId', 'key', 'bucket', 'constructor', 'toString', '']) {
      cases.push({ label: `upload with extra field ${JSON.stringify(extra)}`, ...upload(json({ ...VALID_UPLOAD, [extra]: 'x' })), status: 400, code: 'invalid_request' });
    }
    // JSON.parse makes "__proto__" an own property: a strict schema must refuse it like any other.
    cases.push({ label: 'upload with extra field "__proto__"', ...upload(`{"filename":"a.jpg","contentType":"image/jpeg","size":10,"__proto__":{"isAdmin":true}}`), status: 400, code: 'invalid_request' });
    cases.push({ label: 'upload with duplicate keys, last one invalid', ...upload('{"filename":"a.jpg","contentType":"image/jpeg","size":10,"size":-5}'), status: 400, code: 'invalid_request' });
    // Well-typed but refused values.
    for (const ct of ['text/html', 'application/json', 'image/svg+xml', 'image/bmp', 'image/x-icon', 'image/heic', 'video/mp4', 'image/', 'image', 'jpeg', '*/*']) {
      cases.push({ label: `upload contentType ${ct}`, ...upload(json({ ...VALID_UPLOAD, contentType: ct })), status: 415, code: 'unsupported_media_type' });
    }
    for (const size of [25 * 1024 * 1024 + 1, 2 ** 53, 1e300]) {
      cases.push({ label: `upload size ${size}`, ...upload(json({ ...VALID_UPLOAD, size })), status: 413, code: 'payload_too_large' });
    }

    const reportWrong: Record<string, unknown[]> = {
      from: [null, 20260101, true, [], {}, '', '2026-1-1', '01/01/2026', '2026-01-01T00:00:00Z', '2026-02-30', '2026-13-01', '2026-00-10', ' 2026-01-01', '２０２６-01-01'],
      to: [null, 20260131, '', '2026-01-32', 'today', '2026-01-31\n'],
      formats: [null, 'csv', [], ['docx'], ['csv', 'csv'], ['csv', 'pdf', 'csv'], [1], ['CSV'], [['csv']], {}],
    };
    for (const [field, values] of Object.entries(reportWrong)) {
      for (const v of values) {
        cases.push({ label: `report ${field}=${short(json(v), 30)}`, ...report(json({ ...VALID_REPORT, [field]: v })), status: 400, code: 'invalid_request' });
      }
    }
    cases.push({ label: 'report without from', ...report(json({ to: '2026-01-01' })), status: 400, code: 'invalid_request' });
    cases.push({ label: 'report without to', ...report(json({ from: '2026-01-01' })), status: 400, code: 'invalid_request' });
    cases.push({ label: 'report with extra jobId', ...report(json({ ...VALID_REPORT, jobId: randomUUID() })), status: 400, code: 'invalid_request' });
    cases.push({ label: 'report with extra __proto__', ...report('{"from":"2026-01-01","to":"2026-01-02","__proto__":{"formats":["csv"]}}'), status: 400, code: 'invalid_request' });
    expect(await run(cases)).toEqual([]);
  });

  it('refuses bad report ranges', async () => {
    const ranges: Array<[string, unknown]> = [
      ['from after to', { from: '2026-03-01', to: '2026-01-01' }],
      ['from one day after to', { from: '2026-01-02', to: '2026-01-01' }],
      ['367 days', { from: '2024-01-01', to: '2025-01-01' }],
      ['decades', { from: '1970-01-01', to: '2038-01-19' }],
      ['year 0 to year 9999', { from: '0000-01-01', to: '9999-12-31' }],
      ['not a leap year', { from: '2025-02-29', to: '2025-03-01' }],
      ['reversed far past', { from: '9999-12-31', to: '0000-01-01' }],
    ];
    expect(await run(ranges.map(([label, body]) => ({ label: `report ${label}`, ...report(json(body)), status: 400, code: 'invalid_request' })))).toEqual([]);
  });

  it('refuses huge bodies with 400 or 413, in the error format', async () => {
    const cases = labelled([
      ['JSON with a 1.1 MB filename', { ...upload(json({ ...VALID_UPLOAD, filename: `${'a'.repeat(1_100_000)}.jpg` })), status: 400, code: 'invalid_request' }],
      ['JSON with a 1.1 MB extra field', { ...upload(json({ ...VALID_UPLOAD, pad: 'p'.repeat(1_100_000) })), status: 400, code: 'invalid_request' }],
      ['5 MB JSON report body (event under 6 MB)', { ...report(json({ ...VALID_REPORT, pad: 'p'.repeat(5_000_000) })), status: 400, code: 'invalid_request' }],
      ['7 MB JSON body (over Lambda 6 MB)', { ...upload(json({ ...VALID_UPLOAD, pad: 'p'.repeat(7_000_000) })), status: 413, code: 'payload_too_large' }],
      ['11 MB JSON body', { ...upload(Buffer.alloc(11 * 1024 * 1024, 0x5b)), status: 413, code: 'payload_too_large' }],
      ['11 MB image body', { ...upload(Buffer.alloc(11 * 1024 * 1024), { headers: { 'content-type': 'image/jpeg' } }), status: 413, code: 'payload_too_large' }],
      ['11 MB report body', { ...report(Buffer.alloc(11 * 1024 * 1024, 0x20)), status: 413, code: 'payload_too_large' }],
      ['direct upload 4 MiB + 1', { ...upload(Buffer.alloc(4 * 1024 * 1024 + 1, 1), { headers: { 'content-type': 'image/png' } }), status: 413, code: 'payload_too_large' }],
      ['11 MB body, no API key', { ...upload(Buffer.alloc(11 * 1024 * 1024)), key: null, status: 403, code: 'forbidden' }],
      ['11 MB body to an unknown route', { method: 'POST', path: '/nowhere', body: Buffer.alloc(11 * 1024 * 1024), status: 404, code: 'not_found' }],
    ]);
    expect(await run(cases, 2)).toEqual([]);
  });

  it('keeps hostile filenames of presigned uploads under uploads/{jobId}/ (201 allowed), and refuses over-long ones', async () => {
    const names = [
      '../../etc/passwd',
      '..\\..\\x',
      '%2e%2e%2f',
      '%2e%2e%2fetc%2fpasswd',
      '..%2f..%2f..%2fboot.ini',
      '/absolute/path.jpg',
      'a/b/c/../../d.jpg',
      'C:\\Windows\\system32\\x.jpg',
      'file:///etc/passwd',
      '~/.ssh/id_rsa',
      '/',
      '..',
      '.',
      '...',
      '.htaccess',
      '   ',
      'a\u0000b.jpg',
      '\u0000',
      '\u0000../../x.jpg',
      'line\r\nX-Injected: 1.jpg',
      '\r\n',
      'tab\there.jpg',
      '\u0085nel\u009b.jpg',
      'evil\u202egpj.exe',
      '\u2066\u2069 isolates \u202a\u202b\u202c\u202d.jpg',
      '\ufeffbom.jpg',
      '\u007fdel.jpg',
      '😀🎉 party.jpg',
      '写真 2024年.jpg',
      '한국어 사진.png',
      'e\u0301 nfd.jpg',
      '\u2215fake slash\u2044.jpg',
      '\u200bzero\u200dwidth.jpg',
      '\u00a0\u2028\u2029.jpg',
      'name with spaces + plus & amp ? q # h.jpg',
      '%00.jpg',
      '%0d%0a.jpg',
      '%25%32%65.jpg',
      '<script>alert(1)</script>.jpg',
      '"; rm -rf / #.jpg',
      '=cmd|calc.jpg',
      '$(reboot).jpg',
      'CON',
      'nul.jpg',
      `${'a'.repeat(199)}😀.jpg`,
      '😀'.repeat(256),
      `${'x'.repeat(1000)}.jpg`,
      `${'../'.repeat(300)}deep.jpg`,
    ];
    const cases: Case[] = names.map((filename, i) => ({
      label: `presigned #${i} ${show(filename)}`,
      ...upload(json({ filename, contentType: 'image/jpeg', size: jpeg.length })),
      mayCreate: true,
    }));
    // Over 1024 characters: refused (the limit is on the request, before sanitizing).
    for (const filename of ['x'.repeat(5000), `${'../'.repeat(2000)}x.jpg`, '\u0000'.repeat(5000), '😀'.repeat(1500)]) {
      cases.push({ label: `presigned ${show(filename)}`, ...upload(json({ filename, contentType: 'image/jpeg', size: jpeg.length })), status: 400, code: 'invalid_request' });
    }
    const before = created.length;
    expect(await run(cases)).toEqual([]);
    const mine = created.slice(before);
    expect(mine.map((c) => c.status)).toEqual(names.map(() => 201));

    // The job records the very name its key was built from; some names, exactly.
    const exact: Record<string, string> = {
      '../../etc/passwd': 'passwd',
      '..\\..\\x': 'x',
      '%2e%2e%2f': '%2e%2e%2f', // a literal name: never decoded
      '/': 'upload.jpg',
      '..': 'upload.jpg',
      '\u0000': 'upload.jpg',
      'a\u0000b.jpg': 'ab.jpg',
      'line\r\nX-Injected: 1.jpg': 'lineX-Injected: 1.jpg',
      'evil\u202egpj.exe': 'evilgpj.exe',
      '.htaccess': 'htaccess',
      '😀🎉 party.jpg': '😀🎉 party.jpg',
      '写真 2024年.jpg': '写真 2024年.jpg',
      'e\u0301 nfd.jpg': '\u00e9 nfd.jpg',
    };
    const problems: string[] = [];
    await Promise.all(
      mine.map(async (c) => {
        const requested = names[Number(/^presigned #(\d+) /.exec(c.label)![1])];
        const got = await send('GET', `/jobs/${c.jobId}`);
        const name = got.json?.input?.filename;
        if (got.status !== 200 || typeof name !== 'string') return void problems.push(`${c.label}: GET /jobs/${c.jobId} -> ${got.status} ${show(got.text)}`);
        const keyName = decodeURIComponent(String(c.body.uploadUrl).split('?')[0].split('/').pop()!);
        if (name !== keyName) problems.push(`${c.label}: job filename ${show(name)} is not the key's name ${show(keyName)}`);
        if (requested in exact && name !== exact[requested]) problems.push(`${c.label}: filename ${show(name)}, expected ${show(exact[requested])}`);
        problems.push(...nameProblems(c.label, name));
      }),
    );
    // PUT a real image through every third URL: it must land at exactly that key, and run.
    // One after the other, so the worker gets small batches (a batch of five on a loaded
    // machine can run over the e2e worker timeout of 5 s and come back 30 s later).
    for (const c of mine.filter((_, i) => i % 3 === 0)) {
      const put = await fetch(c.body.uploadUrl, { method: 'PUT', headers: c.body.headers, body: new Uint8Array(jpeg) });
      if (!put.ok) problems.push(`${c.label}: PUT to the presigned URL -> ${put.status} ${short(await put.text())}`);
      else uploaded.push(c);
    }
    expect(problems).toEqual([]);
  });

  it('keeps hostile filenames of direct uploads under uploads/{jobId}/ (202 allowed)', async () => {
    const direct = (label: string, path: string, headers: Record<string, string> = {}): Case => ({
      label: `direct ${label}`,
      method: 'POST',
      path,
      headers: { 'content-type': 'image/jpeg', ...headers },
      body: jpeg,
      mayCreate: true,
    });
    const hostile = ['../../etc/passwd', '..\\..\\x', '%2e%2e%2f', 'a\u0000b.jpg', 'line\r\nX-Injected: 1.jpg', 'evil\u202egpj.exe', '😀 写真.jpg', 'x'.repeat(5000), '\u0000'.repeat(50), '..', '/', '.bashrc'];
    const cases: Case[] = [
      ...hostile.map((n) => direct(`?filename=${show(n)}`, `/uploads?filename=${encodeURIComponent(n)}`)),
      ...hostile.filter((_, i) => i % 2 === 1).map((n) => direct(`x-filename: ${show(n)}`, '/uploads', { 'x-filename': encodeURIComponent(n) })),
      direct('raw ?filename=..%2F..%2Fetc%2Fpasswd', '/uploads?filename=..%2F..%2Fetc%2Fpasswd'),
      direct('raw ?filename=%2e%2e%2f', '/uploads?filename=%2e%2e%2f'),
      direct('raw ?filename=%E0%A4%A (broken escape)', '/uploads?filename=%E0%A4%A'),
      direct('raw ?filename=%ED%A0%80 (encoded surrogate)', '/uploads?filename=%ED%A0%80'),
      direct('raw ?filename twice', '/uploads?filename=a.jpg&filename=..%2F..%2Fb.jpg'),
      direct('raw ?filename= (empty)', '/uploads?filename='),
      direct('raw ?filename (no value)', '/uploads?filename'),
      direct('x-filename ..%2F..%2Fx', '/uploads', { 'x-filename': '..%2F..%2Fx' }),
      direct('x-filename %E0%A4%A (broken escape)', '/uploads', { 'x-filename': '%E0%A4%A' }),
      direct('x-filename %ED%A0%80 (encoded surrogate)', '/uploads', { 'x-filename': '%ED%A0%80' }),
      direct('x-filename %00%0d%0a', '/uploads', { 'x-filename': '%00%0d%0a' }),
      direct('x-filename latin-1 bytes', '/uploads', { 'x-filename': Buffer.from('caf\u00e9/../\u00ff.jpg', 'latin1').toString('latin1') }),
      direct('?filename and x-filename', '/uploads?filename=..%2Fq.jpg', { 'x-filename': '..%2Fh.jpg' }),
    ];
    const before = created.length;
    expect(await run(cases, 1)).toEqual([]); // one at a time: small worker batches (see above)
    const mine = created.slice(before);
    expect(mine.map((c) => c.status)).toEqual(cases.map(() => 202));
    uploaded.push(...mine);
  });

  it('refuses missing, wrong, empty and very long API keys with 403 forbidden', async () => {
    const k = ctx.apiKey;
    const keys: Array<[string, string | string[] | null]> = [
      ['missing', null],
      ['empty', ''],
      ['wrong', 'wrong'],
      ['one character short', k.slice(0, -1)],
      ['one character more', `${k}0`],
      ['one character changed', k.slice(0, -1) + (k.endsWith('0') ? '1' : '0')],
      ['upper case', k.toUpperCase() === k ? `${k}X` : k.toUpperCase()],
      ['Bearer prefix', `Bearer ${k}`],
      ['twice in one header', `${k},${k}`],
      ['two headers', [k, k]],
      ['8000 characters', 'k'.repeat(8000)],
      ['the key repeated', k.repeat(50)],
      ['unicode-looking', Buffer.from('ключ', 'utf8').toString('latin1')],
      ['NUL as text', '%00'],
    ];
    const requests: Array<[string, Omit<Case, 'label'>]> = [
      ['GET /jobs', { method: 'GET', path: '/jobs' }],
      ['GET /jobs/{id}', { method: 'GET', path: `/jobs/${randomUUID()}` }],
      ['POST /uploads', upload(json(VALID_UPLOAD))],
      ['POST /uploads (image)', upload(jpeg, { headers: { 'content-type': 'image/jpeg' } })],
      ['POST /reports', report(json(VALID_REPORT))],
    ];
    const cases: Case[] = [];
    for (const [keyLabel, key] of keys) {
      for (const [reqLabel, req] of requests) {
        const headers = { ...(req.headers ?? {}) };
        if (key !== null) headers['x-api-key'] = key;
        cases.push({ label: `${reqLabel} key ${keyLabel}`, ...req, headers, key: null, status: 403, code: 'forbidden' });
      }
    }
    cases.push({ label: 'key in the query string only', method: 'GET', path: `/jobs?x-api-key=${k}&api_key=${k}`, key: null, status: 403, code: 'forbidden' });
    cases.push({ label: 'key in authorization only', method: 'GET', path: '/jobs', headers: { authorization: k }, key: null, status: 403, code: 'forbidden' });
    cases.push({ label: 'key under another header name', method: 'GET', path: '/jobs', headers: { 'x-api-key2': k, 'api-key': k }, key: null, status: 403, code: 'forbidden' });
    expect(await run(cases)).toEqual([]);
  });

  it('answers unknown routes and methods with 404 not_found', async () => {
    const id = randomUUID();
    const cases: Case[] = [];
    const known = ['/uploads', '/jobs', `/jobs/${id}`, '/reports'];
    for (const path of known) {
      // DELETE /jobs/{jobId} is a route (cancellation): see below.
      for (const method of path === `/jobs/${id}` ? ['PUT', 'PATCH', 'TRACE'] : ['DELETE', 'PUT', 'PATCH', 'TRACE']) {
        cases.push({ label: `${method} ${path}`, method, path, headers: { 'content-type': 'application/json' }, body: json(VALID_UPLOAD), status: 404, code: 'not_found' });
        cases.push({ label: `${method} ${path} without a key`, method, path, key: null, status: 404, code: 'not_found' });
      }
    }
    // Cancelling a job that does not exist: 404 (with a body too); without a key, the key is what is missing.
    cases.push({ label: `DELETE /jobs/${id}`, method: 'DELETE', path: `/jobs/${id}`, headers: { 'content-type': 'application/json' }, body: json(VALID_UPLOAD), status: 404, code: 'not_found' });
    cases.push({ label: `DELETE /jobs/${id} without a key`, method: 'DELETE', path: `/jobs/${id}`, key: null, status: 403, code: 'forbidden' });
    for (const [method, path] of [['GET', '/uploads'], ['GET', '/reports'], ['PUT', '/jobs'], ['POST', `/jobs/${id}`], ['OPTIONS', '/nowhere'], ['OPTIONS', '/jobs/x/y']]) {
      cases.push({ label: `${method} ${path}`, method, path, status: 404, code: 'not_found' });
    }
    // `/` is the console's page (no key): see the web console's own test. Its files are named.
    const unknown = [
      '/console',
      '/console/nope.js',
      '/console/app.js/x',
      '/v1/jobs',
      '/v1/uploads',
      '/jobs/a/b',
      `/jobs/${id}/outputs`,
      '/uploads/x',
      '/reports/x',
      '/JOBS',
      '/Uploads',
      '/.env',
      '/admin',
      '/%2e%2e/etc/passwd',
      '/..%2f..%2fetc%2fpasswd',
      '/uploads%2f..%2fjobs',
      `/${'a'.repeat(8000)}`,
    ];
    for (const path of unknown) cases.push({ label: `GET ${short(path, 60)}`, method: 'GET', path, status: 404, code: 'not_found' });
    // Paths that name a job which cannot exist: 404 from the function (or the gateway).
    const notJobs = [
      '/jobs/%00',
      '/jobs/%ZZ',
      '/jobs/..%2fuploads',
      '/jobs/..%5c..%5cx',
      '/jobs/%0d%0aX-Injected:%201',
      '/jobs/%E2%80%AE',
      '/jobs/%F0%9F%98%80',
      '/jobs/null',
      '/jobs/undefined',
      `/jobs/${id.toUpperCase()}`,
      `/jobs/${id}%00`,
      `/jobs/%20${id}`,
      `/jobs/${id.replace(/-/g, '')}`,
      `/jobs/${'-'.repeat(36)}`,
      `/jobs/${'a'.repeat(8000)}`,
      '/jobs/../uploads',
      '//jobs//nope',
      '/jobs//nope',
    ];
    for (const path of notJobs) cases.push({ label: `GET ${short(path, 60)}`, method: 'GET', path, status: 404, code: 'not_found' });
    // Traversal onto a POST route: whatever it resolves to, a 4xx (no body, no content type).
    for (const path of ['/jobs/../uploads', '/jobs/../reports', '/x/../../uploads', '//uploads']) {
      cases.push({ label: `POST ${path} without a body`, method: 'POST', path });
    }
    expect(await run(cases)).toEqual([]);
    // HEAD: no body by definition; the status alone.
    for (const path of ['/jobs', '/uploads', '/nowhere']) expect((await send('HEAD', path)).status, `HEAD ${path}`).toBe(404);
  });

  it('refuses bad query strings on GET /jobs with 400 invalid_request', async () => {
    const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
    const key = (type: string) => ({ jobId: randomUUID(), type, createdAt: new Date().toISOString() });
    const queries = [
      'limit=-1',
      'limit=0',
      'limit=abc',
      'limit=1000',
      'limit=101',
      'limit=1.5',
      'limit=',
      'limit=NaN',
      'limit=Infinity',
      'limit=-Infinity',
      'limit=1e3',
      'limit=%00',
      'limit=99999999999999999999999',
      'limit=5&limit=abc',
      'limit[]=5',
      'type=bogus',
      'type=THUMBNAIL',
      'type=',
      'type=thumbnail&type=bogus',
      'status=bogus',
      'status=done',
      'status=',
      'status=queued&status=nope',
      'foo=bar',
      'type=thumbnail&extra=1',
      'type=__proto__',
      'status=constructor',
      'cursor=garbage',
      'cursor=%00',
      'cursor=%FF%FE',
      `cursor=${'x'.repeat(5000)}`,
      `cursor=${b64('[]')}`,
      `cursor=${b64('null')}`,
      `cursor=${b64('"s"')}`,
      `cursor=${b64('{}')}`,
      `cursor=${b64('{"thumbnail":1,"report":1}')}`,
      `cursor=${b64({ thumbnail: { jobId: 1 }, report: null })}`,
      `cursor=${b64({ thumbnail: key('report'), report: null })}`,
      `type=report&cursor=${b64({ thumbnail: null })}`,
      `type=thumbnail&cursor=${b64({ thumbnail: 'x' })}`,
    ];
    const cases = queries.map((q): Case => ({ label: `GET /jobs?${short(q, 80)}`, method: 'GET', path: `/jobs?${q}`, status: 400, code: 'invalid_request' }));
    expect(await run(cases)).toEqual([]);
  });

  it('refuses wrong content types with 415 unsupported_media_type', async () => {
    const types: Array<[string, string | undefined]> = [
      ['text/plain', 'text/plain'],
      ['text/plain; charset=utf-8', 'text/plain; charset=utf-8'],
      ['multipart/form-data', 'multipart/form-data; boundary=----x'],
      ['form-urlencoded', 'application/x-www-form-urlencoded'],
      ['image/svg+xml', 'image/svg+xml'],
      ['image/bmp', 'image/bmp'],
      ['text/html', 'text/html'],
      ['application/xml', 'application/xml'],
      ['application/jsonx', 'application/jsonx'],
      ['application/json-patch+json', 'application/json-patch+json'],
      ['application/octet-stream', 'application/octet-stream'],
      ['*/*', '*/*'],
      ['empty', ''],
      ['garbage', ';;;'],
      ['none', undefined],
    ];
    const cases: Case[] = [];
    for (const [label, ct] of types) {
      const headers: Record<string, string> = ct === undefined ? {} : { 'content-type': ct };
      cases.push({ label: `POST /uploads JSON as ${label}`, method: 'POST', path: '/uploads', headers, body: json(VALID_UPLOAD), status: 415, code: 'unsupported_media_type' });
      cases.push({ label: `POST /uploads image bytes as ${label}`, method: 'POST', path: '/uploads', headers, body: jpeg, status: 415, code: 'unsupported_media_type' });
      cases.push({ label: `POST /reports as ${label}`, method: 'POST', path: '/reports', headers, body: json(VALID_REPORT), status: 415, code: 'unsupported_media_type' });
    }
    const multipart = Buffer.concat([
      Buffer.from('------x\r\nContent-Disposition: form-data; name="file"; filename="../../a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'),
      jpeg,
      Buffer.from('\r\n------x--\r\n'),
    ]);
    cases.push({ label: 'POST /uploads real multipart form', method: 'POST', path: '/uploads', headers: { 'content-type': 'multipart/form-data; boundary=----x' }, body: multipart, status: 415, code: 'unsupported_media_type' });
    cases.push({ label: 'POST /uploads SVG with script', method: 'POST', path: '/uploads', headers: { 'content-type': 'image/svg+xml' }, body: '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', status: 415, code: 'unsupported_media_type' });
    cases.push({ label: 'POST /uploads image/jpeg, empty body', method: 'POST', path: '/uploads', headers: { 'content-type': 'image/jpeg' }, status: 400, code: 'invalid_request' });
    expect(await run(cases)).toEqual([]);
  });

  it(`survives a seeded random barrage (seed ${SEED})`, async () => {
    const { invalid, hostileButValid } = randomCases(SEED, 320, 40);
    const before = created.length;
    const problems = await run([...invalid, ...hostileButValid]);
    expect(problems, `seed ${SEED}`).toEqual([]);
    const mine = created.slice(before);
    // The invalid ones never create anything; the hostile-but-valid ones all do.
    expect(mine.filter((c) => !c.label.startsWith('valid#')).map((c) => c.label), `seed ${SEED}`).toEqual([]);
    expect(mine.length, `seed ${SEED}`).toBe(hostileButValid.length);
  });

  it('wrote nothing to the raw bucket outside {uploads,priority-uploads}/{jobId}/{name}', async () => {
    // Every object this file caused to be written ran through the worker: wait for those jobs
    // (so no message of ours is left on the thumbnails queue for the next file) and find each
    // object at exactly <its lane's upload prefix>{jobId}/{the job's filename}.
    const problems: string[] = [];
    // (Generous: on a loaded machine a batch can run over the e2e worker timeout of 5 s and
    // come back after the 30 s visibility timeout.)
    const jobs = await Promise.all(uploaded.map((c) => ctx.waitForJob(c.jobId, 150_000)));
    await Promise.all(
      uploaded.map(async (c, i) => {
        const job = jobs[i];
        // A tiny valid JPEG: it succeeds, unless the worker could not find the object under the
        // key its event named (not_found: a key encoding bug). retries_exhausted only tells of
        // a machine too loaded for the 5 s worker timeout, which is not what this file tests.
        if (job.status !== 'succeeded' && job.error?.code !== 'retries_exhausted') {
          problems.push(`${c.label}: job ${c.jobId} ${job.status} ${JSON.stringify(job.error)}`);
        }
        const prefix = `${uploadPrefixFor(job.priority)}${c.jobId}/`;
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: ctx.outputs.RawBucketName, Prefix: prefix }));
        const keys = (listed.Contents ?? []).map((o) => o.Key);
        if (keys.length !== 1 || keys[0] !== `${prefix}${job.input.filename}`) {
          problems.push(`${c.label}: objects under ${prefix}: ${JSON.stringify(keys)}, job filename ${show(job.input.filename)}`);
        }
      }),
    );
    expect(problems).toEqual([]);

    // And nothing anywhere else. Two prefixes are excluded on purpose: photos.test.ts puts
    // objects under uploads/from-another-tool/ and local-mode.test.ts under
    // uploads/local-mode-probe/ directly in S3, as "objects from other tools" (the worker
    // makes jobs for them too). Everything else can only come from the API.
    const EXCLUDED = ['uploads/from-another-tool/', 'uploads/local-mode-probe/'];
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: ctx.outputs.RawBucketName, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(keys.length).toBeGreaterThanOrEqual(uploaded.length);
    // Either lane's prefix (priority.test.ts makes high-priority uploads beside this file).
    const scheme = new RegExp(`^(${PRIORITIES.map((p) => UPLOAD_PREFIXES[p]).join('|')})[0-9a-f-]{36}/[^/]+$`);
    const outside = keys.filter((k) => !EXCLUDED.some((p) => k.startsWith(p))).filter((k) => !scheme.test(k) || UNSAFE.test(k));
    expect(outside).toEqual([]);
  });
});

/** Inputs that broke the API's contract when the fuzzer first ran, kept as regression tests. */
describe('API abuse: regressions found by fuzzing', () => {
  // lambda/shared/filename.ts sanitizeFilename keeps lone surrogates (JSON "\ud800" escapes):
  // the presigner's encodeURIComponent throws URIError -> 500, after the job was created.
  it('keeps lone surrogates (JSON \\ud800 escapes) out of keys: 201 with a well-formed name, or 400', async () => {
    const escapes = ['\\ud800.jpg', 'a\\udfffb.jpg', '\\ud83d', '\\ude00\\ud83d.png'];
    const cases: Case[] = escapes.map((e) => ({
      label: `presigned lone surrogate ${e}`,
      ...upload(`{"filename":"${e}","contentType":"image/jpeg","size":${jpeg.length}}`),
      mayCreate: true,
    }));
    expect(await run(cases)).toEqual([]);
  });

  // local/api-server.ts toEvent builds query/header maps on plain objects: a parameter or
  // header named like an Object.prototype member ("constructor", "__proto__", "toString")
  // finds the inherited value in `(multiQuery[k] ??= []).push(v)` -> TypeError -> 500.
  // (After that fix, lambda/api/index.ts toRequest still drops "__proto__" silently, so
  // ?__proto__=1 would be a 200 instead of an unknown-parameter 400.)
  it('refuses query parameters and ignores headers named like Object.prototype members', async () => {
    const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];
    const cases: Case[] = [
      ...names.map((n): Case => ({ label: `GET /jobs?${n}=1`, method: 'GET', path: `/jobs?${n}=1`, status: 400, code: 'invalid_request' })),
      ...names.map((n): Case => ({ label: `GET /jobs/{id} with header ${n}`, method: 'GET', path: `/jobs/${randomUUID()}`, headers: { [n]: 'x' }, status: 404, code: 'not_found' })),
    ];
    expect(await run(cases)).toEqual([]);
  });

  // lambda/shared/jobs-repo.ts decodeCursor checks that a position has string jobId/createdAt
  // and the right type, then passes the client's object on as ExclusiveStartKey: extra
  // attributes, empty or over-long key values reach DynamoDB (ValidationException -> 500 on
  // AWS; moto ignores them and answers 200).
  it('refuses cursors whose positions are not keys of the index', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const key = (extra: Record<string, unknown>) => ({ jobId: randomUUID(), type: 'thumbnail', createdAt: new Date().toISOString(), ...extra });
    const positions = [key({ jobId: '' }), key({ createdAt: '' }), key({ status: { S: 'x' } }), key({ extra: 'x' }), key({ jobId: 'x'.repeat(3000) })];
    const cases = positions.map((pos): Case => ({
      label: `GET /jobs?type=thumbnail&cursor=${JSON.stringify(pos).slice(0, 80)}`,
      method: 'GET',
      path: `/jobs?type=thumbnail&cursor=${b64({ thumbnail: pos })}`,
      status: 400,
      code: 'invalid_request',
    }));
    expect(await run(cases)).toEqual([]);
  });
});

/** mulberry32: a small seeded PRNG, so a failing barrage can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick, chance: (p: number) => next() < p };
}

/**
 * Random requests: `invalid` ones are invalid by construction (each carries at least one
 * defect that must get a 4xx); `hostileButValid` ones are presigned requests with random
 * hostile filenames, allowed to succeed (labelled `valid#`).
 */
function randomCases(seed: number, nInvalid: number, nValid: number): { invalid: Case[]; hostileButValid: Case[] } {
  const r = prng(seed);
  // Pieces of hostile names. Lone surrogates are left out: see the explicit case in
  // 'hostile filenames' (a known product bug would otherwise fail this whole section).
  const pieces = [
    'a', 'Z', '0', '.', '..', '/', '\\', '%', '%2e', '%2f', '%5c', '%00', '%0a', '\u0000', '\r', '\n', '\t', '\u0085', '\u202e',
    '\u2066', '\ufeff', '\u200b', '\u00a0', '\u2028', '😀', '👨‍👩‍👧', '漢', '字', 'é', 'e\u0301', ' ', '"', "'", '<', '>', '&', '?',
    '#', '*', '|', ':', '~', '$(', '`', ';', '+', '=', '@', '{', '}', '[', ']', 'ﬁ', 'İ', '\u0130', '.jpg', '.png', 'CON', 'nul',
  ];
  const hostileName = (max = 24) => Array.from({ length: 1 + r.int(max) }, () => r.pick(pieces)).join('');
  const scalar = (): unknown =>
    r.pick([
      () => null,
      () => r.chance(0.5),
      () => r.int(2 ** 31) * (r.chance(0.3) ? -1 : 1),
      () => r.next() * 1e6,
      () => r.pick([0, -0, 1e308, -1e308, 2 ** 53 + 1, 1e-300]),
      () => hostileName(),
      () => '',
      () => 'x'.repeat(r.int(3000)),
    ])();
  const value = (depth: number): unknown => {
    if (depth <= 0 || r.chance(0.5)) return scalar();
    if (r.chance(0.5)) return Array.from({ length: r.int(4) }, () => value(depth - 1));
    return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick(['filename', 'size', 'from', '__proto__', 'constructor', hostileName(6)]), value(depth - 1)]));
  };
  /** A value that is never of `kind`. */
  const notA = (kind: 'string' | 'number' | 'array'): unknown => {
    for (;;) {
      const v = value(2);
      if (kind === 'string' && typeof v !== 'string') return v;
      if (kind === 'number' && typeof v !== 'number') return v;
      if (kind === 'array' && !Array.isArray(v)) return v;
    }
  };
  const randomHeaders = (): Record<string, string> => {
    const h: Record<string, string> = {};
    for (let i = r.int(3); i > 0; i--) {
      const name = r.pick(['x-forwarded-for', 'x-forwarded-proto', 'x-amz-date', 'origin', 'referer', 'accept', 'x-http-method-override', 'x-original-url', 'x-rewrite-url', `x-${r.int(1e6)}`]);
      h[name] = Array.from({ length: 1 + r.int(40) }, () => String.fromCharCode(0x20 + r.int(0x5f))).join('');
    }
    return h;
  };
  const enc = (s: string) => encodeURIComponent(s);

  const uploadMutations: Array<(b: Record<string, unknown>) => number[] | void> = [
    (b) => void delete b[r.pick(['filename', 'contentType', 'size'])],
    (b) => void (b.filename = r.pick([notA('string'), '', 'y'.repeat(1025 + r.int(2000))])),
    (b) => void (b.contentType = r.pick([notA('string'), ''])),
    (b) => {
      b.contentType = r.pick(['text/plain', 'image/svg+xml', 'image/bmp', 'application/pdf', `image/${hostileName(5)}x`, hostileName(8) + 'z']);
      return [400, 415];
    },
    (b) => void (b.size = r.pick([notA('number'), 0, -1 - r.int(1000), 0.5 + r.int(100), Number.NaN])),
    (b) => {
      b.size = 25 * 1024 * 1024 + 1 + r.int(1e9);
      return [413];
    },
    (b) => void (b[`extra${r.int(1e6)}`] = value(2)),
  ];
  const reportMutations: Array<(b: Record<string, unknown>) => void> = [
    (b) => void delete b[r.pick(['from', 'to'])],
    (b) => void (b[r.pick(['from', 'to'])] = r.pick([notA('string'), '', hostileName(10), `2026-${String(13 + r.int(80))}-01`, `2025-02-${29 + r.int(3)}`])),
    (b) => {
      b.from = '2026-06-15';
      b.to = `2026-06-${String(1 + r.int(14)).padStart(2, '0')}`;
    },
    (b) => {
      b.from = `${1900 + r.int(100)}-01-01`;
      b.to = '2026-01-01';
    },
    (b) => void (b.formats = r.pick([notA('array'), [], ['csv', 'csv'], [hostileName(4) + 'q'], ['csv', 'pdf', 'pdf'], [value(2), 'zz']])),
    (b) => void (b[`extra${r.int(1e6)}`] = value(2)),
  ];

  const invalid: Case[] = [];
  for (let i = 0; i < nInvalid; i++) {
    const family = r.int(9);
    const label = `random#${i} family ${family}`;
    const headers = randomHeaders();
    switch (family) {
      case 0:
      case 1: {
        // A presigned request with 1-3 defects (and maybe a hostile name on top).
        const b: Record<string, unknown> = { filename: hostileName(), contentType: r.pick(['image/jpeg', 'image/png', 'IMAGE/JPG']), size: 1 + r.int(1e6) };
        // Several defects: which one is reported first is the API's choice.
        const status = new Set([400]);
        for (let m = 1 + r.int(3); m > 0; m--) r.pick(uploadMutations)(b)?.forEach((s) => status.add(s));
        invalid.push({ label, method: 'POST', path: '/uploads', headers: { ...headers, 'content-type': 'application/json' }, body: json(b), status: [...status] });
        break;
      }
      case 2: {
        // A valid body cut short: a proper prefix of an object's JSON is never JSON.
        const text = json(r.chance(0.5) ? { filename: hostileName(), contentType: 'image/jpeg', size: 10 } : { from: '2026-01-01', to: '2026-01-02' });
        const cut = text.slice(0, r.int(text.length));
        invalid.push({ label, method: 'POST', path: r.pick(['/uploads', '/reports']), headers: { ...headers, 'content-type': 'application/json' }, body: cut, status: 400 });
        break;
      }
      case 3: {
        // Random bytes, led by a control character (never JSON).
        const bytes = Buffer.from(Array.from({ length: 1 + r.int(2000) }, (_, j) => (j === 0 ? 1 + r.int(8) : r.int(256))));
        invalid.push({ label, method: 'POST', path: r.pick(['/uploads', '/reports']), headers: { ...headers, 'content-type': 'application/json' }, body: bytes, status: 400 });
        break;
      }
      case 4: {
        const b: Record<string, unknown> = { from: '2026-01-01', to: '2026-01-31', ...(r.chance(0.5) ? { formats: ['csv'] } : {}) };
        for (let m = 1 + r.int(2); m > 0; m--) r.pick(reportMutations)(b);
        invalid.push({ label, method: 'POST', path: '/reports', headers: { ...headers, 'content-type': 'application/json' }, body: json(b), status: 400 });
        break;
      }
      case 5: {
        // GET /jobs with random valid parameters and at least one bad one.
        const good = [`limit=${1 + r.int(100)}`, `type=${r.pick(['thumbnail', 'report'])}`, `status=${r.pick(['queued', 'failed', 'succeeded'])}`];
        const bad = [
          `limit=${r.pick(['-1', '0', '101', 'abc', '1.5', '', `${1000 + r.int(1e6)}`])}`,
          `type=${enc(hostileName(4))}x`,
          `status=${enc(hostileName(4))}x`,
          `cursor=${enc(hostileName(12))}`,
          `${enc(hostileName(4))}q=${enc(hostileName(4))}`,
        ];
        const params = [...good.filter(() => r.chance(0.4)), r.pick(bad)];
        invalid.push({ label, method: 'GET', path: `/jobs?${params.join('&')}`, headers, status: 400 });
        break;
      }
      case 6: {
        // (The trailing letter keeps "." and ".." from resolving to /jobs itself.)
        invalid.push({ label, method: 'GET', path: `/jobs/${enc(hostileName(20))}z`, headers, status: 404, code: 'not_found' });
        break;
      }
      case 7: {
        // Random method and path that is no route.
        const method = r.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']);
        const path = r.pick([
          `/${enc(hostileName(10))}z`,
          `/jobs/${randomUUID()}/${enc(hostileName(5))}z`,
          `/uploads/${enc(hostileName(5))}z`,
          `/reports/${enc(hostileName(5))}z`,
          `/${r.pick(['jobs', 'uploads', 'reports'])}/${r.pick(['a', 'b'])}/${r.pick(['c', 'd'])}`,
        ]);
        invalid.push({ label: `${label} ${method}`, method, path, headers, body: r.chance(0.5) ? json(value(3)) : undefined, status: 404, code: 'not_found' });
        break;
      }
      default: {
        // A valid request with a bad key.
        const k = ctx.apiKey;
        const key = r.pick([null, '', hostileName(10).replace(/[^\x20-\x7e]/g, 'k'), k.slice(0, r.int(k.length)), `${k}${r.int(10)}`, k.split('').reverse().join('')]);
        const req = r.pick([upload(json(VALID_UPLOAD)), report(json(VALID_REPORT)), { method: 'GET', path: '/jobs' }]);
        const h: Record<string, string | string[]> = { ...headers, ...(req.headers ?? {}) };
        if (key !== null) h['x-api-key'] = key;
        invalid.push({ label, ...req, headers: h, key: null, status: 403, code: 'forbidden' });
      }
    }
  }
  const hostileButValid: Case[] = Array.from({ length: nValid }, (_, i) => ({
    label: `valid#${i}`,
    ...upload(json({ filename: hostileName(40), contentType: r.pick(['image/jpeg', 'image/png', 'image/webp']), size: 1 + r.int(1e6) })),
    mayCreate: true,
  }));
  return { invalid, hostileButValid };
}
