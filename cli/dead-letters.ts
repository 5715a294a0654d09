import { isJobId, queueOutputKeys, type Priority } from '../lambda/shared/contract';
import { parseUploadEvents } from '../lambda/shared/s3-event';
import { UsageError } from './errors';

/** The stack output that lists the deployed job types (the registry, as deployed). */
export const JOB_TYPES_OUTPUT = 'JobTypes';

export const typesFromOutputs = (outputs: Record<string, string>): string[] =>
  (outputs[JOB_TYPES_OUTPUT] ?? '').split(',').map((t) => t.trim()).filter(Boolean);

/** The stack outputs of each type's queues: normal lane, high lane, and the DLQ of both. */
export const queueOutputs = (type: string): { queue: string; high: string; dlq: string } => queueOutputKeys(type);

/** A queue argument: a deployed type's name (a plural such as `thumbnails` is accepted too). */
export function parseTypeName(value: string, types: readonly string[]): string {
  if (types.includes(value)) return value;
  if (value.endsWith('s') && types.includes(value.slice(0, -1))) return value.slice(0, -1);
  throw new UsageError(`unknown job type ${JSON.stringify(value)}: the stack runs ${types.join(', ') || 'no types'}`);
}

export interface DeadLetterJobs {
  /** Job ids the message is about (an S3 event can hold several records). */
  jobIds: string[];
  /** What the body is: an upload's `s3-event`, S3's `s3-test-event`, a `job-message` ({ jobId }), or `unrecognized`. */
  kind: 's3-event' | 's3-test-event' | 'job-message' | 'unrecognized';
  /** Why the body was not understood (the same reason the worker failed it, for poison messages). */
  problem?: string;
}

/**
 * The job ids a dead letter is about, from its body, whatever its type: an upload's S3
 * event notification (keys `uploads/{jobId}/{filename}`; objects another tool put get the
 * stable id the worker derives from key and version), or the platform's `{ jobId }`.
 * Never throws: a body nobody understands is `unrecognized`, with the reason.
 */
export function jobIdsFromDeadLetter(body: string): DeadLetterJobs {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { jobIds: [], kind: 'unrecognized', problem: 'message body is not JSON' };
  }
  const record = json as { jobId?: unknown; Records?: unknown; Event?: unknown } | null;
  if (record && (record.Records !== undefined || record.Event !== undefined)) {
    try {
      const events = parseUploadEvents(body);
      if (events.length === 0) return { jobIds: [], kind: 's3-test-event', problem: 'no ObjectCreated record under uploads/' };
      return { jobIds: [...new Set(events.map((e) => e.jobId))], kind: 's3-event' };
    } catch (err) {
      return { jobIds: [], kind: 'unrecognized', problem: (err as Error).message };
    }
  }
  if (isJobId(record?.jobId)) return { jobIds: [record.jobId], kind: 'job-message' };
  return { jobIds: [], kind: 'unrecognized', problem: 'message body is not an S3 event notification, nor a job message { jobId, type }' };
}

/**
 * The lane a dead letter came from: the `priority` message attribute the API sets on a JSON
 * job's message, or an upload event's key prefix (`priority-uploads/`: high); otherwise normal.
 */
export function laneOfDeadLetter(message: { Body?: string; MessageAttributes?: Record<string, { StringValue?: string }> }): Priority {
  if (message.MessageAttributes?.priority?.StringValue === 'high') return 'high';
  try {
    if (parseUploadEvents(message.Body ?? '').some((e) => e.priority === 'high')) return 'high';
  } catch {
    // Not an upload event: the attribute alone tells.
  }
  return 'normal';
}
