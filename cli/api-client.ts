import { isTerminal, MAX_WAIT_SECONDS } from '../lambda/shared/contract';
import type { JobView } from '../lambda/shared/model';

/** A job as `GET /jobs/{jobId}` returns it: the API's own view type. */
export type Job = JobView;

export interface PresignedUpload {
  jobId: string;
  uploadUrl: string;
  method: 'PUT';
  headers: Record<string, string>;
  expiresAt: string;
  statusUrl: string;
}

export interface ListJobsQuery {
  type?: string;
  status?: string;
  limit?: number;
  cursor?: string;
}

/**
 * A failed API call. `code`/`message` are the API's `{ error: { code, message } }` when it
 * sent one; otherwise `http_<status>` (a non-JSON answer) or `network_error` (no answer).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
  /** Worth retrying: throttled, a gateway hiccup, or no answer at all. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504;
  }
  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** The API's error body, or a short description of whatever came back instead. */
export function errorFromResponse(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown }; message?: unknown };
    if (body?.error && typeof body.error.code === 'string') {
      return new ApiError(status, body.error.code, typeof body.error.message === 'string' ? body.error.message : '');
    }
    // API Gateway's own answers before the function (bad key, throttling): { message }.
    if (typeof body?.message === 'string') return new ApiError(status, status === 403 ? 'forbidden' : `http_${status}`, body.message);
  } catch {
    // not JSON
  }
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return new ApiError(status, `http_${status}`, snippet || `HTTP ${status}`);
}

export interface ApiClientOptions {
  fetch?: typeof fetch;
  /** Per request, in milliseconds. */
  timeoutMs?: number;
  /** Retries of transient failures (429, 502-504, no answer). Non-GET requests retry only 429. */
  retries?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** A small fetch wrapper for the offload HTTP API: base URL, `x-api-key`, JSON in and out, typed errors. */
export class ApiClient {
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    readonly baseUrl: string,
    private readonly apiKey: string,
    opts: ApiClientOptions = {},
  ) {
    this.fetchImpl = opts.fetch ?? fetch;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = opts.retries ?? 3;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  url(pathAndQuery: string): URL {
    return new URL(pathAndQuery.replace(/^\//, ''), this.baseUrl);
  }

  async request<T>(method: string, pathAndQuery: string, json?: unknown): Promise<T> {
    const url = this.url(pathAndQuery);
    const headers: Record<string, string> = { 'x-api-key': this.apiKey, accept: 'application/json' };
    if (json !== undefined) headers['content-type'] = 'application/json';
    for (let attempt = 0; ; attempt++) {
      let error: ApiError;
      try {
        const res = await this.fetchImpl(url, {
          method,
          headers,
          body: json === undefined ? undefined : JSON.stringify(json),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const text = await res.text();
        if (res.ok) {
          try {
            return (text ? JSON.parse(text) : undefined) as T;
          } catch {
            throw new ApiError(res.status, 'invalid_response', `${method} ${url.pathname} answered ${res.status} with a body that is not JSON`);
          }
        }
        error = errorFromResponse(res.status, text);
      } catch (err) {
        if (err instanceof ApiError) throw err;
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (err as Error).message);
        error = new ApiError(0, 'network_error', `cannot reach ${url.origin}: ${reason}`);
      }
      const retryable = error.transient && (method === 'GET' || error.status === 429);
      if (!retryable || attempt >= this.retries) throw error;
      await this.sleep(Math.min(4000, 250 * 2 ** attempt));
    }
  }

  createUpload(body: { filename: string; contentType: string; size: number }): Promise<PresignedUpload> {
    return this.request('POST', 'uploads', body);
  }

  /** One job; with `waitSeconds` (0..20) a long-poll: the API answers as soon as the job is terminal, or after that long. */
  getJob(jobId: string, opts: { waitSeconds?: number } = {}): Promise<Job> {
    const wait = opts.waitSeconds ? `?waitSeconds=${Math.max(0, Math.min(MAX_WAIT_SECONDS, Math.round(opts.waitSeconds)))}` : '';
    return this.request('GET', `jobs/${encodeURIComponent(jobId)}${wait}`);
  }

  listJobs(query: ListJobsQuery): Promise<{ jobs: Job[]; nextCursor?: string | null }> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
    const q = qs.toString();
    return this.request('GET', q ? `jobs?${q}` : 'jobs');
  }

  createReport(body: { from: string; to: string; formats?: string[] }): Promise<{ jobId: string; statusUrl: string }> {
    return this.request('POST', 'reports', body);
  }
}

export { isTerminal };
