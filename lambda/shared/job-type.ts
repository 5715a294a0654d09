/**
 * What a job type is, as the platform's functions see it: a definition object, made once in
 * the type's own folder (job-types/<name>/definition.ts). It holds no CDK and no worker code,
 * so the API bundle can carry every type's definition, and the CDK app can read the same
 * object for the type's routes, models, settings and queue.
 */
import type * as z from 'zod/mini';
import type { Priority } from './contract';
import type { ApiRequest, ApiResponse } from './http';
import type { JobRecord, StoredOutput } from './model';
import type { SubmitOptions } from './schemas';

/** Settings every type has: its worker, its queue's event source, its retries. */
export interface CoreSettings {
  /** Worker timeout; the queue's visibility timeout is 6 x this (AWS's advice for Lambda event sources). */
  timeoutSeconds: number;
  memoryMb: number;
  batchSize: number;
  batchingWindowSeconds: number;
  /** Most concurrent invocations the normal lane's event source starts (2..1000). */
  maxConcurrency: number;
  /** Most concurrent invocations the high lane's event source starts (2..1000; default 2 x maxConcurrency, at most 1000). */
  highMaxConcurrency: number;
  /** Receives before a message moves to the type's DLQ. */
  maxReceiveCount: number;
  /** Transient failures come back after base x 2^(attempt-1) seconds, jittered, at most the cap. */
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  /** How long a message may wait in the queue (SQS retention): past it a job still `queued` is failed by the sweeper. */
  maxQueuedSeconds: number;
}

export const CORE_SETTING_BOUNDS: Readonly<Record<keyof CoreSettings, readonly [number, number]>> = {
  timeoutSeconds: [1, 900],
  memoryMb: [128, 10240],
  batchSize: [1, 10000],
  batchingWindowSeconds: [0, 300],
  maxConcurrency: [2, 1000],
  highMaxConcurrency: [2, 1000],
  maxReceiveCount: [1, 1000],
  retryBaseSeconds: [0, 43200],
  retryMaxSeconds: [0, 43200],
  maxQueuedSeconds: [60, 1209600],
};

/** The high lane's concurrency when a type names none: twice the normal lane's (so it is served first under load). */
export const defaultHighMaxConcurrency = (maxConcurrency: number): number => Math.min(CORE_SETTING_BOUNDS.highMaxConcurrency[1], 2 * maxConcurrency);

/** The platform's defaults for a type that names none of its own. */
export const DEFAULT_CORE_SETTINGS: Readonly<CoreSettings> = {
  timeoutSeconds: 30,
  memoryMb: 512,
  batchSize: 5,
  batchingWindowSeconds: 0,
  maxConcurrency: 10,
  highMaxConcurrency: defaultHighMaxConcurrency(10),
  maxReceiveCount: 3,
  retryBaseSeconds: 2,
  retryMaxSeconds: 300,
  maxQueuedSeconds: 4 * 86400,
};

/** One job a queue message stands for. */
export interface MessageJob {
  jobId: string;
  /** Facts to record on the job when it is claimed (e.g. an upload's size from the S3 event). */
  claimInput?: Record<string, unknown>;
  /** When set, the job is created (queued, with this input) if it does not exist yet: work that arrived without the API. */
  createInput?: Record<string, unknown>;
  /** Anything else the worker needs from the message (e.g. the bucket of an S3 event). */
  data?: Record<string, unknown>;
  /** The lane of a job created from the message (`createInput`), e.g. from an upload key's prefix. */
  priority?: Priority;
}

/** What a type's own routes may do: the platform's side effects, behind one small port. */
export interface TypeRouteContext<Settings> {
  settings: Settings;
  presignTtlSeconds: number;
  newId(): string;
  now(): Date;
  /**
   * Creates a `queued` job with this input and sends its message to the type's queue of the
   * options' priority, delayed by their delaySeconds (JSON-input types). Split the options
   * from the body with `splitSubmitOptions`.
   */
  submit(input: Record<string, unknown>, options?: SubmitOptions): Promise<JobRecord>;
  /** Creates a job without sending anything (file-input types: the upload's S3 event is the message). */
  /** `sweepAfterMs`: how long the job may stay as it is before the sweeper fails it (default for `queued`: the type's maxQueuedSeconds). */
  create(job: { jobId: string; status: 'awaiting_upload' | 'queued'; input: Record<string, unknown>; priority?: Priority; sweepAfterMs?: number }): Promise<void>;
  /** Fails a `queued` job that nothing will run (e.g. its upload could not be stored). */
  failQueued(jobId: string, error: { code: string; message: string }): Promise<void>;
  presignPut(key: string, contentType: string, size: number, expiresIn: number): Promise<string>;
  putRaw(key: string, body: Buffer, contentType: string, jobId: string): Promise<void>;
  statusUrl(req: ApiRequest, jobId: string): string;
}

