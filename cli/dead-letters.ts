import { parseUploadEvents } from '../lambda/shared/s3-event';

export type DlqName = 'thumbnails' | 'reports';
export const DLQ_NAMES: readonly DlqName[] = ['thumbnails', 'reports'];

/** The stack outputs of each queue pair. */
export const QUEUE_OUTPUTS: Record<DlqName, { queue: string; dlq: string }> = {
  thumbnails: { queue: 'ThumbnailQueueUrl', dlq: 'ThumbnailDlqUrl' },
  reports: { queue: 'ReportQueueUrl', dlq: 'ReportDlqUrl' },
};

export interface DeadLetterJobs {
  /** Job ids the message is about (an S3 event can hold several records). */
  jobIds: string[];
  /** What the body is: `s3-event`, `s3-test-event`, `report`, or `unrecognized`. */
  kind: 's3-event' | 's3-test-event' | 'report' | 'unrecognized';
  /** Why the body was not understood (the same reason the worker failed it, for poison messages). */
  problem?: string;
}

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The job ids a dead letter is about, from its body:
 * - thumbnails: an S3 event notification, keys `uploads/{jobId}/{filename}` (objects another
 *   tool put get the stable id the worker derives from key and version);
 * - reports: `{ jobId, params }` as the API sends it.
 * Never throws: a body nobody understands is `unrecognized`, with the reason.
 */
export function jobIdsFromDeadLetter(queue: DlqName, body: string): DeadLetterJobs {
  if (queue === 'thumbnails') {
    try {
      const events = parseUploadEvents(body);
      if (events.length === 0) return { jobIds: [], kind: 's3-test-event', problem: 'no ObjectCreated record under uploads/' };
      return { jobIds: [...new Set(events.map((e) => e.jobId))], kind: 's3-event' };
    } catch (err) {
      return { jobIds: [], kind: 'unrecognized', problem: (err as Error).message };
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { jobIds: [], kind: 'unrecognized', problem: 'message body is not JSON' };
  }
  const jobId = (json as { jobId?: unknown } | null)?.jobId;
  if (typeof jobId === 'string' && JOB_ID.test(jobId)) return { jobIds: [jobId], kind: 'report' };
  return { jobIds: [], kind: 'unrecognized', problem: 'message body has no jobId' };
}
