import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as z from 'zod/mini';
import { docClient, s3Client, sqsClient } from './clients';
import { isJobId, isTerminal, PLATFORM_ERROR_CODES } from './contract';
import { BaseEnv, int, json, parseEnv, str } from './env';
import { errorMessage, isPermanent, PermanentJobError } from './errors';
import { parseSettings, resultsPrefixOf, type CoreSettings, type JobTypeDefinition, type MessageJob } from './job-type';
import { JobsRepo, type TerminalPatch } from './jobs-repo';
import type { JobProgress, JobRecord, StoredOutput } from './model';

export type WorkLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/** What a type's handler gets for one job. */
export interface WorkContext<Input, Settings> {
  job: JobRecord;
  /** The job's input as the type's schema accepted it (plus what the platform recorded, e.g. an upload's key). */
  input: Input;
  settings: Settings & CoreSettings;
  /** What the queue message said about this job (e.g. the bucket of an S3 event). */
  message: MessageJob;
  /**
   * Aborted shortly before the invocation's time runs out, or when the job is cancelled
   * (`DELETE /jobs/{jobId}`; its reason is then a JobCancelledError): check it between steps.
   */
  signal: AbortSignal;
  logger: WorkLogger;
  metrics: Pick<Metrics, 'addMetric'>;
  /** Records progress; writes at most once a second (the last call of a burst is written when the job finishes). */
  progress(done: number, total?: number): Promise<void>;
  /** Stores one output in the results bucket under the job's prefix. */
  putOutput(file: string, body: Buffer | Uint8Array | string, meta: Omit<StoredOutput, 'key' | 'bytes'> & { bytes?: number }): Promise<StoredOutput>;
  /** The results bucket key of a file of this job (for outputs a handler streams itself). */
  outputKey(file: string): string;
  resultsBucket: string;
}

export interface WorkResult {
  outputs: StoredOutput[];
  /** Replaces the job's input (facts the worker learnt about it, e.g. an image's dimensions). */
  input?: Record<string, unknown>;
}

export type WorkHandler<Input, Settings> = (ctx: WorkContext<Input, Settings>) => Promise<WorkResult>;

export type RunOutcome = 'succeeded' | 'failed' | 'cancelled' | 'duplicate' | 'missing';

/** The reason of a work signal aborted because the job was cancelled. */
export class JobCancelledError extends Error {
  constructor(jobId: string) {
    super(`job ${jobId} was cancelled`);
    this.name = 'JobCancelledError';
  }
}

/** How often a worker reads its job's `cancelRequested` while the work runs (the first read after one interval). */
export const CANCEL_POLL_MS = 1500;

/** Retry the message later: the job is held by a live invocation. */
export class RetryLaterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetryLaterError';
  }
}

/** What every worker reads from its environment. */
export const WorkerEnv = z.extend(BaseEnv, {
  JOB_TYPE: str(),
  RESULTS_BUCKET: str(),
  /** The type's two lanes: its normal and its high-priority queue (both feed this worker). */
  QUEUE_URL: str(),
  HIGH_QUEUE_URL: str(),
  /** The type's settings, core and own, as the stack resolved them. */
  JOB_SETTINGS: json(z.record(z.string(), z.unknown())),
  /** The queue's visibility timeout (6 x the worker timeout). */
  VISIBILITY_TIMEOUT_SECONDS: int(),
});

/** Ports of the job runner (fakes in unit tests). */
export interface RunnerDeps {
  repo: Pick<JobsRepo, 'claim' | 'finish' | 'release' | 'progress' | 'create' | 'isCancelRequested'>;
  logger: WorkLogger;
  now(): number;
}

export interface RunOptions {
  message: MessageJob;
  /** Identifies this attempt (message id + receive count): the lease owner. */
  owner: string;
  receiveCount: number;
  settings: CoreSettings;
  visibilityTimeoutSeconds: number;
  /** Milliseconds left in the invocation (the lease never outlives it). */
  remainingMs(): number;
  /** Aborted when the invocation is about to time out (the work's signal follows it). */
  signal?: AbortSignal;
  /** How often to read the job's `cancelRequested` while the work runs (default CANCEL_POLL_MS). */
  cancelPollMs?: number;
}

