import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CloudFormationClient, ListStacksCommand } from '@aws-sdk/client-cloudformation';
import { CreateBucketCommand, PutObjectCommand, S3Client, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { strToU8, zipSync } from 'fflate';
import { PreloadedCdk, runCdk } from './cdk-process';

import { PROJECT_ROOT } from './cdk-process';

export { PROJECT_ROOT };

/** The account moto answers for (its default, or MOTO_ACCOUNT_ID as moto reads it). */
export function motoAccount(env: NodeJS.ProcessEnv = process.env): string {
  return env.MOTO_ACCOUNT_ID || '123456789012';
}

/** Environment for AWS tools aimed at the emulator (fake credentials unless real ones are set). */
export function emulatorEnv(endpoint: string, region: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'test',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
    // The CLI's own SDK notice is not the user's business (see function-pool.ts), nor are
    // its telemetry and version checks against the internet.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
    CDK_DISABLE_VERSION_CHECK: 'true',
  };
}

export function creds(env: NodeJS.ProcessEnv = process.env) {
  return { accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'test', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'test' };
}

/** The account of the emulator's (fake) credentials. */
export async function callerAccount(endpoint: string, region: string): Promise<string> {
  const identity = await new STSClient({ endpoint, region, credentials: creds() }).send(new GetCallerIdentityCommand({}));
  return identity.Account!;
}

/** `-c key=value` arguments: what local mode always sets, then the caller's context. */
export function synthContext(stackName: string, context: Record<string, string>): Record<string, string> {
  return { ephemeral: 'true', stackName, ...context };
}

