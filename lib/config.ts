/**
 * Every tunable of the stack in one typed object, with defaults, overridable through CDK
 * context (`npx cdk deploy -c key=value`, or `"context"` in cdk.json).
 *
 * Derived settings (queue visibility timeouts, for one) are computed from these in the
 * constructs and are deliberately not settable here.
 */
import type { Node } from 'constructs';
import { CORE_SETTING_BOUNDS, DEFAULT_CORE_SETTINGS, defaultHighMaxConcurrency, type CoreSettings } from '../lambda/shared/job-type';
import type { JobTypePlugin } from './job-type';

export interface OffloadConfig {
  /** Destroy buckets, table and logs with the stack (dev/test stacks). Default false: RETAIN. */
  ephemeral: boolean;
  /** Days after which raw uploads expire from the raw bucket. */
  rawExpirationDays: number;
  /** Days after which reports and thumbnails expire from the results bucket (0 = never). */
  resultsExpirationDays: number;
  /** CloudWatch Logs retention for every log group, in days (a value CloudWatch accepts). */
  logRetentionDays: number;
  /** Receives before a message goes to its dead-letter queue (every type's default; `jobs.<type>.maxReceiveCount` overrides). */
  maxReceiveCount: number;
  /** Days a message is kept in a dead-letter queue (max 14). */
  dlqRetentionDays: number;

  /** API function. Its timeout bounds long-polls (`GET /jobs/{jobId}?waitSeconds=`, at most 20 s): keep it above 21 s for the full wait (API Gateway's integration limit is 29 s). */
  apiTimeoutSeconds: number;
  apiMemoryMb: number;
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

  apiTimeoutSeconds: 25,
  apiMemoryMb: 512,
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
  apiTimeoutSeconds: [1, 29],
  apiMemoryMb: [128, 10240],
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

/**
 * A job type's settings: the platform's core defaults, the type's own defaults, then context
 * (`-c jobs.<type>.<setting>=value`, a `jobs` object in cdk.json, or one of the type's flat
 * aliases such as `thumbnailTimeoutSeconds`), then `overrides`; checked with a clear message.
 */
export function resolveJobTypeSettings(
  node: Node,
  plugin: JobTypePlugin,
  platform: Pick<OffloadConfig, 'maxReceiveCount'>,
  overrides: Record<string, unknown> = {},
): CoreSettings & Record<string, unknown> {
  const def = plugin.definition;
  const known = [...Object.keys(CORE_SETTING_BOUNDS), ...Object.keys(def.settings.defaults)];
  // The high lane's concurrency follows the normal lane's (2x) unless the type or the context sets it.
  const coreDefaults: Record<string, unknown> = { ...DEFAULT_CORE_SETTINGS };
  delete coreDefaults.highMaxConcurrency;
  const raw: Record<string, unknown> = {
    ...coreDefaults,
    maxReceiveCount: platform.maxReceiveCount,
    ...def.core,
    ...def.settings.defaults,
  };
  const sources: Record<string, string> = {};
  for (const [alias, key] of Object.entries(plugin.contextAliases ?? {})) {
    const v = node.tryGetContext(alias);
    if (v !== undefined) {
      raw[key] = v;
      sources[key] = alias;
    }
  }
  const nested = node.tryGetContext('jobs')?.[def.name];
  const flat = Object.entries(node.getAllContext())
    .filter(([k]) => k.startsWith(`jobs.${def.name}.`))
    .map(([k, v]) => [k.slice(`jobs.${def.name}.`.length), v] as const);
  for (const [key, v] of [...Object.entries(typeof nested === 'object' && nested ? nested : {}), ...flat, ...Object.entries(overrides)]) {
    if (!known.includes(key)) throw new Error(`context jobs.${def.name}.${key}: ${def.name} has no setting ${key}; it has ${known.join(', ')}`);
    raw[key] = v;
    sources[key] = `jobs.${def.name}.${key}`;
  }
  const where = (key: string) => `context ${sources[key] ?? `jobs.${def.name}.${key}`}`;
  const core: Record<string, number> = {};
  for (const [key, [min, max]] of Object.entries(CORE_SETTING_BOUNDS)) {
    // maxConcurrency is checked before it (bounds order).
    if (key === 'highMaxConcurrency' && raw[key] === undefined) raw[key] = defaultHighMaxConcurrency(core.maxConcurrency);
    const n = typeof raw[key] === 'number' ? (raw[key] as number) : Number(String(raw[key]).trim());
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${where(key)}: ${JSON.stringify(raw[key])} is not a whole number from ${min} to ${max}`);
    core[key] = n;
  }
  if (core.retryMaxSeconds < core.retryBaseSeconds) throw new Error(`${where('retryMaxSeconds')}: must be at least retryBaseSeconds (${core.retryBaseSeconds})`);
  const ownRaw = Object.fromEntries(Object.keys(def.settings.defaults).map((k) => [k, raw[k]]));
  const own = def.settings.schema.safeParse(ownRaw);
  if (!own.success) {
    const issue = own.error.issues[0];
    const key = String(issue.path[0] ?? '');
    throw new Error(`${where(key)}: ${JSON.stringify(ownRaw[key])} ${issue.message}`);
  }
  return { ...(core as unknown as CoreSettings), ...(own.data as Record<string, unknown>) };
}