/**
 * The life of one job attempt, the same for every type:
 * claim (conditional) -> work -> terminal write (conditional on the lease).
 *
 * The terminal write is the last thing the worker does: notifications fan out from the
 * table's change stream (the outbox), so no worker carries notification code.
 * - A duplicate delivery of a finished job is acknowledged without work.
 * - A permanent error (bad input) fails the job at once; the message is acknowledged.
 * - A transient error gives the job back (`queued`) and rethrows, so the batch response
 *   reports the record and SQS delivers it again (after the backoff the caller sets); on the
 *   last allowed receive the job fails with `retries_exhausted` and the rethrow sends the
 *   message on to the DLQ, from where it can be redriven (a claim accepts such a job again).
 * - Cancellation: a `cancelled` job is never claimed (its message is acknowledged like a
 *   duplicate's). While the work runs, the job's `cancelRequested` is read every
 *   `cancelPollMs` (a consistent GetItem of one attribute, the first after one interval, so
 *   work shorter than that costs no read); once set, the work's signal is aborted, and work
 *   that then throws ends the job `cancelled`. Work that returns first ends it `succeeded`:
 *   one terminal write, conditional on the lease, so never both. A job claimed with
 *   `cancelRequested` already set (its worker died, or it was released) ends `cancelled`
 *   without work.
 */
export async function runJob<Input, Settings>(
  deps: RunnerDeps,
  opts: RunOptions,
  work: (job: JobRecord, progress: (p: JobProgress) => Promise<void>, signal: AbortSignal) => Promise<WorkResult>,
): Promise<RunOutcome> {
  const { repo, logger } = deps;
  const { jobId } = opts.message;
  const s = opts.settings;
  const leaseMs = s.timeoutSeconds * 1000;
  // Once the lease is out, every remaining delivery of the message may still come, each after
  // a visibility timeout (a handled failure releases the job and sets a new deadline): this
  // receive's own timeout and one per receive left (none on the last allowed one). Twice
  // that: a message that is visible again still waits its turn behind a backlog.
  const receivesLeft = Math.max(0, s.maxReceiveCount - opts.receiveCount);
  const graceMs = 2 * (receivesLeft + 1) * opts.visibilityTimeoutSeconds * 1000;
  // After a release the message comes back after its backoff (at most the cap), then as above.
  const releasedMs = s.retryMaxSeconds * 1000 + graceMs;
  const claim = await repo.claim(jobId, opts.owner, leaseMs, graceMs, opts.message.claimInput);
  if (!claim.claimed) {
    const job = claim.job;
    if (!job) {
      logger.warn('no such job; message dropped', { jobId });
      return 'missing';
    }
    if (isTerminal(job.status)) {
      logger.info('duplicate delivery of a finished job; acknowledged', { jobId, status: job.status });
      return 'duplicate';
    }
    throw new RetryLaterError(`job ${jobId} is ${job.status} (held by another invocation)`);
  }

  let patch: TerminalPatch;
  let transient: unknown;
  const cancel = new AbortController();
  const stopWatching = claim.job.cancelRequested ? async () => undefined : watchCancel(deps, jobId, cancel, opts.cancelPollMs ?? CANCEL_POLL_MS);
  const signal = opts.signal ? AbortSignal.any([opts.signal, cancel.signal]) : cancel.signal;
  try {
    if (claim.job.cancelRequested) {
      cancel.abort(new JobCancelledError(jobId));
      throw cancel.signal.reason;
    }
    const result = await work(claim.job, (p) => repo.progress(jobId, opts.owner, p), signal);
    patch = { status: 'succeeded', outputs: result.outputs, input: result.input };
  } catch (err) {
    if (cancel.signal.aborted) {
      logger.info('job cancelled', { jobId, reason: errorMessage(err) });
      patch = { status: 'cancelled' };
    } else if (isPermanent(err)) {
      logger.warn('job failed permanently', { jobId, code: err.code, reason: err.message });
      patch = { status: 'failed', error: { code: err.code, message: err.message } };
    } else if (opts.receiveCount >= s.maxReceiveCount) {
      logger.error('job failed on its last attempt', { jobId, reason: errorMessage(err), attempts: claim.job.attempts });
      patch = {
        status: 'failed',
        error: { code: PLATFORM_ERROR_CODES.retriesExhausted, message: `gave up after ${opts.receiveCount} attempts: ${errorMessage(err)}` },
      };
      transient = err;
    } else {
      logger.warn('transient failure; will be retried', { jobId, reason: errorMessage(err), receiveCount: opts.receiveCount });
      await repo.release(jobId, opts.owner, { code: 'transient', message: errorMessage(err) }, releasedMs);
      throw err;
    }
  } finally {
    // No read of the job is in flight once the outcome is written (the terminal write stays the last call).
    await stopWatching();
  }

  // startedAt never changes once set (the first claim sets it), so the claimed record's is the job's.
  const finished = await repo.finish(jobId, opts.owner, { ...patch, startedAt: claim.job.startedAt });
  if (!finished) throw new RetryLaterError(`lost the lease on job ${jobId} before finishing`);
  if (transient !== undefined) throw transient;
  return finished.status as 'succeeded' | 'failed' | 'cancelled';
}

