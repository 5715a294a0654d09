import { GetObjectCommand, NoSuchKey, PutObjectCommand } from '@aws-sdk/client-s3';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import { s3Client } from '../shared/clients';
import { intEnv, requireEnv } from '../shared/env';
import { PermanentJobError } from '../shared/errors';
import { runJob } from '../shared/job-runner';
import { THUMBNAIL_PREFIX, type StoredOutput, type ThumbnailInput } from '../shared/model';
import { makeThumbnails, parseSizes } from '../shared/thumbnail-core';
import { attemptOwner, receiveCount, workerKit } from '../shared/worker-kit';
import { parseUploadEvents, type UploadEvent } from '../shared/s3-event';

/**
 * Thumbnail worker: S3 ObjectCreated events (through the thumbnails queue) -> thumbnails in
 * the results bucket -> job status -> completion notification. A thin adapter: the image
 * work is thumbnail-core's, the job's life is job-runner's.
 */
const { logger, metrics, repo, notifier, settings, sqsHandler, countOutcome } = workerKit('offload-thumbnail');
const resultsBucket = requireEnv('RESULTS_BUCKET');
const sizes = parseSizes(process.env.THUMBNAIL_SIZES ?? 'small:160,medium:640,large:1280');
const maxPixels = intEnv('MAX_PIXELS', 100_000_000);
const maxInputBytes = intEnv('MAX_UPLOAD_BYTES', 25 * 1024 * 1024);

export const handler = sqsHandler(handleRecord);

async function handleRecord(record: SQSRecord): Promise<void> {
  let uploads: UploadEvent[];
  try {
    uploads = parseUploadEvents(record.body);
  } catch (err) {
    // Not an S3 event: a poison message. Failing it lets the queue's redrive policy move it
    // to the DLQ after maxReceiveCount, where it can be inspected.
    logger.error('malformed message', { messageId: record.messageId, reason: (err as Error).message });
    metrics.addMetric('malformedMessages', MetricUnit.Count, 1);
    throw err;
  }
  for (const upload of uploads) await handleUpload(record, upload);
}

async function handleUpload(record: SQSRecord, upload: UploadEvent): Promise<void> {
  const log = logger.createChild({ persistentKeys: { jobId: upload.jobId } });
  if (!upload.ours) {
    // An object put by another tool: it gets a job too.
    await repo.create({
      jobId: upload.jobId,
      type: 'thumbnail',
      status: 'queued',
      input: { filename: upload.filename, key: upload.key, bytes: upload.size },
    });
  }
  const started = Date.now();
  const outcome = await countOutcome(
    started,
    runJob(
      { repo, notifier, logger: log },
      {
        jobId: upload.jobId,
        owner: attemptOwner(record),
        receiveCount: receiveCount(record),
        maxReceiveCount: settings.maxReceiveCount,
        leaseMs: settings.leaseMs,
        claimInput: { bytes: upload.size, key: upload.key },
      },
      async (job) => {
        const filename = job.input?.filename ?? upload.filename;
        const data = await readUpload(upload);
        const result = await makeThumbnails(data, { sizes, maxPixels });
        const outputs: StoredOutput[] = await Promise.all(
          result.outputs.map(async (o) => {
            const key = `${THUMBNAIL_PREFIX}${upload.jobId}/${o.name}.${o.ext}`;
            await s3Client().send(
              new PutObjectCommand({
                Bucket: resultsBucket,
                Key: key,
                Body: o.data,
                ContentType: o.contentType,
                CacheControl: 'private, max-age=31536000, immutable',
              }),
            );
            return { name: o.name, format: o.format, contentType: o.contentType, width: o.width, height: o.height, bytes: o.bytes, key };
          }),
        );
        const input: ThumbnailInput = {
          filename,
          contentType: `image/${result.input.format}`,
          bytes: result.input.bytes,
          width: result.input.width,
          height: result.input.height,
          key: upload.key,
        };
        metrics.addMetric('bytesIn', MetricUnit.Bytes, result.input.bytes);
        metrics.addMetric('bytesOut', MetricUnit.Bytes, outputs.reduce((n, o) => n + o.bytes, 0));
        return { outputs, input };
      },
    ),
  );
  log.info('upload handled', { outcome, ms: Date.now() - started });
}

async function readUpload(upload: UploadEvent): Promise<Buffer> {
  try {
    const out = await s3Client().send(new GetObjectCommand({ Bucket: upload.bucket, Key: upload.key }));
    if ((out.ContentLength ?? 0) > maxInputBytes) {
      out.Body?.transformToWebStream().cancel().catch(() => undefined);
      throw new PermanentJobError('image_too_large', `the upload is ${out.ContentLength} bytes; the limit is ${maxInputBytes}`);
    }
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch (err) {
    if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') {
      throw new PermanentJobError('not_found', `the uploaded object ${upload.key} no longer exists`);
    }
    throw err;
  }
}
