import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadConfigSources,
  normalizeBaseUrl,
  pickStack,
  regionFromUrlOrArn,
  resolveConfig,
  type ConfigSources,
} from '../../cli/config';
import { UsageError } from '../../cli/errors';

const outputsOf = (api: string) => ({
  ApiUrl: api,
  ApiKeyId: 'k123',
  ThumbnailQueueUrl: 'https://sqs.eu-west-3.amazonaws.com/123456789012/Offload-Thumbs',
  ThumbnailDlqUrl: 'https://sqs.eu-west-3.amazonaws.com/123456789012/Offload-ThumbsDlq',
  ReportQueueUrl: 'https://sqs.eu-west-3.amazonaws.com/123456789012/Offload-Reports',
  ReportDlqUrl: 'https://sqs.eu-west-3.amazonaws.com/123456789012/Offload-ReportsDlq',
});

const all: ConfigSources = {
  flags: { api: 'https://flag.example/prod', apiKey: 'flag-key' },
  env: { OFFLOAD_API_URL: 'https://env.example/prod/', OFFLOAD_API_KEY: 'env-key' },
  local: {
    path: '/w/.offload/local.json',
    data: { apiUrl: 'http://127.0.0.1:3000/', apiKey: 'local-key', awsEndpoint: 'http://localhost:5000', region: 'us-east-1', stackName: 'OffloadLocal', outputs: outputsOf('http://127.0.0.1:3000/') },
  },
  outputsFile: { path: '/w/.offload/outputs.json', data: { Offload: outputsOf('https://abc.execute-api.eu-west-3.amazonaws.com/prod/') } },
};

describe('resolveConfig: first found wins', () => {
  it('flags beat everything', () => {
    const c = resolveConfig(all);
    expect(c.apiUrl).toEqual({ value: 'https://flag.example/prod/', source: '--api' });
    expect(c.apiKey).toEqual({ value: 'flag-key', source: '--api-key' });
  });

  it('then the environment', () => {
    const c = resolveConfig({ ...all, flags: {} });
    expect(c.apiUrl).toEqual({ value: 'https://env.example/prod/', source: 'OFFLOAD_API_URL' });
    expect(c.apiKey?.source).toBe('OFFLOAD_API_KEY');
  });

  it('then the local-mode file, whose outputs beat the outputs file', () => {
    const c = resolveConfig({ ...all, flags: {}, env: {} });
    expect(c.apiUrl).toEqual({ value: 'http://127.0.0.1:3000/', source: '/w/.offload/local.json' });
    expect(c.apiKey?.value).toBe('local-key');
    expect(c.outputs?.source).toBe('/w/.offload/local.json');
    expect(c.stackName).toBe('OffloadLocal');
    expect(c.aws).toEqual({ endpoint: 'http://localhost:5000', region: 'us-east-1', testCredentials: true });
  });

  it('then the CDK outputs file: URL from ApiUrl, no key (it is not an output), region from the queue URLs', () => {
    const c = resolveConfig({ flags: {}, env: {}, outputsFile: all.outputsFile });
    expect(c.apiUrl?.value).toBe('https://abc.execute-api.eu-west-3.amazonaws.com/prod/');
    expect(c.apiUrl?.source).toContain('stack Offload');
    expect(c.apiKey).toBeUndefined();
    expect(c.outputs?.value.ApiKeyId).toBe('k123');
    expect(c.aws).toEqual({ endpoint: undefined, region: 'eu-west-3', testCredentials: false });
  });

  it('resolves each setting on its own (a key from the env, the URL from a file)', () => {
    const c = resolveConfig({ flags: {}, env: { OFFLOAD_API_KEY: 'env-key' }, outputsFile: all.outputsFile });
    expect(c.apiKey?.source).toBe('OFFLOAD_API_KEY');
    expect(c.apiUrl?.source).toContain('outputs.json');
  });

  it('ignores empty values', () => {
    const c = resolveConfig({ flags: { api: '' }, env: { OFFLOAD_API_URL: '  ' }, local: { path: 'l.json', data: { apiUrl: 'http://x/' } } });
    expect(c.apiUrl?.source).toBe('l.json');
  });

  it('AWS settings: AWS_ENDPOINT_URL beats the local file; test credentials only for the local file without credentials', () => {
    expect(resolveConfig({ ...all, env: { AWS_ENDPOINT_URL: 'http://other:4566' } }).aws).toMatchObject({ endpoint: 'http://other:4566', testCredentials: false });
    expect(resolveConfig({ ...all, env: { AWS_ACCESS_KEY_ID: 'AKIA...' } }).aws.testCredentials).toBe(false);
    expect(resolveConfig({ ...all, env: { AWS_PROFILE: 'dev' } }).aws.testCredentials).toBe(false);
    expect(resolveConfig({ ...all, flags: { region: 'ap-south-1' }, env: { AWS_REGION: 'eu-west-1' } }).aws.region).toBe('ap-south-1');
    expect(resolveConfig({ ...all, env: { AWS_REGION: 'eu-west-1' } }).aws.region).toBe('eu-west-1');
    expect(resolveConfig({ ...all, env: { AWS_DEFAULT_REGION: 'eu-north-1' } }).aws.region).toBe('eu-north-1');
  });

  it('--stack chooses among the stacks of an outputs file, and skips local outputs of another stack', () => {
    const outputsFile = { path: 'o.json', data: { A: outputsOf('https://a/'), B: outputsOf('https://b/') } };
    expect(resolveConfig({ flags: {}, env: {}, outputsFile }).outputsProblem).toMatch(/several stacks \(A, B\).*--stack/);
    expect(resolveConfig({ flags: { stack: 'B' }, env: {}, outputsFile }).apiUrl?.value).toBe('https://b/');
    const c = resolveConfig({ ...all, flags: { stack: 'Offload' }, env: {} });
    expect(c.outputs?.source).toContain('outputs.json');
    expect(c.stackName).toBe('Offload');
    const missing = resolveConfig({ flags: { stack: 'C' }, env: {}, outputsFile });
    expect(missing.outputs).toBeUndefined();
    expect(missing.stackName).toBe('C'); // CloudFormation is asked then
  });
});

