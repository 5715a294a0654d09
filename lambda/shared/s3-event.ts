import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { decodeS3Key, sanitizeFilename } from './filename';
import { uploadLaneOf, type Priority } from './contract';

const S3EventRecord = z.object({
  eventName: z.string(),
  s3: z.object({
    bucket: z.object({ name: z.string() }),
    object: z.object({
      key: z.string(),
      size: z.optional(z.number()),
      eTag: z.optional(z.string()),
      sequencer: z.optional(z.string()),
    }),
  }),
});
const S3Event = z.object({ Records: z.array(S3EventRecord).check(z.minLength(1)) });
const TestEvent = z.object({ Event: z.literal('s3:TestEvent') });

export interface UploadEvent {
  bucket: string;
  key: string;
  size?: number;
  jobId: string;
  filename: string;
  /** True when the key follows our scheme ({uploads,priority-uploads}/{jobId}/{filename}); false for objects put by other tools. */
  ours: boolean;
  /** The lane, from the key's prefix (`priority-uploads/`: high). */
  priority: Priority;
}

import { JOB_ID_PATTERN as JOB_ID } from './contract';

/**
 * Parses an SQS message body holding an S3 event notification. Returns [] for S3's test
 * event and for keys outside the upload prefixes (uploads/, priority-uploads/); throws for anything that is not an S3 event (a
 * poison message: it goes to the DLQ after maxReceiveCount).
 */
export function parseUploadEvents(body: string): UploadEvent[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error('message body is not JSON');
  }
  if (TestEvent.safeParse(json).success) return [];
  const parsed = S3Event.safeParse(json);
  if (!parsed.success) throw new Error(`message body is not an S3 event notification: ${parsed.error.issues[0]?.message}`);
  const events: UploadEvent[] = [];
  for (const rec of parsed.data.Records) {
    if (!rec.eventName.startsWith('ObjectCreated')) continue;
    const key = decodeS3Key(rec.s3.object.key);
    const lane = uploadLaneOf(key);
    if (!lane) continue;
    const rest = key.slice(lane.prefix.length).split('/');
    const ours = rest.length === 2 && JOB_ID.test(rest[0]) && rest[1].length > 0;
    events.push({
      bucket: rec.s3.bucket.name,
      key,
      size: rec.s3.object.size,
      jobId: ours ? rest[0] : externalJobId(key, rec.s3.object.eTag ?? rec.s3.object.sequencer ?? ''),
      filename: sanitizeFilename(rest.at(-1) ?? 'upload'),
      ours,
      priority: lane.priority,
    });
  }
  return events;
}

/** A stable job id for an object another tool put: the same object version always maps to the same job. */
export function externalJobId(key: string, version: string): string {
  const h = createHash('sha256').update(`${key}\n${version}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