export interface SynthOptions {
  /** A new folder to write the cloud assembly into. */
  outDir: string;
  account: string;
  region: string;
  /** The emulator's endpoint (the CLI asks it for the account; it may not answer yet). */
  endpoint: string;
  /** See synthContext. */
  context: Record<string, string>;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** `cdk synth` of the real app (cdk.json's `app`), for the given account and region. */
export async function synth(opts: SynthOptions): Promise<void> {
  const ctx = Object.entries(opts.context).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  const env = {
    ...emulatorEnv(opts.endpoint, opts.region),
    CDK_DEFAULT_ACCOUNT: opts.account,
    CDK_DEFAULT_REGION: opts.region,
    // The thumbnail bundle's `npm ci` (sharp for linux-arm64): no audit request to the
    // registry, no funding or update notices, cached package metadata first. What it
    // installs is fixed by the lock file either way (same bundle, same asset hash); that
    // install took 4.3-5.0 s instead of 7.9 s here (2 runs each, under heavy load).
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_prefer_offline: 'true',
  };
  await runCdk(['synth', '--quiet', '--no-notices', '--output', opts.outDir, ...ctx], env, 'synth', opts.log, { signal: opts.signal });
}

/** The bootstrap version local mode records (the CLI's current template's). */
const BOOTSTRAP_VERSION = 33;
const DEFAULT_QUALIFIER = 'hnb659fds';

/** What `cdk deploy` needs of a bootstrapped environment: staging buckets and the version parameter. */
export interface BootstrapNeeds {
  buckets: string[];
  versionParameter: string;
  /** The lowest bootstrap version the stacks accept. */
  minVersion: number;
}

/** The bootstrap qualifier of the synth: `-c @aws-cdk/core:bootstrapQualifier=...`, cdk.json's, or CDK's default. */
export function bootstrapQualifier(context: Record<string, string>): string {
  const key = '@aws-cdk/core:bootstrapQualifier';
  if (context[key]) return context[key];
  try {
    const fromCdkJson = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context?.[key];
    if (typeof fromCdkJson === 'string' && fromCdkJson) return fromCdkJson;
  } catch {
    // no cdk.json: CDK's default
  }
  return DEFAULT_QUALIFIER;
}

/** What a stack synthesized with CDK's default synthesizer needs, known before the synth. */
export function defaultBootstrapNeeds(qualifier: string, account: string, region: string): BootstrapNeeds {
  return { buckets: [`cdk-${qualifier}-assets-${account}-${region}`], versionParameter: `/cdk-bootstrap/${qualifier}/version`, minVersion: BOOTSTRAP_VERSION };
}

/** What the cloud assembly asks for (its asset manifest and its bootstrap version check). */
export function assemblyBootstrapNeeds(cloudAssembly: string, stackName: string, account: string, region: string): BootstrapNeeds {
  const manifest = JSON.parse(fs.readFileSync(path.join(cloudAssembly, 'manifest.json'), 'utf8'));
  const stack = manifest.artifacts[stackName]?.properties ?? {};
  const required = Object.values<any>(manifest.artifacts).map((a) => a.properties?.requiresBootstrapStackVersion ?? 0);
  const assets = JSON.parse(fs.readFileSync(path.join(cloudAssembly, `${stackName}.assets.json`), 'utf8'));
  const buckets = new Set<string>();
  for (const file of Object.values<any>(assets.files ?? {})) {
    for (const dest of Object.values<any>(file.destinations ?? {})) {
      buckets.add(String(dest.bucketName).replaceAll('${AWS::AccountId}', account).replaceAll('${AWS::Region}', region).replaceAll('${AWS::Partition}', 'aws'));
    }
  }
  return {
    buckets: [...buckets],
    versionParameter: stack.bootstrapStackVersionSsmParameter ?? `/cdk-bootstrap/${DEFAULT_QUALIFIER}/version`,
    minVersion: Math.max(0, ...required),
  };
}

/** What `needed` asks for beyond `made` (undefined: nothing). */
export function missingBootstrap(made: BootstrapNeeds, needed: BootstrapNeeds): BootstrapNeeds | undefined {
  const buckets = needed.buckets.filter((b) => !made.buckets.includes(b));
  const parameterMissing = needed.versionParameter !== made.versionParameter;
  if (!parameterMissing && needed.minVersion > made.minVersion) {
    throw new Error(`the cloud assembly needs bootstrap version ${needed.minVersion}; local mode records ${made.minVersion} (update BOOTSTRAP_VERSION in local/deploy.ts)`);
  }
  if (!buckets.length && !parameterMissing) return undefined;
  return { buckets, versionParameter: parameterMissing ? needed.versionParameter : '', minVersion: Math.max(needed.minVersion, BOOTSTRAP_VERSION) };
}

/**
 * What `cdk deploy` needs of a bootstrapped environment, and nothing else: the staging
 * bucket the assets go to and the SSM parameter with the bootstrap version, made with one
 * S3 and one SSM call. `cdk bootstrap`'s stack (KMS key, ECR repository, five roles and
 * their policies) takes seconds the emulator does not need: it does not check the roles
 * the CLI assumes, and the CLI deploys without a CDKToolkit stack. Not even a small stack:
 * moto's CloudFormation takes ~1.5 s of CPU to load, which this way overlaps the CLI's own
 * start instead of preceding it (warmCloudFormation). The names are known before the synth
 * ends (defaultBootstrapNeeds), so on a first start this runs while the app synthesizes.
 * What exists already (another start's, a real bootstrap's) is left as it is.
 */
export async function ensureBootstrapped(opts: { endpoint: string; region: string; needs: BootstrapNeeds }): Promise<'created' | 'present'> {
  const cfg = { endpoint: opts.endpoint, region: opts.region, credentials: creds() };
  const s3 = new S3Client({ ...cfg, forcePathStyle: true });
  const made = await Promise.all([
    ...opts.needs.buckets.map(async (bucket) => {
      try {
        const where = opts.region === 'us-east-1' ? undefined : { LocationConstraint: opts.region as BucketLocationConstraint };
        await s3.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: where }));
        return true;
      } catch (err) {
        if ((err as Error).name === 'BucketAlreadyOwnedByYou' || (err as Error).name === 'BucketAlreadyExists') return false;
        throw err;
      }
    }),
    (async () => {
      if (!opts.needs.versionParameter) return false;
      const version = String(Math.max(BOOTSTRAP_VERSION, opts.needs.minVersion));
      try {
        await new SSMClient(cfg).send(new PutParameterCommand({ Name: opts.needs.versionParameter, Value: version, Type: 'String', Overwrite: false }));
        return true;
      } catch (err) {
        if ((err as Error).name === 'ParameterAlreadyExists') return false;
        throw err;
      }
    })(),
  ]);
  return made.some(Boolean) ? 'created' : 'present';
}

/** A first CloudFormation request, answered or not: moto loads its CloudFormation backend then. */
export function warmCloudFormation(opts: { endpoint: string; region: string }): Promise<void> {
  return new CloudFormationClient({ endpoint: opts.endpoint, region: opts.region, credentials: creds() })
    .send(new ListStacksCommand({}))
    .then(
      () => undefined,
      () => undefined,
    );
}

