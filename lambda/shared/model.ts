/**
 * The job model shared by the API, the workers, the local runtime and the CLI. It names no
 * job type: a type's own input and outputs live in its folder under job-types/.
 */
export { JOB_STATUSES, TERMINAL_STATUSES, PRIORITIES, type JobStatus, type TerminalStatus, type Priority } from './contract';
import type { JobStatus, Priority, TerminalStatus } from './contract';

export interface JobError {
  code: string;
  message: string;
}

/** An output as stored in the table: an S3 key, never a URL (URLs are presigned on read). */
export interface StoredOutput {
  name: string;
  format: string;
  contentType: string;
  bytes: number;
  width?: number;
  height?: number;
  key: string;
}

/** An output as the API returns it. */
export interface JobOutput extends Omit<StoredOutput, 'key'> {
  url: string;
}

export interface JobProgress {
  done: number;
  total?: number;
}

/** The item in the jobs table. */
export interface JobRecord {
  jobId: string;
  type: string;
  status: JobStatus;
  createdAt: string; // ISO-8601 UTC, the byType index's sort key
  updatedAt: string;
  attempts: number;
  /** The lane the job was submitted to (absent on jobs from before lanes: normal). */
  priority?: Priority;
  /** When its message becomes visible (ISO, set when the submit asked for delaySeconds > 0): it stays `queued` until then. */
  runAfter?: string;
  /** The input as the type's schema accepted it (plus facts the platform or worker learnt, e.g. an upload's key). */
  input?: Record<string, unknown>;
  outputs?: StoredOutput[];
  error?: JobError;
  lastError?: JobError;
  progress?: JobProgress;
  startedAt?: string;
  completedAt?: string;
  processingMs?: number;
  /** Set by `DELETE /jobs/{jobId}` while the job was processing: its worker aborts the work and ends it `cancelled`. */
  cancelRequested?: boolean;
  /** Claim of the invocation that is processing the job, and until when it holds. */
  leaseOwner?: string;
  leaseUntil?: number;
  /** Set only while the job is unfinished: the sweep index's key (see contract INDEXES.byDeadline). */
  sweepShard?: string;
  /** Epoch ms after which the sweeper may fail the job (no delivery can still come for it). */
  sweepAt?: number;
  /** TTL attribute (epoch seconds). */
  expiresAt?: number;
}

/** The completion notification published on SNS for every terminal state (from the table's stream). */
export interface CompletionNotification {
  /** `${jobId}:${completedAt}`: the same for every delivery of one outcome (SNS and the stream deliver at least once). */
  notificationId: string;
  jobId: string;
  type: string;
  status: TerminalStatus;
  outputs: StoredOutput[];
  error: JobError | null;
  completedAt: string;
}

/** The message the platform puts on a type's queue for a JSON-input job (file-input types get S3 events). */
export interface JobMessage {
  jobId: string;
  type: string;
}

/** A job as the API shows it (`GET /jobs/{jobId}`, `GET /jobs`): the one view type the API, the CLI and the tests share. */
export interface JobView {
  jobId: string;
  type: string;
  status: JobStatus;
  createdAt: string;
  updatedAt: string;
  attempts: number;
  /** The lane the job was submitted to (default normal). */
  priority: Priority;
  /** When a delayed job's message becomes visible (ISO); absent without a delay. */
  runAfter?: string;
  /** When a worker first claimed the job (ISO). */
  startedAt?: string;
  /** The input as submitted (fields the type hides, such as an upload's S3 key, left out). */
  input: Record<string, unknown> & { filename?: string; contentType?: string; bytes?: number; width?: number; height?: number };
  outputs: JobOutput[];
  progress?: JobProgress;
  completedAt?: string;
  error?: JobError;
  /** Cancellation was asked for while the job was processing (it then ends `cancelled`, or `succeeded` if the work finished first). */
  cancelRequested?: true;
  /** A report's range and formats (kept from the first API). */
  params?: { from: string; to: string; formats: string[] };
}
