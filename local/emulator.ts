import type { ChildProcess } from 'node:child_process';
import { freePort, isRunning, spawnTracked, stopProcess, tail, waitFor } from './processes';

/** An AWS API emulator endpoint, owned (moto started here) or external (AWS_ENDPOINT_URL). */
export interface Emulator {
  /** `http://localhost:PORT`: the spelling CDK's asset publishing needs (S3 virtual hosts). */
  endpoint: string;
  port: number;
  /** True when this process started the emulator and `stop()` stops it. */
  owned: boolean;
  stop(): Promise<void>;
}

export class EmulatorUnavailableError extends Error {}

export const INSTALL_HINT =
  'local mode needs Python 3 with moto\'s server: pip install "moto[server]" ' +
  '(or run LocalStack and set AWS_ENDPOINT_URL=http://localhost:4566)';

/**
 * Runs `python3 -m moto.server -H HOST -p PORT` with two guards so that the server never
 * outlives its owner, however the owner ends (even SIGKILL): PR_SET_PDEATHSIG (Linux), and
 * a thread that exits when stdin (a pipe from the owner) reaches EOF.
 */
const MOTO_LAUNCHER = `
import os, sys, signal, threading, runpy
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
except Exception:
    pass
def _watch_owner():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)
threading.Thread(target=_watch_owner, daemon=True).start()
sys.argv = ['moto.server'] + sys.argv[1:]
runpy.run_module('moto.server', run_name='__main__', alter_sys=True)
`;

export interface StartMotoOptions {
  host?: string;
  /** Default: a free port. */
  port?: number;
  python?: string;
  readyTimeoutMs?: number;
  /** Called with each chunk of the server's own output (request log). Default: dropped. */
  onOutput?: (chunk: string) => void;
}

async function answers(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return true;
}

async function startMotoOnce(opts: StartMotoOptions, port: number): Promise<Emulator> {
  const host = opts.host ?? '127.0.0.1';
  const python = opts.python ?? process.env.PYTHON ?? 'python3';
  const child: ChildProcess = spawnTracked(python, ['-c', MOTO_LAUNCHER, '-H', host, '-p', String(port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  const output = tail();
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = err));
  child.stdout!.on('data', (c: Buffer) => (output.push(c), opts.onOutput?.(c.toString())));
  child.stderr!.on('data', (c: Buffer) => (output.push(c), opts.onOutput?.(c.toString())));
  // Keep stdin open (the owner-death pipe) but never let it keep this process alive.
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  child.unref();
  for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();

  const stop = async (): Promise<void> => {
    child.stdin?.end();
    await stopProcess(child, 3000);
  };
  try {
    await waitFor(`moto on port ${port}`, () => answers(`http://${host}:${port}/moto-api/reset-auth`).catch(() => answers(`http://${host}:${port}/`)), {
      timeoutMs: opts.readyTimeoutMs ?? 30_000,
      intervalMs: 100,
      abort: () => {
        if (spawnError) return (spawnError as NodeJS.ErrnoException).code === 'ENOENT' ? `${python} not found` : spawnError.message;
        if (!isRunning(child)) return `exited (${child.exitCode ?? child.signalCode}): ${output.text().trim().split('\n').slice(-5).join('\n')}`;
        return undefined;
      },
    });
  } catch (err) {
    await stop();
    const text = output.text();
    if (spawnError || /No module named|ModuleNotFoundError|ImportError/.test(text)) {
      throw new EmulatorUnavailableError(`${(err as Error).message}\n${INSTALL_HINT}`);
    }
    throw err;
  }
  return { endpoint: `http://localhost:${port}`, port, owned: true, stop };
}

/**
 * Starts a moto server on a free loopback port and resolves once it answers HTTP. The
 * server is this process's: `stop()` ends it, and it also ends by itself when this process
 * does. Throws EmulatorUnavailableError when python3 or moto is missing.
 */
export async function startMoto(opts: StartMotoOptions = {}): Promise<Emulator> {
  let lastError: unknown;
  // A free port can be taken between the probe and moto's bind: retry with another one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port ?? (await freePort(opts.host ?? '127.0.0.1'));
    try {
      return await startMotoOnce(opts, port);
    } catch (err) {
      lastError = err;
      if (err instanceof EmulatorUnavailableError || opts.port !== undefined) throw err;
    }
  }
  throw lastError;
}

/** An endpoint someone else runs (LocalStack, a shared moto): never stopped here. */
export function externalEmulator(endpointUrl: string): Emulator {
  const url = new URL(endpointUrl);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  // CDK's asset publishing addresses S3 buckets as virtual hosts: `localhost` works, an IP does not.
  if (url.hostname === '127.0.0.1') url.hostname = 'localhost';
  return { endpoint: url.origin, port, owned: false, stop: async () => undefined };
}

/** AWS_ENDPOINT_URL when set, otherwise a moto server of our own. */
export async function resolveEmulator(opts: StartMotoOptions & { endpointUrl?: string } = {}): Promise<Emulator> {
  const external = opts.endpointUrl ?? process.env.AWS_ENDPOINT_URL;
  if (external) {
    await waitFor(`emulator at ${external}`, () => answers(external), { timeoutMs: 10_000, intervalMs: 250 }).catch(() => {
      throw new EmulatorUnavailableError(`AWS_ENDPOINT_URL=${external} does not answer`);
    });
    return externalEmulator(external);
  }
  return startMoto(opts);
}
