import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCfnLint, ensureMoto, ensurePythonModule, PINNED, ToolMissingError } from '../../local/python-tools';

/**
 * Finding, installing or naming the Python tools (moto, cfn-lint) with fake interpreters
 * (OFFLOAD_PYTHON) and a throwaway venv folder (OFFLOAD_VENV): nothing is installed and no
 * network is used. The fake `python` runs the real interpreter without its site-packages
 * (so neither moto nor cfn-lint imports), makes a venv by copying itself, and its pip either
 * fails as pip does without a reachable package index or "installs" (a marker file after
 * which every import succeeds).
 */
const ROOT = path.resolve(__dirname, '..', '..');
const REAL_PYTHON = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim();

let dir: string;

function fakePython(name: string, pip: 'unreachable' | 'installs'): string {
  const file = path.join(dir, name);
  const pipPart =
    pip === 'installs'
      ? 'touch "$here/installed"; echo pip-ran >> "$here/../pip.log"; exit 0'
      : [
          `echo "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError(... Failed to establish a new connection: [Errno -2] Name or service not known)': /simple/moto/" >&2`,
          'echo "ERROR: Could not find a version that satisfies the requirement $4 (from versions: none)" >&2',
          'echo "ERROR: No matching distribution found for $4" >&2',
          'exit 1',
        ].join('\n  ');
  fs.writeFileSync(
    file,
    `#!/bin/sh
here=$(cd "$(dirname "$0")" && pwd)
if [ "$1" = "-c" ]; then
  [ -f "$here/installed" ] && exit 0
  exec ${REAL_PYTHON} -I -S "$@"
fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  ${pipPart}
fi
exit 1
`,
    { mode: 0o755 },
  );
  return file;
}

/** An environment where only the fake interpreter and a fresh venv folder exist. */
function fakeEnv(python: string, venv = fs.mkdtempSync(path.join(dir, 'venv-'))): NodeJS.ProcessEnv {
  fs.rmSync(venv, { recursive: true, force: true });
  return { PATH: '/usr/bin:/bin', OFFLOAD_PYTHON: python, OFFLOAD_VENV: venv };
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-python-tools-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('npm start without moto', () => {
  const start = (env: NodeJS.ProcessEnv) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const childEnv = { ...process.env, ...env, PATH: process.env.PATH } as NodeJS.ProcessEnv;
      delete childEnv.AWS_ENDPOINT_URL;
      execFile(
        'npx',
        ['tsx', 'local/main.ts', '--port', '0', '--state-file', path.join(dir, 'state.json'), '--cache-dir', path.join(dir, 'cache')],
        { cwd: ROOT, env: childEnv, timeout: 120_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('exits non-zero with one line saying what to install when the interpreter does not exist', async () => {
    const out = await start({ OFFLOAD_PYTHON: '/nonexistent/python3', OFFLOAD_VENV: path.join(dir, 'no-venv') });
    expect(out.code).toBe(1);
    const lines = out.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^offload-local: \/nonexistent\/python3 was not found/);
    expect(lines[0]).toContain(`pip install "${PINNED.moto}"`);
    expect(out.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(path.join(dir, 'state.json'))).toBe(false);
  });

  it('tries the venv, and says in one line that no package index was reachable', async () => {
    const python = fakePython('python-offline', 'unreachable');
    const venv = path.join(dir, 'venv-offline');
    const out = await start({ OFFLOAD_PYTHON: python, OFFLOAD_VENV: venv });
    expect(out.code).toBe(1);
    expect(out.stderr.trimEnd().split('\n')).toEqual([
      `offload-local: moto is not installed for ${python} and could not be installed automatically (no package index reachable); ` +
        `install it with: pip install "${PINNED.moto}" (or run LocalStack and set AWS_ENDPOINT_URL=http://localhost:4566)`,
    ]);
    // One progress line for the attempt; the venv it made stays for the next attempt.
    expect(out.stdout.split('\n').filter((l) => l.includes('installing'))).toEqual([
      `[local] installing ${PINNED.moto} into ${venv} (once; ${python} -m venv, then pip install)`,
    ]);
    expect(fs.existsSync(path.join(venv, 'bin', 'python'))).toBe(true);
  });
});

describe('ensureMoto / ensureCfnLint', () => {
  it('names what to install, in one line, when pip cannot reach an index', async () => {
    const env = fakeEnv(fakePython('python-a', 'unreachable'));
    const progress: string[] = [];
    const err = await ensureCfnLint({ env, progress: (l) => progress.push(l) }).catch((e) => e);
    expect(err).toBeInstanceOf(ToolMissingError);
    expect(err.message).toBe(
      `cfn-lint is not installed for ${env.OFFLOAD_PYTHON} and could not be installed automatically (no package index reachable); install it with: pip install "${PINNED.cfnLint}"`,
    );
    expect(err.message).not.toContain('\n');
    expect(progress).toHaveLength(1);
  });

  it('installs into the venv once and reuses it', async () => {
    const env = fakeEnv(fakePython('python-b', 'installs'));
    const progress: string[] = [];
    const first = await ensureMoto({ env, progress: (l) => progress.push(l) });
    expect(first).toBe(path.join(env.OFFLOAD_VENV!, 'bin', 'python'));
    expect(progress).toEqual([`installing ${PINNED.moto} into ${env.OFFLOAD_VENV} (once; ${env.OFFLOAD_PYTHON} -m venv, then pip install)`]);
    const again = await ensureCfnLint({ env, progress: (l) => progress.push(l) });
    expect(again).toEqual({ command: first, args: ['-m', 'cfnlint'] });
    expect(progress).toHaveLength(1);
    expect(fs.readFileSync(path.join(env.OFFLOAD_VENV!, 'pip.log'), 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('serializes concurrent installs into one venv', async () => {
    const env = fakeEnv(fakePython('python-c', 'installs'));
    const progress: string[] = [];
    const [a, b] = await Promise.all([ensureMoto({ env, progress: (l) => progress.push(l) }), ensureMoto({ env, progress: (l) => progress.push(l) })]);
    expect(a).toBe(b);
    expect(progress).toHaveLength(1);
  });

  it('prefers the configured interpreter when it has the module', async () => {
    const env = fakeEnv(REAL_PYTHON);
    // `json` stands in for a tool module the interpreter has.
    expect(await ensurePythonModule({ tool: 'json', module: 'json', requirement: 'json', env })).toBe(REAL_PYTHON);
    expect(fs.existsSync(env.OFFLOAD_VENV!)).toBe(false);
  });
});
