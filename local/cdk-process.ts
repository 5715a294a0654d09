import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

/** The CDK CLI as child processes (a light module: local mode's entry point loads it first). */

export const PROJECT_ROOT = path.resolve(__dirname, '..');
const CDK = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'cdk');
const CDK_LIB = path.join(PROJECT_ROOT, 'node_modules', 'aws-cdk', 'lib');
const CDK_PRELOADED = path.join(__dirname, 'cdk-cli.cjs');

/** A CDK CLI process: output kept for the log when it fails, stopped (with its app) on abort. */
function watch(
  child: ChildProcess,
  args: string[],
  label: string,
  log: (l: string) => void,
  signal?: AbortSignal,
): { done: Promise<void>; kill: () => void } {
  const kill = () => {
    try {
      // Its own process group: the app `cdk synth` runs goes too.
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  };
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  process.once('exit', kill);
  const done = new Promise<void>((resolve, reject) => {
    const onAbort = () => kill();
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      process.removeListener('exit', kill);
      if (signal?.aborted) return reject(signal.reason);
      if (code === 0) return resolve();
      for (const line of out.split('\n').filter((l) => l && !/nodedir|Unknown (user|env) config/.test(l)).slice(-40)) log(`[${label}] ${line}`);
      reject(new Error(`cdk ${args[0]} failed (${sig ? `signal ${sig}` : `exit ${code}`})`));
    });
  });
  return { done, kill };
}

export function runCdk(args: string[], env: NodeJS.ProcessEnv, label: string, log: (l: string) => void, opts: { signal?: AbortSignal } = {}): Promise<void> {
  if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
  const child = spawn(CDK, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  return watch(child, args, label, log, opts.signal).done;
}

/**
 * The CDK CLI loaded ahead of its run (see cdk-cli.cjs): start() while other work goes on,
 * then run(args, env) once; dispose() when it will not be run.
 */
export class PreloadedCdk {
  private readonly child: ChildProcess;
  private readonly loaded: Promise<void>;
  private readonly watched: { done: Promise<void>; kill: () => void };
  private used = false;

  constructor(private readonly label: string, private readonly log: (l: string) => void) {
    this.child = spawn(process.execPath, [CDK_PRELOADED, CDK_LIB], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true', CDK_DISABLE_VERSION_CHECK: 'true' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    this.watched = watch(this.child, ['(preloaded)'], label, (l) => this.used && this.log(l));
    this.watched.done.catch(() => undefined);
    this.loaded = new Promise<void>((resolve, reject) => {
      this.child.once('message', (m: any) => (m?.type === 'loaded' ? resolve() : reject(new Error(`unexpected message from the CDK CLI: ${JSON.stringify(m)}`))));
      this.watched.done.then(
        () => reject(new Error('the preloaded CDK CLI exited before its run')),
        (err) => reject(err),
      );
    });
    this.loaded.catch(() => undefined);
  }

  async run(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
    if (this.used) throw new Error('a preloaded CDK CLI runs once');
    this.used = true;
    try {
      await this.loaded;
    } catch {
      // It could not be preloaded (unexpected): run the CLI the plain way.
      return runCdk(args, env, this.label, this.log);
    }
    const done = new Promise<void>((resolve, reject) => {
      this.child.once('exit', (code, sig) => (code === 0 ? resolve() : reject(new Error(`cdk ${args[0]} failed (${sig ? `signal ${sig}` : `exit ${code}`})`))));
    });
    // Failure output is logged by watch(), now that `used` is set.
    this.child.send({ type: 'run', args, env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) });
    await done;
  }

  dispose(): void {
    if (!this.used) this.watched.kill();
  }
}

