import type { Logger } from '@aws-lambda-powertools/logger';
import { errorMessage, isPermanent } from './errors';
import type { JobsRepo, TerminalPatch } from './jobs-repo';
import type { JobRecord, StoredOutput, ThumbnailInput } from './model';
import type { Notifier } from './notifier';

export type RunLogger = Pick<Logger, 'info' | 'warn' | 'error'>;

export interface RunOptions {
  jobId: string;
  /** Identifies this attempt (message id + receive count): the lease owner. */
  owner: string;
  /** ApproximateReceiveCount of the message carrying the job. */
  receiveCount: number;
  /** The queue's maxReceiveCount: the last receive before the message goes to the DLQ. */
  maxReceiveCount: number;
  /** How long the claim holds: the worker's timeout. */
  leaseMs: number;
  /** Input facts known before processing (e.g. the object's size from the S3 event). */
  claimInput?: Partial<ThumbnailInput>;
}

export interface WorkResult {
  outputs: StoredOutput[];
  input?: ThumbnailInput;
}

export type RunOutcome = 'succeeded' | 'failed' | 'duplicate' | 'missing';

/** Retry the message later: the job is held by a live invocation, or its notification is in flight. */
export class RetryLaterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetryLaterError';
  }
}

/**
 * The life of one job attempt, shared by every worker:
 * claim (conditional) -> work -> terminal write (conditional on the lease) -> notification.
 *
 * - A duplicate delivery of a finished job does nothing (and re-sends the notification only
 *   if the invocation that finished it died before sending it).
 * - A permanent error (bad input) fails the job at once; the message is acknowledged.
 * - A transient error gives the job back (`queued`) and rethrows, so the batch response
 *   reports the record and SQS delivers it again; on the last allowed receive the job fails
 *   with `retries_exhausted` and the rethrow sends the message on to the DLQ, from where it
 *   can be redriven (the claim accepts a `retries_exhausted` job again).
 */
export async function runJob(
  deps: { repo: JobsRepo; notifier: Notifier; logger: RunLogger },
  opts: RunOptions,
  work: (job: JobRecord) => Promise<WorkResult>,
): Promise<RunOutcome> {
  const { repo, logger } = deps;
  const claim = await repo.claim(opts.jobId, opts.owner, opts.leaseMs, opts.claimInput);
  if (!claim.claimed) {
    const job = claim.job;
    if (!job) {
      logger.warn('no such job; message dropped', { jobId: opts.jobId });
      return 'missing';
    }
    if (job.status === 'succeeded' || job.status === 'failed') {
      if (!job.notifiedAt) {
        const age = Date.now() - Date.parse(job.completedAt ?? job.updatedAt);
        if (age < opts.leaseMs) throw new RetryLaterError(`job ${job.jobId} just finished; its notification is in flight`);
        await notify(deps, job);
      }
      logger.info('duplicate delivery of a finished job; acknowledged', { jobId: job.jobId, status: job.status });
      return 'duplicate';
    }
    throw new RetryLaterError(`job ${job.jobId} is ${job.status} (held by another invocation)`);
  }

  let patch: TerminalPatch;
  let transient: unknown;
  try {
    const result = await work(claim.job);
    patch = { status: 'succeeded', outputs: result.outputs, input: result.input };
  } catch (err) {
    if (isPermanent(err)) {
      logger.warn('job failed permanently', { jobId: opts.jobId, code: err.code, reason: err.message });
      patch = { status: 'failed', error: { code: err.code, message: err.message } };
    } else if (opts.receiveCount >= opts.maxReceiveCount) {
      logger.error('job failed on its last attempt', { jobId: opts.jobId, reason: errorMessage(err), attempts: claim.job.attempts });
      patch = {
        status: 'failed',
        error: { code: 'retries_exhausted', message: `gave up after ${opts.receiveCount} attempts: ${errorMessage(err)}` },
      };
      transient = err;
    } else {
      logger.warn('transient failure; will be retried', { jobId: opts.jobId, reason: errorMessage(err), receiveCount: opts.receiveCount });
      await repo.release(opts.jobId, opts.owner, { code: 'transient', message: errorMessage(err) });
      throw err;
    }
  }

  // startedAt never changes once set (the first claim sets it), so the claimed record's is the job's.
  const finished = await repo.finish(opts.jobId, opts.owner, { ...patch, startedAt: claim.job.startedAt });
  if (!finished) throw new RetryLaterError(`lost the lease on job ${opts.jobId} before finishing`);
  await notify(deps, finished);
  if (transient !== undefined) throw transient;
  return finished.status as 'succeeded' | 'failed';
}

/** Publishes the completion notification of a terminal job, then records that it was sent. */
export async function notify(deps: { repo: JobsRepo; notifier: Notifier }, job: JobRecord): Promise<void> {
  await deps.notifier.publish(job);
  await deps.repo.markNotified(job.jobId, job.completedAt!);
}
