import type { StreamSourceConfig } from '../../local/stream-source';

/**
 * A DynamoDB stream event source for the notifier function, with Lambda's defaults for what
 * a test does not set (no bisection, retries and record age unlimited, no filters).
 */
export function streamSourceConfig(streamArn: string, over: Partial<StreamSourceConfig> = {}): StreamSourceConfig {
  return {
    label: 'notifier',
    functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:notifier',
    streamArn,
    region: 'us-east-1',
    startingPosition: 'TRIM_HORIZON',
    batchSize: 10,
    batchingWindowSeconds: 0,
    bisectBatchOnFunctionError: false,
    maximumRetryAttempts: -1,
    maximumRecordAgeSeconds: -1,
    reportBatchItemFailures: false,
    filterPatterns: [],
    ...over,
  };
}
