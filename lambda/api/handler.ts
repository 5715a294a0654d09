import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { docClient, s3Client, sqsClient } from '../shared/clients';
import { BaseEnv, int, json, parseEnv, str } from '../shared/env';
import { parseSettings, type AnyJobType, type CoreSettings } from '../shared/job-type';
import { JobsRepo } from '../shared/jobs-repo';

import { createApi, errorResponse, newJobId, type ApiRequest, type ApiResponse } from './app';
import { consoleRoutes, type ConsoleAssets } from './console';
import { queueStats } from './queue-stats';

/** What the API function reads from its environment. */
export const ApiEnv = z.extend(BaseEnv, {
  RAW_BUCKET: str(),
  RESULTS_BUCKET: str(),
  PRESIGN_TTL_SECONDS: int(),
  CORS_ORIGINS: str(),
  /** Per registered type: its queues (normal and high lane), its DLQ and its resolved settings. */
  JOB_TYPES: json(
    z.record(z.string(), z.object({ queueUrl: z.string(), highQueueUrl: z.string(), dlqUrl: z.string(), settings: z.record(z.string(), z.unknown()) })),
  ),
});

/**
 * API Gateway (REST, Lambda proxy) adapter over the API core, for the types it is built
 * with (the stack generates the entry that lists them). Any error the core did not turn
 * into a 4xx is a server fault: logged with the request id, answered 500 with a JSON body.
 */
