import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { docClient, s3Client, sqsClient } from '../shared/clients';
import { intEnv, requireEnv } from '../shared/env';
import { JobsRepo } from '../shared/jobs-repo';
import { createApi, errorResponse, newJobId, type ApiRequest, type ApiResponse } from './app';

/**
 * API Gateway (REST, Lambda proxy) adapter: decodes the event, calls the API core, encodes
 * the response. Any error the core did not turn into a 4xx is a server fault: logged with
 * the request id, answered 500 with a JSON body.
 */
const logger = new Logger({ serviceName: 'offload-api' });
const table = requireEnv('JOBS_TABLE');
const rawBucket = requireEnv('RAW_BUCKET');
const resultsBucket = requireEnv('RESULTS_BUCKET');
const reportQueueUrl = requireEnv('REPORT_QUEUE_URL');
const corsOrigins = (process.env.CORS_ORIGINS ?? '*').split(',').map((o) => o.trim());
const repo = new JobsRepo(docClient(), table, requireEnv('JOBS_INDEX'), intEnv('JOB_TTL_DAYS', 90));

const api = createApi(
  {
    repo,
    presignPut: (key, contentType, size, expiresIn) =>
      getSignedUrl(
        s3Client(),
        new PutObjectCommand({ Bucket: rawBucket, Key: key, ContentType: contentType, ContentLength: size }),
        { expiresIn, signableHeaders: new Set(['content-type', 'content-length']) },
      ),
    presignGet: (key, expiresIn, downloadName) =>
      getSignedUrl(
        s3Client(),
        new GetObjectCommand({
          Bucket: resultsBucket,
          Key: key,
          ResponseContentDisposition: downloadName ? `attachment; filename="${downloadName}"` : undefined,
        }),
        { expiresIn },
      ),
    putRaw: async (key, body, contentType, jobId) => {
      await s3Client().send(
        new PutObjectCommand({ Bucket: rawBucket, Key: key, Body: body, ContentType: contentType, Metadata: { 'job-id': jobId } }),
      );
    },
    sendReport: async (message) => {
      await sqsClient().send(
        new SendMessageCommand({
          QueueUrl: reportQueueUrl,
          MessageBody: JSON.stringify(message),
          MessageAttributes: { jobId: { DataType: 'String', StringValue: message.jobId } },
        }),
      );
    },
    now: () => new Date(),
    newId: newJobId,
  },
  {
    maxUploadBytes: intEnv('MAX_UPLOAD_BYTES', 25 * 1024 * 1024),
    directUploadMaxBytes: intEnv('DIRECT_UPLOAD_MAX_BYTES', 4 * 1024 * 1024),
    presignTtlSeconds: intEnv('PRESIGN_TTL_SECONDS', 900),
    reportMaxDays: intEnv('REPORT_MAX_DAYS', 366),
  },
);

export const handler = async (event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> => {
  logger.addContext(context);
  const headers = lowerCaseHeaders(event.headers);
  let response: ApiResponse;
  try {
    response = await api.handle(toRequest(event, headers));
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
      ...corsHeaders(headers.origin),
      ...response.headers,
    },
    body: response.body === undefined ? '' : JSON.stringify(response.body),
  };
};

function toRequest(event: APIGatewayProxyEvent, headers: Record<string, string>): ApiRequest {
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

function corsHeaders(origin: string | undefined): Record<string, string> {
  if (corsOrigins.includes('*')) return { 'Access-Control-Allow-Origin': '*' };
  if (origin && corsOrigins.includes(origin)) return { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' };
  return {};
}
