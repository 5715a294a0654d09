/**
 * The pure core of report jobs (no AWS): aggregation of photo jobs, the streamed CSV and the
 * PDF summary. The report worker pages the jobs out of DynamoDB, maps each one to an
 * UploadRecord and hands the (async) iterable to buildReport.
 *
 * Memory stays flat in the number of records: the CSV is written in ~64 KB chunks with
 * backpressure and never held whole; the aggregator keeps fixed-size counters plus one
 * 8-byte slot per record that has a processing time (for exact percentiles: 8 MB per million
 * records).
 *
 * CSV encoding lives in ./report-csv, PDF rendering in ./report-pdf; everything is re-exported
 * from here, which is the module the handler imports.
 */
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { JOB_STATUSES } from '../../lambda/shared/contract';
import { csvHeaderLine, csvLine, type UploadRecord } from './csv';
import { renderPdf, type RenderPdfOptions } from './pdf';

export { CSV_COLUMNS, CSV_CONTENT_TYPE, csvCell, csvHeaderLine, csvLine } from './csv';
export type { CsvColumn, UploadRecord } from './csv';
export { PDF_CONTENT_TYPE, formatBytes, formatInt, renderPdf } from './pdf';
export type { RenderPdfOptions } from './pdf';

export interface ReportSummary {
  from: string;
  to: string;
  /** Every record fed in, including those whose createdAt falls outside from..to. */
  total: number;
  /** status -> count. Every job status is always present (zero-filled). */
  byStatus: Record<string, number>;
  /** Sum of UploadRecord.bytes (input sizes). */
  bytesIn: number;
  /** Sum of UploadRecord.outputBytes. */
  bytesOut: number;
  /** Output format -> number of JOBS producing it (a job counts once per format). */
  formats: Record<string, number>;
  /** Input contentType -> number of jobs; a missing contentType counts as "unknown". */
  inputTypes: Record<string, number>;
  /** EVERY UTC day from..to, in order, zero-filled. failures = records with status 'failed'. */
  perDay: Array<{ day: string; uploads: number; failures: number }>;
  /** Exact nearest-rank percentiles of processingMs over the records that have one. */
  latencyMs: { count: number; p50: number | null; p95: number | null; p99: number | null };
  /** Failed records by errorCode (missing -> "unknown"), top 5 by count (ties by code). */
  topFailures: Array<{ code: string; count: number; example?: string }>;
  /**
   * Records whose createdAt is outside from..to (or unparseable): counted in every total
   * above but in no perDay bucket. The worker queries by range, so this is normally 0.
   */
  outOfRange: number;
}

/** Label used for a missing contentType / errorCode. */
export const UNKNOWN_KEY = 'unknown';
/** Bucket that absorbs new keys once a counter holds MAX_DISTINCT_KEYS keys. */
export const OTHER_KEY = '(other)';
/** Distinct keys kept per counter (statuses, formats, input types, error codes). */
export const MAX_DISTINCT_KEYS = 1000;
const MAX_KEY_LENGTH = 100;
const MAX_EXAMPLE_LENGTH = 300;
const TOP_FAILURES = 5;
const DAY_MS = 86_400_000;
const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** 'YYYY-MM-DD' -> days since 1970-01-01 (UTC). Throws on anything else. */
export function parseDay(day: string): number {
  const m = typeof day === 'string' ? DAY_RE.exec(day) : null;
  if (m) {
    const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    // Reject 2024-02-30 and friends (Date.UTC would roll them over).
    if (new Date(ms).toISOString().slice(0, 10) === day) return ms / DAY_MS;
  }
  throw new RangeError(`invalid date ${JSON.stringify(day)}: expected YYYY-MM-DD`);
}

