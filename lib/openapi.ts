import * as z from 'zod/mini';
import { JOB_STATUSES, PRIORITIES } from '../lambda/shared/contract';
import type { AnyJobType } from '../lambda/shared/job-type';
import { IdempotencyKey, MAX_WAIT_SECONDS, SubmitOptions, SubmitRequest } from '../lambda/shared/schemas';

type Json = Record<string, unknown>;

/** A zod schema as JSON Schema: draft-04 for API Gateway models, OpenAPI 3.0 for the document. */
export function jsonSchema(schema: z.ZodMiniType, target: 'draft-04' | 'openapi-3.0'): Json {
  const out = z.toJSONSchema(schema, { target, unrepresentable: 'any', io: 'input' }) as Json;
  delete out.$schema;
  return out;
}

const error = { $ref: '#/components/schemas/Error' };
const errorResponses = (...codes: number[]): Json =>
  Object.fromEntries(codes.map((c) => [String(c), { description: 'error', content: { 'application/json': { schema: error } } }]));

/** The `Idempotency-Key` header every submit (POST) route takes. */
const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Makes the submit safe to retry: a repeat with the same key and the same request within 24 h gets the first 2xx response again (header Idempotent-Replayed: true) and makes no second job; the same key on a different request is a 422 idempotency_key_reused. Scoped per API key.',
  schema: jsonSchema(IdempotencyKey, 'openapi-3.0'),
};
const replayed = { 'Idempotent-Replayed': { description: '`true` when this is the remembered response of an earlier request with the same Idempotency-Key', schema: { type: 'string', enum: ['true'] } } };

/**
 * The OpenAPI 3 document of the HTTP API, from the same zod schemas the handlers validate
 * with: the platform's routes, and each registered type's input and routes. Served at
 * `GET /openapi.json` and checked into docs/openapi.json.
 */
