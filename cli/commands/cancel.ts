import { ApiError, type Job } from '../api-client';
import { mapLimit } from '../concurrency';
import type { CliContext } from '../context';
import { EXIT_FAILURE, EXIT_OK, oneLine } from '../errors';

/**
 * `offload cancel <jobId...>`: `DELETE /jobs/{jobId}` for each. A job not started yet is
 * cancelled at once; a processing one is asked to stop (`cancelRequested`: its worker ends it
 * `cancelled`, unless the work finished first). Exit 1 if any id is unknown, finished already
 * (409) or unreachable.
 */
export async function cancel(ctx: CliContext, jobIds: string[], opts: { json?: boolean }): Promise<number> {
  const { term } = ctx;
  const client = await ctx.api();
  let exit = EXIT_OK;
  const results = await mapLimit(jobIds, 4, async (id) => {
    try {
      return await client.sdk.cancel(id);
    } catch (err) {
      exit = EXIT_FAILURE;
      term.error(`${id}: ${err instanceof ApiError ? `${err.code}: ${err.message}` : oneLine(err)}`);
      return undefined;
    }
  });
  const done = results.filter((j): j is Job => j !== undefined);
  if (opts.json) {
    term.json(done);
    return exit;
  }
  for (const job of done) {
    term.out(`${job.jobId}  ${job.status === 'cancelled' ? term.status('cancelled') : `${term.status(job.status)} (cancel requested: its worker stops it)`}`);
  }
  return exit;
}
