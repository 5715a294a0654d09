/**
 * Every tunable of the stack in one typed object, with defaults, overridable through CDK
 * context (`npx cdk deploy -c key=value`, or `"context"` in cdk.json).
 *
 * Derived settings (queue visibility timeouts, for one) are computed from these in the
 * constructs and are deliberately not settable here.
 */
import type { Node } from 'constructs';

export interface OffloadConfig {
  /** Destroy buckets, table and logs with the stack (dev/test stacks). Default false: RETAIN. */
  ephemeral: boolean;
  /** Days after which raw uploads expire from the raw bucket. */
  rawExpirationDays: number;
  /** Days after which reports and thumbnails expire from the results bucket (0 = never). */
  resultsExpirationDays: number;
  /** CloudWatch Logs retention for every log group, in days (a value CloudWatch accepts). */
  logRetentionDays: number;
  /** Receives before a message goes to its dead-letter queue. */
  maxReceiveCount: number;
  /** Days a message is kept in a dead-letter queue (max 14). */
  dlqRetentionDays: number;

  /** Thumbnail worker. The queue's visibility timeout is 6 x this timeout. */
  thumbnailTimeoutSeconds: number;
  thumbnailMemoryMb: number;
  thumbnailBatchSize: number;
  thumbnailBatchingWindowSeconds: number;
  /** Maximum concurrent invocations the SQS event source may start (2..1000). */
  thumbnailMaxConcurrency: number;
  /** Output sizes, `name:longestEdge` comma separated. */
  thumbnailSizes: string;
  /** Decompression-bomb guard: images with more pixels fail with `image_too_large`. */
  maxPixels: number;

  /** Report worker. Long reports: the queue's visibility timeout is 6 x this timeout. */
  reportTimeoutSeconds: number;
  reportMemoryMb: number;
  reportBatchSize: number;
  reportBatchingWindowSeconds: number;
  /** At most this many reports run at once (2 is the minimum SQS event sources accept). */
  reportMaxConcurrency: number;
  /** Longest report range in days. */
  reportMaxDays: number;

  /** API function. */
  apiTimeoutSeconds: number;
  apiMemoryMb: number;
  /** Largest upload accepted through a presigned PUT. */
  maxUploadBytes: number;
  /** Largest image accepted directly in the body of POST /uploads (API Gateway/Lambda payload limits). */
  directUploadMaxBytes: number;
  /** Lifetime of presigned upload and download URLs. */
  presignTtlSeconds: number;
  /** Jobs are deleted from the table (TTL) this many days after creation. */
  jobTtlDays: number;
  /** Usage plan: steady-state requests per second, burst, and daily quota per API key. */
  apiRateLimit: number;
  apiBurstLimit: number;
  apiQuotaPerDay: number;
  /** Allowed CORS origins, comma separated (`*` for any). */
  corsOrigins: string;

  /** How often the sweeper fails jobs abandoned by a dead worker on their last attempt. */
  sweepIntervalMinutes: number;
  /** Alarm when the oldest message in a work queue is older than this. */
  alarmOldestMessageSeconds: number;
  /** Optional e-mail subscribed to job completion notifications. */
  notifyEmail: string;
  /** Optional e-mail subscribed to the alarm topic. */
  alarmEmail: string;
}

export const DEFAULT_CONFIG: Readonly<OffloadConfig> = Object.freeze({
  ephemeral: false,
  rawExpirationDays: 30,
  resultsExpirationDays: 0,
  logRetentionDays: 30,
  maxReceiveCount: 3,
  dlqRetentionDays: 14,

  thumbnailTimeoutSeconds: 30,
  thumbnailMemoryMb: 1536,
  thumbnailBatchSize: 5,
  thumbnailBatchingWindowSeconds: 0,
  thumbnailMaxConcurrency: 20,
  thumbnailSizes: 'small:160,medium:640,large:1280',
  maxPixels: 100_000_000,

  reportTimeoutSeconds: 600,
  reportMemoryMb: 1024,
  reportBatchSize: 1,
  reportBatchingWindowSeconds: 0,
  reportMaxConcurrency: 2,
  reportMaxDays: 366,

  apiTimeoutSeconds: 10,
  apiMemoryMb: 512,
  maxUploadBytes: 25 * 1024 * 1024,
  directUploadMaxBytes: 4 * 1024 * 1024,
  presignTtlSeconds: 900,
  jobTtlDays: 90,
  apiRateLimit: 50,
  apiBurstLimit: 100,
  apiQuotaPerDay: 100_000,
  corsOrigins: '*',

  sweepIntervalMinutes: 5,
  alarmOldestMessageSeconds: 900,
  notifyEmail: '',
  alarmEmail: '',
});

