import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import { Terminal } from '../../cli/output';

/**
 * The CLI against a fake API on loopback (no AWS, no emulator): exit codes, one-line errors
 * on stderr, clean JSON on stdout, the presigned PUT with exactly the returned headers, list
 * paging, report downloads. The CLI runs in-process (its main, with this test's stdout,
 * stderr, environment and working directory); two runs of bin/offload.js as a real process
 * check that the command hands main's output and exit code on.
 */
const BIN = path.resolve(__dirname, '..', '..', 'bin', 'offload.js');
const KEY = 'test-key';

interface FakeJob {
  jobId: string;
  type: 'thumbnail' | 'report';
  status: string;
  polls: number;
  body?: Buffer;
  input?: Record<string, unknown>;
  params?: Record<string, unknown>;
}

let server: http.Server;
let base: string;
let dir: string;
const jobs = new Map<string, FakeJob>();
const puts: Array<{ headers: http.IncomingHttpHeaders; bytes: number }> = [];
let n = 0;

const send = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

function view(j: FakeJob) {
  const done = j.status === 'succeeded';
  return {
    jobId: j.jobId,
    type: j.type,
    status: j.status,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: `2025-01-01T00:00:0${j.polls % 10}.000Z`,
    attempts: 1,
    outputs: !done
      ? []
      : j.type === 'thumbnail'
        ? [{ name: 'small', format: 'jpeg', width: 160, height: 120, bytes: 999, contentType: 'image/jpeg', url: `${base}dl/${j.jobId}.jpg` }]
        : ['csv', 'pdf'].map((f) => ({ name: 'report', format: f, bytes: 10, contentType: f, url: `${base}dl/${j.jobId}.${f}` })),
    ...(j.input ? { input: j.input } : {}),
    ...(j.params ? { params: j.params, progress: { done: j.polls } } : {}),
    ...(j.status === 'failed' ? { error: { code: 'corrupt_image', message: 'the file is not a readable image' } } : {}),
  };
}

/** Each GET moves a job on: queued -> processing -> succeeded (or failed for bytes that are not an image). */
function advance(j: FakeJob) {
  j.polls++;
  if (j.status === 'queued') j.status = 'processing';
  else if (j.status === 'processing') j.status = j.type === 'report' || j.body?.subarray(0, 2).equals(Buffer.from([0xff, 0xd8])) ? 'succeeded' : 'failed';
}