/** A zip archive holding one file, stored (the CLI takes an empty zip for an unpublished asset). */
export function zipOfOneFile(name: string, text: string): Buffer {
  // Fixed mtime, so the placeholder (and its checksum) is the same on every start.
  return Buffer.from(zipSync({ [name]: [strToU8(text), { level: 0, mtime: new Date('1980-01-01T00:00:00Z') }] }));
}

const PLACEHOLDER_CODE = zipOfOneFile(
  'OFFLOAD-LOCAL-MODE.txt',
  'offload local mode: this function runs from its bundle in the cloud assembly on the developer machine, not from this object.\n',
);

/**
 * Puts a placeholder (a zip of one small text file) at the S3 key of every Lambda function's code asset,
 * so that `cdk deploy` finds those assets published and neither zips nor uploads them.
 * Local mode runs each function from its bundle in the cloud assembly, never from the
 * emulator, and moto only reads the object's size and checksum when it creates the
 * function; zipping the bundles (~50 MB, 17 MB zipped, with sharp's binary) took ~3 s of
 * a first start and uploading them ~0.5-1 s of every start. Other assets (the template,
 * anything that is not a function's code) are published by the CLI as usual. Returns how
 * many placeholders were put.
 */
export async function placeholderFunctionCode(opts: { endpoint: string; region: string; account: string; cloudAssembly: string; stackName: string }): Promise<number> {
  const template = JSON.parse(fs.readFileSync(path.join(opts.cloudAssembly, `${opts.stackName}.template.json`), 'utf8'));
  const codePaths = new Set(
    Object.values<any>(template.Resources ?? {})
      .filter((r) => r.Type === 'AWS::Lambda::Function')
      .map((r) => r.Metadata?.['aws:asset:path'])
      .filter(Boolean),
  );
  const assets = JSON.parse(fs.readFileSync(path.join(opts.cloudAssembly, `${opts.stackName}.assets.json`), 'utf8'));
  const resolve = (v: string) => v.replaceAll('${AWS::AccountId}', opts.account).replaceAll('${AWS::Region}', opts.region).replaceAll('${AWS::Partition}', 'aws');
  const s3 = new S3Client({ endpoint: opts.endpoint, region: opts.region, credentials: creds(), forcePathStyle: true });
  const puts: Promise<unknown>[] = [];
  for (const file of Object.values<any>(assets.files ?? {})) {
    if (file.source?.packaging !== 'zip' || !codePaths.has(file.source.path)) continue;
    for (const dest of Object.values<any>(file.destinations ?? {})) {
      puts.push(s3.send(new PutObjectCommand({ Bucket: resolve(dest.bucketName), Key: resolve(dest.objectKey), Body: PLACEHOLDER_CODE, ContentType: 'application/zip' })));
    }
  }
  await Promise.all(puts);
  return puts.length;
}

export interface DeployOptions {
  /** A CLI loaded while the emulator started (default: a fresh `cdk`). */
  cli?: PreloadedCdk;
  endpoint: string;
  region: string;
  account: string;
  stackName: string;
  /** The (cached, shared) cloud assembly to deploy: nothing is written into it but the CLI's asset zips. */
  cloudAssembly: string;
  log: (line: string) => void;
}

export interface Deployed {
  account: string;
  templatePath: string;
  template: Record<string, any>;
  outputs: Record<string, string>;
}

/**
 * Deploys the synthesized stack into the emulator with the CDK CLI, as a user would deploy
 * to AWS: `cdk deploy --app <cloud assembly> --method=direct` (moto implements CreateStack
 * but not change sets). Always a fresh stack: moto cannot update one.
 */
export async function deploy(opts: DeployOptions): Promise<Deployed> {
  const env = { ...emulatorEnv(opts.endpoint, opts.region), CDK_DEFAULT_ACCOUNT: opts.account, CDK_DEFAULT_REGION: opts.region };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-deploy-'));
  try {
    const outputsFile = path.join(tmp, 'outputs.json');
    const args = ['deploy', opts.stackName, '--app', opts.cloudAssembly, '--method=direct', '--require-approval', 'never', '--no-notices', '--outputs-file', outputsFile];
    if (opts.cli) await opts.cli.run(args, env);
    else await runCdk(args, env, 'deploy', opts.log);
    const templatePath = path.join(opts.cloudAssembly, `${opts.stackName}.template.json`);
    const outputs = JSON.parse(fs.readFileSync(outputsFile, 'utf8'))[opts.stackName] ?? {};
    return { account: opts.account, templatePath, template: JSON.parse(fs.readFileSync(templatePath, 'utf8')), outputs };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
