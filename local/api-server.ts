import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { InvokeOutcome } from './function-pool';
import type { ApiRoute, ApiTopology, GatewayResponse } from './topology';

/** API Gateway's payload limit; Lambda's request payload limit. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;
const MAX_EVENT_BYTES = 6 * 1024 * 1024;

export type InvokeByArn = (functionArn: string, event: unknown) => Promise<InvokeOutcome>;

/**
 * The REST API served as API Gateway's Lambda proxy integration would serve it: routes and
 * API-key requirements from the deployed API, the v1 proxy event, binary media types as
 * base64, the usage plan's key checked, and the stack's own gateway responses for the
 * errors the gateway itself makes (unknown route, bad key, too large, integration failure).
 *
 * Differences from AWS, on purpose: the API is served at the root (no `/v1` stage prefix);
 * request models are not validated here (the function validates every body itself, with the
 * same rules); throttling and quotas are not enforced.
 */
export class LocalApiServer {
  private server?: Server;
  url = '';

  constructor(
    private readonly api: ApiTopology,
    private readonly invoke: InvokeByArn,
    private readonly log: (line: string) => void,
  ) {}

  async listen(port: number, host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        this.log(`[api-gateway] ${(err as Error).stack}`);
        if (!res.headersSent) this.gatewayError(res, 'DEFAULT_5XX', 500, 'Internal server error', req);
      });
    });
    // Longer than any client's idle keep-alive (undici's is 4 s): a server that closes an idle
    // connection just as a loaded client reuses it answers ECONNRESET (as ALB's 60 s guards against).
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    const addr = this.server.address() as { port: number };
    this.url = `http://${host}:${addr.port}/`;
    return this.url;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const method = (req.method ?? 'GET').toUpperCase();
    const match = this.match(url.pathname, method);
    if (!match) {
      await drain(req);
      return this.gatewayError(res, 'MISSING_AUTHENTICATION_TOKEN', 403, 'Missing Authentication Token', req, url.pathname);
    }
    const { route, params } = match;
    if (route.apiKeyRequired && req.headers['x-api-key'] !== this.api.apiKey) {
      await drain(req);
      return this.gatewayError(res, 'INVALID_API_KEY', 403, 'Forbidden', req, url.pathname);
    }
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === undefined) return this.gatewayError(res, 'REQUEST_TOO_LARGE', 413, 'Request Too Long', req, url.pathname);

    const event = this.toEvent(req, url, route, params, body);
    if (JSON.stringify(event).length > MAX_EVENT_BYTES) {
      return this.gatewayError(res, 'REQUEST_TOO_LARGE', 413, 'Request payload exceeds the Lambda limit of 6 MB', req, url.pathname);
    }
    const outcome = await this.invoke(route.functionArn, event);
    if (!outcome.ok) {
      // A function error or timeout (functions time out before API Gateway's 29 s) is a 502.
      return this.gatewayError(res, 'DEFAULT_5XX', 502, 'Internal server error', req, url.pathname);
    }
    const result = outcome.result as { statusCode?: number; headers?: Record<string, unknown>; multiValueHeaders?: Record<string, unknown[]>; body?: string; isBase64Encoded?: boolean } | null;
    if (!result || typeof result !== 'object' || typeof result.statusCode !== 'number') {
      this.log('[api-gateway] malformed Lambda proxy response');
      return this.gatewayError(res, 'DEFAULT_5XX', 502, 'Internal server error', req, url.pathname);
    }
    for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, String(v));
    for (const [k, v] of Object.entries(result.multiValueHeaders ?? {})) res.setHeader(k, v.map(String));
    res.setHeader('x-amzn-requestid', event.requestContext.requestId);
    res.statusCode = result.statusCode;
    res.end(result.body === undefined || result.body === null ? '' : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8'));
  }

  private match(pathname: string, method: string): { route: ApiRoute; params: Record<string, string> } | undefined {
    // An unknown method on a known path is answered like an unknown path, as API Gateway does.
    const parts = pathname.split('/').filter(Boolean);
    for (const route of this.api.routes) {
      const want = route.path.split('/').filter(Boolean);
      if (want.length !== parts.length) continue;
      const params: Record<string, string> = Object.create(null);
      let ok = true;
      want.forEach((seg, i) => {
        const p = /^\{(.+)\}$/.exec(seg);
        if (p) params[p[1]] = safeDecode(parts[i]);
        else if (seg !== parts[i]) ok = false;
      });
      if (!ok) continue;
      if (route.method === method || route.method === 'ANY') return { route, params };
    }
    return undefined;
  }

  private toEvent(req: IncomingMessage, url: URL, route: ApiRoute, params: Record<string, string>, body: Buffer): APIGatewayProxyEvent {
    const headers: Record<string, string> = Object.create(null);
    const multiValueHeaders: Record<string, string[]> = Object.create(null);
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const [k, v] = [req.rawHeaders[i], req.rawHeaders[i + 1]];
      headers[k] = v;
      (multiValueHeaders[k] ??= []).push(v);
    }
    headers['X-Forwarded-Proto'] = 'http';
    multiValueHeaders['X-Forwarded-Proto'] = ['http'];
    const query: Record<string, string> = Object.create(null);
    const multiQuery: Record<string, string[]> = Object.create(null);
    for (const [k, v] of url.searchParams) {
      query[k] = v;
      (multiQuery[k] ??= []).push(v);
    }
    const contentType = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const binary = this.api.binaryMediaTypes.some((t) => mediaTypeMatches(t, contentType));
    const requestId = randomUUID();
    return {
      resource: route.path,
      path: url.pathname,
      httpMethod: route.method,
      headers,
      multiValueHeaders,
      queryStringParameters: Object.keys(query).length ? query : null,
      multiValueQueryStringParameters: Object.keys(multiQuery).length ? multiQuery : null,
      pathParameters: Object.keys(params).length ? params : null,
      stageVariables: null,
      body: body.length === 0 ? null : binary ? body.toString('base64') : body.toString('utf8'),
      isBase64Encoded: binary && body.length > 0,
      requestContext: {
        accountId: 'local',
        apiId: this.api.restApiId,
        authorizer: null,
        domainName: String(req.headers.host ?? '127.0.0.1'),
        httpMethod: route.method,
        identity: {
          apiKey: (req.headers['x-api-key'] as string | undefined) ?? null,
          apiKeyId: route.apiKeyRequired ? this.api.apiKeyId : null,
          sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
          userAgent: (req.headers['user-agent'] as string | undefined) ?? null,
        } as APIGatewayProxyEvent['requestContext']['identity'],
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        requestId,
        requestTimeEpoch: Date.now(),
        resourceId: route.path,
        resourcePath: route.path,
        stage: this.api.stage,
      },
    } as APIGatewayProxyEvent;
  }

  /** Renders one of the stack's gateway responses (falling back to DEFAULT_4XX/5XX). */
  private gatewayError(res: ServerResponse, type: string, status: number, message: string, req: IncomingMessage, path = ''): void {
    const fallback = status >= 500 ? 'DEFAULT_5XX' : 'DEFAULT_4XX';
    const gr: GatewayResponse | undefined = this.api.gatewayResponses[type] ?? this.api.gatewayResponses[fallback];
    const body = gr?.template
      ? gr.template
          .replace(/\$context\.error\.messageString/g, JSON.stringify(message))
          .replace(/\$context\.error\.validationErrorString/g, message.replace(/"/g, '\\"'))
          .replace(/\$context\.error\.responseType/g, type)
          .replace(/\$context\.httpMethod/g, req.method ?? '')
          .replace(/\$context\.path/g, path)
      : JSON.stringify({ message });
    res.statusCode = Number(gr?.statusCode ?? status);
    res.setHeader('content-type', 'application/json');
    for (const [k, v] of Object.entries(gr?.headers ?? {})) res.setHeader(k, v);
    res.setHeader('x-amzn-errortype', type);
    res.end(body);
  }
}

function mediaTypeMatches(pattern: string, type: string): boolean {
  if (!type) return false;
  if (pattern === '*/*') return true;
  const [pt, ps] = pattern.toLowerCase().split('/');
  const [t, s] = type.split('/');
  return pt === t && (ps === '*' || ps === s);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Reads the body; undefined when it is over the limit (the rest is drained). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) over = true;
    if (!over) chunks.push(chunk as Buffer);
  }
  return over ? undefined : Buffer.concat(chunks);
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) {
    // discard
  }
}
