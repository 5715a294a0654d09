import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedInstance, useSharedInstance } from './client';
import { drainNotifications } from './notifications';

/**
 * The photo pipeline end to end, through local mode: HTTP API -> S3 -> SQS -> the thumbnail
 * worker's bundle from cdk.out -> DynamoDB -> SNS, all on the emulator. (A transient failure
 * going to the DLQ is in poison.test.ts, whose instance has short visibility timeouts.)
 */
const ctx = sharedInstance();
useSharedInstance('shared');
let sqs: SQSClient;
let s3: S3Client;
let subscriberUrl: string;
const finished: string[] = [];

/** A photo-like image: gradient plus noise, with a red block in the top-left corner. */
async function photo(width: number, height: number, format: 'jpeg' | 'png' | 'webp' | 'tiff' | 'gif' | 'avif', opts: { orientation?: number; alpha?: boolean } = {}) {
  const channels = opts.alpha ? 4 : 3;
  const raw = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels;
      const corner = x < width / 4 && y < height / 4;
      raw[i] = corner ? 230 : (x * 255) / width;
      raw[i + 1] = corner ? 10 : (y * 255) / height;
      raw[i + 2] = corner ? 10 : ((x + y) * 97) % 255;
      if (opts.alpha) raw[i + 3] = x < width / 2 ? 255 : 80;
    }
  }
  let img = sharp(raw, { raw: { width, height, channels } });
  if (opts.orientation) img = img.withMetadata({ orientation: opts.orientation });
  return img.toFormat(format).toBuffer();
}

beforeAll(async () => {
  sqs = new SQSClient(ctx.awsConfig);
  s3 = new S3Client(ctx.awsConfig);
  const sns = new SNSClient(ctx.awsConfig);
  const q = await sqs.send(new CreateQueueCommand({ QueueName: `e2e-photo-subscriber-${Date.now()}` }));
  subscriberUrl = q.QueueUrl!;
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: subscriberUrl, AttributeNames: ['QueueArn'] }));
  await sns.send(
    new SubscribeCommand({
      TopicArn: ctx.outputs.NotificationTopicArn,
      Protocol: 'sqs',
      Endpoint: attrs.Attributes!.QueueArn,
      Attributes: { RawMessageDelivery: 'true', FilterPolicy: JSON.stringify({ type: ['thumbnail'] }) },
    }),
  );
});

afterAll(async () => {
  await sqs.send(new DeleteQueueCommand({ QueueUrl: subscriberUrl })).catch(() => undefined);
});