/** A route a type adds to the API (e.g. `POST /uploads`), with the JSON body schema API Gateway validates. */
export interface TypeRoute<Settings> {
  method: 'POST' | 'PUT' | 'GET';
  /** Resource path, e.g. `/uploads`. */
  path: string;
  operationName: string;
  summary: string;
  /** JSON body schema: the source of the API Gateway model and the OpenAPI document (omit for non-JSON bodies). */
  body?: z.ZodMiniType;
  /** Binary media types the route takes besides JSON (e.g. `image/*`). */
  binaryMediaTypes?: string[];
  handle(req: ApiRequest, ctx: TypeRouteContext<Settings>): Promise<ApiResponse>;
}

export interface JobTypeDefinition<Input extends Record<string, unknown> = Record<string, unknown>, Settings extends Record<string, unknown> = Record<string, unknown>> {
  /** `POST /jobs {"type": name}`; also the root of its queue, output and setting names. */
  name: string;
  description: string;
  /**
   * `json`: submitted with `POST /jobs` (and any routes of its own) and queued by the platform.
   * `file`: the input is an uploaded file; `POST /jobs` refuses it and names the type's own routes.
   */
  inputKind: 'json' | 'file';
  /** The input schema (zod/mini, strict): validated by the API, the API Gateway model of `POST /jobs`, the OpenAPI document. */
  input: z.ZodMiniType<Input>;
  /** Checks beyond the schema that need the settings (e.g. a longest range); returns a message for a 400. */
  check?(input: Input, settings: Settings): string | undefined;
  /** The type's own settings: defaults, and the schema that checks them at synth (values from context arrive as strings). */
  settings: { defaults: Settings; schema: z.ZodMiniType<Settings> };
  /** The type's own defaults for the core settings (the platform's where not given). */
  core?: Partial<CoreSettings>;
  /** Input fields the job view leaves out (e.g. an S3 key). */
  hiddenInputKeys?: string[];
  /** Extra fields of the job view (e.g. a legacy alias). */
  view?(job: JobRecord): Record<string, unknown>;
  /** `Content-Disposition` file name of an output's download link. */
  downloadName?(job: JobRecord, output: StoredOutput): string | undefined;
  /** Where the type's outputs go in the results bucket (default `<name>/`); each job under `<prefix><jobId>/`. */
  resultsPrefix?: string;
  /** The jobs a queue message stands for; throws for a message that is not one of the type's (a poison message). Default: `{ jobId }` JSON. */
  messageJobs?(body: string): MessageJob[];
  /** Routes of the type's own, beside `POST /jobs`. */
  routes?: TypeRoute<Settings>[];
  /** Permanent error codes the type's worker may end a job with (documentation). */
  errorCodes?: string[];
}

/** Identity with inference: `export const definition = defineJobType({...})`. */
export function defineJobType<Input extends Record<string, unknown>, Settings extends Record<string, unknown>>(
  def: JobTypeDefinition<Input, Settings>,
): JobTypeDefinition<Input, Settings> {
  return def;
}

/** A definition of any input and settings type: what registries hold. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJobType = JobTypeDefinition<any, any>;

export const resultsPrefixOf = (def: Pick<AnyJobType, 'name' | 'resultsPrefix'>): string => def.resultsPrefix ?? `${def.name}/`;

/** The settings the stack resolved for this type, checked by the type's own schema. */
export function parseSettings<Settings extends Record<string, unknown>>(
  definition: Pick<JobTypeDefinition<Record<string, unknown>, Settings>, 'name' | 'settings'>,
  raw: Record<string, unknown>,
): Settings & CoreSettings {
  const own = definition.settings.schema.safeParse(pick(raw, Object.keys(definition.settings.defaults)));
  if (!own.success) throw new Error(`invalid ${definition.name} settings: ${own.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { ...(raw as unknown as CoreSettings), ...own.data };
}

const pick = (o: Record<string, unknown>, keys: string[]): Record<string, unknown> =>
  Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));