/** Bounds checked at synth time, so a typo fails `cdk synth` rather than a deployment. */
const BOUNDS: Partial<Record<keyof OffloadConfig, [number, number]>> = {
  rawExpirationDays: [1, 3650],
  resultsExpirationDays: [0, 3650],
  maxReceiveCount: [1, 1000],
  dlqRetentionDays: [1, 14],
  thumbnailTimeoutSeconds: [1, 900],
  thumbnailMemoryMb: [128, 10240],
  thumbnailBatchSize: [1, 10000],
  thumbnailBatchingWindowSeconds: [0, 300],
  thumbnailMaxConcurrency: [2, 1000],
  maxPixels: [1, 1_000_000_000],
  reportTimeoutSeconds: [1, 900],
  reportMemoryMb: [128, 10240],
  reportBatchSize: [1, 10],
  reportBatchingWindowSeconds: [0, 300],
  reportMaxConcurrency: [2, 1000],
  reportMaxDays: [1, 3660],
  apiTimeoutSeconds: [1, 29],
  apiMemoryMb: [128, 10240],
  maxUploadBytes: [1, 5 * 1024 ** 3],
  directUploadMaxBytes: [1, 4.5 * 1024 * 1024],
  presignTtlSeconds: [60, 7 * 24 * 3600],
  jobTtlDays: [1, 3650],
  apiRateLimit: [1, 10000],
  apiBurstLimit: [1, 5000],
  apiQuotaPerDay: [1, 1_000_000_000],
  alarmOldestMessageSeconds: [60, 14 * 24 * 3600],
  sweepIntervalMinutes: [1, 1440],
};

/**
 * Reads overrides from CDK context. Context values from the command line arrive as strings;
 * each is converted to the type of its default and checked against its bounds.
 */
export function configFromContext(node: Node, overrides: Partial<OffloadConfig> = {}): OffloadConfig {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const key of Object.keys(DEFAULT_CONFIG) as (keyof OffloadConfig)[]) {
    const raw = node.tryGetContext(key);
    if (raw !== undefined) config[key] = coerce(key, raw);
  }
  Object.assign(config, overrides);
  return validateConfig(config as unknown as OffloadConfig);
}

function coerce(key: keyof OffloadConfig, raw: unknown): unknown {
  const def = DEFAULT_CONFIG[key];
  if (typeof def === 'number') {
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (!Number.isFinite(n)) throw new Error(`context ${key}: expected a number, got ${JSON.stringify(raw)}`);
    return n;
  }
  if (typeof def === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    const s = String(raw).trim().toLowerCase();
    if (s === 'true' || s === '1' || s === 'yes') return true;
    if (s === 'false' || s === '0' || s === 'no' || s === '') return false;
    throw new Error(`context ${key}: expected true or false, got ${JSON.stringify(raw)}`);
  }
  return String(raw);
}

export function validateConfig(config: OffloadConfig): OffloadConfig {
  for (const [key, [min, max]] of Object.entries(BOUNDS) as [keyof OffloadConfig, [number, number]][]) {
    const v = config[key] as number;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      throw new Error(`config ${key}: ${v} is outside ${min}..${max}`);
    }
  }
  if (!/^[a-z0-9]+:\d+(,[a-z0-9]+:\d+)*$/i.test(config.thumbnailSizes.replace(/\s+/g, ''))) {
    throw new Error(`config thumbnailSizes: expected name:px[,name:px...], got ${JSON.stringify(config.thumbnailSizes)}`);
  }
  for (const key of ['notifyEmail', 'alarmEmail'] as const) {
    if (config[key] && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(config[key])) {
      throw new Error(`config ${key}: ${JSON.stringify(config[key])} is not an e-mail address`);
    }
  }
  return config;
}

/** SQS visibility timeout for a queue feeding a Lambda function: AWS recommends 6 x the function timeout. */
export function visibilityTimeoutFor(workerTimeoutSeconds: number): number {
  return Math.min(6 * workerTimeoutSeconds, 12 * 3600);
}