describe('photo pipeline', () => {
  it('turns a presigned JPEG upload with EXIF orientation into correctly oriented thumbnails', async () => {
    const jpeg = await photo(1600, 1200, 'jpeg', { orientation: 6 });
    const jobId = await ctx.presignedUpload('camera photo.jpg', 'image/jpeg', jpeg);
    const job = await ctx.waitForJob(jobId);
    finished.push(jobId);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.type).toBe('thumbnail');
    expect(job.attempts).toBe(1);
    expect(job.input).toMatchObject({ filename: 'camera photo.jpg', contentType: 'image/jpeg', bytes: jpeg.length, width: 1200, height: 1600 });
    const sizes = Object.fromEntries(job.outputs.map((o: any) => [`${o.name}.${o.format}`, [o.width, o.height]]));
    expect(sizes).toEqual({
      'small.jpeg': [120, 160],
      'small.webp': [120, 160],
      'medium.jpeg': [480, 640],
      'medium.webp': [480, 640],
      'large.jpeg': [960, 1280],
      'large.webp': [960, 1280],
    });
    // Download one through its presigned URL: a real JPEG, oriented (red block now top-right), no EXIF.
    const large = job.outputs.find((o: any) => o.name === 'large' && o.format === 'jpeg');
    const res = await fetch(large.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.length).toBe(large.bytes);
    const meta = await sharp(bytes).metadata();
    expect([meta.format, meta.width, meta.height, meta.exif]).toEqual(['jpeg', 960, 1280, undefined]);
    const { data } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => [...data.subarray((y * 960 + x) * 3, (y * 960 + x) * 3 + 3)];
    expect(px(900, 40)[0]).toBeGreaterThan(180); // red corner rotated to the top right
    expect(px(40, 40)[0]).toBeLessThan(120);
  });

  it('refuses a second PUT through the same presigned URL (412): the photo its thumbnails were made from cannot be replaced', async () => {
    const first = await photo(200, 150, 'jpeg');
    const created = await ctx.call('POST', 'uploads', { json: { filename: 'once.jpg', contentType: 'image/jpeg', size: first.length } });
    expect(created.status).toBe(201);
    // The URL signs If-None-Match: * (the headers the API returns carry it).
    expect(created.json.headers).toMatchObject({ 'If-None-Match': '*' });
    const put = await fetch(created.json.uploadUrl, { method: 'PUT', headers: created.json.headers, body: new Uint8Array(first) });
    expect(put.status).toBe(200);
    const job = await ctx.waitForJob(created.json.jobId);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    // Same size, other pixels, same URL and headers: refused, and the stored object is the first one.
    const second = Buffer.from(first);
    second[second.length - 3] ^= 0xff;
    const again = await fetch(created.json.uploadUrl, { method: 'PUT', headers: created.json.headers, body: new Uint8Array(second) });
    expect(again.status).toBe(412);
    // The header is signed into the URL, so on AWS a PUT without it fails its signature
    // (moto does not check signatures: that half is AWS's, this checks the URL asks for it).
    expect(new URL(created.json.uploadUrl).searchParams.get('X-Amz-SignedHeaders')?.split(';')).toContain('if-none-match');
    const key = `uploads/${created.json.jobId}/once.jpg`;
    const stored = await s3.send(new GetObjectCommand({ Bucket: ctx.outputs.RawBucketName, Key: key }));
    expect(Buffer.from(await stored.Body!.transformToByteArray()).equals(first)).toBe(true);
    const after = (await ctx.call('GET', `jobs/${created.json.jobId}`)).json;
    expect({ status: after.status, attempts: after.attempts }).toEqual({ status: 'succeeded', attempts: 1 });
  });

  it('takes a direct upload in the request body; transparency gives PNG + WebP', async () => {
    const png = await photo(300, 200, 'png', { alpha: true });
    const res = await ctx.call('POST', 'uploads?filename=logo%20%F0%9F%90%B1.png', { body: png, headers: { 'content-type': 'image/png' } });
    expect(res.status).toBe(202);
    expect(res.json.statusUrl).toBe(new URL(`jobs/${res.json.jobId}`, ctx.apiUrl).toString());
    const job = await ctx.waitForJob(res.json.jobId);
    finished.push(job.jobId);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.input.filename).toBe('logo 🐱.png');
    expect(new Set(job.outputs.map((o: any) => o.format))).toEqual(new Set(['png', 'webp']));
    // Never upscaled: 300x200 stays 300x200 for medium and large.
    expect(job.outputs.find((o: any) => o.name === 'large').width).toBe(300);
    expect(job.outputs.find((o: any) => o.name === 'small')).toMatchObject({ width: 160, height: 107 });
  });

  it('handles WebP, GIF, TIFF, AVIF and a 1x1 image', async () => {
    const inputs: Array<[string, string, Buffer]> = [
      ['a.webp', 'image/webp', await photo(800, 600, 'webp')],
      ['b.gif', 'image/gif', await photo(400, 300, 'gif')],
      ['c.tiff', 'image/tiff', await photo(640, 480, 'tiff')],
      ['d.avif', 'image/avif', await photo(500, 500, 'avif')],
      ['e.png', 'image/png', await photo(1, 1, 'png')],
    ];
    const ids = await Promise.all(inputs.map(([name, type, data]) => ctx.presignedUpload(name, type, data)));
    const jobs = await Promise.all(ids.map((id) => ctx.waitForJob(id)));
    finished.push(...ids);
    for (const job of jobs) {
      expect(job.status, `${job.input.filename}: ${JSON.stringify(job.error)}`).toBe('succeeded');
      expect(job.outputs).toHaveLength(6);
    }
    expect(jobs[4].outputs.every((o: any) => o.width === 1 && o.height === 1)).toBe(true);
  });

  it('fails broken and hostile files at once with a clear code and no retries', async () => {
    const jpeg = await photo(640, 480, 'jpeg');
    const cases: Array<[string, string, Buffer, string]> = [
      ['notes.jpg', 'image/jpeg', Buffer.from('this is not an image at all, just text'), 'unsupported_format'],
      ['cut.jpg', 'image/jpeg', jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'corrupt_image'],
      ['vector.png', 'image/png', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), 'unsupported_format'],
    ];
    const ids = await Promise.all(cases.map(([name, type, data]) => ctx.presignedUpload(name, type, data)));
    const jobs = await Promise.all(ids.map((id) => ctx.waitForJob(id)));
    finished.push(...ids);
    jobs.forEach((job, i) => {
      expect(job.status).toBe('failed');
      expect(job.error.code).toBe(cases[i][3]);
      expect(job.error.message.length).toBeGreaterThan(5);
      expect(job.attempts).toBe(1);
      expect(job.outputs).toEqual([]);
    });
  });

  it('makes a job for an object another tool put under uploads/ (and fails an empty one with empty_file)', async () => {
    const key = `uploads/from-another-tool/empty ${Date.now()}.jpg`;
    await s3.send(new PutObjectCommand({ Bucket: ctx.outputs.RawBucketName, Key: key, Body: Buffer.alloc(0), ContentType: 'image/jpeg' }));
    const filename = key.split('/').pop();
    const job = await ctx.findJob(`for the foreign object ${filename}, terminal`, (j) => j.input?.filename === filename && (j.status === 'failed' || j.status === 'succeeded'), 'type=thumbnail', 60_000);
    expect(job, 'a job for the foreign object').toBeDefined();
    finished.push(job.jobId);
    expect(job.status).toBe('failed');
    expect(job.error.code).toBe('empty_file');
  });

  it('notifies a subscriber exactly once per finished job, with type and status', async () => {
    expect(finished.length).toBeGreaterThanOrEqual(10);
    // Every notification the subscriber gets, until each finished job has one and the queue is quiet.
    const seen = await drainNotifications(sqs, subscriberUrl, finished, 120_000);
    for (const id of finished) {
      const list = seen.get(id) ?? [];
      expect(list.length, `notifications for ${id}`).toBe(1);
      expect(list[0]).toMatchObject({ jobId: id, type: 'thumbnail', status: expect.stringMatching(/^(succeeded|failed)$/) });
      expect(list[0].completedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
  });
});
