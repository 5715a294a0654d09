import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main';
import { Terminal } from '../../cli/output';
import { sharedInstance, useSharedInstance } from './client';

/**
 * The `offload` CLI as a user runs it, configured by environment variables and an outputs
 * file (as `cdk deploy --outputs-file` writes it), from a temporary directory so no
 * .offload/local.json interferes. The first run is `node bin/offload.js` as a separate
 * process; the others run the CLI in-process (its main, with that environment and directory,
 * and stdout and stderr captured), which is what bin/offload.js runs.
 */
const ctx = sharedInstance();
useSharedInstance('shared');
let sqs: SQSClient;
const BIN = path.resolve(__dirname, '..', '..', 'bin', 'offload.js');
let dir: string;
let outputsFile: string;
/** A poison message for the DLQ test, sent first: its maxReceiveCount visibility timeouts run while the other tests do. */
const poison = JSON.stringify({ not: 'an s3 event', marker: `cli-e2e-${Date.now()}` });

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment a user would have: the API and the emulator, no other OFFLOAD_ or AWS_ settings. */
function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('OFFLOAD_') || k.startsWith('AWS_')) delete env[k];
  return Object.assign(env, {
    OFFLOAD_API_URL: ctx.apiUrl,
    OFFLOAD_API_KEY: ctx.apiKey,
    AWS_ENDPOINT_URL: ctx.awsEndpoint,
    AWS_REGION: ctx.region,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    NO_COLOR: '1',
  });
}

/** `offload --outputs-file <file> ...args` in-process, in `dir`. */
async function cli(args: string[]): Promise<Run> {
  const out = { stdout: '', stderr: '' };
  const stream = (name: 'stdout' | 'stderr') => ({ isTTY: false, write: (s: string) => ((out[name] += s), true) });
  const env = cliEnv();
  const code = await main(['node', 'offload', '--outputs-file', outputsFile, ...args], new Terminal({ stdout: stream('stdout'), stderr: stream('stderr'), env }), { env, cwd: dir });
  return { code, ...out };
}

/** `node bin/offload.js --outputs-file <file> ...args` as a separate process, in `dir`. */
function spawnCli(args: string[], timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, '--outputs-file', outputsFile, ...args], { cwd: dir, env: cliEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0, stdout, stderr }),
    );
  });
}

/** stdout must be JSON and nothing else. */
function json(run: Run): any {
  try {
    return JSON.parse(run.stdout);
  } catch {
    throw new Error(`stdout is not JSON (exit ${run.code}):\n${run.stdout}\n--- stderr:\n${run.stderr}`);
  }
}