/**
 * Reads the job's `cancelRequested` every `intervalMs` until stopped; aborts `cancel` (with a
 * JobCancelledError) once it is set. A failed read is logged and tried again next time. The
 * returned stop resolves once no read is in flight.
 */
function watchCancel(deps: RunnerDeps, jobId: string, cancel: AbortController, intervalMs: number): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let reading: Promise<void> = Promise.resolve();
  const tick = async (): Promise<void> => {
    try {
      if (await deps.repo.isCancelRequested(jobId)) {
        if (!stopped) cancel.abort(new JobCancelledError(jobId));
        return;
      }
    } catch (err) {
      deps.logger.warn('could not read whether the job was cancelled', { jobId, reason: errorMessage(err) });
    }
    if (!stopped) schedule();
  };
  const schedule = () => {
    timer = setTimeout(() => {
      reading = tick();
    }, intervalMs);
  };
  schedule();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await reading;
  };
}

/**
 * Seconds until a failed message comes back: base x 2^(receives-1), capped, with full
 * jitter (AWS's "exponential backoff and jitter"), within SQS's 0..43200.
 */
export function backoffSeconds(receiveCount: number, base: number, cap: number, random: () => number = Math.random): number {
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, receiveCount - 1));
  return Math.max(0, Math.min(43200, Math.round(ceiling * random())));
}

/**
 * The default message of a JSON-input type, as the API sends it: exactly `{ "jobId", "type" }`
 * with this type's name. Anything else is poison (it fails its record and reaches the DLQ).
 */
