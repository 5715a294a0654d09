import { createHash, randomUUID } from 'node:crypto';
import { DEFAULT_PRIORITY, IDEMPOTENCY_KEY_PREFIX, isJobId, isTerminal, type Priority } from '../shared/contract';
import { HttpError } from '../shared/errors';
import { errorResponse, type ApiRequest, type ApiResponse } from '../shared/http';
import { resultsPrefixOf, type AnyJobType, type CoreSettings, type TypeRoute, type TypeRouteContext } from '../shared/job-type';
import { InvalidCursorError, type JobsRepo } from '../shared/jobs-repo';
import type { JobMessage, JobOutput, JobRecord, JobView } from '../shared/model';
import {
  describeIssues,
  GetJobQuery,
  IdempotencyKey,
  ListJobsQuery,
  normalizeContentType,
  parseJsonBody,
  resolveSubmitOptions,
  splitSubmitOptions,
  SubmitOptions,
  SubmitRequest,
  type ResolvedSubmitOptions,
} from '../shared/schemas';

export type { ApiRequest, ApiResponse } from '../shared/http';
export { errorResponse } from '../shared/http';

/** Everything the API does to AWS, behind one interface (fakes in unit tests). */
export interface ApiDeps {
  repo: Pick<JobsRepo, 'create' | 'get' | 'list' | 'failQueued' | 'cancel' | 'idemBegin' | 'idemGet' | 'idemComplete' | 'idemRelease'>;
  presignPut(key: string, contentType: string, size: number, expiresIn: number): Promise<string>;
  presignGet(key: string, expiresIn: number, downloadName?: string): Promise<string>;
  putRaw(key: string, body: Buffer, contentType: string, jobId: string): Promise<void>;
  /** Sends a JSON-input job's message to its type's queue of that priority (lane), invisible for delaySeconds. */
  enqueue(type: string, message: JobMessage, options: { priority: Priority; delaySeconds: number }): Promise<void>;
  now(): Date;
  newId(): string;
  /** Waits (long-polls, a repeated Idempotency-Key waiting for its first request); default setTimeout. */
  sleep?(ms: number): Promise<void>;
}

/** How long an Idempotency-Key is remembered. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** How often a long-poll reads its job, and a repeated Idempotency-Key its first request's record. */
export const LONG_POLL_INTERVAL_MS = 400;
/** A repeated Idempotency-Key reads its first request's record after this, then 1.5 x longer each time, at most IDEMPOTENCY_POLL_MAX_MS (a burst of repeats must not crowd out the first request's own writes). */
export const IDEMPOTENCY_POLL_MS = 100;
export const IDEMPOTENCY_POLL_MAX_MS = 1000;
/** A request with a repeated Idempotency-Key waits at most this long for the first one to finish (then 409), and never past its function's time. */
export const IDEMPOTENCY_WAIT_MS = 20_000;
/** Waits end this long before the function would time out. */
const TIME_MARGIN_MS = 1500;

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** One registered type as the API runs it: its definition and the settings the stack resolved. */
export interface ApiJobType {
  definition: AnyJobType;
  settings: CoreSettings & Record<string, unknown>;
}

export interface ApiSettings {
  presignTtlSeconds: number;
  /** The OpenAPI document served at GET /openapi.json. */
  openapi?: unknown;
  /** Platform routes kept in modules of their own (the console's: lambda/api/console.ts). */
  extraRoutes?: Record<string, Handler>;
}

type Handler = (req: ApiRequest) => Promise<ApiResponse>;

/**
 * The API core: the platform's routes (`POST /jobs`, `GET /jobs`, `GET /jobs/{jobId}`,
 * `DELETE /jobs/{jobId}`, `GET /openapi.json`) plus every type's own routes, over one registry of types. It names
 * no type.
 */
