import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../lambda/shared/model';

/**
 * The outbox relay's pure part: which table stream records are completion notifications.
 * The module reads its environment (TOPIC_ARN) when it is loaded, so it is imported once the
 * variable is set.
 */
let notificationOf: typeof import('../../lambda/notifier/index').notificationOf;
const saved = process.env.TOPIC_ARN;

beforeAll(async () => {
  process.env.TOPIC_ARN = 'arn:aws:sns:us-east-1:123456789012:offload-completions';
  ({ notificationOf } = await import('../../lambda/notifier/index.js'));
});

afterAll(() => {
  if (saved === undefined) delete process.env.TOPIC_ARN;
  else process.env.TOPIC_ARN = saved;
});

const JOB = '0b7a3c2e-1f4d-4e5a-9b8c-7d6e5f4a3b2c';
const job = (over: Partial<JobRecord> = {}): JobRecord => ({
  jobId: JOB,
  type: 'thumbnail',
  status: 'processing',
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:01.000Z',
  attempts: 1,
  input: { filename: 'a.jpg', key: `uploads/${JOB}/a.jpg` },
  leaseOwner: 'm#1',
  leaseUntil: 1,
  sweepShard: 'd0',
  sweepAt: 2,
  ...over,
});
const image = (j: JobRecord) => marshall(j, { removeUndefinedValues: true }) as NonNullable<DynamoDBRecord['dynamodb']>['NewImage'];
const streamRecord = (eventName: 'INSERT' | 'MODIFY' | 'REMOVE', oldJob?: JobRecord, newJob?: JobRecord): DynamoDBRecord => ({
  eventName,
  dynamodb: {
    Keys: { jobId: { S: JOB } },
    SequenceNumber: '100',
    ...(oldJob ? { OldImage: image(oldJob) } : {}),
    ...(newJob ? { NewImage: image(newJob) } : {}),
  },
});
const OUTPUT = { name: 'small', format: 'jpeg', contentType: 'image/jpeg', bytes: 10, width: 160, height: 120, key: `thumbnails/${JOB}/small.jpg` };
const DONE_AT = '2026-01-01T00:00:05.000Z';
const succeeded = job({ status: 'succeeded', completedAt: DONE_AT, outputs: [OUTPUT], leaseOwner: undefined, leaseUntil: undefined, sweepShard: undefined, sweepAt: undefined });

describe('notificationOf', () => {
  it('makes one notification of a MODIFY into succeeded, identified by job id and completion time', () => {
    expect(notificationOf(streamRecord('MODIFY', job(), succeeded))).toEqual({
      notificationId: `${JOB}:${DONE_AT}`,
      jobId: JOB,
      type: 'thumbnail',
      status: 'succeeded',
      outputs: [OUTPUT],
      error: null,
      completedAt: DONE_AT,
    });
  });

  it('carries the error of a failed job, and no outputs', () => {
    const error = { code: 'upload_expired', message: 'the upload did not arrive before its upload URL expired' };
    const failed = job({ status: 'failed', completedAt: DONE_AT, error });
    expect(notificationOf(streamRecord('MODIFY', job({ status: 'awaiting_upload' }), failed))).toMatchObject({
      notificationId: `${JOB}:${DONE_AT}`,
      status: 'failed',
      outputs: [],
      error,
    });
  });

  it('skips a write that keeps the outcome (same status and completedAt in the old and new images)', () => {
    const touched = { ...succeeded, updatedAt: '2026-01-01T00:00:09.000Z', expiresAt: 123 };
    expect(notificationOf(streamRecord('MODIFY', succeeded, touched))).toBeUndefined();
  });

  it('notifies again when a redriven job reaches a new outcome', () => {
    const exhausted = job({ status: 'failed', completedAt: DONE_AT, error: { code: 'retries_exhausted', message: 'x' } });
    const later = '2026-01-02T00:00:00.000Z';
    expect(notificationOf(streamRecord('MODIFY', exhausted, { ...succeeded, completedAt: later }))?.notificationId).toBe(`${JOB}:${later}`);
    expect(notificationOf(streamRecord('MODIFY', exhausted, { ...exhausted, completedAt: later }))?.notificationId).toBe(`${JOB}:${later}`);
  });

  it.each([
    ['a claim (processing)', job({ status: 'queued' }), job()],
    ['a release (queued)', job(), job({ status: 'queued', lastError: { code: 'transient', message: 'x' } })],
    ['a new job (INSERT, queued)', undefined, job({ status: 'queued' })],
  ])('gives nothing for %s: the new image is not terminal', (_what, oldJob, newJob) => {
    expect(notificationOf(streamRecord(oldJob ? 'MODIFY' : 'INSERT', oldJob, newJob))).toBeUndefined();
  });

  it('gives nothing for a removal (TTL) or a terminal status without completedAt', () => {
    expect(notificationOf(streamRecord('REMOVE', succeeded, undefined))).toBeUndefined();
    expect(notificationOf(streamRecord('MODIFY', job(), job({ status: 'succeeded' })))).toBeUndefined();
  });
});
