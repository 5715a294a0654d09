import type { Job } from '../api-client';
import type { CliContext } from '../context';
import { EXIT_OK } from '../errors';
import { formatTable, formatTime, type Terminal } from '../output';

export interface JobsOptions {
  type?: string;
  status?: string;
  limit: number;
  json?: boolean;
}

/** The API's page size limit. */
const PAGE_MAX = 100;

/** What a job is about, in one cell: the file of a thumbnail job, the range of a report. */
export function jobSubject(job: Job): string {
  if (job.type === 'thumbnail') return job.input?.filename ?? '';
  return job.params ? `${job.params.from}..${job.params.to}` : '';
}

export function jobsTable(term: Terminal, jobs: Job[]): string {
  return formatTable(
    [{ header: 'JOB ID' }, { header: 'TYPE' }, { header: 'STATUS' }, { header: 'CREATED' }, { header: 'SUBJECT', maxWidth: 40 }, { header: 'RESULT', maxWidth: 60 }],
    jobs.map((j) => [
      j.jobId,
      j.type,
      term.status(j.status),
      formatTime(j.createdAt),
      jobSubject(j),
      j.error ? `${j.error.code}: ${j.error.message}` : j.outputs.length ? `${j.outputs.length} output${j.outputs.length === 1 ? '' : 's'}` : '',
    ]),
  );
}

/** `offload jobs`: newest first, following nextCursor until --limit jobs are shown. */
export async function jobs(ctx: CliContext, opts: JobsOptions): Promise<number> {
  const client = await ctx.api();
  const found: Job[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listJobs({ type: opts.type, status: opts.status, limit: Math.min(PAGE_MAX, opts.limit - found.length), cursor });
    found.push(...page.jobs.slice(0, opts.limit - found.length));
    cursor = page.nextCursor ?? undefined;
  } while (cursor && found.length < opts.limit);

  if (opts.json) ctx.term.json(found);
  else if (found.length === 0) ctx.term.err('no jobs');
  else ctx.term.out(jobsTable(ctx.term, found));
  return EXIT_OK;
}
