/**
 * The job model shared by the API, the workers, the local runtime and the CLI.
 * One place defines what a job looks like; everything else imports it.
 */

export const JOB_TYPES = ['thumbnail', 'report'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const JOB_STATUSES = ['awaiting_upload', 'queued', 'processing', 'succeeded', 'failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed'];

/** Error codes a job can end with. Permanent codes fail the job at once (no retries). */
export const PERMANENT_ERROR_CODES = [
  'unsupported_format',
  'image_too_large',
  'empty_file',
  'corrupt_image',
  'invalid_message',
  'not_found',
  'invalid_request',
] as const;
export type PermanentErrorCode = (typeof PERMANENT_ERROR_CODES)[number];
export type JobErrorCode = PermanentErrorCode | 'retries_exhausted' | 'internal_error';

export interface JobError {
  code: JobErrorCode | string;
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

export interface ThumbnailInput {
  filename: string;
  contentType?: string;
  bytes?: number;
  width?: number;
  height?: number;
  key: string;
}

export interface ReportParams {
  from: string; // YYYY-MM-DD, inclusive, UTC
  to: string; // YYYY-MM-DD, inclusive, UTC
  formats: ('csv' | 'pdf')[];
}

/** The item in the jobs table. */
export interface JobRecord {
  jobId: string;
  type: JobType;
  status: JobStatus;
  createdAt: string; // ISO-8601 UTC, the GSI sort key
  updatedAt: string;
  attempts: number;
  input?: ThumbnailInput;
  params?: ReportParams;
  outputs?: StoredOutput[];
  error?: JobError;
  progress?: { done: number; total?: number };
  startedAt?: string;
  completedAt?: string;
  processingMs?: number;
  /** Claim of the invocation that is processing the job, and until when it holds. */
  leaseOwner?: string;
  leaseUntil?: number;
  /** Set (to LEASE_SHARD) only while a lease is held: the key of the sparse leases index. */
  leaseShard?: string;
  /** Set once the completion notification has been published. */
  notifiedAt?: string;
  /** TTL attribute (epoch seconds). */
  expiresAt?: number;
}

/** The completion notification published on SNS for every terminal state. */
export interface CompletionNotification {
  /** `${jobId}:${completedAt}`: the same for every delivery of one outcome (SNS delivers at least once). */
  notificationId: string;
  jobId: string;
  type: JobType;
  status: 'succeeded' | 'failed';
  outputs: Omit<StoredOutput, never>[];
  error: JobError | null;
  completedAt: string;
}

/** The message the API sends to the reports queue. */
export interface ReportMessage {
  jobId: string;
  params: ReportParams;
}

/** Partition value of the sparse index of held leases (see the sweeper). */
export const LEASE_SHARD = 'held';

/** S3 key scheme. */
export const UPLOAD_PREFIX = 'uploads/';
export const THUMBNAIL_PREFIX = 'thumbnails/';
export const REPORT_PREFIX = 'reports/';
