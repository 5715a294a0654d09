import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheKey, evict, obtainAssembly, stackSourceFiles, type KeyInputs } from '../../local/assembly-cache';
import { zipOfOneFile } from '../../local/deploy';

/**
 * Local mode's cache of cloud assemblies, on throwaway project trees and cache folders:
 * what the key covers, and how entries are published, shared and evicted.
 */
let root: string;
let cacheDir: string;

const write = (rel: string, text: string) => {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
};
const base: KeyInputs = { stackName: 'Offload', account: '123456789012', region: 'us-east-1', context: { ephemeral: 'true' } };
const key = (extra: Partial<KeyInputs> = {}) => cacheKey({ ...base, root, ...extra }).key;

function project(git: boolean) {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-cache-project-'));
  write('bin/app.ts', 'app');
  write('lib/stack.ts', 'stack');
  write('lambda/api/index.ts', 'api');
  write('cdk.json', '{}');
  write('package-lock.json', '{}');
  write('README.md', 'readme');
  write('test/e2e/x.test.ts', 'test');
  write('local/main.ts', 'local');
  write('bench/run.ts', 'bench');
  if (git) {
    write('.gitignore', 'scratch/\n');
    write('scratch/notes.txt', 'ignored');
    spawnSync('git', ['init', '-q'], { cwd: root });
  }
}

