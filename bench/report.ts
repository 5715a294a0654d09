/**
 * Benchmark of the report core: buildReport over N synthetic records, CSV to a counting null
 * Writable plus the PDF.
 *
 * Every size runs in a FRESH child process (`node --import tsx bench/report.ts --child N`), so
 * that the peak RSS is that of one report run alone, not of the parent or of an earlier,
 * larger run. On Linux it is VmHWM from /proc/self/status: the high-water mark of this
 * process's own memory. (getrusage's ru_maxrss is not: Linux carries it over from the parent
 * across fork and exec, so after the thumbnail bench it read the parent's ~650 MB.) The child generates its records lazily (a generator:
 * they are never all in memory) and prints one JSON line on stdout.
 *
 * Targets (1,000,000 records on a 2-core machine): <= 20 s, peak RSS <= 200 MB, time linear in
 * the number of records (compare recordsPerSecond of 100k and 1M).
 *
 *   npx tsx bench/report.ts                 # default sizes 100k and 1M, prints JSON
 *   npx tsx bench/report.ts 10000 100000    # other sizes
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { buildReport, type UploadRecord } from '../job-types/report/core';

export interface ReportBenchResult {
  records: number;
  seconds: number;
  peakRssMb: number;
  csvBytes: number;
  pdfBytes: number;
  recordsPerSecond: number;
}

const FROM = '2024-01-01';
const TO = '2024-03-31'; // 91 days: the chart groups by week

const ERRORS: Array<[code: string, message: string]> = [
  ['corrupt_image', 'Input buffer has corrupt header'],
  ['unsupported_format', 'Input file contains unsupported image format'],
  ['image_too_large', 'Input image exceeds pixel limit'],
  ['retries_exhausted', 'Gave up after 3 attempts'],
  ['internal_error', 'Unexpected error, see logs'],
];
const NAMES = [
  'IMG_',
  'DSC_',
  'holiday photo ',
  'Screenshot 2024-01-01 at 10.00.',
  '猫の写真_',
  '🐶 dog ',
  'café_\u0301',
  'صورة_',
  'report, "final" ',
  '=cmd|calc ',
  '+1 ',
  '@home ',
];
const TYPES: Array<[contentType: string, ext: string]> = [
  ['image/jpeg', '.jpg'],
  ['image/jpeg', '.jpeg'],
  ['image/png', '.png'],
  ['image/webp', '.webp'],
  ['image/heic', '.heic'],
];
const FORMATS_OK = ['jpeg', 'webp'];

/**
 * N synthetic records with createdAt spread evenly over FROM..TO (ascending, like the GSI
 * query), ~90% succeeded, ~8% failed (several error codes), ~2% still pending; processing time
 * right-skewed (mostly 100-600 ms, a long tail to ~30 s). Deterministic (LCG).
 */
export function* syntheticRecords(n: number): Generator<UploadRecord> {
  const t0 = Date.parse(FROM + 'T00:00:00Z');
  const span = Date.parse(TO + 'T00:00:00Z') + 86_400_000 - t0;
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  for (let i = 0; i < n; i++) {
    const created = t0 + Math.floor((i / n) * span);
    const r = rnd();
    const [contentType, ext] = TYPES[i % TYPES.length];
    const bytes = 200_000 + Math.floor(rnd() * 8_000_000);
    const base: UploadRecord = {
      jobId: 'job_' + (1e12 + i * 7919).toString(36) + (i % 97).toString(36),
      filename: NAMES[i % NAMES.length] + i + ext,
      contentType,
      bytes,
      width: 4032,
      height: 3024,
      status: 'succeeded',
      createdAt: new Date(created).toISOString(),
    };
    if (r < 0.9) {
      const ms = Math.round(100 + 500 * rnd() + (rnd() < 0.05 ? 30_000 * rnd() * rnd() : 0));
      base.processingMs = ms;
      base.completedAt = new Date(created + ms).toISOString();
      base.outputBytes = Math.floor(bytes / 10);
      base.outputFormats = FORMATS_OK;
    } else if (r < 0.98) {
      const [code, message] = ERRORS[Math.floor(rnd() * rnd() * ERRORS.length)];
      base.status = 'failed';
      base.errorCode = code;
      base.errorMessage = message;
      base.processingMs = Math.round(50 + 300 * rnd());
      base.completedAt = new Date(created + base.processingMs).toISOString();
    } else {
      base.status = r < 0.99 ? 'queued' : 'awaiting_upload';
    }
    yield base;
  }
}

/** One run, in this process. Used by the child; callable directly for profiling. */
export async function runOnce(records: number): Promise<ReportBenchResult> {
  let csvBytes = 0;
  const nullSink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      csvBytes += chunk.length;
      cb();
    },
  });
  const t0 = process.hrtime.bigint();
  const r = await buildReport(syntheticRecords(records), {
    from: FROM,
    to: TO,
    formats: ['csv', 'pdf'],
    csv: nullSink,
    progressEvery: 10_000,
    onProgress: () => undefined,
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.rows !== records || r.summary.total !== records || csvBytes !== r.csvBytes) {
    throw new Error(`bench: inconsistent result (rows ${r.rows}, total ${r.summary.total}, csv ${csvBytes}/${r.csvBytes})`);
  }
  return {
    records,
    seconds: Math.round(seconds * 1000) / 1000,
    peakRssMb: Math.round((peakRssKb() / 1024) * 10) / 10,
    csvBytes,
    pdfBytes: r.pdf?.length ?? 0,
    recordsPerSecond: Math.round(records / seconds),
  };
}

/** Runs one size in a fresh child process and returns what it printed. */
function runChild(records: number): Promise<ReportBenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', __filename, '--child', String(records)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => (out += s));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench child (${records} records) exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as ReportBenchResult);
      } catch (err) {
        reject(new Error(`bench child (${records} records) printed no JSON: ${out} (${String(err)})`));
      }
    });
  });
}

export async function benchReport(sizes: number[] = [100_000, 1_000_000]): Promise<ReportBenchResult[]> {
  const results: ReportBenchResult[] = [];
  for (const n of sizes) results.push(await runChild(n)); // one at a time: the machine has 2 cores
  return results;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const childAt = args.indexOf('--child');
  const main = async () => {
    if (childAt >= 0) {
      process.stdout.write(JSON.stringify(await runOnce(Number(args[childAt + 1]))) + '\n');
    } else {
      const sizes = args.map(Number).filter((n) => Number.isInteger(n) && n >= 0);
      console.log(JSON.stringify(await benchReport(sizes.length > 0 ? sizes : undefined), null, 2));
    }
  };
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

/** Peak resident set size of this process in KiB (VmHWM on Linux; ru_maxrss elsewhere). */
function peakRssKb(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}