describe('helpers', () => {
  it('pickStack', () => {
    expect(pickStack({ Only: { X: '1' } })).toEqual({ name: 'Only', outputs: { X: '1' } });
    expect(pickStack({ CDKToolkit: { BucketName: 'b' }, App: { ApiUrl: 'u' } })).toMatchObject({ name: 'App' });
    expect(pickStack({}).problem).toBe('holds no stack');
    expect(pickStack({ A: {} }, 'Z').problem).toMatch(/no stack "Z"/);
  });

  it('regionFromUrlOrArn', () => {
    expect(regionFromUrlOrArn('https://sqs.eu-central-1.amazonaws.com/1/q')).toBe('eu-central-1');
    expect(regionFromUrlOrArn('https://abc.execute-api.us-gov-west-1.amazonaws.com/prod/')).toBe('us-gov-west-1');
    expect(regionFromUrlOrArn('arn:aws:sns:ap-southeast-2:123:topic')).toBe('ap-southeast-2');
    expect(regionFromUrlOrArn('http://localhost:5000/123456789012/q')).toBeUndefined();
    expect(regionFromUrlOrArn(undefined)).toBeUndefined();
  });

  it('normalizeBaseUrl', () => {
    expect(normalizeBaseUrl('https://x/prod')).toBe('https://x/prod/');
    expect(normalizeBaseUrl('https://x/prod/')).toBe('https://x/prod/');
  });
});

describe('loadConfigSources', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-cli-config-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the default files from the cwd when they exist', () => {
    expect(loadConfigSources({}, {}, dir)).toEqual({ flags: {}, env: {} });
    fs.mkdirSync(path.join(dir, '.offload'));
    fs.writeFileSync(path.join(dir, '.offload', 'local.json'), JSON.stringify({ apiUrl: 'http://l/' }));
    fs.writeFileSync(path.join(dir, '.offload', 'outputs.json'), JSON.stringify({ S: { ApiUrl: 'https://s/' } }));
    const s = loadConfigSources({}, {}, dir);
    expect(s.local?.data.apiUrl).toBe('http://l/');
    expect(s.outputsFile?.data.S.ApiUrl).toBe('https://s/');
  });

  it('explicit files replace the defaults and must exist and parse', () => {
    fs.writeFileSync(path.join(dir, 'mine.json'), JSON.stringify({ X: { ApiUrl: 'https://x/' } }));
    expect(loadConfigSources({ outputsFile: 'mine.json' }, {}, dir).outputsFile?.path).toBe(path.join(dir, 'mine.json'));
    expect(() => loadConfigSources({ config: 'nope.json' }, {}, dir)).toThrow(UsageError);
    expect(() => loadConfigSources({ config: 'nope.json' }, {}, dir)).toThrow(/cannot read config file .*ENOENT/);
    fs.writeFileSync(path.join(dir, 'bad.json'), '{ nope');
    expect(() => loadConfigSources({ outputsFile: 'bad.json' }, {}, dir)).toThrow(/not valid JSON/);
    fs.writeFileSync(path.join(dir, 'flat.json'), JSON.stringify({ ApiUrl: 'https://x/' }));
    expect(() => loadConfigSources({ outputsFile: 'flat.json' }, {}, dir)).toThrow(/must look like/);
  });
});
