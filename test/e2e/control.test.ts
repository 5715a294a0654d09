import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedInstance, useSharedInstance } from './client';
import { drainNotifications } from './notifications';

/**
 * Job control through local mode, as a client sees it: cancellation (before the upload, and
 * of a job whose worker is running), idempotent submits, and long-polls. The slow job is the
 * test-only wordcount type with `pauseMs`: its worker waits in steps that check the work's
 * signal, long enough to be cancelled while it runs.
 */
const ctx = sharedInstance();
useSharedInstance('shared');
let sqs: SQSClient;
let subscriberUrl: string;
/** Every report notification (no other file makes reports while this one holds the instance shared). */
let reportSubscriberUrl: string;
/** Jobs this file cancels: each must be notified exactly once, as cancelled. */
const cancelled: string[] = [];

/** A queue subscribed to the completion topic with this filter policy. */
async function subscriber(name: string, filter: Record<string, string[]>): Promise<string> {
  const q = await sqs.send(new CreateQueueCommand({ QueueName: `e2e-control-${name}-${Date.now()}` }));
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl!, AttributeNames: ['QueueArn'] }));
  await new SNSClient(ctx.awsConfig).send(
    new SubscribeCommand({
      TopicArn: ctx.outputs.NotificationTopicArn,
      Protocol: 'sqs',
      Endpoint: attrs.Attributes!.QueueArn,
      Attributes: { RawMessageDelivery: 'true', FilterPolicy: JSON.stringify(filter) },
    }),
  );
  return q.QueueUrl!;
}

beforeAll(async () => {
  sqs = new SQSClient(ctx.awsConfig);
  subscriberUrl = await subscriber('cancelled', { status: ['cancelled'] });
  reportSubscriberUrl = await subscriber('reports', { type: ['report'] });
});

afterAll(async () => {
  for (const url of [subscriberUrl, reportSubscriberUrl]) await sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => undefined);
});

/** A wordcount job whose text is unique to this call (so its jobs can be told apart from other files'). */
async function wordcount(input: { pauseMs?: number } = {}, headers: Record<string, string> = {}) {
  const text = `control ${randomUUID()}`;
  const res = await ctx.call('POST', 'jobs', { json: { type: 'wordcount', input: { text, ...input } }, headers });
  return { res, text };
}

/** The wordcount jobs whose text is `text`. */
async function jobsWithText(text: string): Promise<any[]> {
  return (await ctx.listJobs('type=wordcount')).filter((j) => j.input?.text === text);
}

