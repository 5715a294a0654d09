// zod's tree-shakable build: a few KB in each bundle instead of ~450 KB (cold starts).
import * as z from 'zod/mini';
import { PRIORITIES, uploadPrefixFor, type Priority } from '../../lambda/shared/contract';
import { HttpError } from '../../lambda/shared/errors';
import { sanitizeFilename } from '../../lambda/shared/filename';
import type { ApiRequest } from '../../lambda/shared/http';
import { defineJobType, type TypeRouteContext } from '../../lambda/shared/job-type';
import { describeIssues, normalizeContentType, parseJsonBody, settingInt, splitSubmitOptions, withSubmitOptions } from '../../lambda/shared/schemas';
import { parseUploadEvents } from '../../lambda/shared/s3-event';

/** Image types accepted for upload; the worker checks the bytes themselves, not this label. */
export const ACCEPTED_IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/tiff', 'image/avif'] as const;
const EXT: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/tiff': 'tiff',
  'image/avif': 'avif',
};
export const extensionFor = (contentType: string): string => EXT[contentType] ?? 'bin';

/** `POST /uploads` with JSON: a presigned upload. */
export const UploadRequest = z.strictObject({
  filename: z.string().check(z.minLength(1, 'filename must not be empty'), z.maxLength(1024, 'filename is longer than 1024 characters')),
  contentType: z.string().check(z.minLength(1), z.maxLength(255)),
  size: z.number().check(
    z.refine((n) => Number.isInteger(n), 'size must be a whole number of bytes'),
    z.positive('size must be at least 1 byte'),
  ),
});

/** `POST /uploads` with JSON, as API Gateway validates it: the upload and its lane (no delay: the upload is the trigger). */
export const UploadRequestBody = withSubmitOptions(UploadRequest, ['priority']);

/** A thumbnail job's input: the uploaded file (its key is the platform's, not shown). */
export const ThumbnailInput = z.object({
  filename: z.string(),
  key: z.string(),
  contentType: z.optional(z.string()),
  bytes: z.optional(z.number()),
  width: z.optional(z.number()),
  height: z.optional(z.number()),
});
export type ThumbnailInput = z.infer<typeof ThumbnailInput>;

const SIZES = /^[a-z0-9]+:\d+(,[a-z0-9]+:\d+)*$/i;
export const ThumbnailSettings = z.object({
  /** Output sizes, `name:longestEdge` comma separated. */
  sizes: z.string().check(z.refine((s) => SIZES.test(s.replace(/\s+/g, '')), 'expected name:px[,name:px...]')),
  /** Decompression-bomb guard: images with more pixels fail with `image_too_large`. */
  maxPixels: settingInt(1, 1_000_000_000),
  /** Largest upload accepted through a presigned PUT. */
  maxUploadBytes: settingInt(1, 5 * 1024 ** 3),
  /** Largest image accepted directly in the body of POST /uploads (API Gateway/Lambda payload limits). */
  directUploadMaxBytes: settingInt(1, 4.5 * 1024 * 1024),
});
export type ThumbnailSettings = z.infer<typeof ThumbnailSettings>;

/**
 * Thumbnails: the input is a photo, uploaded with a presigned PUT or in the body of
 * `POST /uploads`; its S3 ObjectCreated event (through the queue) is the job's message.
 */
export const definition = defineJobType({
  name: 'thumbnail',
  description: 'small/medium/large thumbnails (JPEG or PNG, plus WebP) of an uploaded photo',
  inputKind: 'file',
  input: ThumbnailInput,
  settings: {
    defaults: { sizes: 'small:160,medium:640,large:1280', maxPixels: 100_000_000, maxUploadBytes: 25 * 1024 * 1024, directUploadMaxBytes: 4 * 1024 * 1024 },
    schema: ThumbnailSettings,
  },
  core: { timeoutSeconds: 30, memoryMb: 1536, batchSize: 5, batchingWindowSeconds: 0, maxConcurrency: 20 },
  hiddenInputKeys: ['key'],
  resultsPrefix: 'thumbnails/',
  messageJobs: (body) =>
    parseUploadEvents(body).map((u) => ({
      jobId: u.jobId,
      claimInput: { bytes: u.size, key: u.key },
      data: { bucket: u.bucket, key: u.key },
      ...(u.ours ? {} : { createInput: { filename: u.filename, key: u.key, bytes: u.size }, priority: u.priority }),
    })),
  errorCodes: ['unsupported_format', 'corrupt_image', 'empty_file', 'image_too_large', 'not_found'],
  routes: [
    {
      method: 'POST',
      path: '/uploads',
      operationName: 'CreateUpload',
      summary:
        'Upload a photo: JSON { filename, contentType, size, priority? } answers 201 with a presigned PUT URL; an image body (Content-Type: image/..., at most directUploadMaxBytes, ?priority=high for the high lane) answers 202',
      body: UploadRequestBody,
      binaryMediaTypes: ['image/*'],
      handle: createUpload,
    },
  ],
});

