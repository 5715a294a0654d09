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
  /** Worth retrying: throttled, a server or gateway failure, or no answer at all. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** `POST /uploads`'s answer: where and how to PUT the file. */
export interface PresignedUpload {
  jobId: string;
  uploadUrl: string;
  method: 'PUT';
  headers: Record<string, string>;
  expiresAt: string;
  statusUrl: string;
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
/** Extension -> the content type the API accepts. Anything else is sent as octet-stream (and refused by the API with 415). */
const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.jpe': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.avif': 'image/avif',
};

export const FALLBACK_CONTENT_TYPE = 'application/octet-stream';

/** The content type an upload of this file name is sent with. */
export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? FALLBACK_CONTENT_TYPE;
}

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
    const contentType = options.contentType ?? contentTypeFor(filename);
    const created = await this.createUpload({ filename, contentType, size: data.length, ...(options.priority ? { priority: options.priority } : {}) }, options);
    await putWithProgress(created.uploadUrl, created.headers, data, options.onProgress);
    return { jobId: created.jobId, statusUrl: created.statusUrl, replayed: created.replayed };
  }

  /** `POST /uploads` alone: the job and its presigned URL, for callers that PUT the file themselves (the CLI, with its own progress bars). */
  async createUpload(
    body: { filename: string; contentType: string; size: number; priority?: 'high' | 'normal' },
    options: { idempotencyKey?: string } = {},
  ): Promise<PresignedUpload & { replayed: boolean }> {
    const res = await this.request<PresignedUpload>('POST', 'uploads', body, { idempotencyKey: options.idempotencyKey ?? randomUUID() });
    return { ...res.body, replayed: res.replayed };
  }

  /** `GET /jobs/{jobId}`; with `waitSeconds` (0..20) a long-poll: the API answers once the job is terminal, or after that long. */
  async get(jobId: string, options: { waitSeconds?: number; signal?: AbortSignal } = {}): Promise<JobView> {
    const wait = options.waitSeconds ? Math.max(0, Math.min(20, Math.round(options.waitSeconds))) : 0;
    const query = wait ? `?waitSeconds=${wait}` : '';
    return (await this.request<JobView>('GET', `jobs/${encodeURIComponent(jobId)}${query}`, undefined, { signal: options.signal, extraMs: wait * 1000 })).body;
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
      const page = await this.page({ ...options, cursor: cursor ?? undefined });
      yield page.jobs;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /** One page of `GET /jobs` (what `list` iterates). */
  async page(options: ListOptions & { cursor?: string } = {}): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    const q = new URLSearchParams();
    if (options.type) q.set('type', options.type);
    if (options.status) q.set('status', options.status);
    if (options.limit) q.set('limit', String(options.limit));
    if (options.cursor) q.set('cursor', options.cursor);
    const body = (await this.request<{ jobs: JobView[]; nextCursor?: string | null }>('GET', `jobs${q.size ? `?${q}` : ''}`)).body;
    return { jobs: body.jobs, nextCursor: body.nextCursor ?? null };
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
        if (res.ok) {
          try {
            return { body: (text ? JSON.parse(text) : undefined) as T, replayed: res.headers.get('idempotent-replayed') === 'true' };
          } catch {
            throw new OffloadError(res.status, 'invalid_response', `${method} ${url.pathname} answered ${res.status} with a body that is not JSON`);
          }
        }
        error = errorFromResponse(res.status, text, res.headers.get('retry-after'));
      } catch (err) {
        if (err instanceof OffloadError) throw err;
        if (extra.signal?.aborted) throw extra.signal.reason;
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        const reason = (err as Error).name === 'TimeoutError' ? 'no answer in time' : (cause?.code ?? cause?.message ?? (err as Error).message);
        error = new OffloadError(0, 'network_error', `cannot reach ${url.origin}: ${reason}`);
      }
      // A POST is retried too: it carries an Idempotency-Key, so a retry never makes a second job.
      if (!error.transient || attempt >= this.retries) throw error;
      const backoff = this.random() * Math.min(8000, 250 * 2 ** attempt);
      await this.sleep(error.retryAfter !== undefined ? error.retryAfter * 1000 : backoff);
    }
  }
}

/**
 * The API's `{ error: { code, message } }`; API Gateway's own answers before the function
 * (`{ message }`: a bad key is `forbidden`); or a short description of whatever came back.
 */
export function errorFromResponse(status: number, text: string, retryAfterHeader: string | null = null): OffloadError {
  const retryAfter = parseRetryAfter(retryAfterHeader);
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown }; message?: unknown };
    if (typeof body?.error?.code === 'string') {
      return new OffloadError(status, body.error.code, typeof body.error.message === 'string' ? body.error.message : '', retryAfter);
    }
    if (typeof body?.message === 'string') return new OffloadError(status, status === 403 ? 'forbidden' : `http_${status}`, body.message, retryAfter);
  } catch {
    // not JSON: the status code says it
  }
  return new OffloadError(status, `http_${status}`, text.replace(/\s+/g, ' ').trim().slice(0, 200) || `HTTP ${status}`, retryAfter);
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
