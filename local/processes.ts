import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

/** The repository root (local/ lives directly under it). */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/**
 * Every process local mode starts is spawned `detached` (its own process group and session):
 * a Ctrl-C in the terminal reaches only local mode's main process, which then stops its
 * children in order (pollers first, then functions, then the emulator). Each one is also
 * tied to this process's life on its own (IPC disconnect, stdin EOF, PR_SET_PDEATHSIG), so
 * even a SIGKILL of local mode leaves nothing running; `killGroup` kills whole groups (the
 * CDK CLI starts grandchildren).
 */
const live = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  return track(spawn(command, args, { ...options, detached: true }));
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Sends a signal to the child's process group (falls back to the child itself). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (!isRunning(child) || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM to the group, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (!isRunning(child)) return;
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

/** Last resort on exit paths that cannot wait (process 'exit' handlers): SIGKILL every group. */
export function killAllSync(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
}

/** A free TCP port on the loopback interface (the OS picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Polls `check` every `intervalMs` until it returns true, `timeoutMs` passes, or `abort` says to give up. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  opts: { timeoutMs: number; intervalMs?: number; abort?: () => string | undefined },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const reason = opts.abort?.();
    if (reason) throw new Error(`${what}: ${reason}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${opts.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

/** Collects the last `max` characters a stream wrote (for error messages). */
export function tail(max = 4000): { push(chunk: Buffer | string): void; text(): string } {
  let buf = '';
  return {
    push(chunk) {
      buf = (buf + chunk.toString()).slice(-max);
    },
    text: () => buf,
  };
}
