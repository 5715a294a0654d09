import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';

/** `<Code>SignatureDoesNotMatch</Code><Message>...</Message>` -> "SignatureDoesNotMatch: ...". */
export function describeStorageError(status: number, body: string): string {
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  if (code) return `${status} ${code}${message ? `: ${message}` : ''}`;
  const text = body.replace(/\s+/g, ' ').trim().slice(0, 200);
  return text ? `${status} ${text}` : `HTTP ${status}`;
}

/**
 * PUTs a file to a presigned URL with exactly the given headers (the signature covers
 * Content-Type and Content-Length), streaming it from disk; onProgress gets the bytes sent
 * so far. http(s).request rather than fetch: fetch would send a stream chunked, which a
 * presigned S3 PUT refuses.
 */
export function putFile(
  url: string,
  headers: Record<string, string>,
  file: string,
  onProgress: (sent: number) => void = () => undefined,
  idleTimeoutMs = 60_000,
): Promise<void> {
  const target = new URL(url);
  const mod = target.protocol === 'https:' ? https : http;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      source.destroy();
      req.destroy();
      reject(err);
    };
    const req = mod.request(target, { method: 'PUT', headers });
    req.setTimeout(idleTimeoutMs, () => fail(new Error(`the upload stalled (no progress for ${idleTimeoutMs / 1000} s)`)));
    req.on('error', (err) => fail(new Error(`upload failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
      res.on('error', (err) => fail(err));
      res.on('end', () => {
        if (settled) return;
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          settled = true;
          resolve();
        } else {
          fail(new Error(`storage refused the upload: ${describeStorageError(status, Buffer.concat(chunks).toString('utf8'))}`));
        }
      });
    });
    const source = fs.createReadStream(file);
    let sent = 0;
    source.on('data', (chunk) => {
      sent += chunk.length;
      onProgress(sent);
    });
    source.on('error', (err) => fail(new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
    source.pipe(req);
  });
}

/** Downloads a URL into a file (via a temporary name, so a failed download leaves nothing half-written). */
export async function downloadTo(url: string, file: string, onProgress: (received: number, total?: number) => void = () => undefined): Promise<number> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`download failed: ${describeStorageError(res.status, await res.text().catch(() => ''))}`);
  const total = Number(res.headers.get('content-length')) || undefined;
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.part-${process.pid}`;
  let received = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      received += chunk.length;
      onProgress(received, total);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), count, fs.createWriteStream(tmp));
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  return received;
}
