import { PassThrough } from 'node:stream';
import { Upload } from '@aws-sdk/lib-storage';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { docClient, s3Client } from '../../lambda/shared/clients';
import { BaseEnv, parseEnv } from '../../lambda/shared/env';
import { JobsRepo } from '../../lambda/shared/jobs-repo';
import type { JobRecord, StoredOutput } from '../../lambda/shared/model';
import { createWorker } from '../../lambda/shared/worker';
import { buildReport, type UploadRecord } from './core';
import { definition, formatsOf } from './definition';

/** The type whose jobs a report covers. */
const UPLOAD_TYPE = 'thumbnail';
const env = parseEnv(BaseEnv);
const repo = new JobsRepo(docClient(), env.JOBS_TABLE, env.JOB_TTL_DAYS);

/**
 * Report worker: the upload jobs of a range, streamed from the jobs table page by page ->
 * CSV streamed to S3 and a PDF. The job's life is the generic worker's.
 */
export const handler = createWorker(definition, async ({ job, input, signal, progress, putOutput, outputKey, resultsBucket, logger, metrics }) => {
  const { from, to } = input;
  const formats = formatsOf(input);
  const uploads = repo.streamByType(UPLOAD_TYPE, `${from}T00:00:00.000Z`, `${to}T23:59:59.999Z`);
  const outputs: StoredOutput[] = [];

  let csvStream: PassThrough | undefined;
  let csvUpload: Promise<number> | undefined;
  let abortCsv = async (): Promise<void> => undefined;
  const csvKey = outputKey('report.csv');
  if (formats.includes('csv')) {
    csvStream = new PassThrough();
    let bytes = 0;
    csvStream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    const upload = new Upload({
      client: s3Client(),
      params: { Bucket: resultsBucket, Key: csvKey, Body: csvStream, ContentType: 'text/csv; charset=utf-8' },
    });
    csvUpload = upload.done().then(() => bytes);
    abortCsv = () => upload.abort().catch(() => undefined);
    // Surface an upload failure even while buildReport is still writing.
    csvUpload.catch((err: unknown) => csvStream?.destroy(err as Error));
  }

  let report: Awaited<ReturnType<typeof buildReport>>;
  try {
    report = await buildReport(mapUploads(uploads, signal), {
      from,
      to,
      formats,
      csv: csvStream,
      progressEvery: 5000,
      onProgress: (done) => progress(done),
    });
    // Cancelled (or out of time) while the rows were read: stop before storing anything more.
    signal.throwIfAborted();
  } catch (err) {
    // The CSV's multipart upload stops with the work (no parts are left behind).
    csvStream?.destroy();
    await abortCsv();
    throw err;
  }
  if (csvUpload) {
    const bytes = await csvUpload;
    outputs.push({ name: 'csv', format: 'csv', contentType: 'text/csv', bytes, key: csvKey });
  }
  if (report.pdf) outputs.push(await putOutput('report.pdf', report.pdf, { name: 'pdf', format: 'pdf', contentType: 'application/pdf' }));
  await progress(report.rows, report.rows);
  logger.info('report built', { jobId: job.jobId, rows: report.rows, total: report.summary.total });
  metrics.addMetric('reportRows', MetricUnit.Count, report.rows);
  return { outputs };
});

async function* mapUploads(jobs: AsyncIterable<JobRecord>, signal: AbortSignal): AsyncGenerator<UploadRecord> {
  for await (const job of jobs) {
    signal.throwIfAborted();
    const outputs = job.outputs ?? [];
    const input = (job.input ?? {}) as { filename?: string; contentType?: string; bytes?: number; width?: number; height?: number };
    yield {
      jobId: job.jobId,
      filename: input.filename ?? '',
      contentType: input.contentType,
      bytes: input.bytes,
      width: input.width,
      height: input.height,
      status: job.status,
      errorCode: job.error?.code,
      errorMessage: job.error?.message,
      createdAt: job.createdAt,
      completedAt: job.completedAt,
      processingMs: job.processingMs,
      outputBytes: outputs.reduce((n, o) => n + (o.bytes ?? 0), 0),
      outputFormats: [...new Set(outputs.map((o) => o.format))],
    };
  }
}
