/**
 * offload's producer SDK: `import { OffloadClient, verifyWebhook } from 'offload/client'`.
 * For the web server that hands work to offload: submit jobs, upload files, follow them,
 * cancel them, list them, and check the webhooks offload sends. No AWS SDK: fetch for the
 * API, node:http(s) for uploads (fetch has no upload progress), node:crypto for signatures.
 * Its types are the API's own (lambda/shared/model.ts).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type { JobStatus, JobView } from '../lambda/shared/model';

export type { JobStatus, JobView } from '../lambda/shared/model';

/** A failed API call: the API's `{ error: { code, message } }`, its HTTP status, and when to retry (429/503). */
export class OffloadError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds the API asked to wait (Retry-After), when it did. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'OffloadError';
  }
}

export interface OffloadClientOptions {
  /** The API's base URL (the stack's ApiUrl output, or local mode's). */
  baseUrl: string;
  apiKey: string;
  /** Retries of 429, 5xx and network failures (each after full-jitter backoff, or Retry-After). Default 3. */
  retries?: number;
  /** Per request (ms). Default 30 s (a long-poll adds its wait). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface SubmitOptions {
  priority?: 'high' | 'normal';
  delaySeconds?: number;
  /** Sent as Idempotency-Key; the SDK makes one per call when not given, so its retries never make a second job. */
  idempotencyKey?: string;
  /** Where to tell of the outcome (webhook URL, e-mail address), when the API supports it. */
  notify?: { webhook?: string; email?: string };
}

export interface Accepted {
  jobId: string;
  statusUrl: string;
  /** True when the API answered a repeat of an earlier request (Idempotent-Replayed). */
  replayed: boolean;
}

export interface UploadOptions {
  /** Default: the file's base name, or `upload` for a buffer. */
  filename?: string;
  /** Default: from the file name's extension. */
  contentType?: string;
  priority?: 'high' | 'normal';
  idempotencyKey?: string;
  /** Bytes sent so far, of total. */
  onProgress?(sent: number, total: number): void;
}

export interface ListOptions {
  type?: string;
  status?: JobStatus;
  /** Jobs per page (1-100). */
  limit?: number;
}

const TERMINAL = new Set<string>(['succeeded', 'failed', 'cancelled']);
const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.avif': 'image/avif',
};

