/** The API's request and response as its core sees them: decoded from API Gateway's proxy event by the adapter. */
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
  /** The id of the API key the request was made with (API Gateway's `requestContext.identity.apiKeyId`): the scope of Idempotency-Keys. */
  apiKeyId?: string;
  /** Milliseconds left before the function times out (waits end before it). */
  remainingMs?(): number;
}

export interface ApiResponse {
  statusCode: number;
  /** Sent as JSON, unless `raw` is given. */
  body: unknown;
  /** A body sent as it is (its Content-Type in `headers`), e.g. the console's page. */
  raw?: string;
  headers?: Record<string, string>;
}

export { HttpError } from './errors';

export function errorResponse(statusCode: number, code: string, message: string): ApiResponse {
  return { statusCode, body: { error: { code, message } } };
}