beforeEach(() => {
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-cache-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

describe.each([true, false])('the cache key (git checkout: %s)', (git) => {
  beforeEach(() => project(git));

  it('changes with every stack source, and with a new top-level folder', () => {
    const k0 = key();
    expect(key()).toBe(k0);
    for (const [rel, text] of [
      ['lib/stack.ts', 'stack 2'],
      ['lambda/api/index.ts', 'api 2'],
      ['bin/app.ts', 'app 2'],
      ['cdk.json', '{"context":{}}'],
      ['package-lock.json', '{"v":2}'],
      ['job-types/resize/index.ts', 'a plugin folder nobody listed'],
    ]) {
      const before = key();
      write(rel, text);
      expect(key(), rel).not.toBe(before);
    }
  });

  it('does not change with tests, docs, the bench, local mode or ignored files', () => {
    const k0 = key();
    write('test/e2e/x.test.ts', 'test 2');
    write('README.md', 'readme 2');
    write('bench/run.ts', 'bench 2');
    write('local/main.ts', 'local 2');
    write('cdk.out/manifest.json', '{}');
    write('.offload/cache/x/manifest.json', '{}');
    if (git) write('scratch/notes.txt', 'still ignored');
    expect(key()).toBe(k0);
  });

  it('covers extra source roots, even under test/', () => {
    const withFixture = key({ extraSourceRoots: ['test/e2e'] });
    expect(withFixture).not.toBe(key());
    write('test/e2e/x.test.ts', 'test 2');
    expect(key({ extraSourceRoots: ['test/e2e'] })).not.toBe(withFixture);
    expect(stackSourceFiles(root, ['test/e2e']).map((f) => path.relative(root, f))).toContain(path.join('test', 'e2e', 'x.test.ts'));
  });

  it('changes with the context, stack name, account and region', () => {
    const k0 = key();
    expect(key({ context: { ephemeral: 'true', thumbnailTimeoutSeconds: '5' } })).not.toBe(k0);
    expect(key({ stackName: 'Dev' })).not.toBe(k0);
    expect(key({ account: '000000000000' })).not.toBe(k0);
    expect(key({ region: 'eu-west-1' })).not.toBe(k0);
    // Context order does not matter.
    expect(key({ context: { b: '2', a: '1' } })).toBe(key({ context: { a: '1', b: '2' } }));
  });

  it('records its inputs: node and aws-cdk-lib versions among them', () => {
    const k = cacheKey({ ...base, root });
    expect(k.inputs).toMatchObject({ node: process.version, awsCdkLib: expect.stringMatching(/^2\./), stackName: 'Offload' });
    expect(k.files).toBeGreaterThanOrEqual(5);
  });
});

describe('obtainAssembly', () => {
  beforeEach(() => project(false));

  const fakeSynth = (calls: string[]) => async (outDir: string) => {
    calls.push(outDir);
    await new Promise((r) => setImmediate(r));
    fs.mkdirSync(path.join(outDir, 'asset.1'), { recursive: true });
    fs.writeFileSync(path.join(outDir, 'manifest.json'), '{}');
    fs.writeFileSync(path.join(outDir, 'asset.1', 'index.js'), `// ${outDir}`);
  };

  it('synthesizes once, then serves the entry from the cache', async () => {
    const calls: string[] = [];
    const k = cacheKey({ ...base, root });
    const first = await obtainAssembly({ key: k, cacheDir, synth: fakeSynth(calls) });
    expect(first).toMatchObject({ hit: false, dir: path.join(cacheDir, k.key) });
    expect(JSON.parse(fs.readFileSync(path.join(first.dir, 'cache-key.json'), 'utf8')).key).toBe(k.key);
    const second = await obtainAssembly({ key: k, cacheDir, synth: fakeSynth(calls) });
    expect(second).toMatchObject({ hit: true, dir: first.dir });
    expect(calls).toHaveLength(1);
    // Nothing but entries and leases is left beside them.
    expect(fs.readdirSync(cacheDir).sort()).toEqual(['.leases', k.key]);
    first.release();
    second.release();
    expect(fs.readdirSync(path.join(cacheDir, '.leases'))).toEqual([]);
  });

  it('answers an absolute folder for a relative cache folder', async () => {
    const k = cacheKey({ ...base, root });
    const relative = path.relative(process.cwd(), cacheDir);
    const a = await obtainAssembly({ key: k, cacheDir: relative, synth: fakeSynth([]) });
    expect(a.dir).toBe(path.join(cacheDir, k.key));
    a.release();
  });

  it('lets concurrent starts with one key share one synth', async () => {
    const calls: string[] = [];
    const k = cacheKey({ ...base, root });
    const all = await Promise.all([1, 2, 3].map(() => obtainAssembly({ key: k, cacheDir, synth: fakeSynth(calls) })));
    expect(calls).toHaveLength(1);
    expect(new Set(all.map((a) => a.dir)).size).toBe(1);
    expect(all.map((a) => a.hit).sort()).toEqual([false, true, true]);
  });

  it("uses the winner's entry when its own publication loses the race", async () => {
    const k = cacheKey({ ...base, root });
    const winner = path.join(cacheDir, k.key);
    const a = await obtainAssembly({
      key: k,
      cacheDir,
      synth: async (outDir) => {
        // Another process (no lock: it waited too long) publishes the same key meanwhile.
        await fakeSynth([])(outDir);
        fs.mkdirSync(winner);
        fs.writeFileSync(path.join(winner, 'manifest.json'), '{"winner":true}');
      },
    });
    expect(a.dir).toBe(winner);
    expect(JSON.parse(fs.readFileSync(path.join(winner, 'manifest.json'), 'utf8'))).toEqual({ winner: true });
    expect(fs.readdirSync(cacheDir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('publishes nothing when the synth fails', async () => {
    const k = cacheKey({ ...base, root });
    await expect(obtainAssembly({ key: k, cacheDir, synth: async () => Promise.reject(new Error('synth broke')) })).rejects.toThrow('synth broke');
    expect(fs.readdirSync(cacheDir).filter((n) => !n.startsWith('.leases'))).toEqual([]);
    expect(fs.readdirSync(path.join(cacheDir, '.leases'))).toEqual([]);
  });
});

describe('evict', () => {
  const entry = (name: string, ageMinutes: number) => {
    fs.mkdirSync(path.join(cacheDir, name, 'asset.1'), { recursive: true });
    fs.writeFileSync(path.join(cacheDir, name, 'manifest.json'), '{}');
    const t = new Date(Date.now() - ageMinutes * 60_000);
    fs.utimesSync(path.join(cacheDir, name), t, t);
  };
  const hex = (c: string) => c.repeat(64);
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-cache-project-'));
  });

  it('keeps the newest entries and any entry a live process holds', () => {
    ['a', 'b', 'c', 'd', 'e'].forEach((c, i) => entry(hex(c), 10 + i)); // a newest ... e oldest
    fs.mkdirSync(path.join(cacheDir, '.leases'));
    fs.writeFileSync(path.join(cacheDir, '.leases', `${hex('e')}.${process.pid}.1`), '');
    // A lease of a process that is gone protects nothing.
    fs.writeFileSync(path.join(cacheDir, '.leases', `${hex('d')}.999999999.1`), '');
    fs.mkdirSync(path.join(cacheDir, '.tmp-999999999-abcd'));
    evict(cacheDir, 3);
    expect(fs.readdirSync(cacheDir).sort()).toEqual(['.leases', hex('a'), hex('b'), hex('c'), hex('e')]);
    expect(fs.readdirSync(path.join(cacheDir, '.leases'))).toEqual([`${hex('e')}.${process.pid}.1`]);
  });

  it('leaves an entry beyond the newest ones that was used within the last minute', () => {
    entry(hex('a'), 0);
    entry(hex('b'), 0.5);
    entry(hex('c'), 5);
    evict(cacheDir, 1);
    expect(fs.readdirSync(cacheDir).sort()).toEqual([hex('a'), hex('b')]);
  });
});

describe('the function code placeholder', () => {
  it('is a valid zip of one file, larger than the empty zip the CDK CLI takes for unpublished', () => {
    const zip = zipOfOneFile('OFFLOAD-LOCAL-MODE.txt', 'runs from the cloud assembly\n');
    expect(zip.length).toBeGreaterThan(22);
    const file = path.join(os.tmpdir(), `offload-placeholder-${process.pid}.zip`);
    fs.writeFileSync(file, zip);
    try {
      const read = spawnSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(z.namelist()[0], z.read(z.namelist()[0]).decode(), end="")', file], { encoding: 'utf8' });
      expect(read.stderr).toBe('');
      expect(read.stdout).toBe('OFFLOAD-LOCAL-MODE.txt runs from the cloud assembly\n');
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
