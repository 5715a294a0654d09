/**
 * `npm run bench`: every benchmark, one table, and bench/results/latest.json.
 *
 *   npm run bench                      # all sections
 *   npm run bench -- --only thumbnail,report --uploads 100 --photo ~/photo.jpg
 *   npm run bench -- --only start      # local mode's start: first (cache cleared) and cached
 *   npm run bench -- --only priority   # a high upload's time to start behind 500 queued normal ones
 *
 * Ratios are computed from runs in this same process (interleaved where two pipelines are
 * compared), never from figures remembered from another run.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import sharp from 'sharp';
import { isTerminal } from '../lambda/shared/contract';
import { startLocal } from '../local';
import { fromRaw, photoLikeRaw } from '../test/unit/fixtures/images';
import { benchReport } from './report';
import { bareSharpThumbnails, benchThumbnail } from './thumbnail';

const ROOT = path.resolve(__dirname, '..');
const TARGETS = {
  thumbnailRatioVsSharp: 1.1,
  thumbnailRatioVsJimp: 10,
  pipelineRatio: 0.8,
  bundleBytes: 250 * 1024,
  initMs: 100,
  reportSeconds1M: 20,
  reportRssMb: 200,
};

const program = new Command()
  .option('--only <sections>', 'comma-separated: thumbnail,report,coldStart,start,pipeline,priority')
  .option('--start-runs <n>', 'local-mode starts of each kind (first, cached)', (v) => Number(v), 3)
  .option('--uploads <n>', 'uploads through local mode', (v) => Number(v), 200)
  .option('--photo <path>', 'also benchmark this real photo')
  .option('--report-sizes <list>', 'records per report run', '100000,1000000')
  .option('--backlog <n>', 'priority: normal thumbnail jobs queued first', (v) => Number(v), 500)
  .option('--high <n>', 'priority: high thumbnail jobs submitted after them, one at a time', (v) => Number(v), 10)
  .parse();
const opts = program.opts<{ only?: string; uploads: number; photo?: string; reportSizes: string; startRuns: number; backlog: number; high: number }>();
const want = (s: string) => !opts.only || opts.only.split(',').includes(s);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

/** Cold start: each function's bundle as synthesized, and its module-init time in a fresh node process. */
function coldStart(): Record<string, { bundleBytes: number; initMs: number }> {
  const synth = spawnSync(path.join(ROOT, 'node_modules/.bin/cdk'), ['synth', '--quiet', '-c', 'ephemeral=true'], { cwd: ROOT, encoding: 'utf8' });
  if (synth.status !== 0) throw new Error(`cdk synth failed: ${synth.stderr}`);
  const template = JSON.parse(fs.readFileSync(path.join(ROOT, 'cdk.out', 'Offload.template.json'), 'utf8'));
  const out: Record<string, { bundleBytes: number; initMs: number }> = {};
  for (const r of Object.values<any>(template.Resources)) {
    if (r.Type !== 'AWS::Lambda::Function') continue;
    const dir = path.join(ROOT, 'cdk.out', r.Metadata['aws:asset:path']);
    const env = Object.fromEntries(Object.entries<any>(r.Properties.Environment?.Variables ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : 'bench-placeholder']));
    const name = (env.POWERTOOLS_SERVICE_NAME ?? 'fn').replace(/^offload-/, '');
    // Minified JS only: sharp's/pdfkit's node_modules (native binaries, font data) excluded.
    const bundleBytes = fs.statSync(path.join(dir, 'index.js')).size;
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      const run = spawnSync(
        process.execPath,
        ['-e', `const t=process.hrtime.bigint();require(${JSON.stringify(path.join(dir, 'index.js'))});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`],
        { cwd: dir, env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', NODE_NO_WARNINGS: '1', ...env, NODE_OPTIONS: '' }, encoding: 'utf8' },
      );
      if (run.status !== 0) throw new Error(`${name}: init failed: ${run.stderr}`);
      times.push(Number(run.stdout));
    }
    out[name] = { bundleBytes, initMs: round(median(times)) };
  }
  return out;
}

interface StartRun {
  /** Spawn of `node --import tsx local/main.ts` to its state file (what `npm start` does, without npm's own start-up). */
  readyMs: number;
  /** local mode's own breakdown (its `[local] start:` line), in ms. */
  phases: Record<string, number>;
}