async function depth(url: string): Promise<{ visible: number; inFlight: number }> {
  const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return { visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? 0), inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

beforeAll(async () => {
  // The AWS SDK's default credential chain reads this process's environment.
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  sqs = new SQSClient(ctx.awsConfig);
  await sqs.send(new SendMessageCommand({ QueueUrl: ctx.outputs.ThumbnailQueueUrl, MessageBody: poison }));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-cli-e2e-'));
  outputsFile = path.join(dir, 'outputs.json');
  fs.writeFileSync(outputsFile, JSON.stringify({ Offload: ctx.outputs }, null, 2));
  const gradient = Buffer.alloc(640 * 480 * 3);
  for (let i = 0; i < gradient.length; i++) gradient[i] = (i * 7) % 251;
  const raw = { raw: { width: 640, height: 480, channels: 3 as const } };
  fs.writeFileSync(path.join(dir, 'a.jpg'), await sharp(gradient, raw).jpeg().toBuffer());
  fs.writeFileSync(path.join(dir, 'b.png'), await sharp(gradient, raw).png().toBuffer());
  fs.writeFileSync(path.join(dir, 'x.jpg'), 'these are text bytes, not a JPEG\n'.repeat(20));
});

afterAll(() => {
  vi.unstubAllEnvs();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('offload CLI against local mode', () => {
  let uploaded: any[] = [];

  it('upload a.jpg b.png --wait --json (bin/offload.js as a process): succeeded jobs with outputs, a JSON array on stdout, exit 0', async () => {
    const run = await spawnCli(['upload', 'a.jpg', 'b.png', '--wait', '--json']);
    expect(run.code, run.stderr).toBe(0);
    uploaded = json(run);
    expect(Array.isArray(uploaded)).toBe(true);
    expect(uploaded.map((j) => j.input.filename)).toEqual(['a.jpg', 'b.png']);
    for (const job of uploaded) {
      expect(job).toMatchObject({ type: 'thumbnail', status: 'succeeded' });
      expect(job.outputs.length).toBeGreaterThan(0);
      expect(job.outputs[0].url).toMatch(/^https?:\/\//);
    }
    // Progress went to stderr as plain lines (not a terminal), never to stdout.
    expect(run.stderr).toMatch(/a\.jpg: uploading/);
  });

  it('status and jobs show those jobs', async () => {
    const status = await cli(['status', ...uploaded.map((j) => j.jobId), '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(json(status).map((j: any) => j.status)).toEqual(['succeeded', 'succeeded']);
    const listed = await cli(['jobs', '--type', 'thumbnail', '--status', 'succeeded', '--limit', '200', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const ids = json(listed).map((j: any) => j.jobId);
    for (const j of uploaded) expect(ids).toContain(j.jobId);
    const table = await cli(['jobs', '--limit', '2']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^JOB ID\s+TYPE\s+STATUS/);
  });

  it('a broken file fails its job: exit 1, the error code in the JSON and on stderr', async () => {
    const run = await cli(['upload', 'x.jpg', '--wait', '--json']);
    expect(run.code).toBe(1);
    const [job] = json(run);
    expect(job.status).toBe('failed');
    expect(['corrupt_image', 'unsupported_format']).toContain(job.error.code);
    expect(run.stderr).toContain(`offload: x.jpg: job ${job.jobId} failed: ${job.error.code}: `);
  });

  it('report --from DAY --to DAY --wait --out DIR writes the CSV and the PDF', async () => {
    // The days the uploads were made on (UTC): the day of the first upload up to today, so a
    // run across midnight asks for both days.
    const from = uploaded.map((j) => j.createdAt.slice(0, 10)).sort()[0];
    const to = new Date().toISOString().slice(0, 10);
    const out = path.join(dir, 'reports');
    const run = await cli(['report', '--from', from, '--to', to, '--wait', '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const csv = path.join(out, `report-${from}-to-${to}.csv`);
    const pdf = path.join(out, `report-${from}-to-${to}.pdf`);
    expect(run.stdout.trim().split('\n')).toEqual([csv, pdf]);
    expect(fs.readFileSync(csv, 'utf8').replace(/^\uFEFF/, '')).toMatch(/^jobId,filename,/);
    for (const j of uploaded) expect(fs.readFileSync(csv, 'utf8')).toContain(j.jobId);
    expect(fs.readFileSync(pdf).subarray(0, 5).toString('latin1')).toBe('%PDF-');
  });

  it('queues --json: both lanes and the DLQ of every type, with numbers', async () => {
    const run = await cli(['queues', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const rows = json(run);
    expect(rows.map((r: any) => r.name)).toEqual(['thumbnail', 'thumbnail-high', 'thumbnail-dlq', 'report', 'report-high', 'report-dlq', 'wordcount', 'wordcount-high', 'wordcount-dlq']);
    for (const r of rows) {
      for (const k of ['visible', 'inFlight', 'delayed']) expect(Number.isInteger(r[k]), `${r.name}.${k}`).toBe(true);
      expect(r.oldestAgeSeconds === null || typeof r.oldestAgeSeconds === 'number').toBe(true);
    }
    expect(rows[0].url).toBe(ctx.outputs.ThumbnailQueueUrl);
    expect(rows[1].url).toBe(ctx.outputs.ThumbnailHighQueueUrl);
    const table = await cli(['queues']);
    expect(table.stdout.split('\n')[0]).toMatch(/^QUEUE\s+VISIBLE\s+IN FLIGHT\s+DELAYED\s+OLDEST/);
  });

  it('dlq thumbnails lists a poison message with its reason, and --redrive moves it back', async () => {
    // The poison message (sent in beforeAll): the worker fails it on every receive; after
    // maxReceiveCount (3) it lands in the DLQ.
    const listed: any = await vi.waitFor(
      async () => {
        const run = await cli(['dlq', 'thumbnail', '--peek', '100', '--json']);
        expect(run.code, run.stderr).toBe(0);
        const peeked = json(run);
        if (!peeked.messages.some((m: any) => m.body === poison)) throw new Error(`the poison message never reached the DLQ: ${JSON.stringify(peeked)}`);
        return peeked;
      },
      { timeout: 150_000, interval: 5000 },
    );
    const letter = listed.messages.find((m: any) => m.body === poison);
    expect(letter).toMatchObject({ kind: 'unrecognized', jobIds: [], problem: expect.stringMatching(/not an S3 event/) });
    expect(listed.dlqUrl).toBe(ctx.outputs.ThumbnailDlqUrl);
    // Listing only peeked: the message is still there, visible.
    expect((await depth(ctx.outputs.ThumbnailDlqUrl)).visible).toBeGreaterThanOrEqual(1);

    const table = await cli(['dlq', 'thumbnails', '--peek', '100']);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(letter.messageId);

    const redrive = await cli(['dlq', 'thumbnails', '--redrive', '--json']);
    expect(redrive.code, redrive.stderr).toBe(0);
    const result = json(redrive);
    // moto does not implement StartMessageMoveTask: the CLI noticed and moved the messages itself.
    expect(result).toMatchObject({ queue: 'thumbnail', method: 'manual', failed: 0, duplicated: 0 });
    expect(result.moved).toBeGreaterThanOrEqual(1);
    expect(redrive.stderr).toMatch(/StartMessageMoveTask is not available/);
    const dlqAfter = await depth(ctx.outputs.ThumbnailDlqUrl);
    expect(dlqAfter).toEqual({ visible: 0, inFlight: 0 });
    // Back on the source queue (waiting or already being received by the worker again).
    const source = await depth(ctx.outputs.ThumbnailQueueUrl);
    expect(source.visible + source.inFlight).toBeGreaterThanOrEqual(1);
  });
});