export class OffloadClient {
  private readonly base: string;
  private readonly retries: number;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly opts: OffloadClientOptions) {
    this.base = opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`;
    this.retries = opts.retries ?? 3;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.fetchImpl = opts.fetch ?? fetch;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = opts.random ?? Math.random;
  }

  /** `POST /jobs`: a job of any JSON-input type. */
  async submit(type: string, input: Record<string, unknown>, options: SubmitOptions = {}): Promise<Accepted> {
    const { idempotencyKey, ...rest } = options;
    const res = await this.request<{ jobId: string; statusUrl: string }>('POST', 'jobs', { type, input, ...rest }, { idempotencyKey: idempotencyKey ?? randomUUID() });
    return { ...res.body, replayed: res.replayed };
  }

  /** A file through a presigned upload (`POST /uploads`, then a PUT straight to storage). */
  async upload(file: string | Buffer | Uint8Array, options: UploadOptions = {}): Promise<Accepted> {
    const data = typeof file === 'string' ? await fs.promises.readFile(file) : Buffer.from(file);
    const filename = options.filename ?? (typeof file === 'string' ? path.basename(file) : 'upload');
    const contentType = options.contentType ?? CONTENT_TYPES[path.extname(filename).toLowerCase()] ?? 'application/octet-stream';
    const created = await this.request<{ jobId: string; statusUrl: string; uploadUrl: string; headers: Record<string, string> }>(
      'POST',
      'uploads',
      { filename, contentType, size: data.length, ...(options.priority ? { priority: options.priority } : {}) },
      { idempotencyKey: options.idempotencyKey ?? randomUUID() },
    );
    await putWithProgress(created.body.uploadUrl, created.body.headers, data, options.onProgress);
    return { jobId: created.body.jobId, statusUrl: created.body.statusUrl, replayed: created.replayed };
  }

  /** `GET /jobs/{jobId}`. */
  async get(jobId: string): Promise<JobView> {
    return (await this.request<JobView>('GET', `jobs/${encodeURIComponent(jobId)}`)).body;
  }

  /**
   * Until the job is terminal (`succeeded`, `failed`, `cancelled`), by long-polls
   * (`?waitSeconds=`, up to 20 s each). Rejects with OffloadError `wait_timeout` after
   * `timeoutMs`, and with the signal's reason when it aborts.
   */
  async wait(jobId: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<JobView> {
    const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000);
    for (;;) {
      options.signal?.throwIfAborted();
      const left = Math.ceil((deadline - Date.now()) / 1000);
      const waitSeconds = Math.max(0, Math.min(20, left));
      const job = (await this.request<JobView>('GET', `jobs/${encodeURIComponent(jobId)}?waitSeconds=${waitSeconds}`, undefined, { signal: options.signal, extraMs: waitSeconds * 1000 }))
        .body;
      if (TERMINAL.has(job.status)) return job;
      if (Date.now() >= deadline) throw new OffloadError(0, 'wait_timeout', `job ${jobId} is still ${job.status} after ${options.timeoutMs} ms`);
    }
  }

  /** `DELETE /jobs/{jobId}`: cancels a job not finished yet (409 when it is). */
  async cancel(jobId: string): Promise<JobView> {
    return (await this.request<JobView>('DELETE', `jobs/${encodeURIComponent(jobId)}`)).body;
  }

  /** `GET /jobs`, page after page: `for await (const page of client.list({ status: 'failed' }))`. */
  async *list(options: ListOptions = {}): AsyncGenerator<JobView[]> {
    let cursor: string | null | undefined;
    do {
      const q = new URLSearchParams();
      if (options.type) q.set('type', options.type);
      if (options.status) q.set('status', options.status);
      if (options.limit) q.set('limit', String(options.limit));
      if (cursor) q.set('cursor', cursor);
      const page = (await this.request<{ jobs: JobView[]; nextCursor: string | null }>('GET', `jobs${q.size ? `?${q}` : ''}`)).body;
      yield page.jobs;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /**
   * One API call, retried on 429, 5xx and network failures: after Retry-After when the API
   * sent one, else full-jitter exponential backoff (250 ms base, 8 s cap). POSTs are retried
   * with the same Idempotency-Key, so a retry never makes a second job.
   */
  private async request<T>(
    method: string,
    pathAndQuery: string,
    json?: unknown,
    extra: { idempotencyKey?: string; signal?: AbortSignal; extraMs?: number } = {},
  ): Promise<{ body: T; replayed: boolean }> {
    const url = new URL(pathAndQuery, this.base);
    const headers: Record<string, string> = { 'x-api-key': this.opts.apiKey, accept: 'application/json' };
    if (json !== undefined) headers['content-type'] = 'application/json';
    if (extra.idempotencyKey) headers['idempotency-key'] = extra.idempotencyKey;
    for (let attempt = 0; ; attempt++) {
      let error: OffloadError;
      try {
        const timeout = AbortSignal.timeout(this.timeoutMs + (extra.extraMs ?? 0));
        const res = await this.fetchImpl(url, {
          method,
          headers,
          body: json === undefined ? undefined : JSON.stringify(json),
          signal: extra.signal ? AbortSignal.any([extra.signal, timeout]) : timeout,
        });
        const text = await res.text();
        if (res.ok) return { body: (text ? JSON.parse(text) : undefined) as T, replayed: res.headers.get('idempotent-replayed') === 'true' };
        error = errorOf(res.status, text, res.headers.get('retry-after'));
      } catch (err) {
        if (err instanceof OffloadError) throw err;
        if (extra.signal?.aborted) throw extra.signal.reason;
        error = new OffloadError(0, 'network_error', `cannot reach ${url.origin}: ${(err as Error).message}`);
      }
      const retryable = error.status === 0 || error.status === 429 || error.status >= 500;
      if (!retryable || attempt >= this.retries) throw error;
      const backoff = this.random() * Math.min(8000, 250 * 2 ** attempt);
      await this.sleep(error.retryAfter !== undefined ? error.retryAfter * 1000 : backoff);
    }
  }
}

function errorOf(status: number, text: string, retryAfterHeader: string | null): OffloadError {
  let code = `http_${status}`;
  let message = text.replace(/\s+/g, ' ').trim().slice(0, 200) || `HTTP ${status}`;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown }; message?: unknown };
    if (typeof body?.error?.code === 'string') {
      code = body.error.code;
      message = typeof body.error.message === 'string' ? body.error.message : message;
    } else if (typeof body?.message === 'string') {
      message = body.message;
    }
  } catch {
    // not JSON: the status code says it
  }
  return new OffloadError(status, code, message, parseRetryAfter(retryAfterHeader));
}

/** Retry-After as seconds: delta-seconds, or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** PUT to a presigned URL in 64 KB chunks, reporting progress as the socket takes them. */
function putWithProgress(url: string, headers: Record<string, string>, data: Buffer, onProgress?: (sent: number, total: number) => void): Promise<void> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(target, { method: 'PUT', headers: { ...headers, 'Content-Length': String(data.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) return resolve();
        const body = Buffer.concat(chunks).toString('utf8');
        const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? `http_${res.statusCode}`;
        reject(new OffloadError(res.statusCode ?? 0, code === 'PreconditionFailed' ? 'upload_exists' : code, `upload refused: ${res.statusCode} ${code}`));
      });
    });
    req.on('error', (err) => reject(new OffloadError(0, 'network_error', `upload failed: ${err.message}`)));
    let sent = 0;
    const CHUNK = 64 * 1024;
    const write = (): void => {
      while (sent < data.length) {
        const chunk = data.subarray(sent, sent + CHUNK);
        sent += chunk.length;
        const more = req.write(chunk);
        onProgress?.(sent, data.length);
        if (!more) {
          req.once('drain', write);
          return;
        }
      }
      req.end();
    };
    if (data.length === 0) onProgress?.(0, 0);
    write();
  });
}

/** A webhook whose signature does not check out: `reason` says why (never which byte). */
export class WebhookVerificationError extends Error {
  constructor(readonly reason: 'malformed_header' | 'timestamp_outside_tolerance' | 'signature_mismatch') {
    super(`webhook not verified: ${reason}`);
    this.name = 'WebhookVerificationError';
  }
}

/**
 * Checks an offload webhook as received: `Offload-Signature: t=<unix seconds>,v1=<hex>`
 * where v1 = HMAC-SHA256 over `<t>.<raw body>` under the webhook secret (Stripe's scheme).
 * Pass the raw body exactly as it arrived (not re-serialized JSON). Rejects a timestamp more
 * than `toleranceSeconds` (default 300) from now, so a captured request cannot be replayed
 * later; compares in constant time; accepts any of several v1 values (a secret rotation).
 * Returns the parsed body.
 */
export function verifyWebhook<T = unknown>(
  rawBody: string | Buffer,
  header: string | null | undefined,
  secret: string,
  options: { toleranceSeconds?: number; now?: number } = {},
): T {
  const parts = (header ?? '').split(',').map((p) => p.trim().split('='));
  const t = parts.find(([k]) => k === 't')?.[1];
  const signatures = parts.filter(([k, v]) => k === 'v1' && v !== undefined && /^[0-9a-f]{64}$/.test(v)).map(([, v]) => Buffer.from(v!, 'hex'));
  if (!t || !/^\d+$/.test(t) || signatures.length === 0) throw new WebhookVerificationError('malformed_header');
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(now - Number(t)) > (options.toleranceSeconds ?? 300)) throw new WebhookVerificationError('timestamp_outside_tolerance');
  const body = Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody, 'utf8');
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  if (!signatures.some((s) => timingSafeEqual(s, expected))) throw new WebhookVerificationError('signature_mismatch');
  return JSON.parse(body.toString('utf8')) as T;
}

/** The signature header offload sends (exported for tests and for receivers that sign replies). */
export function signWebhook(rawBody: string | Buffer, secret: string, timestampSeconds: number): string {
  const body = Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody, 'utf8');
  const v1 = createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex');
  return `t=${timestampSeconds},v1=${v1}`;
}
