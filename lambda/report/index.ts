import { PassThrough } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import type * as z from 'zod/mini';
import { s3Client } from '../shared/clients';
import { requireEnv } from '../shared/env';
import { runJob } from '../shared/job-runner';
import { REPORT_PREFIX, type JobRecord, type StoredOutput } from '../shared/model';
import { buildReport, type UploadRecord } from '../shared/report-core';
import { ReportMessage } from '../shared/schemas';
import { attemptOwner, receiveCount, workerKit } from '../shared/worker-kit';

/**
 * Report worker: a report job's message -> the upload jobs of its range, streamed from the
 * jobs table page by page -> CSV streamed to S3 and a PDF -> job status -> notification.
 */
const { logger, metrics, repo, notifier, settings, sqsHandler, countOutcome } = workerKit('offload-report');
const resultsBucket = requireEnv('RESULTS_BUCKET');

export const handler = sqsHandler(handleRecord);

async function handleRecord(record: SQSRecord): Promise<void> {
  let message: z.infer<typeof ReportMessage>;
  try {
    message = ReportMessage.parse(JSON.parse(record.body));
  } catch (err) {
    // A poison message: fail it, and the redrive policy moves it to the DLQ.
    logger.error('malformed report message', { messageId: record.messageId, reason: (err as Error).message });
    metrics.addMetric('malformedMessages', MetricUnit.Count, 1);
    throw err;
  }
  const { jobId } = message;
  const log = logger.createChild({ persistentKeys: { jobId } });
  const owner = attemptOwner(record);
  const started = Date.now();
  await countOutcome(
    started,
    runJob(
      { repo, notifier, logger: log },
      { jobId, owner, receiveCount: receiveCount(record), maxReceiveCount: settings.maxReceiveCount, leaseMs: settings.leaseMs },
      async (job) => {
        const { from, to, formats } = job.params ?? message.params;
        const uploads = repo.streamByType('thumbnail', `${from}T00:00:00.000Z`, `${to}T23:59:59.999Z`);
        const outputs: StoredOutput[] = [];

        let csvStream: PassThrough | undefined;
        let csvUpload: Promise<number> | undefined;
        const csvKey = `${REPORT_PREFIX}${jobId}/report.csv`;
        if (formats.includes('csv')) {
          csvStream = new PassThrough();
          let bytes = 0;
          csvStream.on('data', (chunk: Buffer) => (bytes += chunk.length));
          const upload = new Upload({
            client: s3Client(),
            params: { Bucket: resultsBucket, Key: csvKey, Body: csvStream, ContentType: 'text/csv; charset=utf-8' },
          });
          csvUpload = upload.done().then(() => bytes);
          // Surface an upload failure even while buildReport is still writing.
          csvUpload.catch((err) => csvStream?.destroy(err as Error));
        }

        const report = await buildReport(mapUploads(uploads), {
          from,
          to,
          formats,
          csv: csvStream,
          progressEvery: 5000,
          onProgress: (done) => repo.progress(jobId, owner, done),
        });
        if (csvUpload) {
          const bytes = await csvUpload;
          outputs.push({ name: 'csv', format: 'csv', contentType: 'text/csv', bytes, key: csvKey });
        }
        if (report.pdf) {
          const key = `${REPORT_PREFIX}${jobId}/report.pdf`;
          await s3Client().send(
            new PutObjectCommand({ Bucket: resultsBucket, Key: key, Body: report.pdf, ContentType: 'application/pdf' }),
          );
          outputs.push({ name: 'pdf', format: 'pdf', contentType: 'application/pdf', bytes: report.pdf.length, key });
        }
        await repo.progress(jobId, owner, report.rows, report.rows);
        log.info('report built', { rows: report.rows, total: report.summary.total });
        metrics.addMetric('reportRows', MetricUnit.Count, report.rows);
        return { outputs };
      },
    ),
  );
}

async function* mapUploads(jobs: AsyncIterable<JobRecord>): AsyncGenerator<UploadRecord> {
  for await (const job of jobs) {
    const outputs = job.outputs ?? [];
    yield {
      jobId: job.jobId,
      filename: job.input?.filename ?? '',
      contentType: job.input?.contentType,
      bytes: job.input?.bytes,
      width: job.input?.width,
      height: job.input?.height,
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