/** One local-mode start in a fresh process, until ready; then stopped. */
async function startOnce(cacheDir: string): Promise<StartRun> {
  const stateFile = path.join(os.tmpdir(), `offload-bench-state-${process.pid}-${Date.now()}.json`);
  const env = { ...process.env };
  delete env.AWS_ENDPOINT_URL;
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/main.ts', '--port', '0', '--state-file', stateFile, '--cache-dir', cacheDir], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  try {
    while (!fs.existsSync(stateFile)) {
      if (child.exitCode !== null) throw new Error(`local mode exited (${child.exitCode}):\n${out.slice(-3000)}`);
      if (Date.now() - t0 > 300_000) throw new Error(`local mode not ready after 5 min:\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const readyMs = Date.now() - t0;
    const line = out.split('\n').find((l) => l.startsWith('[local] start:')) ?? '';
    const phases: Record<string, number> = {};
    for (const m of line.matchAll(/(emulator|cloud assembly|bootstrap|deploy|discover|total) ([\d.]+) s/g)) phases[m[1].replace(' ', '')] = Number(m[2]) * 1000;
    return { readyMs, phases };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    fs.rmSync(stateFile, { force: true });
  }
}

/**
 * Local mode's start, `runs` times each: first start (an empty cache folder of its own: a
 * `cdk synth`) and cached start (the folder the first start filled), interleaved.
 */
async function localStart(runs: number) {
  const first: StartRun[] = [];
  const cached: StartRun[] = [];
  for (let i = 0; i < runs; i++) {
    // Inside the project: the bundles find host binaries (sharp) in its node_modules.
    const cacheDir = path.join(ROOT, '.offload', `bench-cache-${process.pid}-${i}`);
    try {
      first.push(await startOnce(cacheDir));
      cached.push(await startOnce(cacheDir));
    } finally {
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  }
  const summary = (xs: StartRun[]) => ({
    medianMs: median(xs.map((x) => x.readyMs)),
    runsMs: xs.map((x) => x.readyMs),
    phasesMedianMs: Object.fromEntries(Object.keys(xs[0].phases).map((k) => [k, median(xs.map((x) => x.phases[k] ?? 0))])),
  });
  return { runs, loadAverage: os.loadavg().map((l) => round(l, 2)), first: summary(first), cached: summary(cached) };
}

/** N uploads through local mode until all succeed, against the bare-sharp CPU bound of this machine. */
async function pipeline(n: number) {
  const cores = os.cpus().length;
  const photo = await fromRaw(await photoLikeRaw(1920, 1280, 7)).jpeg({ quality: 88 }).toBuffer();
  // Bare sharp, all cores busy (one image per core at a time): what the machine can do.
  await bareSharpThumbnails(photo);
  const bareStart = Date.now();
  const bareCount = cores * 8;
  await Promise.all(Array.from({ length: cores }, async () => {
    for (let i = 0; i < bareCount / cores; i++) await bareSharpThumbnails(photo);
  }));
  const bareImagesPerSecond = bareCount / ((Date.now() - bareStart) / 1000);
  const bareSingleMs = (Date.now() - bareStart) / bareCount * cores;

  const local = await startLocal({ port: 0, stateFile: null, log: () => undefined, context: { thumbnailMaxConcurrency: String(Math.max(2, cores)) } });
  try {
    const headers = { 'x-api-key': local.apiKey, 'content-type': 'application/json' };
    // Results arrive as a subscriber gets them: a queue on the completion topic, long-polled.
    // (Polling GET /jobs/{id} for every pending job would load the API function and the
    // emulator, which share the workers' cores, with hundreds of requests a second.)
    const aws = { endpoint: local.awsEndpoint, region: local.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
    const sqs = new SQSClient(aws);
    const subscriber = (await sqs.send(new CreateQueueCommand({ QueueName: `bench-pipeline-${process.pid}` }))).QueueUrl!;
    const subscriberArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: subscriber, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn;
    await new SNSClient(aws).send(
      new SubscribeCommand({ TopicArn: local.outputs.NotificationTopicArn, Protocol: 'sqs', Endpoint: subscriberArn, Attributes: { RawMessageDelivery: 'true' } }),
    );
    const started = new Map<string, number>();
    const t0 = Date.now();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < n) {
        next++;
        const s = Date.now();
        const res: any = await (await fetch(`${local.apiUrl}uploads`, { method: "POST", headers, body: JSON.stringify({ filename: "p.jpg", contentType: "image/jpeg", size: photo.length }) })).json();
        const put = await fetch(res.uploadUrl, { method: 'PUT', headers: res.headers, body: new Uint8Array(photo) });
        if (!put.ok) throw new Error(`upload failed: ${put.status}`);
        started.set(res.jobId, s);
        ids.push(res.jobId);
      }
    }));
    const latencies: number[] = [];
    let last = 0;
    const pending = new Set(ids);
    while (pending.size > 0) {
      if (Date.now() - t0 > 600_000) throw new Error(`${pending.size} jobs not done after 10 min`);
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: subscriber, MaxNumberOfMessages: 10, WaitTimeSeconds: 5 }));
      for (const m of got.Messages ?? []) {
        const note = JSON.parse(m.Body!) as { jobId: string; status: string; completedAt: string; error?: unknown };
        // At-least-once: a repeated notification of a job already counted is skipped.
        if (!pending.has(note.jobId)) continue;
        if (note.status !== 'succeeded') throw new Error(`job ${note.jobId} ${note.status}: ${JSON.stringify(note.error)}`);
        pending.delete(note.jobId);
        const done = Date.parse(note.completedAt);
        latencies.push(done - started.get(note.jobId)!);
        last = Math.max(last, done);
      }
      if (got.Messages?.length) {
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: subscriber, Entries: got.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      }
    }
    const imagesPerSecond = n / ((last - t0) / 1000);
    return {
      uploads: n,
      image: '1920x1280 JPEG',
      imagesPerSecond: round(imagesPerSecond, 2),
      p50Ms: pct(latencies, 50),
      p95Ms: pct(latencies, 95),
      bareSharpMsPerImage: round(bareSingleMs),
      cores,
      bareSharpImagesPerSecond: round(bareImagesPerSecond, 2),
      ratio: round(imagesPerSecond / bareImagesPerSecond, 2),
    };
  } finally {
    await local.stop();
  }
}

/**
 * Priority lanes in local mode: `backlog` normal thumbnail uploads queued first (presigned,
 * 8 at a time), then `high` high-priority ones (direct uploads, `?priority=high`), one after
 * another, each once the previous one started. A high job's time to start is its startedAt
 * minus the moment its request was sent; the normal lane's depth when each was sent shows the
 * backlog was still there.
 */
async function priorityLanes(backlog: number, highCount: number) {
  const cores = os.cpus().length;
  const photo = await fromRaw(await photoLikeRaw(1920, 1280, 7)).jpeg({ quality: 88 }).toBuffer();
  const local = await startLocal({ port: 0, stateFile: null, log: () => undefined, context: { thumbnailMaxConcurrency: String(Math.max(2, cores)) } });
  try {
    const headers = { 'x-api-key': local.apiKey };
    const aws = { endpoint: local.awsEndpoint, region: local.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
    const sqs = new SQSClient(aws);
    const depth = async () =>
      Number(
        (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: local.outputs.ThumbnailQueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes
          ?.ApproximateNumberOfMessages ?? 0,
      );
    const t0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < backlog) {
          next++;
          const res: any = await (
            await fetch(`${local.apiUrl}uploads`, {
              method: 'POST',
              headers: { ...headers, 'content-type': 'application/json' },
              body: JSON.stringify({ filename: 'normal.jpg', contentType: 'image/jpeg', size: photo.length }),
            })
          ).json();
          const put = await fetch(res.uploadUrl, { method: 'PUT', headers: res.headers, body: new Uint8Array(photo) });
          if (!put.ok) throw new Error(`upload failed: ${put.status}`);
        }
      }),
    );
    const queuedMs = Date.now() - t0;
    const runs: Array<{ timeToStartMs: number; normalQueued: number }> = [];
    for (let i = 0; i < highCount; i++) {
      const normalQueued = await depth();
      const sent = Date.now();
      const res = await fetch(`${local.apiUrl}uploads?priority=high&filename=high-${i}.jpg`, { method: 'POST', headers: { ...headers, 'content-type': 'image/jpeg' }, body: new Uint8Array(photo) });
      const body: any = await res.json();
      if (res.status !== 202) throw new Error(`high upload: ${res.status} ${JSON.stringify(body)}`);
      // Long-polls until the job is done; its startedAt (set by the worker's claim) gives the
      // time to start, however late this client hears of it.
      let job: any;
      do {
        if (Date.now() - sent > 120_000) throw new Error(`high job ${body.jobId} not finished after 2 min`);
        job = await (await fetch(`${local.apiUrl}jobs/${body.jobId}?waitSeconds=20`, { headers })).json();
        if (job.priority !== 'high') throw new Error(`job ${body.jobId} shows priority ${job.priority}`);
      } while (!isTerminal(job.status));
      if (job.status !== 'succeeded' || !job.startedAt) throw new Error(`high job ${body.jobId} ended ${job.status}`);
      runs.push({ timeToStartMs: Date.parse(job.startedAt) - sent, normalQueued });
    }
    const times = runs.map((r) => r.timeToStartMs);
    return {
      backlog,
      high: highCount,
      image: '1920x1280 JPEG',
      cores,
      backlogQueuedInMs: queuedMs,
      p50Ms: pct(times, 50),
      p95Ms: pct(times, 95),
      maxMs: Math.max(...times),
      timesMs: times,
      normalQueuedAtEachHigh: runs.map((r) => r.normalQueued),
      normalLaneConcurrency: Math.max(2, cores),
      highLaneConcurrency: 2 * Math.max(2, cores),
    };
  } finally {
    await local.stop();
  }
}

async function main() {
  const results: Record<string, unknown> = { machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: round(os.totalmem() / 2 ** 30), node: process.version, sharp: sharp.versions.sharp }, date: new Date().toISOString(), targets: TARGETS };
  const rows: string[][] = [];
  if (want('thumbnail')) {
    const t = await benchThumbnail({ photoPath: opts.photo });
    results.thumbnail = t;
    for (const i of t.images) rows.push([`thumbnail ${i.name}`, `${i.oursMs} ms (bare sharp ${i.bareSharpMs}, jimp ${i.jimpMs})`, `x${i.ratioVsSharp} vs sharp, ${i.ratioVsJimp}x faster than jimp`]);
  }
  if (want('report')) {
    const r = await benchReport(opts.reportSizes.split(',').map(Number));
    results.report = r;
    for (const x of r) rows.push([`report ${x.records.toLocaleString('en')} records`, `${x.seconds} s`, `peak RSS ${x.peakRssMb} MB`]);
  }
  if (want('coldStart')) {
    const c = coldStart();
    results.coldStart = c;
    for (const [name, x] of Object.entries(c)) rows.push([`cold start ${name}`, `${round(x.bundleBytes / 1024)} KB`, `init ${x.initMs} ms`]);
  }
  if (want('start')) {
    const st = await localStart(opts.startRuns);
    results.start = st;
    const phases = (p: Record<string, number>) =>
      Object.entries(p)
        .filter(([k]) => k !== 'total')
        .map(([k, v]) => `${k} ${round(v / 1000)}`)
        .join(', ');
    rows.push([`local mode start, first (cache cleared)`, `${round(st.first.medianMs / 1000)} s (median of ${st.runs})`, phases(st.first.phasesMedianMs)]);
    rows.push([`local mode start, cached`, `${round(st.cached.medianMs / 1000)} s (median of ${st.runs})`, phases(st.cached.phasesMedianMs)]);
  }
  if (want('pipeline')) {
    const p = await pipeline(opts.uploads);
    results.pipeline = p;
    rows.push([`pipeline ${p.uploads} uploads`, `${p.imagesPerSecond} images/s (p50 ${p.p50Ms} ms, p95 ${p.p95Ms} ms)`, `ratio ${p.ratio} of bare sharp on ${p.cores} cores (${p.bareSharpImagesPerSecond}/s)`]);
  }
  if (want('priority')) {
    const p = await priorityLanes(opts.backlog, opts.high);
    results.priority = p;
    rows.push([
      `priority: ${p.high} high uploads behind ${p.backlog} normal`,
      `time to start p95 ${p.p95Ms} ms (p50 ${p.p50Ms}, max ${p.maxMs})`,
      `normal lane still holding ${Math.min(...p.normalQueuedAtEachHigh)}-${Math.max(...p.normalQueuedAtEachHigh)} queued`,
    ]);
  }
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join('  '));
  console.log(`\nwrote bench/results/latest.json`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
