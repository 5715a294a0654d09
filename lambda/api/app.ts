import { randomUUID } from 'node:crypto';
import { HttpError } from '../shared/errors';
import { sanitizeFilename } from '../shared/filename';
import { InvalidCursorError, type JobsRepo } from '../shared/jobs-repo';
import { REPORT_PREFIX, UPLOAD_PREFIX, type JobOutput, type JobRecord, type ReportMessage } from '../shared/model';
import {
  ACCEPTED_IMAGE_TYPES,
  describeIssues,
  extensionFor,
  ListJobsQuery,
  normalizeContentType,
  ReportRequest,
  UploadRequest,
} from '../shared/schemas';

/** A request as the API core sees it: already decoded from API Gateway's proxy event. */
export interface ApiRequest {
  method: string;
  /** The resource template, e.g. `/jobs/{jobId}`. */
  resource: string;
  pathParameters: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>; // lower-cased names
  body: Buffer | undefined;
  /** Base URL of the API as the client called it, ending in `/`. */
  baseUrl: string;
}

export interface ApiResponse {
  statusCode: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** Everything the API does to AWS, behind one interface (fakes in unit tests). */
export interface ApiDeps {
  repo: Pick<JobsRepo, 'create' | 'get' | 'list' | 'failQueued'>;
  presignPut(key: string, contentType: string, size: number, expiresIn: number): Promise<string>;
  presignGet(key: string, expiresIn: number, downloadName?: string): Promise<string>;
  putRaw(key: string, body: Buffer, contentType: string, jobId: string): Promise<void>;
  sendReport(message: ReportMessage): Promise<void>;
  now(): Date;
  newId(): string;
}

export interface ApiSettings {
  maxUploadBytes: number;
  directUploadMaxBytes: number;
  presignTtlSeconds: number;
  reportMaxDays: number;
}

export function createApi(deps: ApiDeps, settings: ApiSettings) {
  const routes: Record<string, (req: ApiRequest) => Promise<ApiResponse>> = {
    'POST /uploads': createUpload,
    'GET /jobs': listJobs,
    'GET /jobs/{jobId}': getJob,
    'POST /reports': createReport,
  };

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

  async function createUpload(req: ApiRequest): Promise<ApiResponse> {
    const contentType = normalizeContentType(req.headers['content-type']);
    if (contentType.startsWith('image/')) return directUpload(req, contentType);
    if (contentType !== 'application/json') {
      throw new HttpError(
        415,
        'unsupported_media_type',
        'send application/json { filename, contentType, size } for a presigned upload, or an image body (Content-Type: image/...)',
      );
    }
    const parsed = UploadRequest.safeParse(parseJson(req.body));
    if (!parsed.success) throw new HttpError(400, 'invalid_request', describeIssues(parsed.error));
    const declared = normalizeContentType(parsed.data.contentType);
    checkImageType(declared);
    if (parsed.data.size > settings.maxUploadBytes) {
      throw new HttpError(413, 'payload_too_large', `size ${parsed.data.size} is over the limit of ${settings.maxUploadBytes} bytes`);
    }
    const jobId = deps.newId();
    const filename = sanitizeFilename(parsed.data.filename, `upload.${extensionFor(declared)}`);
    const key = `${UPLOAD_PREFIX}${jobId}/${filename}`;
    await deps.repo.create({
      jobId,
      type: 'thumbnail',
      status: 'awaiting_upload',
      input: { filename, contentType: declared, bytes: parsed.data.size, key },
    });
    const uploadUrl = await deps.presignPut(key, declared, parsed.data.size, settings.presignTtlSeconds);
    return {
      statusCode: 201,
      body: {
        jobId,
        uploadUrl,
        method: 'PUT',
        headers: { 'Content-Type': declared, 'Content-Length': String(parsed.data.size) },
        expiresAt: new Date(deps.now().getTime() + settings.presignTtlSeconds * 1000).toISOString(),
        statusUrl: `${req.baseUrl}jobs/${jobId}`,
      },
    };
  }

  async function directUpload(req: ApiRequest, contentType: string): Promise<ApiResponse> {
    checkImageType(contentType);
    const body = req.body ?? Buffer.alloc(0);
    if (body.length === 0) throw new HttpError(400, 'invalid_request', 'the request body is empty: send the image bytes');
    if (body.length > settings.directUploadMaxBytes) {
      throw new HttpError(
        413,
        'payload_too_large',
        `direct uploads are limited to ${settings.directUploadMaxBytes} bytes; for larger files POST /uploads with JSON { filename, contentType, size } and PUT the file to the returned uploadUrl`,
      );
    }
    const jobId = deps.newId();
    const requested = req.query.filename ?? decodeHeader(req.headers['x-filename']);
    const filename = sanitizeFilename(requested ?? '', `upload.${extensionFor(contentType)}`);
    const key = `${UPLOAD_PREFIX}${jobId}/${filename}`;
    // The job exists before the object, so the worker always finds it.
    await deps.repo.create({ jobId, type: 'thumbnail', status: 'queued', input: { filename, contentType, bytes: body.length, key } });
    await deps.putRaw(key, body, contentType, jobId);
    return { statusCode: 202, body: { jobId, statusUrl: `${req.baseUrl}jobs/${jobId}` } };
  }

  async function getJob(req: ApiRequest): Promise<ApiResponse> {
    const jobId = req.pathParameters.jobId ?? '';
    const job = /^[0-9a-f-]{36}$/.test(jobId) ? await deps.repo.get(jobId) : undefined;
    if (!job) throw new HttpError(404, 'not_found', `no job ${JSON.stringify(jobId.slice(0, 64))}`);
    return { statusCode: 200, body: await view(job) };
  }

  async function listJobs(req: ApiRequest): Promise<ApiResponse> {
    const parsed = ListJobsQuery.safeParse(req.query);
    if (!parsed.success) throw new HttpError(400, 'invalid_request', describeIssues(parsed.error));
    try {
      const page = await deps.repo.list(parsed.data);
      return { statusCode: 200, body: { jobs: await Promise.all(page.jobs.map(view)), nextCursor: page.nextCursor } };
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new HttpError(400, 'invalid_request', err.message);
      throw err;
    }
  }

  async function createReport(req: ApiRequest): Promise<ApiResponse> {
    if (normalizeContentType(req.headers['content-type']) !== 'application/json') {
      throw new HttpError(415, 'unsupported_media_type', 'send application/json { from, to, formats? }');
    }
    const parsed = ReportRequest.safeParse(parseJson(req.body));
    if (!parsed.success) throw new HttpError(400, 'invalid_request', describeIssues(parsed.error));
    const { from, to } = parsed.data;
    if (from > to) throw new HttpError(400, 'invalid_request', `from (${from}) is after to (${to})`);
    const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
    if (days > settings.reportMaxDays) {
      throw new HttpError(400, 'invalid_request', `the range covers ${days} days; the limit is ${settings.reportMaxDays}`);
    }
    const params = { from, to, formats: parsed.data.formats ?? (['csv', 'pdf'] as ('csv' | 'pdf')[]) };
    const jobId = deps.newId();
    await deps.repo.create({ jobId, type: 'report', status: 'queued', params });
    try {
      await deps.sendReport({ jobId, params });
    } catch (err) {
      // Never leave a queued job that no message will ever run.
      await deps.repo.failQueued(jobId, { code: 'internal_error', message: 'the report could not be queued; please retry' });
      throw err;
    }
    return { statusCode: 202, body: { jobId, statusUrl: `${req.baseUrl}jobs/${jobId}` } };
  }

  async function view(job: JobRecord): Promise<Record<string, unknown>> {
    const ttl = settings.presignTtlSeconds;
    const outputs: JobOutput[] = await Promise.all(
      (job.outputs ?? []).map(async ({ key, ...o }) => ({
        ...o,
        url: await deps.presignGet(key, ttl, key.startsWith(REPORT_PREFIX) ? reportDownloadName(job, o.format) : undefined),
      })),
    );
    const base: Record<string, unknown> = {
      jobId: job.jobId,
      type: job.type,
      status: job.status,
      createdAt: job.createdAt,
      updatedAt: job.updatedAt,
      attempts: job.attempts ?? 0,
      outputs,
    };
    if (job.type === 'thumbnail') {
      const { key: _key, ...input } = job.input ?? { filename: '', key: '' };
      base.input = input;
    } else {
      base.params = job.params;
      if (job.progress) base.progress = job.progress;
    }
    if (job.completedAt) base.completedAt = job.completedAt;
    if (job.error) base.error = job.error;
    return base;
  }

  return { handle };
}

function reportDownloadName(job: JobRecord, format: string): string {
  return `offload-report-${job.params?.from}-to-${job.params?.to}.${format}`;
}

function checkImageType(contentType: string): void {
  if (!(ACCEPTED_IMAGE_TYPES as readonly string[]).includes(contentType)) {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `content type ${JSON.stringify(contentType)} is not accepted; use one of ${ACCEPTED_IMAGE_TYPES.join(', ')}`,
    );
  }
}

function parseJson(body: Buffer | undefined): unknown {
  if (!body || body.length === 0) throw new HttpError(400, 'invalid_request', 'the request body is empty');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_request', 'the request body is not valid JSON');
  }
}

function decodeHeader(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

export function errorResponse(statusCode: number, code: string, message: string): ApiResponse {
  return { statusCode, body: { error: { code, message } } };
}

export const newJobId = (): string => randomUUID();