export function createApi(deps: ApiDeps, settings: ApiSettings, types: readonly ApiJobType[]) {
  const byName = new Map(types.map((t) => [t.definition.name, t]));
  const names = [...byName.keys()];
  const routes: Record<string, Handler> = {
    'POST /jobs': submitJob,
    'GET /jobs': listJobs,
    'GET /jobs/{jobId}': getJob,
    'DELETE /jobs/{jobId}': cancelJob,
    'GET /openapi.json': openapi,
    ...settings.extraRoutes,
  };
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (const t of types) {
    for (const route of (t.definition.routes ?? []) as TypeRoute<Record<string, unknown>>[]) {
      const key = `${route.method} ${route.path}`;
      if (routes[key]) throw new Error(`job type ${t.definition.name}: route ${key} is taken`);
      routes[key] = (req) => route.handle(req, routeContext(t));
    }
  }

  async function handle(req: ApiRequest): Promise<ApiResponse> {
    const route = req.method === 'OPTIONS' ? preflight : routes[`${req.method} ${req.resource}`];
    try {
      if (!route) throw new HttpError(404, 'not_found', `no such route: ${req.method} ${req.resource}`);
      // Every POST route submits work: each takes an Idempotency-Key.
      return req.method === 'POST' ? await idempotent(req, route) : await route(req);
    } catch (err) {
      if (err instanceof HttpError) return errorResponse(err.statusCode, err.code, err.message);
      throw err;
    }
  }

  /** CORS preflight: which methods and headers the resource accepts (the adapter adds the origin). */
  async function preflight(req: ApiRequest): Promise<ApiResponse> {
    const methods = Object.keys(routes)
      .filter((r) => r.endsWith(` ${req.resource}`))
      .map((r) => r.split(' ')[0]);
    if (methods.length === 0) throw new HttpError(404, 'not_found', `no such route: OPTIONS ${req.resource}`);
    return {
      statusCode: 204,
      body: undefined,
      headers: {
        'Access-Control-Allow-Methods': [...methods, 'OPTIONS'].join(','),
        'Access-Control-Allow-Headers': 'Content-Type,X-Api-Key,X-Filename,Authorization,Idempotency-Key',
        'Access-Control-Max-Age': '3600',
      },
    };
  }

  /**
   * A submit with an `Idempotency-Key` header runs once per key and API key for 24 h: the
   * first request takes the key (a conditional put of a `pending` record in the jobs table),
   * runs, and stores its response if it is a 2xx (any other outcome frees the key, so a
   * retry runs: nothing was done). A repeat with the same request gets that response again
   * with `Idempotent-Replayed: true`; one that comes while the first still runs waits for it
   * (consistent reads, at most IDEMPOTENCY_WAIT_MS, then 409); the same key on a different
   * request is a 422. A first request that died holding the key (its lock, the function's
   * time, ran out) is taken over.
   */
  async function idempotent(req: ApiRequest, route: Handler): Promise<ApiResponse> {
    const key = req.headers['idempotency-key'];
    if (key === undefined) return route(req);
    const valid = IdempotencyKey.safeParse(key);
    if (!valid.success) throw new HttpError(400, 'invalid_request', describeIssues(valid.error));
    const id = IDEMPOTENCY_KEY_PREFIX + sha256(JSON.stringify([req.apiKeyId ?? '', key]));
    const fingerprint = sha256(
      JSON.stringify([
        req.method,
        req.resource,
        Object.entries(req.query).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        normalizeContentType(req.headers['content-type']),
        req.headers['x-filename'] ?? null,
        sha256(req.body ?? Buffer.alloc(0)),
      ]),
    );
    const owner = randomUUID();
    const left = () => (req.remainingMs ? req.remainingMs() - TIME_MARGIN_MS : Infinity);
    const waitUntil = deps.now().getTime() + Math.min(IDEMPOTENCY_WAIT_MS, left());
    const reused = () =>
      new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request (route, body or parameters) in the last 24 h; use a new key');
    for (;;) {
      const begun = await deps.repo.idemBegin(id, { fingerprint, owner, lockMs: Math.max(1000, Math.min(left(), 900_000)) + TIME_MARGIN_MS, ttlSeconds: IDEMPOTENCY_TTL_SECONDS });
      if (begun.won) return runOnce(req, route, id, owner);
      let record = begun.record;
      if (record && record.state !== 'released' && record.fingerprint !== fingerprint) throw reused();
      let pause = IDEMPOTENCY_POLL_MS;
      while (record?.state === 'pending' && (record.lockUntil ?? 0) > deps.now().getTime() && deps.now().getTime() < waitUntil) {
        await sleep(Math.min(pause, Math.max(1, waitUntil - deps.now().getTime())));
        pause = Math.min(IDEMPOTENCY_POLL_MAX_MS, Math.round(pause * 1.5));
        record = await deps.repo.idemGet(id);
      }
      if (record?.state === 'done') {
        if (record.fingerprint !== fingerprint) throw reused();
        const first = JSON.parse(record.response ?? '{}') as ApiResponse;
        return { statusCode: first.statusCode, body: first.body, headers: { ...first.headers, 'Idempotent-Replayed': 'true' } };
      }
      if (deps.now().getTime() >= waitUntil) {
        throw new HttpError(409, 'conflict', 'a request with this Idempotency-Key is still in progress; retry in a moment');
      }
      // Freed (the first request failed), expired, or its holder died: take it.
    }
  }

  /** The request that holds an Idempotency-Key: runs, and remembers a 2xx response or frees the key. */
  async function runOnce(req: ApiRequest, route: Handler, id: string, owner: string): Promise<ApiResponse> {
    let res: ApiResponse;
    try {
      res = await route(req);
    } catch (err) {
      await deps.repo.idemRelease(id, owner);
      throw err;
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      await deps.repo.idemComplete(id, owner, JSON.stringify({ statusCode: res.statusCode, headers: res.headers, body: res.body }));
    } else {
      await deps.repo.idemRelease(id, owner);
    }
    return res;
  }

  const statusUrl = (req: ApiRequest, jobId: string) => `${req.baseUrl}jobs/${jobId}`;

  /** Validates a JSON-input job's input with its type's schema and checks; a 400 names the field. */
  function validInput(t: ApiJobType, input: unknown, prefix: string): Record<string, unknown> {
    const parsed = t.definition.input.safeParse(input);
    if (!parsed.success) throw new HttpError(400, 'invalid_request', describeIssues(parsed.error, prefix));
    const problem = t.definition.check?.(parsed.data, t.settings);
    if (problem) throw new HttpError(400, 'invalid_request', problem);
    return parsed.data as Record<string, unknown>;
  }

  /**
   * Creates a queued job and sends its message to the lane of its priority; a job whose
   * message could not be sent is failed, never left queued. A delayed job's message is
   * invisible until `runAfter`, so its sweep deadline (the queue's retention) moves by the delay.
   */
  async function submit(t: ApiJobType, input: Record<string, unknown>, options: ResolvedSubmitOptions): Promise<JobRecord> {
    const jobId = deps.newId();
    const type = t.definition.name;
    const { priority, delaySeconds } = options;
    const runAfter = delaySeconds > 0 ? new Date(deps.now().getTime() + delaySeconds * 1000).toISOString() : undefined;
    const job = await deps.repo.create({
      jobId,
      type,
      status: 'queued',
      input,
      priority,
      ...(runAfter ? { runAfter } : {}),
      sweepAfterMs: (t.settings.maxQueuedSeconds + delaySeconds) * 1000,
    });
    if (!job) throw new Error(`job id ${jobId} exists already`);
    try {
      await deps.enqueue(type, { jobId, type }, { priority, delaySeconds });
    } catch (err) {
      await deps.repo.failQueued(jobId, { code: 'internal_error', message: 'the job could not be queued; please retry' });
      throw err;
    }
    return job;
  }

  function routeContext(t: ApiJobType): TypeRouteContext<Record<string, unknown>> {
    return {
      settings: t.settings,
      presignTtlSeconds: settings.presignTtlSeconds,
      newId: deps.newId,
      now: deps.now,
      submit: (input, options) => {
        const checked = SubmitOptions.safeParse(options ?? {});
        if (!checked.success) throw new HttpError(400, 'invalid_request', describeIssues(checked.error));
        return submit(t, validInput(t, input, ''), resolveSubmitOptions(checked.data));
      },
      create: async ({ jobId, status, input, priority, sweepAfterMs }) => {
        const created = await deps.repo.create({
          jobId,
          type: t.definition.name,
          status,
          input,
          priority: priority ?? DEFAULT_PRIORITY,
          sweepAfterMs: sweepAfterMs ?? t.settings.maxQueuedSeconds * 1000,
        });
        if (!created) throw new Error(`job id ${jobId} exists already`);
      },
      failQueued: async (jobId, error) => {
        await deps.repo.failQueued(jobId, error);
      },
      presignPut: deps.presignPut,
      putRaw: deps.putRaw,
      statusUrl,
    };
  }

  async function submitJob(req: ApiRequest): Promise<ApiResponse> {
    if (normalizeContentType(req.headers['content-type']) !== 'application/json') {
      throw new HttpError(415, 'unsupported_media_type', 'send application/json { "type": "...", "input": { ... }, "priority"?: "high" | "normal", "delaySeconds"?: 0..900 }');
    }
    const body = parseJsonBody(req.body);
    const typeName = (body as { type?: unknown } | null)?.type;
    const t = typeof typeName === 'string' ? byName.get(typeName) : undefined;
    if (typeof typeName === 'string' && !t) {
      throw new HttpError(400, 'invalid_request', `type: unknown job type ${JSON.stringify(typeName.slice(0, 64))}; known types: ${names.join(', ')}`);
    }
    const { options } = splitSubmitOptions(body);
    const parsed = SubmitRequest.safeParse(body);
    if (!parsed.success) throw new HttpError(400, 'invalid_request', `${describeIssues(parsed.error)} (known types: ${names.join(', ')})`);
    if (!t) throw new HttpError(400, 'invalid_request', `type: known types: ${names.join(', ')}`);
    if (t.definition.inputKind === 'file') {
      const own = (t.definition.routes ?? []).map((r) => `${r.method} ${r.path}`).join(', ');
      throw new HttpError(400, 'invalid_request', `type: ${t.definition.name} takes a file as its input: use ${own || 'its upload route'}`);
    }
    const job = await submit(t, validInput(t, parsed.data.input, 'input'), options);
    return { statusCode: 202, body: { jobId: job.jobId, statusUrl: statusUrl(req, job.jobId) } };
  }

  /**
   * One job. With `waitSeconds=N` (a long-poll) it answers as soon as the job is terminal, or
   * after N seconds (or before the function's time runs out) with its state then: the record
   * is read (consistently) every LONG_POLL_INTERVAL_MS.
   */
  async function getJob(req: ApiRequest): Promise<ApiResponse> {
    const parsed = GetJobQuery.safeParse(req.query);
    if (!parsed.success) throw new HttpError(400, 'invalid_request', describeIssues(parsed.error));
    const jobId = req.pathParameters.jobId ?? '';
    let job = isJobId(jobId) ? await deps.repo.get(jobId) : undefined;
    if (!job) throw new HttpError(404, 'not_found', `no job ${JSON.stringify(jobId.slice(0, 64))}`);
    const waitMs = Number(parsed.data.waitSeconds ?? 0) * 1000;
    const until = deps.now().getTime() + Math.min(waitMs, req.remainingMs ? req.remainingMs() - TIME_MARGIN_MS : Infinity);
    while (!isTerminal(job.status)) {
      const left = until - deps.now().getTime();
      if (left <= 0) break;
      await sleep(Math.min(LONG_POLL_INTERVAL_MS, left));
      job = (await deps.repo.get(jobId)) ?? job;
    }
    return { statusCode: 200, body: await view(job) };
  }

  /**
   * Cancels a job: one not started yet is `cancelled` at once; a processing one gets
   * `cancelRequested` (its worker stops and ends it `cancelled`, unless it finished first).
   * 202 with the job; 409 when it is finished already.
   */
  async function cancelJob(req: ApiRequest): Promise<ApiResponse> {
    const jobId = req.pathParameters.jobId ?? '';
    const result = isJobId(jobId) ? await deps.repo.cancel(jobId) : ({ outcome: 'missing' } as const);
    if (result.outcome === 'missing') throw new HttpError(404, 'not_found', `no job ${JSON.stringify(jobId.slice(0, 64))}`);
    if (result.outcome === 'terminal') throw new HttpError(409, 'conflict', `job ${jobId} is ${result.job.status} already: there is nothing to cancel`);
    return { statusCode: 202, body: await view(result.job) };
  }

  async function listJobs(req: ApiRequest): Promise<ApiResponse> {
    const parsed = ListJobsQuery.safeParse(req.query);
    if (!parsed.success) throw new HttpError(400, 'invalid_request', describeIssues(parsed.error));
    const { type, ...rest } = parsed.data;
    if (type !== undefined && !byName.has(type)) {
      throw new HttpError(400, 'invalid_request', `type: unknown job type ${JSON.stringify(type)}; known types: ${names.join(', ')}`);
    }
    try {
      const page = await deps.repo.list({ ...rest, types: type ? [type] : names });
      return { statusCode: 200, body: { jobs: await Promise.all(page.jobs.map(view)), nextCursor: page.nextCursor } };
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new HttpError(400, 'invalid_request', err.message);
      throw err;
    }
  }

  async function openapi(): Promise<ApiResponse> {
    if (!settings.openapi) throw new HttpError(404, 'not_found', 'no OpenAPI document');
    return { statusCode: 200, body: settings.openapi };
  }

  /** The job as clients see it: every type alike, plus the type's own extra fields. */
  async function view(job: JobRecord): Promise<JobView> {
    const def = byName.get(job.type)?.definition;
    const ttl = settings.presignTtlSeconds;
    const prefix = def ? resultsPrefixOf(def) : '';
    const outputs: JobOutput[] = await Promise.all(
      (job.outputs ?? []).map(async (stored) => {
        const { key, ...o } = stored;
        return { ...o, url: await deps.presignGet(key, ttl, key.startsWith(prefix) ? def?.downloadName?.(job, stored) : undefined) };
      }),
    );
    const input: Record<string, unknown> = { ...(job.input ?? {}) };
    for (const hidden of def?.hiddenInputKeys ?? []) delete input[hidden];
    const base: JobView = {
      jobId: job.jobId,
      type: job.type,
      status: job.status,
      createdAt: job.createdAt,
      updatedAt: job.updatedAt,
      attempts: job.attempts ?? 0,
      priority: job.priority ?? DEFAULT_PRIORITY,
      input,
      outputs,
    };
    if (job.runAfter) base.runAfter = job.runAfter;
    if (job.startedAt) base.startedAt = job.startedAt;
    if (job.progress) base.progress = job.progress;
    if (job.completedAt) base.completedAt = job.completedAt;
    if (job.error) base.error = job.error;
    if (job.cancelRequested) base.cancelRequested = true;
    return { ...base, ...(def?.view?.(job) as Partial<JobView> | undefined) };
  }

  return { handle, routes: Object.keys(routes) };
}

export const newJobId = (): string => randomUUID();
