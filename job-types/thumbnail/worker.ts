import { GetObjectCommand, NoSuchKey } from '@aws-sdk/client-s3';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { s3Client } from '../../lambda/shared/clients';
import { PermanentJobError } from '../../lambda/shared/errors';
import { createWorker } from '../../lambda/shared/worker';
import { makeThumbnails, parseSizes } from './core';
import { definition, type ThumbnailInput } from './definition';

/**
 * Thumbnail worker: an upload's S3 event (through the queue) -> thumbnails in the results
 * bucket. The image work is core's; the job's life is the generic worker's.
 */
export const handler = createWorker(definition, async ({ input, settings, message, signal, progress, putOutput, metrics }) => {
  const sizes = parseSizes(settings.sizes);
  // Steps: the upload read, the image decoded and every thumbnail encoded, then each output
  // written (two per size: JPEG or PNG, and WebP). Progress writes are throttled by the platform.
  const steps = 2 + 2 * sizes.length;
  let done = 0;
  const step = () => progress(++done, Math.max(steps, done));
  await progress(0, steps);
  const data = await readUpload(String(message.data?.bucket), String(message.data?.key ?? input.key), settings.maxUploadBytes);
  signal.throwIfAborted();
  await step();
  const result = await makeThumbnails(data, { sizes, maxPixels: settings.maxPixels });
  signal.throwIfAborted();
  await step();
  const outputs = await Promise.all(
    result.outputs.map(async (o) => {
      const stored = await putOutput(`${o.name}.${o.ext}`, o.data, { name: o.name, format: o.format, contentType: o.contentType, width: o.width, height: o.height, bytes: o.bytes });
      await step();
      return stored;
    }),
  );
  const learnt: ThumbnailInput = {
    filename: input.filename,
    contentType: `image/${result.input.format}`,
    bytes: result.input.bytes,
    width: result.input.width,
    height: result.input.height,
    key: input.key,
  };
  metrics.addMetric('bytesIn', MetricUnit.Bytes, result.input.bytes);
  metrics.addMetric('bytesOut', MetricUnit.Bytes, outputs.reduce((n, o) => n + o.bytes, 0));
  return { outputs, input: learnt };
});

async function readUpload(bucket: string, key: string, maxInputBytes: number): Promise<Buffer> {
  try {
    const out = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if ((out.ContentLength ?? 0) > maxInputBytes) {
      out.Body?.transformToWebStream().cancel().catch(() => undefined);
      throw new PermanentJobError('image_too_large', `the upload is ${out.ContentLength} bytes; the limit is ${maxInputBytes}`);
    }
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch (err) {
    if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') {
      throw new PermanentJobError('not_found', `the uploaded object ${key} no longer exists`);
    }
    throw err;
  }
}