/** Days since 1970-01-01 -> 'YYYY-MM-DD'. */
export function formatDay(epochDay: number): string {
  return new Date(epochDay * DAY_MS).toISOString().slice(0, 10);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * The UTC day (days since epoch) of an ISO-8601 timestamp, or NaN.
 * Fast path without allocation for the canonical `YYYY-MM-DDTHH:mm:ss[.sss]Z` form (what
 * Date#toISOString writes); anything else (offsets, other forms) goes through Date.parse.
 */
export function utcDayOf(iso: string): number {
  if (typeof iso !== 'string') return NaN;
  const n = iso.length;
  if (
    n >= 20 &&
    iso.charCodeAt(n - 1) === 90 /* Z */ &&
    iso.charCodeAt(10) === 84 /* T */ &&
    iso.charCodeAt(4) === 45 &&
    iso.charCodeAt(7) === 45
  ) {
    const c0 = iso.charCodeAt(0), c1 = iso.charCodeAt(1), c2 = iso.charCodeAt(2), c3 = iso.charCodeAt(3);
    const c5 = iso.charCodeAt(5), c6 = iso.charCodeAt(6), c8 = iso.charCodeAt(8), c9 = iso.charCodeAt(9);
    if (isDigit(c0) && isDigit(c1) && isDigit(c2) && isDigit(c3) && isDigit(c5) && isDigit(c6) && isDigit(c8) && isDigit(c9)) {
      const y = (c0 - 48) * 1000 + (c1 - 48) * 100 + (c2 - 48) * 10 + (c3 - 48);
      const mo = (c5 - 48) * 10 + (c6 - 48);
      const d = (c8 - 48) * 10 + (c9 - 48);
      if (mo >= 1 && mo <= 12 && d >= 1 && d <= 31) return Date.UTC(y, mo - 1, d) / DAY_MS;
    }
  }
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? NaN : Math.floor(ms / DAY_MS);
}

/**
 * A string -> count map with a bound on distinct keys (memory stays flat whatever the input):
 * once full, new keys are counted under OTHER_KEY. Over-long keys are truncated.
 */
class BoundedCounter {
  readonly counts = new Map<string, number>();
  constructor(private readonly maxKeys = MAX_DISTINCT_KEYS) {}

  /** Adds n to key and returns the key actually used. */
  add(key: string, n = 1): string {
    const cur = this.counts.get(key);
    if (cur !== undefined) {
      this.counts.set(key, cur + n);
      return key;
    }
    if (key.length > MAX_KEY_LENGTH) key = key.slice(0, MAX_KEY_LENGTH);
    if (this.counts.size >= this.maxKeys && !this.counts.has(key)) key = OTHER_KEY;
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
    return key;
  }

  /** Entries sorted by count (desc), then key. */
  sorted(): Array<[string, number]> {
    return [...this.counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
}

/**
 * Nearest-rank percentile of an ascending-sorted array: the value at rank ceil(p/100 * n)
 * (1-based). For 1..100: p50 = 50, p95 = 95, p99 = 99. Null for an empty array.
 */
export function nearestRank(sorted: ArrayLike<number>, p: number): number | null {
  const n = sorted.length;
  if (n === 0) return null;
  // p * n is an exact integer for integer p; dividing by 100 is then correctly rounded.
  const rank = Math.min(n, Math.max(1, Math.ceil((p * n) / 100)));
  return sorted[rank - 1];
}

function nonNegativeNumber(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v !== Infinity; // NaN fails v >= 0
}

/**
 * Aggregates UploadRecords into a ReportSummary.
 *
 * Decisions:
 * - Day buckets are the UTC date of createdAt. Records outside from..to (or with an unparseable
 *   createdAt) count in every total but in no day bucket (no clamping), and are reported in
 *   `outOfRange`.
 * - A failure is status 'failed'.
 * - Percentiles are exact: every processingMs (finite, >= 0) goes into a growable
 *   Float64Array (8 bytes per record), sorted once in summary(); nearest-rank definition.
 * - `formats` counts jobs per output format (duplicates within one record count once).
 */
export class ReportAggregator {
  readonly from: string;
  readonly to: string;
  private readonly fromDay: number;
  private readonly days: number;
  private readonly uploads: Float64Array;
  private readonly failures: Float64Array;
  private total = 0;
  private outOfRange = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private readonly statuses = new BoundedCounter();
  private readonly formats = new BoundedCounter();
  private readonly inputTypes = new BoundedCounter();
  private readonly failureCodes = new BoundedCounter();
  private readonly examples = new Map<string, string>();
  private latencies = new Float64Array(1024);
  private latencyCount = 0;

  constructor(from: string, to: string) {
    const fromDay = parseDay(from);
    const toDay = parseDay(to);
    if (toDay < fromDay) throw new RangeError(`invalid range: from ${from} is after to ${to}`);
    this.from = from;
    this.to = to;
    this.fromDay = fromDay;
    this.days = toDay - fromDay + 1;
    this.uploads = new Float64Array(this.days);
    this.failures = new Float64Array(this.days);
    for (const s of JOB_STATUSES) this.statuses.counts.set(s, 0);
  }

  add(rec: UploadRecord): void {
    this.total++;
    const status = typeof rec.status === 'string' && rec.status !== '' ? rec.status : UNKNOWN_KEY;
    this.statuses.add(status);
    const failed = status === 'failed';

    const i = utcDayOf(rec.createdAt) - this.fromDay;
    if (i >= 0 && i < this.days) {
      this.uploads[i]++;
      if (failed) this.failures[i]++;
    } else {
      this.outOfRange++; // includes NaN (unparseable createdAt)
    }

    if (nonNegativeNumber(rec.bytes)) this.bytesIn += rec.bytes;
    if (nonNegativeNumber(rec.outputBytes)) this.bytesOut += rec.outputBytes;
    this.inputTypes.add(typeof rec.contentType === 'string' && rec.contentType !== '' ? rec.contentType : UNKNOWN_KEY);

    const fmts = rec.outputFormats;
    if (Array.isArray(fmts)) {
      for (let k = 0; k < fmts.length; k++) {
        const f = fmts[k];
        if (typeof f === 'string' && f !== '' && fmts.indexOf(f) === k) this.formats.add(f);
      }
    }

    if (failed) {
      const code = this.failureCodes.add(typeof rec.errorCode === 'string' && rec.errorCode !== '' ? rec.errorCode : UNKNOWN_KEY);
      if (!this.examples.has(code) && typeof rec.errorMessage === 'string' && rec.errorMessage !== '') {
        this.examples.set(code, rec.errorMessage.slice(0, MAX_EXAMPLE_LENGTH));
      }
    }

    const ms = rec.processingMs;
    if (nonNegativeNumber(ms)) {
      if (this.latencyCount === this.latencies.length) {
        const grown = new Float64Array(this.latencies.length * 2);
        grown.set(this.latencies);
        this.latencies = grown;
      }
      this.latencies[this.latencyCount++] = ms;
    }
  }

  summary(): ReportSummary {
    // Sorting the filled prefix in place is harmless: order does not matter for later adds.
    const sorted = this.latencies.subarray(0, this.latencyCount).sort();
    const perDay = new Array<{ day: string; uploads: number; failures: number }>(this.days);
    for (let i = 0; i < this.days; i++) {
      perDay[i] = { day: formatDay(this.fromDay + i), uploads: this.uploads[i], failures: this.failures[i] };
    }
    const byStatus: Record<string, number> = {};
    for (const s of JOB_STATUSES) byStatus[s] = this.statuses.counts.get(s) ?? 0;
    for (const [s, n] of this.statuses.sorted()) if (!(s in byStatus)) byStatus[s] = n;

    return {
      from: this.from,
      to: this.to,
      total: this.total,
      byStatus,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      formats: Object.fromEntries(this.formats.sorted()),
      inputTypes: Object.fromEntries(this.inputTypes.sorted()),
      perDay,
      latencyMs: {
        count: this.latencyCount,
        p50: nearestRank(sorted, 50),
        p95: nearestRank(sorted, 95),
        p99: nearestRank(sorted, 99),
      },
      topFailures: this.failureCodes
        .sorted()
        .slice(0, TOP_FAILURES)
        .map(([code, count]) => {
          const example = this.examples.get(code);
          return example === undefined ? { code, count } : { code, count, example };
        }),
      outOfRange: this.outOfRange,
    };
  }
}

export interface BuildReportOptions {
  from: string;
  to: string;
  formats: ('csv' | 'pdf')[];
  /**
   * Where the CSV goes (required when formats has 'csv'; untouched otherwise). Written in
   * ~64 KB Buffer chunks with backpressure, ended at the end, and destroyed with the error if
   * the report fails (so that e.g. an S3 multipart upload aborts instead of completing with a
   * truncated file).
   */
  csv?: NodeJS.WritableStream | Writable;
  /** Called with the number of records done every progressEvery records and once at the end. */
  onProgress?: (done: number) => void | Promise<void>;
  /** Default 1000. */
  progressEvery?: number;
  /** Passed to renderPdf. */
  pdfOptions?: RenderPdfOptions;
}

export interface BuildReportResult {
  summary: ReportSummary;
  /** The PDF, when formats has 'pdf'. */
  pdf?: Buffer;
  /** Records processed (= CSV data rows when formats has 'csv'). */
  rows: number;
  /** UTF-8 bytes written to opts.csv (header included); 0 without 'csv'. */
  csvBytes: number;
}

/** Pending CSV text is flushed as one chunk once it reaches this many UTF-16 code units. */
const CSV_CHUNK_CHARS = 64 * 1024;

type AnyWritable = NodeJS.WritableStream & { destroyed?: boolean; destroy?: (err?: Error) => unknown };

/** Resolves on 'drain'; rejects on 'error' or if the stream closes first (it would never drain). */
function waitDrain(out: AnyWritable): Promise<void> {
  if (out.destroyed) return Promise.reject(new Error('CSV stream destroyed'));
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new Error('CSV stream closed before drain'));
    };
    out.on('drain', onDrain);
    out.on('error', onError);
    out.on('close', onClose);
  });
}

