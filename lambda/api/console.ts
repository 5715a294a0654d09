import { HttpError } from '../shared/errors';
import type { ApiRequest, ApiResponse } from '../shared/http';
import type { QueueStats } from './console/types';

export type { QueueStats } from './console/types';

/** The console page, bundled at synth (lib/console-assets.ts): served by the API itself. */
export interface ConsoleAssets {
  html: string;
  js: string;
  css: string;
}

export interface ConsoleDeps {
  /** The origins of the storage URLs the API presigns: uploads (raw) and downloads (results). */
  storageOrigins(): Promise<{ raw: string; results: string }>;
  queueStats(): Promise<QueueStats[]>;
}

type Handler = (req: ApiRequest) => Promise<ApiResponse>;

/**
 * The console's routes:
 * - `GET /` (no key: nothing secret in it), the page, with a Content-Security-Policy that lets
 *   it load only its own script and style, call only this API, show images only from here
 *   and the results bucket, and send files only to the raw bucket;
 * - `GET /console/{file}` (no key): `app.js`, `app.css`;
 * - `GET /queues` (any API key: counts only, no job or tenant data): depth, in flight,
 *   delayed, age of the oldest message and dead letters per job type. The page and the CLI's
 *   `queues` show the same figures.
 */
export function consoleRoutes(assets: ConsoleAssets | undefined, deps: ConsoleDeps): Record<string, Handler> {
  let csp: Promise<string> | undefined;
  const policy = () =>
    (csp ??= deps.storageOrigins().then(({ raw, results }) =>
      [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        `img-src 'self' ${results}`,
        `connect-src 'self' ${raw}`,
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
      ].join('; '),
    ));
  const file = (body: string, contentType: string, extra: Record<string, string> = {}): ApiResponse => ({
    statusCode: 200,
    body: undefined,
    raw: body,
    headers: { 'Content-Type': contentType, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', ...extra },
  });
  const need = (): ConsoleAssets => {
    if (!assets) throw new HttpError(404, 'not_found', 'this API was built without its console');
    return assets;
  };
  return {
    'GET /': async () => file(need().html, 'text/html; charset=utf-8', { 'Content-Security-Policy': await policy() }),
    'GET /console/{file}': async (req) => {
      const a = need();
      const name = req.pathParameters.file;
      if (name === 'app.js') return file(a.js, 'text/javascript; charset=utf-8');
      if (name === 'app.css') return file(a.css, 'text/css; charset=utf-8');
      throw new HttpError(404, 'not_found', `no console file ${JSON.stringify(String(name).slice(0, 64))}`);
    },
    'GET /queues': async () => ({ statusCode: 200, body: { queues: await deps.queueStats() } }),
  };
}
