import * as path from 'node:path';
import type { Job } from '../api-client';
import type { CliContext } from '../context';
import { CliError, EXIT_FAILURE, EXIT_OK, UsageError, oneLine } from '../errors';
import { formatBytes } from '../output';
import { JobWatcher } from '../poll';
import { createProgress } from '../progress';
import { downloadTo } from '../transfer';
import { describeJob } from './status';
import { jobStatusText } from './upload';

export interface ReportOptions {
  from: string;
  to: string;
  format?: string;
  wait?: boolean;
  out?: string;
  json?: boolean;
  timeout?: number;
}

export const REPORT_FORMATS = ['csv', 'pdf'] as const;

/** `today`, `yesterday` or YYYY-MM-DD (UTC, as the API counts days). */
export function parseDay(value: string, now = new Date()): string {
  const v = value.trim().toLowerCase();
  if (v === 'today' || v === 'yesterday') {
    const d = new Date(now.getTime() - (v === 'yesterday' ? 86_400_000 : 0));
    return d.toISOString().slice(0, 10);
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) throw new UsageError(`${JSON.stringify(value)} is not a date: use YYYY-MM-DD, today or yesterday`);
  return v;
}

/** `csv,pdf` -> ['csv', 'pdf']; unknown formats are a usage error. */
export function parseFormats(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const formats = [...new Set(value.split(',').map((f) => f.trim().toLowerCase()).filter(Boolean))];
  const bad = formats.filter((f) => !(REPORT_FORMATS as readonly string[]).includes(f));
  if (formats.length === 0 || bad.length > 0) throw new UsageError(`--format takes csv, pdf or csv,pdf${bad.length ? ` (not ${bad.join(', ')})` : ''}`);
  return formats;
}

/** Where an output goes with --out. */
export function reportFileName(from: string, to: string, format: string): string {
  return `report-${from}-to-${to}.${format}`;
}

/** `offload report --from --to`: POST /reports; with --wait the job's progress; with --out the files. */
export async function report(ctx: CliContext, opts: ReportOptions): Promise<number> {
  const { term } = ctx;
  const from = parseDay(opts.from);
  const to = parseDay(opts.to);
  const formats = parseFormats(opts.format);
  const wait = Boolean(opts.wait || opts.out);
  const client = await ctx.api();

  const created = await client.createReport({ from, to, ...(formats ? { formats } : {}) });
  if (!wait) {
    if (opts.json) term.json(await client.getJob(created.jobId));
    else {
      term.out(created.jobId);
      term.err(`report queued; follow it with: offload status ${created.jobId}`);
    }
    return EXIT_OK;
  }

  const progress = createProgress(term, { nameWidth: 6 });
  term.err(`report ${created.jobId} (${from} to ${to}) queued`);
  const line = progress.add('report', { unit: 'rows', status: 'queued' });
  const watcher = new JobWatcher(
    client,
    (job) => {
      if (job.progress) line.update(job.progress.done, job.progress.total);
      line.status(jobStatusText(job));
    },
    // Long-polls of 5 s: the progress bar moves at least that often.
    { timeoutMs: (opts.timeout ?? 0) * 1000, waitSeconds: 5 },
  );
  let job: Job;
  try {
    job = await watcher.watch(created.jobId);
  } finally {
    progress.stop();
  }

  if (job.status === 'failed' || job.status === 'cancelled') {
    term.error(
      job.status === 'cancelled'
        ? `report job ${job.jobId} was cancelled`
        : `report job ${job.jobId} failed: ${job.error?.code ?? 'unknown'}: ${job.error?.message ?? ''}`.trimEnd(),
    );
    if (opts.json) term.json(job);
    return EXIT_FAILURE;
  }

  const files: string[] = [];
  if (opts.out) {
    const dir = path.resolve(ctx.cwd, opts.out);
    for (const output of job.outputs) {
      const file = path.join(dir, reportFileName(from, to, output.format));
      try {
        const bytes = await downloadTo(output.url, file);
        files.push(file);
        if (!opts.json) term.err(`wrote ${file} (${formatBytes(bytes)})`);
      } catch (err) {
        throw new CliError(`cannot download the ${output.format} output to ${file}: ${oneLine(err)}`);
      }
    }
  }

  if (opts.json) term.json(opts.out ? { ...job, files } : job);
  else if (opts.out) files.forEach((f) => term.out(f));
  else describeJob(term, job).forEach((l) => term.out(l));
  return EXIT_OK;
}
