import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alive, tryLock } from './pid';

/**
 * Local mode's cache of synthesized cloud assemblies: `cdk synth` runs only when something
 * that shapes the stack changed since an earlier start.
 *
 * An entry is `.offload/cache/<key>/`, a complete cloud assembly (template, manifests,
 * function bundles), where `key` is a sha256 over everything that goes into the synth (see
 * cacheKey). Running instances share an entry and execute its bundles, so an entry is
 * never changed once published (the CDK CLI adds only its asset zips under `.cache/`,
 * atomically) and never deleted while an instance holds a lease on it.
 *
 * Publication is atomic: a synth writes into a temporary folder beside the entries, which
 * is then renamed to `<key>`; when two starts with the same key race, the loser drops its
 * copy and uses the winner's (a per-key lock makes the second start wait for the first
 * rather than synthesize the same thing twice).
 */

const PROJECT_ROOT = path.resolve(__dirname, '..');

/** Bump when local mode changes how it synthesizes (flags, environment), to drop old entries. */
export const CACHE_FORMAT = 1;

export const DEFAULT_CACHE_DIR = path.join(PROJECT_ROOT, '.offload', 'cache');

/**
 * Entries kept (newest by last use); older ones are evicted unless an instance uses them.
 * Four: `npm start`'s stack, and the e2e, chaos and bench pipeline stacks (each with its own
 * context), so that a test run does not evict the default start's entry.
 */
export const KEEP_ENTRIES = 4;

/**
 * What shapes the stack, always hashed (relative to the project root): the CDK app, its
 * constructs, the Lambda sources, and the CDK, npm and TypeScript configuration.
 */
export const STACK_SOURCE_ROOTS: readonly string[] = [
  'bin',
  'lib',
  'lambda',
  'cdk.json',
  'cdk.context.json',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
];

/**
 * Top-level entries that never shape the stack. Every other file of the project (tracked by
 * git, or present and not ignored) is hashed as well, so that a new top-level folder the
 * app imports from (job-type plugins, say) invalidates the cache without anyone having to
 * remember this list. `*` matches within a name.
 */
export const NOT_STACK_SOURCES: readonly string[] = [
  'node_modules',
  '.git',
  '.offload',
  'cdk.out',
  'cdk.out.*',
  'test',
  'bench',
  'docs',
  'cli',
  'local',
  '.ci',
  '*.md',
  '.gitignore',
  'vitest.config.*',
];

export interface KeyInputs {
  stackName: string;
  account: string;
  region: string;
  /** The `-c key=value` context given to `cdk synth`. */
  context: Record<string, string>;
  /** More files or folders to hash (relative to the project root, or absolute), even under NOT_STACK_SOURCES. */
  extraSourceRoots?: string[];
  /** Default: the project root. */
  root?: string;
}

export interface CacheKey {
  key: string;
  /** What went into the key (written beside the entry as cache-key.json). */
  inputs: Record<string, unknown>;
  /** How many source files were hashed. */
  files: number;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
}
const NOT_SOURCE = NOT_STACK_SOURCES.map(globToRegExp);
const excludedTopLevel = (rel: string) => NOT_SOURCE.some((re) => re.test(rel.split('/')[0]));

function walk(abs: string, out: Set<string>): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch {
    return;
  }
  if (stat.isFile()) {
    out.add(abs);
    return;
  }
  if (!stat.isDirectory()) return;
  for (const name of fs.readdirSync(abs)) {
    if (name === 'node_modules' || name === '.git') continue;
    walk(path.join(abs, name), out);
  }
}

/** Every file the key covers, as absolute paths. */
export function stackSourceFiles(root: string = PROJECT_ROOT, extraSourceRoots: string[] = []): string[] {
  const files = new Set<string>();
  const git = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (git.status === 0) {
    for (const rel of git.stdout.split('\0')) if (rel && !excludedTopLevel(rel)) files.add(path.join(root, rel));
  } else {
    // Not a git checkout: every top-level entry but the excluded ones.
    for (const name of fs.readdirSync(root)) if (!excludedTopLevel(name)) walk(path.join(root, name), files);
  }
  for (const r of [...STACK_SOURCE_ROOTS, ...extraSourceRoots]) walk(path.resolve(root, r), files);
  return [...files].sort();
}