async function body(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-cli-proc-'));
  fs.writeFileSync(path.join(dir, 'good.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(300_000, 7)]));
  fs.writeFileSync(path.join(dir, 'broken.jpg'), 'not an image at all');
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'hello');
  const fakeApi = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url!, base);
    const data = await body(req);
    if (url.pathname.startsWith('/s3/')) {
      const j = jobs.get(url.pathname.slice(4))!;
      puts.push({ headers: req.headers, bytes: data.length });
      if (req.headers['content-length'] !== String(j.input!.bytes) || req.headers['content-type'] !== j.input!.contentType) {
        res.writeHead(403).end('<Error><Code>SignatureDoesNotMatch</Code><Message>headers differ</Message></Error>');
        return;
      }
      j.body = data;
      j.status = 'queued';
      res.writeHead(200).end();
      return;
    }
    if (url.pathname.startsWith('/dl/')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(url.pathname.endsWith('.pdf') ? '%PDF-1.3 fake' : 'jobId,filename\n');
      return;
    }
    if (req.headers['x-api-key'] !== KEY) return send(res, 403, { error: { code: 'forbidden', message: 'missing or invalid API key' } });
    const route = `${req.method} ${url.pathname.replace(/^\/prod/, '')}`;
    if (route === 'POST /uploads') {
      const b = JSON.parse(data.toString());
      if (!String(b.contentType).startsWith('image/')) {
        return send(res, 415, { error: { code: 'unsupported_media_type', message: `content type "${b.contentType}" is not accepted` } });
      }
      const jobId = `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
      jobs.set(jobId, { jobId, type: 'thumbnail', status: 'awaiting_upload', polls: 0, input: { filename: b.filename, contentType: b.contentType, bytes: b.size } });
      return send(res, 201, {
        jobId,
        uploadUrl: `${base}s3/${jobId}`,
        method: 'PUT',
        headers: { 'Content-Type': b.contentType, 'Content-Length': String(b.size) },
        expiresAt: 'x',
        statusUrl: `${base}prod/jobs/${jobId}`,
      });
    }
    // The CLI (through the SDK) submits a report as POST /jobs {type: 'report', input}, the same as POST /reports.
    if (route === 'POST /reports' || (route === 'POST /jobs' && JSON.parse(data.toString()).type === 'report')) {
      const parsed = JSON.parse(data.toString());
      const b = route === 'POST /jobs' ? parsed.input : parsed;
      const jobId = `00000000-0000-4000-9000-${String(++n).padStart(12, '0')}`;
      jobs.set(jobId, { jobId, type: 'report', status: 'queued', polls: 0, params: { ...b, formats: b.formats ?? ['csv', 'pdf'] } });
      return send(res, 202, { jobId, statusUrl: `${base}prod/jobs/${jobId}` });
    }
    if (route === 'GET /jobs') {
      const all = [...jobs.values()].reverse();
      const start = Number(url.searchParams.get('cursor') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 20);
      const page = all.slice(start, start + limit);
      return send(res, 200, { jobs: page.map(view), nextCursor: start + limit < all.length ? String(start + limit) : null });
    }
    const d = /^DELETE \/jobs\/(.+)$/.exec(route);
    if (d) {
      const j = jobs.get(d[1]);
      if (!j) return send(res, 404, { error: { code: 'not_found', message: `no job "${d[1]}"` } });
      if (['succeeded', 'failed', 'cancelled'].includes(j.status)) return send(res, 409, { error: { code: 'conflict', message: `job ${j.jobId} is ${j.status} already: there is nothing to cancel` } });
      j.status = 'cancelled';
      return send(res, 202, view(j));
    }
    const m = /^GET \/jobs\/(.+)$/.exec(route);
    if (m) {
      const j = jobs.get(m[1]);
      if (!j) return send(res, 404, { error: { code: 'not_found', message: `no job "${m[1]}"` } });
      advance(j);
      return send(res, 200, view(j));
    }
    send(res, 404, { error: { code: 'not_found', message: `no such route: ${route}` } });
  };
  // createServer ignores a handler's promise: a bug in the fake API answers 500 with its message
  // (which the CLI reports as an API error) rather than an unhandled rejection and a hung request.
  server = http.createServer((req, res) => {
    fakeApi(req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: { code: 'fake_api_bug', message: String(err) } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment the CLI sees: the fake API's URL and key, and nothing of this process's. */
const cliEnv = (env: Record<string, string>): NodeJS.ProcessEnv => ({ HOME: dir, OFFLOAD_API_URL: `${base}prod`, OFFLOAD_API_KEY: KEY, ...env });

/** `offload ...args`, in-process: main with captured stdout and stderr (not terminals), in `dir`. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = { stdout: '', stderr: '' };
  const stream = (name: 'stdout' | 'stderr') => ({ isTTY: false, write: (s: string) => ((out[name] += s), true) });
  const e = cliEnv(env);
  const code = await main(['node', 'offload', ...args], new Terminal({ stdout: stream('stdout'), stderr: stream('stderr'), env: e }), { env: e, cwd: dir });
  return { code, ...out };
}

/** `node bin/offload.js ...args` as a separate process. */
function spawnCli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir, env: { PATH: process.env.PATH, ...cliEnv(env) } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('bin/offload.js as a process', () => {
  it('exits with 0 after --help (usage on stdout), with 2 and one stderr line after a usage error', async () => {
    const help = await spawnCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: offload/);
    expect(help.stderr).toBe('');
    const usage = await spawnCli(['jobs', '--limit', 'x']);
    expect(usage.code).toBe(2);
    expect(usage.stdout).toBe('');
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
    expect(usage.stderr).toMatch(/^offload: /);
  });
});

describe('offload (in-process)', () => {
  it('--help and --version exit 0', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: offload/);
    for (const c of ['upload', 'status', 'jobs', 'report', 'queues', 'dlq']) expect(help.stdout).toContain(c);
    expect((await cli(['dlq', '--help'])).stdout).toMatch(/--redrive/);
    expect((await cli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('usage and configuration errors: one line, exit 2', async () => {
    for (const args of [['jobs', '--limit', 'x'], ['nope'], ['report', '--from', '2025-01-01'], ['dlq', 'photos']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^offload: /);
    }
    const none = await cli(['jobs'], { OFFLOAD_API_URL: '', OFFLOAD_API_KEY: '' });
    expect(none).toMatchObject({ code: 2, stdout: '' });
    expect(none.stderr).toMatch(/^offload: no API URL/);
    const noKey = await cli(['jobs'], { OFFLOAD_API_KEY: '' });
    expect(noKey.stderr).toMatch(/^offload: no API key/);
    expect(noKey.code).toBe(2);
    const queues = await cli(['queues']);
    expect(queues.code).toBe(2);
    expect(queues.stderr).toMatch(/^offload: no stack outputs/);
  });

  it("API errors show the API's code and message, exit 1", async () => {
    const r = await cli(['status', '00000000-0000-4000-8000-999999999999']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('offload: 00000000-0000-4000-8000-999999999999: not_found: no job "00000000-0000-4000-8000-999999999999"');
    const bad = await cli(['jobs'], { OFFLOAD_API_KEY: 'wrong' });
    expect(bad.stderr.trim()).toBe('offload: forbidden: missing or invalid API key');
    expect(bad.code).toBe(1);
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down = await cli(['jobs'], { OFFLOAD_API_URL: `http://127.0.0.1:${port}/` });
    expect(down.code).toBe(1);
    expect(down.stderr.trim()).toBe(`offload: network_error: cannot reach http://127.0.0.1:${port}: ECONNREFUSED`);
  });

  it('upload --wait --json: streams with exactly the presigned headers, JSON array on stdout, exit 1 when a job fails', async () => {
    const r = await cli(['upload', 'good.jpg', 'broken.jpg', 'notes.txt', 'missing.png', '--wait', '--json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.map((j: { input: { filename: string }; status: string }) => [j.input.filename, j.status])).toEqual([
      ['good.jpg', 'succeeded'],
      ['broken.jpg', 'failed'],
    ]);
    expect(out[1].error.code).toBe('corrupt_image');
    expect(r.stderr).toContain('offload: missing.png: no such file');
    expect(r.stderr).toContain('offload: notes.txt: unsupported_media_type: content type "application/octet-stream" is not accepted');
    expect(r.stderr).toMatch(/offload: broken\.jpg: job \S+ failed: corrupt_image: the file is not a readable image/);
    const good = puts.find((p) => p.bytes === 300_003)!;
    expect(good.headers).toMatchObject({ 'content-type': 'image/jpeg', 'content-length': '300003' });
    expect(good.headers['transfer-encoding']).toBeUndefined();
  });

  it('upload without --wait prints a table; globs are expanded', async () => {
    const r = await cli(['upload', '*.jpg', '--concurrency', '1']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^FILE\s+JOB ID\s+STATUS/);
    expect(r.stdout).toMatch(/broken\.jpg\s+\S+\s+uploaded/);
    expect(r.stdout).toMatch(/good\.jpg\s+\S+\s+uploaded/);
  });

  it('jobs follows nextCursor up to --limit', async () => {
    const r = await cli(['jobs', '--limit', '3', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(3);
    const table = await cli(['jobs', '-n', '2']);
    expect(table.stdout.trim().split('\n')).toHaveLength(3);
    expect(table.stdout).toMatch(/^JOB ID\s+TYPE\s+STATUS\s+CREATED\s+SUBJECT/);
  });

  it('cancel: a queued job is cancelled (exit 0, JSON view); a finished one is a 409 on stderr and exit 1; an unknown id exit 1', async () => {
    const submitted = await cli(['report', '--from', '2025-02-01', '--to', '2025-02-02']);
    const id = submitted.stdout.trim();
    const r = await cli(['cancel', id, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject([{ jobId: id, status: 'cancelled' }]);
    const again = await cli(['cancel', id]);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`offload: ${id}: conflict: job ${id} is cancelled already: there is nothing to cancel`);
    const unknown = await cli(['cancel', '00000000-0000-4000-8000-999999999999']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/not_found/);
    const plain = await cli(['cancel', (await cli(['report', '--from', '2025-02-01', '--to', '2025-02-02'])).stdout.trim()]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^[0-9a-f-]{36}\s+cancelled$/m);
  });

  it('report --out downloads the outputs', async () => {
    const out = path.join(dir, 'reports', 'nested');
    const r = await cli(['report', '--from', '2025-01-01', '--to', '2025-01-31', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const job = JSON.parse(r.stdout);
    expect(job.status).toBe('succeeded');
    expect(job.files).toEqual([path.join(out, 'report-2025-01-01-to-2025-01-31.csv'), path.join(out, 'report-2025-01-01-to-2025-01-31.pdf')]);
    expect(fs.readFileSync(job.files[1], 'utf8')).toMatch(/^%PDF-/);
    const plain = await cli(['report', '--from', 'today', '--to', 'today']);
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
  });
});
