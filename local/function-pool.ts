import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

export interface FunctionSpec {
  /** Short label for logs, e.g. `thumbnail`. */
  label: string;
  functionName: string;
  functionArn: string;
  /** The synthesized bundle's folder in cdk.out. */
  bundleDir: string;
  handler: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** The function's environment from its deployed configuration. */
  environment: Record<string, string>;
}

export type InvokeOutcome =
  | { ok: true; result: unknown; ms: number }
  | { ok: false; kind: 'error' | 'timeout' | 'crash'; error: { errorType: string; errorMessage: string }; ms: number };

/**
 * Where an invocation's environment is killed (fault injection, see faults.ts): after the
 * nth AWS API call the invocation makes (its response arrived: the call took effect), or
 * when the handler has returned, before its result reaches the event source.
 */
export type CrashPoint = { afterCall: number } | { beforeReturn: true };

export interface InvokeOptions {
  /** Kill the environment this many ms into the run and report a timeout. */
  killAfterMs?: number;
  /** Kill the environment at this point of the run (if the run gets there) and report a crash. */
  crash?: CrashPoint;
}

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  busy: boolean;
}

const RUNNER = path.join(__dirname, 'runner.cjs');

/** What an armed test hook does to the invocation that carries it (see LocalFunction.arm). */
export type HookAction = CrashPoint | { call: RegExp } | { failCalls: RegExp };

/** An armed test hook (see LocalFunction.arm). */
interface Hook {
  action: HookAction;
  /** Only an invocation whose event passes this carries the hook. */
  when?: (event: unknown) => boolean;
  /** True while an invocation carries it (one at a time, so it fires at most once). */
  carried: boolean;
  fired: (fired: { pid: number }) => void;
}

/**
 * A function's warm execution environments: child processes running its bundle, each
 * serving one invocation at a time, reused while warm (as Lambda reuses environments), with
 * the function's environment variables, its memory size as the V8 heap limit, and its
 * timeout enforced by killing the child.
 */
export class LocalFunction {
  private readonly idle: Worker[] = [];
  private readonly all = new Set<Worker>();
  private stopped = false;
  private hook?: Hook;

