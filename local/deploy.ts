import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';

export const PROJECT_ROOT = path.resolve(__dirname, '..');
/**
 * Each local-mode instance synthesizes into its own cloud assembly, so that `cdk synth`, the
 * tests or a second instance never rewrite the bundles under running functions. It stays
 * inside the project: bundles resolve host-specific native modules (sharp's x64 binary on a
 * developer machine) by walking up to the project's node_modules.
 */
export function cloudAssemblyDir(): string {
  return path.join(PROJECT_ROOT, 'cdk.out.local', `${process.pid}-${Date.now().toString(36)}`);
}
const CDK = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'cdk');

export interface DeployOptions {
  endpoint: string;
  region: string;
  stackName: string;
  /** CDK context overrides (`-c key=value`). */
  context: Record<string, string>;
  /** Where to synthesize (see cloudAssemblyDir). */
  cloudAssembly: string;
  log: (line: string) => void;
}

export interface Deployed {
  account: string;
  templatePath: string;
  template: Record<string, any>;
  outputs: Record<string, string>;
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
  };
}

function run(args: string[], env: NodeJS.ProcessEnv, label: string, log: (l: string) => void, cwd = PROJECT_ROOT): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(CDK, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) return resolve();
      for (const line of out.split('\n').filter((l) => l && !/nodedir|Unknown (user|env) config/.test(l)).slice(-40)) log(`[${label}] ${line}`);
      reject(new Error(`cdk ${args[0]} failed (exit ${code})`));
    });
  });
}

/**
 * Synthesizes the real stack and deploys it into the emulator with the CDK CLI, as a user
 * would deploy to AWS: `cdk synth`, `cdk bootstrap` (in parallel: bootstrap does not need
 * the app), then `cdk deploy --app cdk.out --method=direct` (moto implements
 * CreateStack but not change sets). Always a fresh stack: moto cannot update one.
 */
export async function synthAndDeploy(opts: DeployOptions): Promise<Deployed> {
  const env = emulatorEnv(opts.endpoint, opts.region);
  const identity = await new STSClient({ endpoint: opts.endpoint, region: opts.region, credentials: creds(env) }).send(
    new GetCallerIdentityCommand({}),
  );
  const account = identity.Account!;
  const ctx = Object.entries({ ephemeral: 'true', stackName: opts.stackName, ...opts.context }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  const appEnv = { ...env, CDK_DEFAULT_ACCOUNT: account, CDK_DEFAULT_REGION: opts.region };

  opts.log(`synthesizing ${opts.stackName} and bootstrapping aws://${account}/${opts.region} on ${opts.endpoint}`);
  await Promise.all([
    run(['synth', '--quiet', '--output', opts.cloudAssembly, ...ctx], appEnv, 'synth', opts.log),
    // Run outside the project (no cdk.json): bootstrap then needs no app and leaves cdk.out alone.
    run(['bootstrap', `aws://${account}/${opts.region}`], env, 'bootstrap', opts.log, os.tmpdir()),
  ]);
  const outputsFile = path.join(opts.cloudAssembly, `${opts.stackName}.local-outputs.json`);
  opts.log(`deploying ${opts.stackName}`);
  await run(
    ['deploy', opts.stackName, '--app', opts.cloudAssembly, '--method=direct', '--require-approval', 'never', '--outputs-file', outputsFile],
    appEnv,
    'deploy',
    opts.log,
  );
  const templatePath = path.join(opts.cloudAssembly, `${opts.stackName}.template.json`);
  const outputs = JSON.parse(fs.readFileSync(outputsFile, 'utf8'))[opts.stackName] ?? {};
  return { account, templatePath, template: JSON.parse(fs.readFileSync(templatePath, 'utf8')), outputs };
}

export function creds(env: NodeJS.ProcessEnv = process.env) {
  return { accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'test', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'test' };
}
