import { queueOutputKeys } from '../../lambda/shared/contract';
import * as fs from 'node:fs';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { OUTPUT_KEYS } from '../../lib/offload-stack';
import { sharedInstance, useSharedInstance } from './client';

/** Local mode itself: the emulator, the deployed stack, the local runtime and the HTTP API. */
const ctx = sharedInstance();
useSharedInstance('shared');
let sqs: SQSClient;
let s3: S3Client;
beforeAll(() => {
  sqs = new SQSClient(ctx.awsConfig);
  s3 = new S3Client(ctx.awsConfig);
});

async function logContains(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return vi.waitFor(
    () => {
      const line = fs.readFileSync(inject('localLog'), 'utf8').split('\n').find((l) => pattern.test(l));
      if (!line) throw new Error(`no log line matching ${pattern}`);
      return line;
    },
    { timeout: timeoutMs, interval: 200 },
  );
}

describe('local mode', () => {
  it('reports the stack outputs with the local API URL and key', () => {
    expect(ctx.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(ctx.apiKey).toMatch(/^[0-9a-f]{40}$/);
    expect(ctx.awsEndpoint).toMatch(/^http:\/\/localhost:\d+$/);
    const perType = ctx.outputs.JobTypes.split(',').flatMap((t: string) => Object.values(queueOutputKeys(t)));
    expect(Object.keys(ctx.outputs).sort()).toEqual([...OUTPUT_KEYS, ...perType].sort());
    expect(ctx.outputs.JobTypes).toBe('thumbnail,report,wordcount');
    expect(ctx.outputs.ApiUrl).toBe(ctx.apiUrl);
  });

  it('checks the usage plan key and answers gateway errors in the API JSON format', async () => {
    const none = await ctx.call('GET', 'jobs', { key: null });
    expect(none.status).toBe(403);
    expect(none.json).toEqual({ error: { code: 'forbidden', message: expect.stringContaining('API key') } });
    expect((await ctx.call('GET', 'jobs', { key: 'wrong' })).status).toBe(403);
    const unknown = await ctx.call('GET', 'no/such/route');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toEqual({ code: 'not_found', message: 'no such route: GET /no/such/route' });
    expect((await ctx.call('DELETE', 'jobs')).status).toBe(404);
    const big = await ctx.call('POST', 'uploads', { body: Buffer.alloc(11 * 1024 * 1024), headers: { 'content-type': 'image/png' } });
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('payload_too_large');
  });

  it('answers CORS preflight without a key', async () => {
    const res = await ctx.call('OPTIONS', 'uploads', { key: null, headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toBe('POST,OPTIONS');
  });

  it('delivers a queue message to the thumbnail worker bundle from cdk.out, which acts on it', async () => {
    // A job whose upload never happened, and an S3 event for it sent straight to the queue:
    // the worker (run from its synthesized bundle) finds no object and fails the job.
    const created = await ctx.call('POST', 'uploads', { json: { filename: 'ghost.jpg', contentType: 'image/jpeg', size: 5 } });
    const jobId = created.json.jobId;
    const event = { Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: ctx.outputs.RawBucketName }, object: { key: `uploads/${jobId}/ghost.jpg`, size: 5 } } }] };
    await sqs.send(new SendMessageCommand({ QueueUrl: ctx.outputs.ThumbnailQueueUrl, MessageBody: JSON.stringify(event) }));
    const job = await ctx.waitForJob(jobId, 30_000);
    expect(job).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'not_found' } });
    const line = await logContains(new RegExp(`^\\[thumbnail\\] .*${jobId}`));
    expect(JSON.parse(line.replace(/^\[thumbnail\] /, ''))).toMatchObject({ service: 'offload-thumbnail', jobId });
  });

  it('sends ObjectCreated under uploads/ from the raw bucket to the thumbnails queue', async () => {
    const key = `uploads/local-mode-probe/${Date.now()} probe+plus.jpg`;
    await s3.send(new PutObjectCommand({ Bucket: ctx.outputs.RawBucketName, Key: key, Body: 'not an image' }));
    // The worker decodes the key (+ and %20 included) and makes a job for it.
    const filename = key.split('/').pop();
    const job = await ctx.findJob(`for ${filename}, failed`, (j) => j.input?.filename === filename && j.status === 'failed', 'type=thumbnail&status=failed', 30_000);
    expect(job?.error?.code).toBe('unsupported_format');
  });
});