  constructor(
    readonly spec: FunctionSpec,
    private readonly runtimeEnv: Record<string, string>,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Runs one invocation. `killAfterMs` (fault injection) kills the environment that many
   * ms into the run and reports a timeout, whether or not the handler had returned by then
   * (as if it hung before returning): the handler may be cut anywhere, side effects included.
   * `crash` (fault injection) kills it at a chosen point of the run, reported as a crash.
   */
  async invoke(event: unknown, opts: InvokeOptions = {}): Promise<InvokeOutcome> {
    if (this.stopped) throw new Error(`${this.spec.label} is stopped`);
    const hook = this.hook && !this.hook.carried && (this.hook.when?.(event) ?? true) ? this.hook : undefined;
    if (!hook) return (await this.run(event, opts)).outcome;
    hook.carried = true;
    try {
      const { outcome, pid, signal } = await this.run(event, opts, hook.action);
      const killed = !outcome.ok && outcome.kind === 'crash' && signal === 'SIGKILL';
      // A crash fires when the environment died by it; failing calls, once the run that
      // carried it has ended.
      if (!this.stopped && (killed || 'failCalls' in hook.action)) {
        this.hook = undefined;
        hook.fired({ pid });
      }
      return outcome;
    } finally {
      hook.carried = false;
    }
  }

  /**
   * Test hook (local runtime only, never in handler code): a one-shot crash at a chosen
   * point. The next invocation of this function that makes an AWS API call matching `call`
   * (tested against the call's X-Amz-Target, e.g. `DynamoDB_20120810.UpdateItem`, or for REST
   * APIs such as S3 its `METHOD /path`, e.g. `PUT /bucket/key`) has its execution environment
   * SIGKILLed the moment the response to that call arrives: the call took effect, and nothing
   * after it in that invocation runs (the invocation ends as a crash, as when a process dies
   * there). One invocation carries the hook at a time, so it fires once; invocations that do
   * not make such a call leave it armed. Resolves with the killed environment's pid.
   */
  crashAfterCall(call: RegExp): Promise<{ pid: number }> {
    return this.arm({ call });
  }

  /**
   * Test hook (local runtime only), the general form of crashAfterCall: the next invocation
   * whose event passes `when` carries `action`:
   * - `{ call }`, `{ afterCall: n }`, `{ beforeReturn: true }`: its environment is SIGKILLed
   *   after the first call matching `call`, after its nth AWS call, or once the handler has
   *   returned and before its result is sent (every side effect done, the acknowledgement
   *   not); resolves when a carrying invocation died so (one that did not get there leaves
   *   the hook armed);
   * - `{ failCalls }`: every AWS call of it matching `failCalls` fails with a network error
   *   (as when the service cannot be reached; the SDK's own retries fail too); resolves when
   *   that invocation has ended.
   */
  arm(action: HookAction, opts: { when?: (event: unknown) => boolean } = {}): Promise<{ pid: number }> {
    if (this.hook) throw new Error(`${this.spec.label}: a test hook is already armed`);
    return new Promise((fired) => {
      this.hook = { action, ...(opts.when ? { when: opts.when } : {}), carried: false, fired };
    });
  }

  /** Disarms a hook armed by arm or crashAfterCall that has not fired (its promise then never settles). */
  cancelCrash(): void {
    this.hook = undefined;
  }

  private async run(
    event: unknown,
    opts: InvokeOptions,
    hookAction?: HookAction,
  ): Promise<{ outcome: InvokeOutcome; pid: number; signal?: string | null }> {
    const worker = this.idle.pop() ?? this.spawn();
    const pid = worker.child.pid!;
    let signal: string | null | undefined;
    worker.busy = true;
    const started = Date.now();
    try {
      await worker.ready;
    } catch (err) {
      this.discard(worker);
      return { outcome: { ok: false, kind: 'crash', error: { errorType: 'Runtime.Init', errorMessage: (err as Error).message }, ms: Date.now() - started }, pid };
    }
    const id = randomUUID();
    const timeoutMs = this.spec.timeoutSeconds * 1000;
    const outcome = await new Promise<InvokeOutcome>((resolve) => {
      const finish = (o: InvokeOutcome) => {
        clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        worker.child.off('message', onMessage);
        worker.child.off('exit', onExit);
        resolve(o);
      };
      const onMessage = (msg: any) => {
        if (msg?.type !== 'result' || msg.id !== id) return;
        // Fault injection: the run is treated as hung; its result is dropped and the kill decides.
        if (opts.killAfterMs !== undefined) return;
        if (msg.error) finish({ ok: false, kind: 'error', error: msg.error, ms: Date.now() - started });
        else finish({ ok: true, result: msg.result, ms: Date.now() - started });
      };
      const onExit = (code: number | null, exitSignal: string | null) => {
        signal = exitSignal;
        finish({
          ok: false,
          kind: 'crash',
          error: { errorType: 'Runtime.ExitError', errorMessage: `the runtime exited (code ${code}, signal ${exitSignal})` },
          ms: Date.now() - started,
        });
      };
      const timedOut = (why: string) => {
        worker.child.off('exit', onExit);
        worker.child.kill('SIGKILL');
        finish({ ok: false, kind: 'timeout', error: { errorType: 'Sandbox.Timedout', errorMessage: why }, ms: Date.now() - started });
      };
      const timer = setTimeout(() => timedOut(`Task timed out after ${this.spec.timeoutSeconds.toFixed(2)} seconds`), timeoutMs);
      const killTimer =
        opts.killAfterMs !== undefined ? setTimeout(() => timedOut('killed by fault injection (timeout)'), opts.killAfterMs) : undefined;
      worker.child.on('message', onMessage);
      worker.child.on('exit', onExit);
      worker.child.send({
        type: 'invoke',
        id,
        event,
        ...(hookAction !== undefined ? { crash: hookAction } : opts.crash ? { crash: opts.crash } : {}),
        context: {
          awsRequestId: id,
          functionName: this.spec.functionName,
          functionVersion: '$LATEST',
          invokedFunctionArn: this.spec.functionArn,
          memoryLimitInMB: String(this.spec.memoryMb),
          logGroupName: `/aws/lambda/${this.spec.functionName}`,
          logStreamName: `local/${process.pid}/${worker.child.pid}`,
          remainingMs: timeoutMs,
        },
      });
    });
    if (outcome.ok || outcome.kind === 'error') {
      worker.busy = false;
      if (this.stopped) this.discard(worker);
      else this.idle.push(worker);
    } else {
      this.discard(worker);
    }
    return { outcome, pid, signal };
  }

  /** Number of environments currently running an invocation. */
  get running(): number {
    return [...this.all].filter((w) => w.busy).length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(
      [...this.all].map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
            w.child.once('exit', () => resolve());
            w.child.kill('SIGKILL');
          }),
      ),
    );
    this.all.clear();
    this.idle.length = 0;
  }

  private spawn(): Worker {
    const child = fork(RUNNER, [this.spec.bundleDir, this.spec.handler], {
      cwd: this.spec.bundleDir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        LANG: 'en_US.UTF-8',
        TZ: 'UTC',
        AWS_LAMBDA_FUNCTION_NAME: this.spec.functionName,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(this.spec.memoryMb),
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs_local',
        // The AWS SDK's notice that its 2027 releases need Node >= 22 would otherwise be
        // printed by every environment at its first client; local mode's own process
        // prints it once (the SDK's documented switch, aws/aws-sdk-js-v3#7983).
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...this.runtimeEnv,
        ...this.spec.environment,
      },
      execArgv: [`--max-old-space-size=${this.spec.memoryMb}`],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      detached: true,
    });
    const prefix = `[${this.spec.label}] `;
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => this.log(prefix + line));
    }
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (msg: any) => {
        if (msg?.type !== 'ready') return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (msg.error) this.log(`${prefix}init error: ${msg.error.errorMessage}`);
        resolve();
      };
      const onExit = (code: number | null) => reject(new Error(`${this.spec.label} runtime exited during init (code ${code})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    ready.catch(() => undefined);
    const worker: Worker = { child, ready, busy: false };
    this.all.add(worker);
    child.once('exit', () => {
      this.all.delete(worker);
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return worker;
  }

  private discard(worker: Worker): void {
    this.all.delete(worker);
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
  }
}
