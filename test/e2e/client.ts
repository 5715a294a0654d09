import { inject } from 'vitest';

/** A tiny client for the e2e suites: what a web server would do with fetch. */
export function e2eContext() {
  const apiUrl = inject('apiUrl') as string;
  const apiKey = inject('apiKey') as string;
  const awsEndpoint = inject('awsEndpoint') as string;
  const region = inject('region') as string;
  const outputs = inject('outputs') as Record<string, string>;
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
    const deadline = Date.now() + timeoutMs;
    let last: any;
    while (Date.now() < deadline) {
      const res = await call('GET', `jobs/${jobId}`);
      last = res.json;
      if (res.status === 200 && (last.status === 'succeeded' || last.status === 'failed')) return last;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`job ${jobId} not terminal after ${timeoutMs} ms: ${JSON.stringify(last)}`);
  }

  /** The presigned flow: POST /uploads, then PUT the bytes with exactly the returned headers. */
  async function presignedUpload(filename: string, contentType: string, data: Buffer): Promise<string> {
    const created = await call('POST', 'uploads', { json: { filename, contentType, size: data.length } });
    if (created.status !== 201) throw new Error(`POST /uploads: ${created.status} ${created.text}`);
    const put = await fetch(created.json.uploadUrl, { method: 'PUT', headers: created.json.headers, body: new Uint8Array(data) });
    if (!put.ok) throw new Error(`PUT upload: ${put.status} ${await put.text()}`);
    return created.json.jobId as string;
  }

  return { apiUrl, apiKey, awsEndpoint, region, outputs, awsConfig, call, waitForJob, presignedUpload };
}
