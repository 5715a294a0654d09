import { isTerminal } from '../lambda/shared/contract';
import type { JobView } from '../lambda/shared/model';
import { OffloadClient, type PresignedUpload } from '../client';

/**
 * The CLI's view of the API, built on the producer SDK (`offload/client`): the SDK does the
 * HTTP (key, JSON, Idempotency-Key on every POST, retries of 429/5xx/no answer honouring
 * Retry-After, typed errors); this adds the few shapes the commands use.
 */
export { errorFromResponse, OffloadError as ApiError, type PresignedUpload } from '../client';

/** A job as `GET /jobs/{jobId}` returns it: the API's own view type. */
export type Job = JobView;

export interface ListJobsQuery {
  type?: string;
  status?: string;
  limit?: number;
  cursor?: string;
}

export interface ApiClientOptions {
  fetch?: typeof fetch;
  /** Per request, in milliseconds. */
  timeoutMs?: number;
  /** Retries of transient failures (429, 5xx, no answer). */
  retries?: number;
  sleep?: (ms: number) => Promise<void>;
}

export class ApiClient {
  readonly sdk: OffloadClient;

  constructor(
    readonly baseUrl: string,
    apiKey: string,
    opts: ApiClientOptions = {},
  ) {
    this.sdk = new OffloadClient({ baseUrl, apiKey, ...opts });
  }

  createUpload(body: { filename: string; contentType: string; size: number }): Promise<PresignedUpload> {
    return this.sdk.createUpload(body);
  }

  /** One job; with `waitSeconds` (0..20) a long-poll: the API answers as soon as the job is terminal, or after that long. */
  getJob(jobId: string, opts: { waitSeconds?: number } = {}): Promise<Job> {
    return this.sdk.get(jobId, opts);
  }

  listJobs(query: ListJobsQuery): Promise<{ jobs: Job[]; nextCursor?: string | null }> {
    return this.sdk.page({ type: query.type, status: query.status as Job['status'] | undefined, limit: query.limit, cursor: query.cursor });
  }

  async createReport(body: { from: string; to: string; formats?: string[] }): Promise<{ jobId: string; statusUrl: string }> {
    const { jobId, statusUrl } = await this.sdk.submit('report', body);
    return { jobId, statusUrl };
  }
}

export { isTerminal };
