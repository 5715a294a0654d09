import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApiError, type Job } from '../api-client';
import type { JobOutput } from '../../lambda/shared/model';
import { mapLimit } from '../concurrency';
import { contentTypeFor } from '../content-type';
import type { CliContext } from '../context';
import { EXIT_FAILURE, EXIT_OK, oneLine } from '../errors';
import { expandInputs } from '../files';
import { formatTable } from '../output';
import { JobWatcher } from '../poll';
import { createProgress, type ProgressLine } from '../progress';
import { putFile } from '../transfer';

export interface UploadOptions {
  wait?: boolean;
  concurrency: number;
  json?: boolean;
  /** Seconds to wait for each job with --wait (0 = no limit). */
  timeout?: number;
}

interface FileResult {
  file: string;
  jobId?: string;
  job?: Job;
  /** Why there is no (terminal) job: the API refused, the PUT failed, polling gave up. */
  error?: string;
}

/** What a job's line says while it is watched. */
export function jobStatusText(job: Job): string {
  if (job.status === 'succeeded') return `succeeded: ${job.outputs.length} output${job.outputs.length === 1 ? '' : 's'}`;
  if (job.status === 'failed') return `failed: ${job.error?.code ?? 'unknown error'}`;
  if (job.progress) return `${job.status} (${job.progress.done}${job.progress.total ? `/${job.progress.total}` : ''})`;
  return job.attempts > 1 ? `${job.status} (attempt ${job.attempts})` : job.status;
}

/** `6 outputs (jpeg, webp): small 160x120, medium 640x480, large 1280x960`. */
export function summarizeOutputs(outputs: JobOutput[]): string {
  if (outputs.length === 0) return 'no outputs';
  const sizes = new Map<string, string>();
  for (const o of outputs) if (!sizes.has(o.name)) sizes.set(o.name, o.width && o.height ? `${o.name} ${o.width}x${o.height}` : o.name);
  const formats = [...new Set(outputs.map((o) => o.format))].join(', ');
  return `${outputs.length} output${outputs.length === 1 ? '' : 's'} (${formats}): ${[...sizes.values()].join(', ')}`;
}

const describeError = (err: unknown): string => (err instanceof ApiError ? `${err.code}: ${err.message}` : oneLine(err));

/**
 * `offload upload <files or globs...>`: the presigned flow per file (POST /uploads, then PUT
 * the file from disk with exactly the returned headers), `--concurrency` at once, a byte
 * progress bar per file; with `--wait`, each job is watched until it is terminal.
 */
export async function upload(ctx: CliContext, args: string[], opts: UploadOptions): Promise<number> {
  const { term } = ctx;
  const { files, errors } = expandInputs(args, ctx.cwd);
  for (const e of errors) term.error(e);
  if (files.length === 0) return EXIT_FAILURE;

  const client = await ctx.api();
  const progress = createProgress(term, { nameWidth: Math.min(32, Math.max(...files.map((f) => f.length))) });
  const lines = new Map<string, ProgressLine>();
  const watcher = new JobWatcher(client, (job) => lines.get(job.jobId)?.status(jobStatusText(job)), {
    concurrency: Math.max(2, opts.concurrency),
    timeoutMs: (opts.timeout ?? 0) * 1000,
  });

  const watching: Promise<void>[] = [];
  const fail = (result: FileResult, line: ProgressLine | undefined, err: unknown) => {
    result.error = describeError(err);
    line?.status(`failed: ${err instanceof ApiError ? err.code : 'error'}`);
    progress.log(`offload: ${result.file}: ${result.error}`);
  };

  const results: FileResult[] = await mapLimit(files, opts.concurrency, async (file) => {
    const result: FileResult = { file };
    let line: ProgressLine | undefined;
    try {
      const { size } = await fs.promises.stat(path.resolve(ctx.cwd, file));
      line = progress.add(file, { total: size, unit: 'bytes', status: 'starting' });
      const created = await client.createUpload({ filename: path.basename(file), contentType: contentTypeFor(file), size });
      result.jobId = created.jobId;
      lines.set(created.jobId, line);
      line.status('uploading');
      await putFile(created.uploadUrl, created.headers, path.resolve(ctx.cwd, file), (sent) => line!.update(sent));
      line.update(size);
      line.status(opts.wait ? 'uploaded, waiting' : `uploaded as job ${created.jobId}`);
      // Watched in the background: the upload slot is free for the next file at once.
      if (opts.wait) watching.push(watcher.watch(created.jobId).then((job) => void (result.job = job), (err) => fail(result, line, err)));
    } catch (err) {
      fail(result, line, err);
    }
    return result;
  });
  await Promise.all(watching);
  progress.stop();

  // Without --wait, --json still prints job objects: each job as it is right after its upload.
  if (opts.json && !opts.wait) {
    await mapLimit(results, opts.concurrency, async (r) => {
      if (!r.jobId || r.error) return;
      try {
        r.job = await client.getJob(r.jobId);
      } catch (err) {
        r.error = describeError(err);
        term.error(`${r.file}: ${r.error}`);
      }
    });
  }

  let exit = errors.length > 0 ? EXIT_FAILURE : EXIT_OK;
  for (const r of results) {
    if (r.error) exit = EXIT_FAILURE;
    if (r.job?.status === 'failed') {
      exit = EXIT_FAILURE;
      term.error(`${r.file}: job ${r.job.jobId} failed: ${r.job.error?.code ?? 'unknown'}: ${r.job.error?.message ?? ''}`.trimEnd());
    }
    if (r.job?.status === 'cancelled') {
      exit = EXIT_FAILURE;
      term.error(`${r.file}: job ${r.job.jobId} was cancelled`);
    }
  }

  if (opts.json) {
    term.json(results.filter((r) => r.job).map((r) => r.job));
    return exit;
  }
  const rows = results
    .filter((r) => r.jobId)
    .map((r) => {
      const job = r.job;
      const status = job ? term.status(job.status) : r.error ? term.status('failed') : 'uploaded';
      let detail = r.error ?? '';
      if (job?.status === 'succeeded') {
        detail = summarizeOutputs(job.outputs);
      } else if (job?.status === 'failed') {
        detail = `${job.error?.code}: ${job.error?.message}`;
      }
      return [r.file, r.jobId!, status, detail];
    });
  if (rows.length > 0) {
    term.out(formatTable([{ header: 'FILE', maxWidth: 40 }, { header: 'JOB ID' }, { header: 'STATUS' }, { header: 'DETAIL', maxWidth: 100 }], rows));
  }
  return exit;
}
