import { describe, expect, it } from 'vitest';
import { consoleRoutes, type QueueStats } from '../../lambda/api/console';
import type { ApiRequest } from '../../lambda/shared/http';

const req = (resource: string, pathParameters: Record<string, string> = {}): ApiRequest => ({
  method: 'GET',
  resource,
  pathParameters,
  query: {},
  headers: {},
  body: undefined,
  baseUrl: 'https://api.example/v1/',
});

const stats: QueueStats[] = [{ type: 'thumbnail', visible: 3, inFlight: 1, delayed: 0, oldestAgeSeconds: null, deadLetters: 2 }];
const assets = { html: '<!doctype html><title>x</title>', js: 'console.log(1)', css: 'body{}' };
let origins = 0;
const deps = {
  storageOrigins: async () => {
    origins++;
    return { raw: 'https://raw.s3.eu-west-1.amazonaws.com', results: 'https://results.s3.eu-west-1.amazonaws.com' };
  },
  queueStats: async () => stats,
};

describe('console routes', () => {
  const routes = consoleRoutes(assets, deps);

  it('serves the page as HTML with a policy naming only this API and the two storage origins', async () => {
    const res = await routes['GET /'](req('/'));
    expect(res).toMatchObject({ statusCode: 200, raw: assets.html });
    expect(res.headers?.['Content-Type']).toBe('text/html; charset=utf-8');
    const csp = res.headers?.['Content-Security-Policy'] ?? '';
    expect(csp.split('; ')).toEqual([
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' https://results.s3.eu-west-1.amazonaws.com",
      "connect-src 'self' https://raw.s3.eu-west-1.amazonaws.com",
      "object-src 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
      "form-action 'self'",
    ]);
    // The origins are found once per environment, not per request.
    await routes['GET /'](req('/'));
    expect(origins).toBe(1);
  });

  it('serves its script and stylesheet with their types, and 404s anything else', async () => {
    expect(await routes['GET /console/{file}'](req('/console/{file}', { file: 'app.js' }))).toMatchObject({ raw: assets.js, headers: { 'Content-Type': 'text/javascript; charset=utf-8' } });
    expect(await routes['GET /console/{file}'](req('/console/{file}', { file: 'app.css' }))).toMatchObject({ raw: assets.css, headers: { 'Content-Type': 'text/css; charset=utf-8' } });
    await expect(routes['GET /console/{file}'](req('/console/{file}', { file: '../handler.js' }))).rejects.toMatchObject({ statusCode: 404, code: 'not_found' });
  });

  it('answers GET /queues with the figures of every type', async () => {
    expect(await routes['GET /queues'](req('/queues'))).toEqual({ statusCode: 200, body: { queues: stats } });
  });

  it('404s the page when the API was built without it', async () => {
    await expect(consoleRoutes(undefined, deps)['GET /'](req('/'))).rejects.toMatchObject({ statusCode: 404 });
  });
});