export function jsonMessageJobs(body: string, type: string): MessageJob[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Error('message body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('message body is not a JSON object');
  const { jobId, type: named, ...rest } = parsed as Record<string, unknown>;
  if (!isJobId(jobId)) throw new Error('message body names no job id ({ "jobId": "<uuid>", "type": "..." })');
  if (named !== type) throw new Error(`message body is not a ${type} job message (type ${JSON.stringify(named)})`);
  const extra = Object.keys(rest);
  if (extra.length) throw new Error(`message body has unknown field(s): ${extra.slice(0, 5).join(', ')}`);
  return [{ jobId }];
}

/**
 * The URL of the queue a record came from (its lane), among the worker's queues: the one
 * whose name (the URL's last segment) is the event source ARN's last field. The first when
 * none matches (the backoff is then the queue's own visibility timeout, as on a failed call).
 */
export function queueUrlOf(eventSourceArn: string | undefined, urls: readonly string[]): string {
  const name = (eventSourceArn ?? '').split(':').pop();
  return urls.find((u) => u.split('/').pop() === name) ?? urls[0];
}

/** ApproximateReceiveCount of an SQS record (1 on the first delivery). */
export function receiveCount(record: SQSRecord): number {
  const n = Number(record.attributes?.ApproximateReceiveCount ?? '1');
  return Number.isFinite(n) && n > 0 ? n : 1;
}

/**
 * A type's Lambda handler: the generic worker around the type's own work. It owns message
 * parsing (poison messages fail their record and reach the DLQ), claim, lease, finish,
 * retry backoff, progress, metrics and logging; the type's handler only does the work.
 */
export function createWorker<Input, Settings extends Record<string, unknown>>(
  definition: JobTypeDefinition<Input & Record<string, unknown>, Settings>,
  work: WorkHandler<Input, Settings>,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const env = parseEnv(WorkerEnv);
  if (env.JOB_TYPE !== definition.name) throw new Error(`this worker runs ${definition.name} jobs, but JOB_TYPE is ${env.JOB_TYPE}`);
  const settings = parseSettings(definition, env.JOB_SETTINGS);
  const serviceName = `offload-${definition.name}`;
  const logger = new Logger({ serviceName });
  const metrics = new Metrics({ serviceName, namespace: 'offload', defaultDimensions: { jobType: definition.name } });
  const repo = new JobsRepo(docClient(), env.JOBS_TABLE, env.JOB_TTL_DAYS);
  const processor = new BatchProcessor(EventType.SQS);
  const messageJobs = definition.messageJobs ?? ((body: string) => jsonMessageJobs(body, definition.name));
  const prefix = resultsPrefixOf(definition);
  let context: Context | undefined;

  const handleRecord = async (record: SQSRecord): Promise<void> => {
    let jobs: MessageJob[];
    try {
      jobs = messageJobs(record.body);
    } catch (err) {
      // A poison message: failing it lets the queue's redrive policy move it to the DLQ.
      logger.error('malformed message', { messageId: record.messageId, reason: errorMessage(err) });
      metrics.addMetric('malformedMessages', MetricUnit.Count, 1);
      throw err;
    }
    try {
      for (const message of jobs) await handleJob(record, message);
    } catch (err) {
      if (!(err instanceof RetryLaterError) && receiveCount(record) < settings.maxReceiveCount) await backoff(record);
      throw err;
    }
  };

  const backoff = async (record: SQSRecord): Promise<void> => {
    const seconds = backoffSeconds(receiveCount(record), settings.retryBaseSeconds, settings.retryMaxSeconds);
    try {
      await sqsClient().send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrlOf(record.eventSourceARN, [env.QUEUE_URL, env.HIGH_QUEUE_URL]),
          ReceiptHandle: record.receiptHandle,
          VisibilityTimeout: seconds,
        }),
      );
    } catch (err) {
      // The message then comes back after the queue's visibility timeout instead.
      logger.warn('could not set the retry backoff', { messageId: record.messageId, reason: errorMessage(err) });
    }
  };

  const handleJob = async (record: SQSRecord, message: MessageJob): Promise<void> => {
    const log = logger.createChild({ persistentKeys: { jobId: message.jobId } });
    if (message.createInput) {
      // Work that arrived without the API (e.g. an object another tool put): it gets a job too.
      await repo.create({
        jobId: message.jobId,
        type: definition.name,
        status: 'queued',
        input: message.createInput,
        priority: message.priority,
        sweepAfterMs: settings.maxQueuedSeconds * 1000,
      });
    }
    const started = Date.now();
    const owner = `${record.messageId}#${receiveCount(record)}`;
    const abort = new AbortController();
    const remainingMs = () => context?.getRemainingTimeInMillis() ?? settings.timeoutSeconds * 1000;
    // Aborted a little before the invocation's end (a tenth of the timeout, at most a second),
    // so the type's handler can stop between steps and the job is released, not killed.
    const margin = Math.min(1000, settings.timeoutSeconds * 100);
    const timer = setTimeout(() => abort.abort(new Error('the invocation is about to time out')), Math.max(0, remainingMs() - margin));
    try {
      const outcome = await runJob(
        { repo, logger: log, now: Date.now },
        {
          message,
          owner,
          receiveCount: receiveCount(record),
          settings,
          visibilityTimeoutSeconds: env.VISIBILITY_TIMEOUT_SECONDS,
          remainingMs,
          signal: abort.signal,
        },
        (job, writeProgress, signal) =>
          work({
            job,
            input: (job.input ?? {}) as Input,
            settings,
            message,
            signal,
            logger: log,
            metrics,
            progress: throttledProgress(writeProgress),
            outputKey: (file) => `${prefix}${job.jobId}/${file}`,
            resultsBucket: env.RESULTS_BUCKET,
            putOutput: async (file, body, meta) => {
              const key = `${prefix}${job.jobId}/${file}`;
              await s3Client().send(
                new PutObjectCommand({
                  Bucket: env.RESULTS_BUCKET,
                  Key: key,
                  Body: body,
                  ContentType: meta.contentType,
                  CacheControl: 'private, max-age=31536000, immutable',
                }),
              );
              return { ...meta, bytes: meta.bytes ?? Buffer.byteLength(body), key };
            },
          }),
      );
      if (outcome === 'succeeded') metrics.addMetric('processed', MetricUnit.Count, 1);
      if (outcome === 'failed') metrics.addMetric('failed', MetricUnit.Count, 1);
      if (outcome === 'cancelled') metrics.addMetric('cancelled', MetricUnit.Count, 1);
      log.info('job attempt done', { outcome, ms: Date.now() - started });
    } catch (err) {
      metrics.addMetric('failedAttempts', MetricUnit.Count, 1);
      throw err;
    } finally {
      clearTimeout(timer);
      metrics.addMetric('duration', MetricUnit.Milliseconds, Date.now() - started);
    }
  };

  return async (event, ctx) => {
    context = ctx;
    logger.addContext(ctx);
    try {
      return await processPartialResponse(event, handleRecord, processor, { context: ctx });
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}

/** Progress writes at most once per interval; the final value is always written. */
export function throttledProgress(write: (p: JobProgress) => Promise<void>, intervalMs = 1000, now: () => number = Date.now) {
  let last = -Infinity;
  return async (done: number, total?: number): Promise<void> => {
    const t = now();
    const final = total !== undefined && done >= total;
    if (!final && t - last < intervalMs) return;
    last = t;
    await write(total === undefined ? { done } : { done, total });
  };
}

export { PermanentJobError };
