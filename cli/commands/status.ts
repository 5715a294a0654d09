import { ApiError, type Job } from '../api-client';
import { mapLimit } from '../concurrency';
import type { CliContext } from '../context';
import { EXIT_FAILURE, EXIT_OK, oneLine } from '../errors';
import { formatBytes, formatTime, type Terminal } from '../output';

/** A job as a block of `label: value` lines, for people. */
export function describeJob(term: Terminal, job: Job): string[] {
  const lines: string[] = [];
  const field = (label: string, value: string | number | undefined) => {
    if (value !== undefined && value !== '') lines.push(`  ${`${label}:`.padEnd(11)} ${value}`);
  };
  lines.push(`${term.style('bold', job.jobId)}  ${job.type}  ${term.status(job.status)}`);
  field('created', formatTime(job.createdAt));
  field('updated', formatTime(job.updatedAt));
  if (job.completedAt) field('completed', formatTime(job.completedAt));
  field('attempts', job.attempts);
  if (job.input) {
    const dims = job.input.width && job.input.height ? `, ${job.input.width}x${job.input.height}` : '';
    field('input', `${job.input.filename} (${job.input.contentType ?? 'unknown type'}, ${formatBytes(job.input.bytes)}${dims})`);
  }
  if (job.params) field('range', `${job.params.from} to ${job.params.to} (${job.params.formats.join(', ')})`);
  if (job.progress) field('progress', `${job.progress.done}${job.progress.total !== undefined ? ` of ${job.progress.total}` : ''} rows`);
  if (job.error) field('error', term.style('red', `${job.error.code}: ${job.error.message}`));
  for (const o of job.outputs) {
    const dims = o.width && o.height ? ` ${o.width}x${o.height}` : '';
    lines.push(`  - ${o.name} (${o.format}${dims}, ${formatBytes(o.bytes)})`);
    lines.push(`    ${term.style('dim', o.url)}`);
  }
  return lines;
}

/** `offload status <jobId...>`: each job's state; exit 1 if any is unknown, unreachable or failed. */
export async function status(ctx: CliContext, jobIds: string[], opts: { json?: boolean }): Promise<number> {
  const { term } = ctx;
  const client = await ctx.api();
  let exit = EXIT_OK;
  const jobs = await mapLimit(jobIds, 4, async (id) => {
    try {
      return await client.getJob(id);
    } catch (err) {
      exit = EXIT_FAILURE;
      term.error(`${id}: ${err instanceof ApiError ? `${err.code}: ${err.message}` : oneLine(err)}`);
      return undefined;
    }
  });
  const found = jobs.filter((j): j is Job => j !== undefined);
  if (found.some((j) => j.status === 'failed')) exit = EXIT_FAILURE;
  if (opts.json) {
    term.json(found);
    return exit;
  }
  found.forEach((job, i) => {
    if (i > 0) term.out();
    for (const line of describeJob(term, job)) term.out(line);
  });
  return exit;
}
