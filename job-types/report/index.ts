import { INDEXES } from '../../lambda/shared/contract';
import type { JobTypePlugin } from '../../lib/job-type';
import { definition } from './definition';

/** The report type's CDK side: its worker reads the jobs by type and streams a multipart CSV upload. */
export const report: JobTypePlugin = {
  definition,
  dir: __dirname,
  // pdfkit reads its font metrics and ICC profile from files next to its code at run time,
  // which esbuild cannot inline: it is installed beside the bundle instead.
  nativeModules: ['pdfkit'],
  contextAliases: {
    reportTimeoutSeconds: 'timeoutSeconds',
    reportMemoryMb: 'memoryMb',
    reportBatchSize: 'batchSize',
    reportBatchingWindowSeconds: 'batchingWindowSeconds',
    reportMaxConcurrency: 'maxConcurrency',
    reportMaxDays: 'maxDays',
  },
  infra: ({ jobQueue, storage, table, allow }) => {
    allow(jobQueue.worker.fn, ['dynamodb:Query'], [`${table.table.tableArn}/index/${INDEXES.byType}`]);
    allow(jobQueue.worker.fn, ['s3:AbortMultipartUpload'], [storage.resultsBucket.arnForObjects(`${definition.resultsPrefix}*`)]);
  },
};
