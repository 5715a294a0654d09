import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, inject, vi } from 'vitest';

/** What a client needs to know of a local-mode instance (its state file, or a LocalHandle). */
export interface Instance {
  apiUrl: string;
  apiKey: string;
  awsEndpoint: string;
  region: string;
  outputs: Record<string, string>;
}

export type E2eClient = ReturnType<typeof clientFor>;

/** A tiny client for the e2e suites: what a web server would do with fetch. */
export function clientFor(instance: Instance) {
  const { apiUrl, apiKey, awsEndpoint, region, outputs } = instance;
  const awsConfig = {
    endpoint: awsEndpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };

  async function call(method: string, path: string, init: { json?: unknown; body?: Buffer; headers?: Record<string, string>; key?: string | null } = {}) {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (init.key !== null) headers['x-api-key'] = init.key ?? apiKey;
    let body: string | Uint8Array | undefined;
    if (init.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = typeof init.json === 'string' ? init.json : JSON.stringify(init.json);
    } else if (init.body) {
      body = new Uint8Array(init.body);
    }
    const res = await fetch(new URL(path.replace(/^\//, ''), apiUrl), { method, headers, body });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text, headers: res.headers };
  }

  /** Polls a job until it is terminal (or the time is up: then the test fails, showing the last state). */
  async function waitForJob(jobId: string, timeoutMs = 120_000): Promise<any> {
    return vi.waitFor(
      async () => {
        const res = await call('GET', `jobs/${jobId}`);
        if (res.status === 200 && (res.json.status === 'succeeded' || res.json.status === 'failed')) return res.json;
        throw new Error(`job ${jobId} not terminal after ${timeoutMs} ms: ${res.status} ${res.text}`);
      },
      { timeout: timeoutMs, interval: 250 },
    );
  }

  /** Every job GET /jobs lists for `query` (e.g. `type=thumbnail`), all pages, newest first. */
  async function listJobs(query = ''): Promise<any[]> {
    const jobs: any[] = [];
    let cursor: string | null = null;
    do {
      const res: any = await call('GET', `jobs?${query ? `${query}&` : ''}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (res.status !== 200) throw new Error(`GET /jobs?${query}: ${res.status} ${res.text}`);
      jobs.push(...res.json.jobs);
      cursor = res.json.nextCursor;
    } while (cursor);
    return jobs;
  }

  /** Polls GET /jobs (all pages) until a job matches (or the time is up: then the test fails). */
  async function findJob(what: string, matches: (job: any) => boolean, query = 'type=thumbnail', timeoutMs = 60_000): Promise<any> {
    return vi.waitFor(
      async () => {
        const job = (await listJobs(query)).find(matches);
        if (!job) throw new Error(`no job ${what} after ${timeoutMs} ms`);
        return job;
      },
      { timeout: timeoutMs, interval: 250 },
    );
  }

  /** The presigned flow: POST /uploads, then PUT the bytes with exactly the returned headers. */
  async function presignedUpload(filename: string, contentType: string, data: Buffer): Promise<string> {
    const created = await call('POST', 'uploads', { json: { filename, contentType, size: data.length } });
    if (created.status !== 201) throw new Error(`POST /uploads: ${created.status} ${created.text}`);
    const put = await fetch(created.json.uploadUrl, { method: 'PUT', headers: created.json.headers, body: new Uint8Array(data) });
    if (!put.ok) throw new Error(`PUT upload: ${put.status} ${await put.text()}`);
    return created.json.jobId as string;
  }

  return { apiUrl, apiKey, awsEndpoint, region, outputs, awsConfig, call, waitForJob, listJobs, findJob, presignedUpload };
}

/**
 * The shared local-mode instance (started by global-setup.ts, which does not wait for it).
 * Call at a file's top level: the client it returns is filled in by a beforeAll hook that
 * waits until the instance is ready, so use it in hooks and tests, not at module level.
 */
export function sharedInstance(timeoutMs = 600_000): E2eClient {
  const client = {} as E2eClient;
  beforeAll(async () => {
    const stateFile = inject('sharedStateFile');
    const failedFile = inject('sharedFailedFile');
    const found = await vi.waitFor(
      () => {
        if (fs.existsSync(failedFile)) return { failed: fs.readFileSync(failedFile, 'utf8') };
        if (!fs.existsSync(stateFile)) throw new Error(`the shared local-mode instance is not ready after ${timeoutMs} ms (log: ${inject('localLog')})`);
        return { state: JSON.parse(fs.readFileSync(stateFile, 'utf8')) as Instance };
      },
      { timeout: timeoutMs, interval: 200 },
    );
    if ('failed' in found) throw new Error(found.failed);
    Object.assign(client, clientFor(found.state));
  }, timeoutMs + 10_000);
  return client;
}

/**
 * Who may use the shared instance at the same time. Most e2e files only look at their own
 * jobs and run side by side ('shared'); a file that reads the whole job table (the reports
 * suite counts every job of a day) runs alone ('exclusive'). A reader-writer lock in the
 * global setup's directory, held from this file's beforeAll to its afterAll.
 */
export function useSharedInstance(mode: 'shared' | 'exclusive', timeoutMs = 900_000): void {
  const dir = inject('sharedLockDir');
  const exclusive = path.join(dir, 'exclusive');
  const marker = path.join(dir, `shared-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const sharedHolders = () => fs.readdirSync(dir).filter((n) => n.startsWith('shared-'));
  let held = false;

  beforeAll(async () => {
    if (mode === 'exclusive') {
      // Take the flag (no new shared holder starts), then wait for the current ones to finish.
      await vi.waitFor(
        () => {
          try {
            fs.mkdirSync(exclusive);
          } catch {
            throw new Error('another file holds the shared instance exclusively');
          }
        },
        { timeout: timeoutMs, interval: 250 },
      );
      held = true;
      await vi.waitFor(
        () => {
          const holders = sharedHolders();
          if (holders.length > 0) throw new Error(`files still using the shared instance: ${holders.join(', ')}`);
        },
        { timeout: timeoutMs, interval: 250 },
      );
    } else {
      await vi.waitFor(
        () => {
          if (fs.existsSync(exclusive)) throw new Error('a file holds the shared instance exclusively');
          fs.writeFileSync(marker, String(process.pid));
          // Check again: an exclusive holder that came in between goes first.
          if (fs.existsSync(exclusive)) {
            fs.rmSync(marker, { force: true });
            throw new Error('a file holds the shared instance exclusively');
          }
        },
        { timeout: timeoutMs, interval: 250 },
      );
      held = true;
    }
  }, 2 * timeoutMs + 10_000);

  afterAll(() => {
    if (!held) return;
    if (mode === 'exclusive') fs.rmSync(exclusive, { recursive: true, force: true });
    else fs.rmSync(marker, { force: true });
  });
}
