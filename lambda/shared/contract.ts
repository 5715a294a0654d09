/**
 * The platform's fixed vocabulary, in one module with no dependencies: the CDK app, every
 * function bundle, local mode and the CLI import it, so a name or rule here is never spelled
 * twice.
 */

/** The life of a job. */
export const JOB_STATUSES = ['awaiting_upload', 'queued', 'processing', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
/** Statuses a job never leaves (a `failed` `retries_exhausted` job runs again only when its dead letter is redriven). */
export const TERMINAL_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];
export const isTerminal = (status: string): status is TerminalStatus => (TERMINAL_STATUSES as readonly string[]).includes(status);

/** Longest `waitSeconds` of `GET /jobs/{jobId}` (a long-poll; API Gateway ends an integration at 29 s). */
export const MAX_WAIT_SECONDS = 20;

/** Job ids are random UUIDs (v4), lower case. */
export const JOB_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const isJobId = (value: unknown): value is string => typeof value === 'string' && JOB_ID_PATTERN.test(value);

/** A job type's name: what `POST /jobs {"type"}` takes, and the root of its queue, output and setting names. */
export const JOB_TYPE_NAME_PATTERN = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;

/**
 * Items of the jobs table that are not jobs have a key with this prefix and no `type` (so no
 * index holds them): `idem#<sha256>`, a remembered Idempotency-Key (see JobsRepo.idemBegin).
 */
export const IDEMPOTENCY_KEY_PREFIX = 'idem#';

/** Indexes of the jobs table. */
export const INDEXES = {
  /** Every job by type, newest first (`GET /jobs?type=`, reports). */
  byType: 'byTypeCreatedAt',
  /** Sparse: only unfinished jobs carry `sweepShard`/`sweepAt`: what the sweeper reads. */
  byDeadline: 'byDeadline',
} as const;

/**
 * The sweep index is split over this many partitions (`sweepShard` = `d0`..`d15`, by job id),
 * so that no partition takes more than 1/16 of the table's state changes.
 */
export const SWEEP_SHARDS = 16;

/** A job's lane: each type has a normal and a high-priority queue; the high one's event source gets more concurrency. */
export const PRIORITIES = ['high', 'normal'] as const;
export type Priority = (typeof PRIORITIES)[number];
export const DEFAULT_PRIORITY: Priority = 'normal';

/**
 * S3 key scheme. Raw uploads of file-input job types, one prefix per lane: S3 routes each
 * prefix's ObjectCreated events to that lane's queue (S3 refuses overlapping prefixes for one
 * event type, so the high lane's is not under `uploads/`). Results of every type are under
 * its own prefix.
 */
export const UPLOAD_PREFIXES: Readonly<Record<Priority, string>> = { normal: 'uploads/', high: 'priority-uploads/' };
export const UPLOAD_PREFIX = UPLOAD_PREFIXES.normal;
/** The raw-bucket prefix of an upload of this priority. */
export const uploadPrefixFor = (priority: Priority): string => UPLOAD_PREFIXES[priority];
/** The lane of a raw-bucket key (undefined: not an upload key). */
export function uploadLaneOf(key: string): { priority: Priority; prefix: string } | undefined {
  for (const priority of PRIORITIES) if (key.startsWith(UPLOAD_PREFIXES[priority])) return { priority, prefix: UPLOAD_PREFIXES[priority] };
  return undefined;
}

/** Longest SQS message delay a submit may ask for (`delaySeconds`): SQS's own maximum. */
export const MAX_DELAY_SECONDS = 900;

/** Error codes the platform itself gives jobs (types add their own permanent codes). */
export const PLATFORM_ERROR_CODES = {
  retriesExhausted: 'retries_exhausted',
  uploadExpired: 'upload_expired',
  invalidMessage: 'invalid_message',
  internal: 'internal_error',
} as const;

/** Upper-camel form of a type name: `thumbnail` -> `Thumbnail`, `send-email` -> `SendEmail` (construct ids, outputs). */
export function pascalCase(name: string): string {
  return name
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join('');
}

/** The stack output names of a type's queue (normal lane), its high-priority queue and its dead-letter queue (one for both lanes). */
export const queueOutputKeys = (type: string): { queue: string; high: string; dlq: string } => ({
  queue: `${pascalCase(type)}QueueUrl`,
  high: `${pascalCase(type)}HighQueueUrl`,
  dlq: `${pascalCase(type)}DlqUrl`,
});