async function createUpload(req: ApiRequest, ctx: TypeRouteContext<ThumbnailSettings>) {
  const contentType = normalizeContentType(req.headers['content-type']);
  if (contentType.startsWith('image/')) return directUpload(req, ctx, contentType);
  if (contentType !== 'application/json') {
    throw new HttpError(
      415,
      'unsupported_media_type',
      'send application/json { filename, contentType, size } for a presigned upload, or an image body (Content-Type: image/...)',
    );
  }
  const { options, rest } = splitSubmitOptions(parseJsonBody(req.body), ['priority']);
  const parsed = UploadRequest.safeParse(rest);
  if (!parsed.success) throw new HttpError(400, 'invalid_request', describeIssues(parsed.error));
  const { priority } = options;
  const declared = normalizeContentType(parsed.data.contentType);
  checkImageType(declared);
  const max = ctx.settings.maxUploadBytes;
  if (parsed.data.size > max) throw new HttpError(413, 'payload_too_large', `size ${parsed.data.size} is over the limit of ${max} bytes`);
  const jobId = ctx.newId();
  const filename = sanitizeFilename(parsed.data.filename, `upload.${extensionFor(declared)}`);
  // The key's prefix is the lane: S3 sends each prefix's events to that lane's queue.
  const key = `${uploadPrefixFor(priority)}${jobId}/${filename}`;
  const ttl = ctx.presignTtlSeconds;
  // Past the URL's life (and a minute for an upload in progress) the sweeper fails the job `upload_expired`.
  await ctx.create({
    jobId,
    status: 'awaiting_upload',
    input: { filename, contentType: declared, bytes: parsed.data.size, key },
    priority,
    sweepAfterMs: (ttl + 60) * 1000,
  });
  const uploadUrl = await ctx.presignPut(key, declared, parsed.data.size, ttl);
  return {
    statusCode: 201,
    body: {
      jobId,
      uploadUrl,
      method: 'PUT',
      headers: { 'Content-Type': declared, 'Content-Length': String(parsed.data.size), 'If-None-Match': '*' },
      expiresAt: new Date(ctx.now().getTime() + ttl * 1000).toISOString(),
      statusUrl: ctx.statusUrl(req, jobId),
    },
  };
}

/** `?priority=` of a direct upload (its body is the image, so the lane comes in the query). */
function queryPriority(req: ApiRequest): Priority {
  const value = req.query.priority;
  if (value === undefined) return 'normal';
  if (!(PRIORITIES as readonly string[]).includes(value)) {
    throw new HttpError(400, 'invalid_request', `priority: priority must be one of ${PRIORITIES.join(', ')}`);
  }
  return value as Priority;
}

async function directUpload(req: ApiRequest, ctx: TypeRouteContext<ThumbnailSettings>, contentType: string) {
  checkImageType(contentType);
  const priority = queryPriority(req);
  const body = req.body ?? Buffer.alloc(0);
  if (body.length === 0) throw new HttpError(400, 'invalid_request', 'the request body is empty: send the image bytes');
  const max = ctx.settings.directUploadMaxBytes;
  if (body.length > max) {
    throw new HttpError(
      413,
      'payload_too_large',
      `direct uploads are limited to ${max} bytes; for larger files POST /uploads with JSON { filename, contentType, size } and PUT the file to the returned uploadUrl`,
    );
  }
  const jobId = ctx.newId();
  const requested = req.query.filename ?? decodeHeader(req.headers['x-filename']);
  const filename = sanitizeFilename(requested ?? '', `upload.${extensionFor(contentType)}`);
  const key = `${uploadPrefixFor(priority)}${jobId}/${filename}`;
  // The job exists before the object, so the worker always finds it; if the put fails, the
  // job is failed at once (nothing else would ever run it).
  await ctx.create({ jobId, status: 'queued', input: { filename, contentType, bytes: body.length, key }, priority });
  try {
    await ctx.putRaw(key, body, contentType, jobId);
  } catch {
    // The failure is ours (storage unreachable), not the client's: 503, naming the failed job.
    const message = 'the upload could not be stored; please retry';
    await ctx.failQueued(jobId, { code: 'upload_failed', message });
    throw new HttpError(503, 'upload_failed', `${message} (job ${jobId} is failed)`);
  }
  return { statusCode: 202, body: { jobId, statusUrl: ctx.statusUrl(req, jobId) } };
}

function checkImageType(contentType: string): void {
  if (!(ACCEPTED_IMAGE_TYPES as readonly string[]).includes(contentType)) {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `content type ${JSON.stringify(contentType)} is not accepted; use one of ${ACCEPTED_IMAGE_TYPES.join(', ')}`,
    );
  }
}

function decodeHeader(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