function isAsyncIterable<T>(x: AsyncIterable<T> | Iterable<T>): x is AsyncIterable<T> {
  return typeof (x as AsyncIterable<T>)[Symbol.asyncIterator] === 'function';
}

/**
 * Streams the records once: aggregates them, writes the CSV (when asked) and renders the PDF
 * from the aggregates at the end (when asked).
 *
 * Progress: onProgress(n) after every progressEvery-th record (n = progressEvery,
 * 2*progressEvery, ...) and once at the end with the final count, unless that count was just
 * reported (so 0 records -> exactly one call, onProgress(0)). It is awaited, so a slow callback
 * slows the report rather than piling up. The final call comes after the CSV stream has
 * finished and before the PDF is rendered.
 */
export async function buildReport(
  records: AsyncIterable<UploadRecord> | Iterable<UploadRecord>,
  opts: BuildReportOptions,
): Promise<BuildReportResult> {
  const wantCsv = opts.formats.includes('csv');
  const wantPdf = opts.formats.includes('pdf');
  const out = wantCsv ? (opts.csv as AnyWritable | undefined) : undefined;
  try {
    if (wantCsv && !out) throw new TypeError('buildReport: formats include "csv" but no csv stream was given');
    const every = opts.progressEvery ?? 1000;
    if (!Number.isInteger(every) || every < 1) throw new RangeError(`progressEvery must be a positive integer, got ${every}`);
    const onProgress = opts.onProgress;
    const agg = new ReportAggregator(opts.from, opts.to);

    let pending = wantCsv ? csvHeaderLine() : '';
    let csvBytes = 0;
    let rows = 0;
    let nextProgress = every;
    let lastReported = -1;

    const flush = async (): Promise<void> => {
      const chunk = Buffer.from(pending, 'utf8');
      pending = '';
      csvBytes += chunk.length;
      if (!out!.write(chunk)) await waitDrain(out!);
    };
    const report = async (): Promise<void> => {
      nextProgress += every;
      lastReported = rows;
      if (onProgress) await onProgress(rows);
    };

    // `take` is synchronous and says when there is something to wait for (a chunk to write,
    // progress to report): a sync iterable is walked with for..of so that a million records
    // do not cost a million promise round-trips.
    const take = (rec: UploadRecord): boolean => {
      agg.add(rec);
      rows++;
      if (wantCsv) pending += csvLine(rec);
      return pending.length >= CSV_CHUNK_CHARS || rows === nextProgress;
    };
    const settle = async (): Promise<void> => {
      if (pending.length >= CSV_CHUNK_CHARS) await flush();
      if (rows === nextProgress) await report();
    };
    if (isAsyncIterable(records)) {
      for await (const rec of records) if (take(rec)) await settle();
    } else {
      for (const rec of records) if (take(rec)) await settle();
    }

    if (out) {
      if (pending.length > 0) await flush();
      out.end();
      await finished(out, { readable: false });
    }
    if (lastReported !== rows && onProgress) await onProgress(rows);

    const summary = agg.summary();
    const pdf = wantPdf ? await renderPdf(summary, opts.pdfOptions) : undefined;
    return pdf ? { summary, pdf, rows, csvBytes } : { summary, rows, csvBytes };
  } catch (err) {
    if (out && typeof out.destroy === 'function' && !out.destroyed) {
      out.destroy(err instanceof Error ? err : new Error(String(err)));
    }
    throw err;
  }
}
