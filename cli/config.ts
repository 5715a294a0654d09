import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from './errors';

/**
 * Where the CLI finds its API and its stack. For every setting the first source that has it
 * wins:
 *
 * 1. flags: `--api`, `--api-key`, `--region`, `--stack`;
 * 2. environment: `OFFLOAD_API_URL`, `OFFLOAD_API_KEY` (AWS: `AWS_ENDPOINT_URL`, `AWS_REGION`,
 *    `AWS_DEFAULT_REGION`);
 * 3. the local-mode file: `--config PATH`, else `.offload/local.json` in the current directory
 *    (`{ apiUrl, apiKey, awsEndpoint, region, stackName, outputs }`, written by `npm start`);
 * 4. the CDK outputs file: `--outputs-file PATH`, else `.offload/outputs.json` in the current
 *    directory (`cdk deploy --outputs-file .offload/outputs.json`: `{ "<Stack>": { ApiUrl, ... } }`);
 * 5. lazily, only when needed and possible: the stack's outputs from CloudFormation
 *    (`--stack NAME`), and the API key's value from API Gateway (`ApiKeyId` output, GetApiKey
 *    with includeValue) when the API URL is the stack's own.
 *
 * An explicit `--config`/`--outputs-file` replaces the default file of its kind and must exist.
 */

export const LOCAL_CONFIG_FILE = path.join('.offload', 'local.json');
export const OUTPUTS_FILE = path.join('.offload', 'outputs.json');

export interface LocalConfigFile {
  apiUrl?: string;
  apiKey?: string;
  awsEndpoint?: string;
  region?: string;
  stackName?: string;
  outputs?: Record<string, string>;
}

export type OutputsFile = Record<string, Record<string, string>>;

export interface GlobalFlags {
  api?: string;
  apiKey?: string;
  config?: string;
  outputsFile?: string;
  stack?: string;
  region?: string;
}

/** What the sources say, before any resolution (the pure resolver's input). */
export interface ConfigSources {
  flags: GlobalFlags;
  env: Record<string, string | undefined>;
  local?: { path: string; data: LocalConfigFile };
  outputsFile?: { path: string; data: OutputsFile };
}

export interface Sourced<T> {
  value: T;
  /** Where the value came from, for messages: `--api`, `OFFLOAD_API_URL`, a file path... */
  source: string;
}

export interface ResolvedConfig {
  apiUrl?: Sourced<string>;
  apiKey?: Sourced<string>;
  /** The stack's outputs when a file had them (else `--stack` lets the CLI ask CloudFormation). */
  outputs?: Sourced<Record<string, string>>;
  /** Why the outputs file could not give outputs (several stacks and none chosen, say). */
  outputsProblem?: string;
  stackName?: string;
  aws: {
    endpoint?: string;
    region?: string;
    /** Local mode's emulator without credentials in the environment: use test credentials. */
    testCredentials: boolean;
  };
}

const nonEmpty = (v: string | undefined): v is string => typeof v === 'string' && v.trim() !== '';

function first<T>(...candidates: Array<[T | undefined, string]>): Sourced<T> | undefined {
  for (const [value, source] of candidates) {
    if (value !== undefined && (typeof value !== 'string' || nonEmpty(value))) return { value, source };
  }
  return undefined;
}

/** The stack entry of an outputs file: the one named, else the only one, else the only one with an ApiUrl. */
export function pickStack(file: OutputsFile, wanted?: string): { name?: string; outputs?: Record<string, string>; problem?: string } {
  const names = Object.keys(file).filter((k) => file[k] && typeof file[k] === 'object');
  if (wanted) {
    return file[wanted] ? { name: wanted, outputs: file[wanted] } : { problem: `has no stack ${JSON.stringify(wanted)} (it has: ${names.join(', ') || 'none'})` };
  }
  if (names.length === 1) return { name: names[0], outputs: file[names[0]] };
  const withApi = names.filter((n) => typeof file[n].ApiUrl === 'string');
  if (withApi.length === 1) return { name: withApi[0], outputs: file[withApi[0]] };
  if (names.length === 0) return { problem: 'holds no stack' };
  return { problem: `holds several stacks (${names.join(', ')}): choose one with --stack NAME` };
}