function packageVersion(name: string): string {
  try {
    return JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`, { paths: [PROJECT_ROOT] }), 'utf8')).version;
  } catch {
    return 'none';
  }
}

/** The cache key: a sha256 over the stack's sources and everything else a synth depends on. */
export function cacheKey(inputs: KeyInputs): CacheKey {
  const root = inputs.root ?? PROJECT_ROOT;
  const files = stackSourceFiles(root, inputs.extraSourceRoots);
  const sources = createHash('sha256');
  let hashed = 0;
  for (const file of files) {
    let content: Buffer;
    try {
      content = fs.readFileSync(file);
    } catch {
      continue; // tracked but deleted, or a directory (submodule)
    }
    const rel = path.relative(root, file).split(path.sep).join('/');
    sources.update(`${rel}\0${content.length}\0`);
    sources.update(content);
    hashed++;
  }
  const described = {
    format: CACHE_FORMAT,
    sources: sources.digest('hex'),
    stackName: inputs.stackName,
    account: inputs.account,
    region: inputs.region,
    context: Object.fromEntries(Object.entries(inputs.context).sort(([a], [b]) => a.localeCompare(b))),
    extraSourceRoots: [...(inputs.extraSourceRoots ?? [])].sort(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    awsCdkLib: packageVersion('aws-cdk-lib'),
    cdkCli: packageVersion('aws-cdk'),
  };
  const key = createHash('sha256').update(JSON.stringify(described)).digest('hex');
  return { key, inputs: described, files: hashed };
}

export interface CachedAssembly {
  /** The cloud assembly's folder (shared, read-only). */
  dir: string;
  key: string;
  /** Served from the cache: this call ran no synth (it may have waited for another start's). */
  hit: boolean;
  /** Drops this instance's lease on the entry (the entry stays for later starts). */
  release(): void;
}

export interface ObtainOptions {
  key: CacheKey;
  /** Synthesizes into the given (new, empty) folder. */
  synth: (outDir: string) => Promise<void>;
  cacheDir?: string;
  keep?: number;
  log?: (line: string) => void;
}

const ENTRY = /^[0-9a-f]{64}$/;
const leasesDir = (cacheDir: string) => path.join(cacheDir, '.leases');

function takeLease(cacheDir: string, key: string): () => void {
  fs.mkdirSync(leasesDir(cacheDir), { recursive: true });
  const file = path.join(leasesDir(cacheDir), `${key}.${process.pid}.${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(file, '');
  return () => fs.rmSync(file, { force: true });
}

/** Live leases per key (stale ones, of processes gone, are removed). */
function liveLeases(cacheDir: string): Set<string> {
  const keys = new Set<string>();
  let names: string[] = [];
  try {
    names = fs.readdirSync(leasesDir(cacheDir));
  } catch {
    return keys;
  }
  for (const name of names) {
    const [key, pid] = name.split('.');
    if (alive(Number(pid))) keys.add(key);
    else fs.rmSync(path.join(leasesDir(cacheDir), name), { force: true });
  }
  return keys;
}

const isEntry = (dir: string) => fs.existsSync(path.join(dir, 'manifest.json'));

function touch(dir: string): void {
  const now = new Date();
  try {
    fs.utimesSync(dir, now, now);
  } catch {
    // evicted meanwhile: the caller checks the entry again
  }
}

/** A lock folder per key: the second start with the same key waits instead of synthesizing again. */
async function lockKey(cacheDir: string, key: string, isDone: () => boolean): Promise<(() => void) | undefined> {
  const lock = path.join(cacheDir, `.lock-${key}`);
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const release = tryLock(lock);
    if (release) return release;
    if (isDone()) return undefined;
    // Waited long enough: synthesize anyway (publication stays atomic without the lock).
    if (Date.now() > deadline) return () => undefined;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The cloud assembly for `key`: the cached entry when there is one (touched, so that it
 * counts as recently used), otherwise synthesized and published. The caller holds a lease
 * until release(); entries beyond the newest `keep` are evicted afterwards.
 */
export async function obtainAssembly(opts: ObtainOptions): Promise<CachedAssembly> {
  // Absolute: functions run their bundles with the bundle's folder as working directory.
  const cacheDir = path.resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const { key } = opts.key;
  const dir = path.join(cacheDir, key);
  fs.mkdirSync(cacheDir, { recursive: true });
  // The lease comes first: an eviction that starts after it leaves the entry alone.
  const release = takeLease(cacheDir, key);
  try {
    let synthesized = false;
    touch(dir);
    // An eviction racing with this start may take the entry away once; then it is made again.
    for (let attempt = 0; !isEntry(dir); attempt++) {
      if (attempt === 3) throw new Error(`cached cloud assembly ${dir} keeps vanishing`);
      // Waits while another start synthesizes the same key, then uses its entry.
      const unlock = await lockKey(cacheDir, key, () => isEntry(dir));
      try {
        if (!isEntry(dir)) {
          synthesized = true;
          await synthAndPublish(cacheDir, dir, opts);
        }
      } finally {
        unlock?.();
      }
      touch(dir);
    }
    evict(cacheDir, opts.keep ?? KEEP_ENTRIES, opts.log);
    return { dir, key, hit: !synthesized, release };
  } catch (err) {
    release();
    throw err;
  }
}

async function synthAndPublish(cacheDir: string, dir: string, opts: ObtainOptions): Promise<void> {
  const tmp = path.join(cacheDir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await opts.synth(tmp);
    if (!fs.existsSync(path.join(tmp, 'manifest.json'))) throw new Error(`the synth wrote no cloud assembly into ${tmp}`);
    fs.writeFileSync(path.join(tmp, 'cache-key.json'), `${JSON.stringify({ key: opts.key.key, ...opts.key.inputs }, null, 2)}\n`);
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Lost the race to another start with the same key: use its entry.
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && isEntry(dir)) return;
      throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Keeps the newest `keep` entries (by last use); deletes older ones that no running
 * instance holds a lease on and that nobody used in the last minute (a start that found
 * an entry just before taking its lease). A deleted entry is renamed away first, so a
 * half-deleted folder never looks like an entry. Leftovers of dead processes go too.
 */
export function evict(cacheDir: string = DEFAULT_CACHE_DIR, keep: number = KEEP_ENTRIES, log?: (line: string) => void): void {
  let names: string[];
  try {
    names = fs.readdirSync(cacheDir);
  } catch {
    return;
  }
  const leased = liveLeases(cacheDir);
  const entries = names
    .filter((n) => ENTRY.test(n))
    .map((n) => ({ name: n, mtimeMs: fs.statSync(path.join(cacheDir, n), { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const e of entries.slice(keep)) {
    if (leased.has(e.name) || Date.now() - e.mtimeMs < 60_000) continue;
    const entry = path.join(cacheDir, e.name);
    const trash = path.join(cacheDir, `.trash-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      fs.renameSync(entry, trash);
    } catch {
      continue; // another process evicted it first
    }
    // A start that took its lease meanwhile gets the entry back.
    if (liveLeases(cacheDir).has(e.name)) {
      try {
        fs.renameSync(trash, entry);
        continue;
      } catch {
        // it made the entry again already
      }
    }
    fs.rmSync(trash, { recursive: true, force: true });
    log?.(`evicted cached cloud assembly ${e.name.slice(0, 12)}`);
  }
  for (const n of names) {
    const m = /^\.(?:tmp|trash)-(\d+)-/.exec(n);
    if (m && !alive(Number(m[1]))) fs.rmSync(path.join(cacheDir, n), { recursive: true, force: true });
  }
}
