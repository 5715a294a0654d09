import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tryLock } from './pid';

/**
 * The Python tools local mode and the tests use (moto's server, cfn-lint): found on the
 * PATH or as a module of the configured interpreter, else in the project's own virtual
 * environment (.offload/venv), else installed there once (`python -m venv` + pip, pinned
 * versions). When none of that works the error is one line saying what to install.
 *
 *   OFFLOAD_PYTHON   the interpreter (default python3)
 *   OFFLOAD_VENV     the virtual environment's folder (default .offload/venv; for tests)
 */

const PROJECT_ROOT = path.resolve(__dirname, '..');

/** Pinned requirements: what `npm start` installs into the venv when the tool is missing. */
export const PINNED = {
  moto: 'moto[server]==5.2.1',
  cfnLint: 'cfn-lint==1.51.0',
} as const;

/** A missing tool: its message is one line, meant to be printed as is (no stack trace). */
export class ToolMissingError extends Error {
  override name = 'ToolMissingError';
}

export function pythonInterpreter(env: NodeJS.ProcessEnv = process.env): string {
  return env.OFFLOAD_PYTHON || 'python3';
}

export function venvDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(PROJECT_ROOT, env.OFFLOAD_VENV || path.join('.offload', 'venv'));
}

export function venvPython(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(venvDir(env), 'bin', 'python');
}

/** The venv's folder as the user would type it (relative to the project when inside it). */
function shownVenv(env: NodeJS.ProcessEnv): string {
  const rel = path.relative(PROJECT_ROOT, venvDir(env));
  return rel && !rel.startsWith('..') ? rel : venvDir(env);
}

interface Ran {
  code: number | null;
  /** spawn error (ENOENT: no such interpreter). */
  error?: NodeJS.ErrnoException;
  out: string;
}

function runQuiet(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      return resolve({ code: null, error: error as NodeJS.ErrnoException, out });
    }
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (error) => resolve({ code: null, error, out }));
    child.once('close', (code) => resolve({ code, out }));
  });
}

/** Whether `python -c "import <module>"` succeeds. */
export async function canImport(python: string, module: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const r = await runQuiet(python, ['-c', `import ${module}`], env);
  return r.code === 0;
}

const NETWORK_FAILURE =
  /NewConnectionError|Name or service not known|Temporary failure in name resolution|Network is unreachable|Connection refused|Max retries exceeded|ConnectTimeout|ReadTimeout|No matching distribution found|Could not find a version that satisfies/;

function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? ''
  );
}

/** Serializes installs into the venv across processes (parallel test files, two starts). */
async function withInstallLock<T>(env: NodeJS.ProcessEnv, fn: () => Promise<T>): Promise<T> {
  const lock = `${venvDir(env)}.lock`;
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 15 * 60_000;
  let release: (() => void) | undefined;
  while (!(release = tryLock(lock))) {
    if (Date.now() > deadline) throw new ToolMissingError(`another process has held ${lock} for 15 minutes; remove it if nothing is installing`);
    await new Promise((r) => setTimeout(r, 250));
  }
  try {
    return await fn();
  } finally {
    release();
  }
}

export interface EnsureOptions {
  /** What the tool is called in messages, e.g. `moto`. */
  tool: string;
  /** A module whose import proves the tool works, e.g. `moto.server`. */
  module: string;
  /** The pinned pip requirement. */
  requirement: string;
  /** Message prefix (the program speaking), e.g. `offload-local`. */
  progress?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

/**
 * A Python interpreter that can import `module`: the configured one, else the project's
 * venv, else the venv after installing `requirement` into it (created first when absent).
 * Throws a ToolMissingError (one line) when no interpreter can have it.
 */
export async function ensurePythonModule(opts: EnsureOptions): Promise<string> {
  const env = opts.env ?? process.env;
  const python = pythonInterpreter(env);
  const probe = await runQuiet(python, ['-c', `import ${opts.module}`], env);
  if (probe.code === 0) return python;
  const vpy = venvPython(env);
  if (fs.existsSync(vpy) && (await canImport(vpy, opts.module, env))) return vpy;
  return installIntoVenv({ ...opts, env, python, pythonMissing: probe.error?.code === 'ENOENT' });
}

async function installIntoVenv(opts: EnsureOptions & { env: NodeJS.ProcessEnv; python: string; pythonMissing: boolean }): Promise<string> {
  const { env, python, tool, requirement } = opts;
  const how = `install it with: pip install "${requirement}"`;
  const fail = (why: string): never => {
    throw new ToolMissingError(`${tool} is not installed for ${python} and could not be installed automatically (${why}); ${how}`);
  };
  if (opts.pythonMissing) {
    throw new ToolMissingError(`${python} was not found, so ${tool} cannot run; install Python 3 (or set OFFLOAD_PYTHON to one) and then ${how}`);
  }
  const vpy = venvPython(env);
  return withInstallLock(env, async () => {
    // Another process may have installed it while this one waited for the lock.
    if (fs.existsSync(vpy) && (await canImport(vpy, opts.module, env))) return vpy;
    (opts.progress ?? ((l: string) => console.error(l)))(
      `installing ${requirement} into ${shownVenv(env)} (once; ${python} -m venv, then pip install)`,
    );
    if (!fs.existsSync(vpy)) {
      const made = await runQuiet(python, ['-m', 'venv', venvDir(env)], env);
      if (made.code !== 0 || !fs.existsSync(vpy)) {
        fs.rmSync(venvDir(env), { recursive: true, force: true });
        fail(`${python} -m venv failed: ${lastLine(made.out) || made.error?.message || `exit ${made.code}`}`);
      }
    }
    const pip = await runQuiet(vpy, ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', requirement], { ...env, PIP_NO_INPUT: '1' });
    if (pip.code !== 0) {
      fail(NETWORK_FAILURE.test(pip.out) ? 'no package index reachable' : `pip install failed: ${lastLine(pip.out) || `exit ${pip.code}`}`);
    }
    if (!(await canImport(vpy, opts.module, env))) fail(`pip installed ${requirement} but ${opts.module} does not import`);
    return vpy;
  });
}

/** The interpreter that runs moto's server (see ensurePythonModule). */
export function ensureMoto(opts: { progress?: (line: string) => void; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return ensurePythonModule({ tool: 'moto', module: 'moto.server', requirement: PINNED.moto, ...opts });
}

export interface Command {
  command: string;
  args: string[];
}

/**
 * How to run cfn-lint: `cfn-lint` on the PATH, else `python -m cfnlint` with the configured
 * interpreter or the venv's (installed there when missing).
 */
export async function ensureCfnLint(opts: { progress?: (line: string) => void; env?: NodeJS.ProcessEnv } = {}): Promise<Command> {
  const env = opts.env ?? process.env;
  const onPath = spawnSync('cfn-lint', ['--version'], { env, stdio: 'ignore' });
  if (onPath.status === 0) return { command: 'cfn-lint', args: [] };
  const python = await ensurePythonModule({ tool: 'cfn-lint', module: 'cfnlint', requirement: PINNED.cfnLint, ...opts });
  return { command: python, args: ['-m', 'cfnlint'] };
}