/** Region of an AWS URL or ARN (`https://sqs.eu-west-1.amazonaws.com/...`, `arn:aws:sns:eu-west-1:...`). */
export function regionFromUrlOrArn(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const arn = /^arn:[^:]+:[^:]+:([a-z0-9-]+):/.exec(value);
  if (arn && arn[1]) return arn[1];
  const host = /^https?:\/\/[^/]*?\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com/.exec(value);
  return host?.[1];
}

/** Adds the trailing slash URL resolution needs (`new URL('jobs', base)`). */
export function normalizeBaseUrl(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** Pure: which value of which source wins, for every setting. */
export function resolveConfig(src: ConfigSources): ResolvedConfig {
  const { flags, env } = src;
  const local = src.local?.data ?? {};
  const localPath = src.local?.path ?? LOCAL_CONFIG_FILE;

  const stackName = first<string>([flags.stack, '--stack'], [local.stackName, localPath])?.value;

  let outputs: Sourced<Record<string, string>> | undefined;
  let outputsProblem: string | undefined;
  if (local.outputs && Object.keys(local.outputs).length > 0 && (!flags.stack || flags.stack === local.stackName)) {
    outputs = { value: local.outputs, source: localPath };
  } else if (src.outputsFile) {
    const picked = pickStack(src.outputsFile.data, flags.stack ?? local.stackName);
    if (picked.outputs) outputs = { value: picked.outputs, source: `${src.outputsFile.path} (stack ${picked.name})` };
    else outputsProblem = `${src.outputsFile.path} ${picked.problem}`;
  }

  const apiUrl = first<string>(
    [flags.api, '--api'],
    [env.OFFLOAD_API_URL, 'OFFLOAD_API_URL'],
    [local.apiUrl, localPath],
    [outputs?.value.ApiUrl, outputs?.source ?? ''],
  );
  const apiKey = first<string>([flags.apiKey, '--api-key'], [env.OFFLOAD_API_KEY, 'OFFLOAD_API_KEY'], [local.apiKey, localPath]);

  const envEndpoint = nonEmpty(env.AWS_ENDPOINT_URL) ? env.AWS_ENDPOINT_URL : undefined;
  const endpoint = envEndpoint ?? (nonEmpty(local.awsEndpoint) ? local.awsEndpoint : undefined);
  const region = first<string>(
    [flags.region, '--region'],
    [env.AWS_REGION, 'AWS_REGION'],
    [env.AWS_DEFAULT_REGION, 'AWS_DEFAULT_REGION'],
    [local.region, localPath],
    [regionFromUrlOrArn(outputs?.value.ThumbnailQueueUrl) ?? regionFromUrlOrArn(outputs?.value.NotificationTopicArn), 'outputs'],
  )?.value;
  const testCredentials = !envEndpoint && endpoint !== undefined && !nonEmpty(env.AWS_ACCESS_KEY_ID) && !nonEmpty(env.AWS_PROFILE);

  return {
    apiUrl: apiUrl && { ...apiUrl, value: normalizeBaseUrl(apiUrl.value.trim()) },
    apiKey,
    outputs,
    outputsProblem,
    stackName,
    aws: { endpoint, region, testCredentials },
  };
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what} ${file} is not valid JSON`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads the files the flags name (they must exist) or the default ones in `cwd` (if they exist). */
export function loadConfigSources(flags: GlobalFlags, env: Record<string, string | undefined>, cwd: string): ConfigSources {
  const sources: ConfigSources = { flags, env };
  const localPath = flags.config ? path.resolve(cwd, flags.config) : path.join(cwd, LOCAL_CONFIG_FILE);
  if (flags.config || fs.existsSync(localPath)) {
    const data = readJson(localPath, 'config file');
    if (!isObject(data)) throw new UsageError(`config file ${localPath} must hold a JSON object`);
    sources.local = { path: localPath, data: data as LocalConfigFile };
  }
  const outputsPath = flags.outputsFile ? path.resolve(cwd, flags.outputsFile) : path.join(cwd, OUTPUTS_FILE);
  if (flags.outputsFile || fs.existsSync(outputsPath)) {
    const data = readJson(outputsPath, 'outputs file');
    if (!isObject(data) || !Object.values(data).every(isObject)) {
      throw new UsageError(`outputs file ${outputsPath} must look like { "<StackName>": { "ApiUrl": ..., ... } } (cdk deploy --outputs-file)`);
    }
    sources.outputsFile = { path: outputsPath, data: data as OutputsFile };
  }
  return sources;
}
