import { randomUUID } from 'node:crypto';
import { isJobId } from '../shared/contract';
import { HttpError } from '../shared/errors';
import { errorResponse, type ApiRequest, type ApiResponse } from '../shared/http';
import { resultsPrefixOf, type AnyJobType, type CoreSettings, type TypeRoute, type TypeRouteContext } from '../shared/job-type';
import { InvalidCursorError, type JobsRepo } from '../shared/jobs-repo';
import type { JobMessage, JobOutput, JobRecord, JobView } from '../shared/model';
import { describeIssues, ListJobsQuery, normalizeContentType, parseJsonBody, SubmitRequest } from '../shared/schemas';

export type { ApiRequest, ApiResponse } from '../shared/http';
export { errorResponse } from '../shared/http';

/** Everything the API does to AWS, behind one interface (fakes in unit tests). */
export interface ApiDeps {
  repo: Pick<JobsRepo, 'create' | 'get' | 'list' | 'failQueued'>;
  presignPut(key: string, contentType: string, size: number, expiresIn: number): Promise<string>;
  presignGet(key: string, expiresIn: number, downloadName?: string): Promise<string>;
  putRaw(key: string, body: Buffer, contentType: string, jobId: string): Promise<void>;
  /** Sends a JSON-input job's message to its type's queue. */
  enqueue(type: string, message: JobMessage): Promise<void>;
  now(): Date;
  newId(): string;
}

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
 * `GET /openapi.json`) plus every type's own routes, over one registry of types. It names
 * no type.
 */
export function createApi(deps: ApiDeps, settings: ApiSettings, types: readonly ApiJobType[]) {
  const byName = new Map(types.map((t) => [t.definition.name, t]));
  const names = [...byName.keys()];
  const routes: Record<string, Handler> = {
    'POST /jobs': submitJob,
    'GET /jobs': listJobs,
    'GET /jobs/{jobId}': getJob,
    'GET /openapi.json': openapi,
    ...settings.extraRoutes,
  };
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
      return await route(req);
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
        'Access-Control-Allow-Headers': 'Content-Type,X-Api-Key,X-Filename,Authorization',
        'Access-Control-Max-Age': '3600',
      },
    };
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

  /** Creates a queued job and sends its message; a job whose message could not be sent is failed, never left queued. */
  async function submit(t: ApiJobType, input: Record<string, unknown>): Promise<JobRecord> {
    const jobId = deps.newId();
    const type = t.definition.name;
    const job = await deps.repo.create({ jobId, type, status: 'queued', input, sweepAfterMs: t.settings.maxQueuedSeconds * 1000 });
    if (!job) throw new Error(`job id ${jobId} exists already`);
    try {
      await deps.enqueue(type, { jobId, type });
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
      submit: (input) => submit(t, validInput(t, input, '')),
      create: async ({ jobId, status, input, sweepAfterMs }) => {
        const created = await deps.repo.create({
          jobId,
          type: t.definition.name,
          status,
          input,
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
      throw new HttpError(415, 'unsupported_media_type', 'send application/json { "type": "...", "input": { ... } }');
    }
    const body = parseJsonBody(req.body);
    const typeName = (body as { type?: unknown } | null)?.type;
    const t = typeof typeName === 'string' ? byName.get(typeName) : undefined;
    if (typeof typeName === 'string' && !t) {
      throw new HttpError(400, 'invalid_request', `type: unknown job type ${JSON.stringify(typeName.slice(0, 64))}; known types: ${names.join(', ')}`);
    }
    const parsed = SubmitRequest.safeParse(body);
    if (!parsed.success) throw new HttpError(400, 'invalid_request', `${describeIssues(parsed.error)} (known types: ${names.join(', ')})`);
    if (!t) throw new HttpError(400, 'invalid_request', `type: known types: ${names.join(', ')}`);
    if (t.definition.inputKind === 'file') {
      const own = (t.definition.routes ?? []).map((r) => `${r.method} ${r.path}`).join(', ');
      throw new HttpError(400, 'invalid_request', `type: ${t.definition.name} takes a file as its input: use ${own || 'its upload route'}`);
    }
    const job = await submit(t, validInput(t, parsed.data.input, 'input'));
    return { statusCode: 202, body: { jobId: job.jobId, statusUrl: statusUrl(req, job.jobId) } };
  }

  async function getJob(req: ApiRequest): Promise<ApiResponse> {
    const jobId = req.pathParameters.jobId ?? '';
    const job = isJobId(jobId) ? await deps.repo.get(jobId) : undefined;
    if (!job) throw new HttpError(404, 'not_found', `no job ${JSON.stringify(jobId.slice(0, 64))}`);
    return { statusCode: 200, body: await view(job) };
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
      input,
      outputs,
    };
    if (job.progress) base.progress = job.progress;
    if (job.completedAt) base.completedAt = job.completedAt;
    if (job.error) base.error = job.error;
    return { ...base, ...(def?.view?.(job) as Partial<JobView> | undefined) };
  }

  return { handle, routes: Object.keys(routes) };
}

export const newJobId = (): string => randomUUID();