export function createApiHandler(definitions: readonly AnyJobType[], openapi?: unknown, consoleAssets?: ConsoleAssets) {
  const env = parseEnv(ApiEnv);
  const logger = new Logger({ serviceName: 'offload-api' });
  const corsOrigins = env.CORS_ORIGINS.split(',').map((o) => o.trim());
  const repo = new JobsRepo(docClient(), env.JOBS_TABLE, env.JOB_TTL_DAYS);
  const types = definitions.map((definition) => {
    const given = env.JOB_TYPES[definition.name];
    if (!given) throw new Error(`invalid function environment: JOB_TYPES has no ${definition.name}`);
    return {
      definition,
      queueUrls: { normal: given.queueUrl, high: given.highQueueUrl },
      dlqUrl: given.dlqUrl,
      settings: parseSettings(definition, given.settings) as CoreSettings & Record<string, unknown>,
    };
  });
  const queueUrls = new Map(types.map((t) => [t.definition.name, t.queueUrls]));
  const presignPut = (key: string, contentType: string, size: number, expiresIn: number) =>
    getSignedUrl(
      s3Client(),
      // If-None-Match: * is signed into the URL: the upload cannot overwrite an object that exists (e.g. after its thumbnails were made).
      new PutObjectCommand({ Bucket: env.RAW_BUCKET, Key: key, ContentType: contentType, ContentLength: size, IfNoneMatch: '*' }),
      { expiresIn, signableHeaders: new Set(['content-type', 'content-length', 'if-none-match']) },
    );
  const presignGet = (key: string, expiresIn: number, downloadName?: string) =>
    getSignedUrl(
      s3Client(),
      new GetObjectCommand({
        Bucket: env.RESULTS_BUCKET,
        Key: key,
        ResponseContentDisposition: downloadName ? `attachment; filename="${downloadName}"` : undefined,
      }),
      { expiresIn },
    );
  const extraRoutes = consoleRoutes(consoleAssets, {
    // Where presigned URLs point, whatever the endpoint (AWS's virtual-hosted buckets, or an emulator).
    storageOrigins: async () => ({
      raw: new URL(await presignPut('console-origin-probe', 'application/octet-stream', 1, 60)).origin,
      results: new URL(await presignGet('console-origin-probe', 60)).origin,
    }),
    queueStats: () =>
      queueStats(
        types.map((t) => ({ type: t.definition.name, queueUrl: t.queueUrls.normal, highQueueUrl: t.queueUrls.high, dlqUrl: t.dlqUrl })),
        (error) => logger.warn('oldest-message ages unavailable from CloudWatch; answered without them', { error: error as Error }),
      ),
  });

  const api = createApi(
    {
      repo,
      presignPut,
      presignGet,
      putRaw: async (key, body, contentType, jobId) => {
        await s3Client().send(
          new PutObjectCommand({ Bucket: env.RAW_BUCKET, Key: key, Body: body, ContentType: contentType, Metadata: { 'job-id': jobId } }),
        );
      },
      enqueue: async (type, message, { priority, delaySeconds }) => {
        await sqsClient().send(
          new SendMessageCommand({
            QueueUrl: queueUrls.get(type)![priority],
            ...(delaySeconds > 0 ? { DelaySeconds: delaySeconds } : {}),
            MessageBody: JSON.stringify(message),
            // The lane travels with the message: a redrive that moves dead letters itself sends it back there.
            MessageAttributes: { jobId: { DataType: 'String', StringValue: message.jobId }, priority: { DataType: 'String', StringValue: priority } },
          }),
        );
      },
      now: () => new Date(),
      newId: newJobId,
    },
    { presignTtlSeconds: env.PRESIGN_TTL_SECONDS, openapi, extraRoutes },
    types,
  );

  return async (event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> => {
    logger.addContext(context);
    const headers = lowerCaseHeaders(event.headers);
    let response: ApiResponse;
    try {
      response = await api.handle(toRequest(event, headers, context));
    } catch (err) {
      logger.error('request failed', { error: err as Error, path: event.path, method: event.httpMethod });
      response = errorResponse(500, 'internal_error', `internal error (request ${context.awsRequestId})`);
    }
    if (response.statusCode >= 400) {
      logger.info('request refused', { status: response.statusCode, path: event.path, method: event.httpMethod, body: response.body });
    }
    return {
      statusCode: response.statusCode,
      headers: {
        'Content-Type': 'application/json',
        'Cache-Control': 'no-store',
        ...corsHeaders(corsOrigins, headers.origin),
        ...response.headers,
      },
      body: response.raw ?? (response.body === undefined ? '' : JSON.stringify(response.body)),
    };
  };
}

function toRequest(event: APIGatewayProxyEvent, headers: Record<string, string>, context: Context): ApiRequest {
  const body =
    event.body === null || event.body === undefined
      ? undefined
      : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  // Null-prototype maps: a parameter named __proto__ or constructor is data, not a member.
  const query: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) if (v !== undefined) query[k] = v;
  const pathParameters: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(event.pathParameters ?? {})) if (v !== undefined) pathParameters[k] = v;
  return {
    method: event.httpMethod,
    resource: event.resource,
    pathParameters,
    query,
    headers,
    body,
    baseUrl: baseUrl(event, headers),
    apiKeyId: event.requestContext?.identity?.apiKeyId ?? undefined,
    remainingMs: () => context.getRemainingTimeInMillis(),
  };
}

/**
 * The API's base URL as the client called it: scheme and host from the request, plus the
 * stage prefix (requestContext.path is `/v1/uploads` when event.path is `/uploads`).
 */
function baseUrl(event: APIGatewayProxyEvent, headers: Record<string, string>): string {
  const proto = headers['x-forwarded-proto'] ?? 'https';
  const host = headers.host ?? event.requestContext?.domainName;
  if (!host) return '/';
  const full = event.requestContext?.path ?? event.path;
  const prefix = full.endsWith(event.path) ? full.slice(0, full.length - event.path.length) : '';
  return `${proto}://${host}${prefix}/`;
}

function lowerCaseHeaders(headers: APIGatewayProxyEvent['headers']): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(headers ?? {})) if (v !== undefined) out[k.toLowerCase()] = v;
  return out;
}

/** A browser script may read these response headers besides the safelisted ones. */
const EXPOSED_HEADERS = 'Idempotent-Replayed';

function corsHeaders(corsOrigins: string[], origin: string | undefined): Record<string, string> {
  if (corsOrigins.includes('*')) return { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': EXPOSED_HEADERS };
  if (origin && corsOrigins.includes(origin)) return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Expose-Headers': EXPOSED_HEADERS, Vary: 'Origin' };
  return {};
}