describe('cancellation', () => {
  it('cancels an upload before it arrives: cancelled at once, and the upload that comes later does not revive it', async () => {
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#884422' } }).jpeg().toBuffer();
    const created = await ctx.call('POST', 'uploads', { json: { filename: 'never.jpg', contentType: 'image/jpeg', size: jpeg.length } });
    expect(created.status).toBe(201);
    const jobId: string = created.json.jobId;
    cancelled.push(jobId);

    const del = await ctx.call('DELETE', `jobs/${jobId}`);
    expect(del.status).toBe(202);
    expect(del.json).toMatchObject({ jobId, status: 'cancelled', outputs: [] });
    expect(del.json.completedAt).toEqual(expect.any(String));

    // The upload arrives anyway; its S3 event reaches the thumbnail worker, which finds the job cancelled.
    const put = await fetch(created.json.uploadUrl, { method: 'PUT', headers: created.json.headers, body: new Uint8Array(jpeg) });
    expect(put.ok).toBe(true);
    // A control upload made after it goes through the same queue and worker to the end...
    const control = await ctx.presignedUpload('control.jpg', 'image/jpeg', jpeg);
    expect((await ctx.waitForJob(control)).status).toBe('succeeded');
    // ...and by then the cancelled job still is: never claimed, no thumbnails made.
    const job = (await ctx.call('GET', `jobs/${jobId}`)).json;
    expect(job).toMatchObject({ status: 'cancelled', attempts: 0, outputs: [] });
    const s3 = new S3Client(ctx.awsConfig);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: ctx.outputs.ResultsBucketName, Prefix: `thumbnails/${jobId}/` }));
    expect(listed.KeyCount ?? 0).toBe(0);
  });

  it('stops a job while its worker runs: cancelRequested, the work is aborted, the job ends cancelled', async () => {
    // Would succeed after 8 s if nothing stopped it.
    const { res } = await wordcount({ pauseMs: 8000 });
    expect(res.status).toBe(202);
    const jobId: string = res.json.jobId;
    cancelled.push(jobId);
    await expect.poll(async () => (await ctx.call('GET', `jobs/${jobId}`)).json.status, { timeout: 60_000, interval: 200 }).toBe('processing');

    // A long-poll of 1 s answers with the state then: still processing.
    const meanwhile = await ctx.call('GET', `jobs/${jobId}?waitSeconds=1`);
    expect(meanwhile.status).toBe(200);
    expect(meanwhile.json.status).toBe('processing');

    const del = await ctx.call('DELETE', `jobs/${jobId}`);
    expect(del.status).toBe(202);
    expect(del.json).toMatchObject({ jobId, status: 'processing', cancelRequested: true });

    // One long-poll until it ends: cancelled, never succeeded.
    const ended = await ctx.call('GET', `jobs/${jobId}?waitSeconds=20`);
    expect(ended.json).toMatchObject({ jobId, status: 'cancelled', cancelRequested: true, outputs: [] });

    // Finished: a second cancel is a conflict.
    const again = await ctx.call('DELETE', `jobs/${jobId}`);
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('conflict');

    const listed = await ctx.listJobs('type=wordcount&status=cancelled');
    expect(listed.map((j) => j.jobId)).toContain(jobId);
    expect(listed.every((j) => j.status === 'cancelled')).toBe(true);
  });

  it('cancels a report in whatever state it is caught: the outcome is the one the answer promised, notified once', async () => {
    // A full year with no uploads: short work, so the cancel may come before, during or after it.
    const res = await ctx.call('POST', 'reports', { json: { from: '1999-01-01', to: '1999-12-31' } });
    expect(res.status).toBe(202);
    const jobId: string = res.json.jobId;
    await expect.poll(async () => (await ctx.call('GET', `jobs/${jobId}`)).json.status, { timeout: 60_000, interval: 50 }).not.toBe('queued');
    const del = await ctx.call('DELETE', `jobs/${jobId}`);
    const ended = (await ctx.call('GET', `jobs/${jobId}?waitSeconds=20`)).json;
    if (del.status === 409) {
      // It had finished: nothing to cancel.
      expect(ended.status).toBe('succeeded');
      expect(ended.cancelRequested).toBeUndefined();
    } else {
      expect(del.status).toBe(202);
      expect(del.json).toMatchObject({ status: 'processing', cancelRequested: true });
      // Its worker stopped it, or its work had finished first: one of the two, and only one.
      expect(['cancelled', 'succeeded']).toContain(ended.status);
      expect(ended.cancelRequested).toBe(true);
      if (ended.status === 'cancelled') expect(ended.outputs).toEqual([]);
    }
    const seen = await drainNotifications(sqs, reportSubscriberUrl, [jobId], 60_000);
    const notes = seen.get(jobId)!;
    expect(new Set(notes.map((n) => n.notificationId))).toEqual(new Set([`${jobId}:${ended.completedAt}`]));
    expect(notes[0].status).toBe(ended.status);
  });

  it('answers 409 for a succeeded job and 404 for an unknown one', async () => {
    const { res } = await wordcount();
    const done = await ctx.call('GET', `jobs/${res.json.jobId}?waitSeconds=20`);
    expect(done.json.status).toBe('succeeded');
    const del = await ctx.call('DELETE', `jobs/${res.json.jobId}`);
    expect(del.status).toBe(409);
    expect(del.json.error.message).toMatch(/succeeded/);
    expect((await ctx.call('DELETE', `jobs/${randomUUID()}`)).status).toBe(404);
    // DELETE needs the API key like every route.
    expect((await ctx.call('DELETE', `jobs/${res.json.jobId}`, { key: null })).status).toBe(403);
  });

  it('notifies each cancelled job exactly once, with status cancelled', async () => {
    expect(cancelled).toHaveLength(2);
    const seen = await drainNotifications(sqs, subscriberUrl, cancelled, 60_000);
    for (const jobId of cancelled) {
      const notes = seen.get(jobId)!;
      // Repeats of one notificationId are SNS's at-least-once; one outcome means one id.
      expect(new Set(notes.map((n) => n.notificationId)).size, jobId).toBe(1);
      expect(notes[0]).toMatchObject({ jobId, status: 'cancelled', outputs: [], error: null });
    }
  });
});

describe('Idempotency-Key', () => {
  it('replays a repeat with Idempotent-Replayed: true; refuses the key on another body (422) and a bad key (400)', async () => {
    const key = `order-${randomUUID()}`;
    const body = { type: 'wordcount', input: { text: `idem ${key}` } };
    const first = await ctx.call('POST', 'jobs', { json: body, headers: { 'Idempotency-Key': key } });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await ctx.call('POST', 'jobs', { json: body, headers: { 'Idempotency-Key': key } });
    expect(again.status).toBe(202);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('access-control-expose-headers')).toContain('Idempotent-Replayed');

    const other = await ctx.call('POST', 'jobs', { json: { ...body, input: { text: 'something else' } }, headers: { 'Idempotency-Key': key } });
    expect(other.status).toBe(422);
    expect(other.json.error.code).toBe('idempotency_key_reused');
    const bad = await ctx.call('POST', 'jobs', { json: body, headers: { 'Idempotency-Key': 'k'.repeat(256) } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/Idempotency-Key/);
    expect(await jobsWithText(body.input.text)).toHaveLength(1);
  });

  it.each([20, 100])('%i concurrent identical submits make exactly one job', async (n) => {
    const key = `burst-${n}-${randomUUID()}`;
    const text = `burst ${key}`;
    const answers = await Promise.all(
      Array.from({ length: n }, () => ctx.call('POST', 'jobs', { json: { type: 'wordcount', input: { text } }, headers: { 'Idempotency-Key': key } })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(n).fill(202));
    const ids = new Set(answers.map((a) => a.json.jobId));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true')).toHaveLength(n - 1);
    const jobs = await jobsWithText(text);
    expect(jobs.map((j) => j.jobId)).toEqual([...ids]);
  });
});

describe('long-poll', () => {
  it('answers as soon as the job is terminal, in one request', async () => {
    const { res } = await wordcount({ pauseMs: 1000 });
    const got = await ctx.call('GET', `jobs/${res.json.jobId}?waitSeconds=20`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ jobId: res.json.jobId, status: 'succeeded' });
  });

  it.each(['21', '-1', '2.5', 'soon'])('refuses waitSeconds=%s with 400', async (waitSeconds) => {
    const got = await ctx.call('GET', `jobs/${randomUUID()}?waitSeconds=${waitSeconds}`);
    expect(got.status).toBe(400);
    expect(got.json.error).toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/waitSeconds/) });
  });
});