export function openApiDocument(types: readonly AnyJobType[]): Json {
  const options = (jsonSchema(SubmitOptions, 'openapi-3.0').properties ?? {}) as Json;
  const jobSubmit = {
    oneOf: types
      .filter((t) => t.inputKind === 'json')
      .map((t) => ({
        type: 'object',
        required: ['type', 'input'],
        additionalProperties: false,
        properties: { type: { type: 'string', enum: [t.name] }, input: jsonSchema(t.input, 'openapi-3.0'), ...options },
      })),
  };
  const paths: Json = {
    '/jobs': {
      post: {
        operationId: 'SubmitJob',
        summary: 'Submit a job of any JSON-input type; 202 with its id at once',
        parameters: [idempotencyKey],
        requestBody: { required: true, content: { 'application/json': { schema: jobSubmit } } },
        responses: {
          '202': { description: 'queued', headers: replayed, content: { 'application/json': { schema: { $ref: '#/components/schemas/Accepted' } } } },
          ...errorResponses(400, 403, 409, 415, 422, 429),
        },
      },
      get: {
        operationId: 'ListJobs',
        summary: 'The jobs, newest first, by type and status, paged',
        parameters: [
          { name: 'type', in: 'query', schema: { type: 'string', enum: types.map((t) => t.name) } },
          { name: 'status', in: 'query', schema: { type: 'string', enum: [...JOB_STATUSES] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'a page',
            content: {
              'application/json': {
                schema: { type: 'object', properties: { jobs: { type: 'array', items: { $ref: '#/components/schemas/Job' } }, nextCursor: { type: 'string', nullable: true } } },
              },
            },
          },
          ...errorResponses(400, 403, 429),
        },
      },
    },
    '/jobs/{jobId}': {
      get: {
        operationId: 'GetJob',
        summary: 'One job; with waitSeconds, a long-poll: answers as soon as the job is terminal, or after that many seconds with its state',
        parameters: [
          { name: 'jobId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
          { name: 'waitSeconds', in: 'query', schema: { type: 'integer', minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0 } },
        ],
        responses: { '200': { description: 'the job', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } }, ...errorResponses(400, 403, 404, 429) },
      },
      delete: {
        operationId: 'CancelJob',
        summary:
          'Cancel a job: one not started (awaiting_upload, queued) is cancelled at once; a processing one gets cancelRequested and its worker stops it (it ends cancelled, or succeeded if the work finished first); 409 once it is finished',
        parameters: [{ name: 'jobId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
        responses: { '202': { description: 'the job after the request', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } }, ...errorResponses(403, 404, 409, 429) },
      },
    },
    '/openapi.json': { get: { operationId: 'OpenApi', summary: 'This document (no API key needed)', security: [], responses: { '200': { description: 'OpenAPI 3' } } } },
    '/': { get: { operationId: 'Console', summary: 'The web console, an HTML page (no API key needed: the person types one into it)', security: [], responses: { '200': { description: 'text/html' } } } },
    '/console/{file}': {
      get: {
        operationId: 'ConsoleFile',
        summary: "The console's script and stylesheet (no API key needed)",
        security: [],
        parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string', enum: ['app.js', 'app.css'] } }],
        responses: { '200': { description: 'text/javascript or text/css' }, ...errorResponses(404) },
      },
    },
    '/queues': {
      get: {
        operationId: 'Queues',
        summary: "Each job type's queue: messages waiting, in flight and delayed, the oldest message's age, dead letters (any API key)",
        responses: {
          '200': {
            description: 'the queues',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['queues'],
                  properties: {
                    queues: {
                      type: 'array',
                      items: {
                        type: 'object',
                        required: ['type', 'visible', 'inFlight', 'delayed', 'oldestAgeSeconds', 'deadLetters'],
                        properties: {
                          type: { type: 'string', enum: types.map((t) => t.name) },
                          visible: { type: 'integer' },
                          inFlight: { type: 'integer' },
                          delayed: { type: 'integer' },
                          oldestAgeSeconds: { type: 'number', nullable: true },
                          deadLetters: { type: 'integer' },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
          ...errorResponses(403, 429),
        },
      },
    },
  };
  for (const t of types) {
    for (const r of t.routes ?? []) {
      const content: Json = {};
      if (r.body) content['application/json'] = { schema: jsonSchema(r.body, 'openapi-3.0') };
      for (const media of r.binaryMediaTypes ?? []) content[media] = { schema: { type: 'string', format: 'binary' } };
      (paths[r.path] ??= {} as Json) as Json;
      (paths[r.path] as Json)[r.method.toLowerCase()] = {
        operationId: r.operationName,
        summary: r.summary,
        tags: [t.name],
        ...(r.method === 'POST' ? { parameters: [idempotencyKey] } : {}),
        ...(Object.keys(content).length ? { requestBody: { required: true, content } } : {}),
        responses: {
          '201': { description: 'created', headers: replayed },
          '202': { description: 'accepted', headers: replayed },
          ...errorResponses(400, 403, 413, 415, ...(r.method === 'POST' ? [409, 422] : []), 429),
        },
      };
    }
  }
  return {
    openapi: '3.0.3',
    info: { title: 'offload', version: '1', description: 'Hand slow work to queues; get a job id back at once. Every route but this document needs the header x-api-key.' },
    security: [{ apiKey: [] }],
    paths,
    components: {
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } },
      schemas: {
        Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } } },
        Accepted: { type: 'object', required: ['jobId', 'statusUrl'], properties: { jobId: { type: 'string', format: 'uuid' }, statusUrl: { type: 'string' } } },
        Job: {
          type: 'object',
          required: ['jobId', 'type', 'status', 'priority', 'createdAt', 'updatedAt', 'attempts', 'input', 'outputs'],
          properties: {
            jobId: { type: 'string', format: 'uuid' },
            type: { type: 'string', enum: types.map((t) => t.name) },
            status: { type: 'string', enum: [...JOB_STATUSES] },
            priority: { type: 'string', enum: [...PRIORITIES], description: 'the lane the job was submitted to' },
            runAfter: { type: 'string', format: 'date-time', description: 'a delayed job: when its message becomes visible (it stays queued until then)' },
            createdAt: { type: 'string', format: 'date-time' },
            updatedAt: { type: 'string', format: 'date-time' },
            startedAt: { type: 'string', format: 'date-time', description: 'when a worker first claimed the job' },
            completedAt: { type: 'string', format: 'date-time' },
            attempts: { type: 'integer' },
            input: { type: 'object', additionalProperties: true },
            outputs: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'format', 'contentType', 'bytes', 'url'],
                properties: {
                  name: { type: 'string' },
                  format: { type: 'string' },
                  contentType: { type: 'string' },
                  bytes: { type: 'integer' },
                  width: { type: 'integer' },
                  height: { type: 'integer' },
                  url: { type: 'string' },
                },
              },
            },
            progress: { type: 'object', properties: { done: { type: 'integer' }, total: { type: 'integer' } } },
            error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
            cancelRequested: { type: 'boolean', enum: [true], description: 'cancellation was asked for while the job was processing' },
          },
        },
      },
    },
  };
}

/** The API Gateway model of `POST /jobs`: the envelope only (each type's input is checked by the function, which names the field). */
export const submitModelSchema = (): Json => jsonSchema(SubmitRequest, 'draft-04');
