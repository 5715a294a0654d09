import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalFunction } from '../../local/function-pool';

/**
 * The local runtime's crash hook (LocalFunction.crashAfterCall) on a tiny bundle that makes
 * "AWS API calls" to a loopback server standing in for the emulator (JSON-protocol calls
 * named by their X-Amz-Target header, REST calls by method and path): the environment dies
 * right after the chosen call took effect, once.
 */
let server: http.Server;
let url: string;
/** Calls the server received, in order. */
const received: string[] = [];
let fn: LocalFunction;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    received.push(String(req.headers['x-amz-target'] ?? `${req.method} ${req.url}`));
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-fn-'));
  fs.writeFileSync(
    path.join(dir, 'index.js'),
    `const http = require('http');
// 'Svc.Op' is a JSON-protocol call (POST with X-Amz-Target); 'PUT /key' a REST call.
const call = (url, target) => new Promise((resolve, reject) => {
  const [method, path] = target.split(' ');
  const opts = path ? { method, path } : { method: 'POST', headers: { 'x-amz-target': target } };
  const req = http.request(url, opts, (res) => { res.resume(); res.on('end', resolve); });
  req.on('error', reject);
  req.end('{}');
});
exports.handler = async (e) => {
  for (const target of e.targets) await call(e.url, target);
  return { pid: process.pid };
};
`,
  );
  fn = new LocalFunction(
    { label: 'calls', functionName: 'calls', functionArn: 'arn:aws:lambda:us-east-1:1:function:calls', bundleDir: dir, handler: 'index.handler', timeoutSeconds: 30, memoryMb: 128, environment: {} },
    {},
    () => undefined,
  );
});

afterAll(async () => {
  await fn?.stop();
  await new Promise((r) => server.close(r));
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('LocalFunction.crashAfterCall', () => {
  it('kills the environment right after the chosen call took effect, once; invocations without the call leave it armed', async () => {
    const crashed = fn.crashAfterCall(/^Svc\.Claim$/);
    // No such call in this invocation: it runs to the end and the hook stays armed.
    received.length = 0;
    const first = await fn.invoke({ url, targets: ['Svc.Read'] });
    expect(first.ok).toBe(true);
    expect(received).toEqual(['Svc.Read']);

    received.length = 0;
    const second = await fn.invoke({ url, targets: ['Svc.Read', 'Svc.Claim', 'Svc.Write'] });
    expect(second).toMatchObject({ ok: false, kind: 'crash', error: { errorType: 'Runtime.ExitError', errorMessage: expect.stringContaining('SIGKILL') } });
    // The chosen call reached the server; nothing after it ran.
    expect(received).toEqual(['Svc.Read', 'Svc.Claim']);
    const { pid } = await crashed;
    expect(pid).toBe((first as { result: { pid: number } }).result.pid);
    expect(alive(pid)).toBe(false);

    // Once: the next invocation (a fresh environment) makes the same calls and finishes.
    received.length = 0;
    const third = await fn.invoke({ url, targets: ['Svc.Read', 'Svc.Claim', 'Svc.Write'] });
    expect(third.ok).toBe(true);
    expect(received).toEqual(['Svc.Read', 'Svc.Claim', 'Svc.Write']);
    expect((third as { result: { pid: number } }).result.pid).not.toBe(pid);
  });

  it('matches REST calls by method and path', async () => {
    const crashed = fn.crashAfterCall(/^PUT \/results\//);
    received.length = 0;
    const out = await fn.invoke({ url, targets: ['GET /uploads/a.jpg', 'PUT /results/a/small.jpg', 'PUT /results/a/large.jpg'] });
    expect(out).toMatchObject({ ok: false, kind: 'crash' });
    expect(received).toEqual(['GET /uploads/a.jpg', 'PUT /results/a/small.jpg']);
    await crashed;
  });

  it('refuses a second crash while one is armed; a cancelled one does not fire', async () => {
    void fn.crashAfterCall(/^Svc\.Claim$/);
    expect(() => fn.crashAfterCall(/^Svc\.Other$/)).toThrow(/already armed/);
    fn.cancelCrash();
    received.length = 0;
    const out = await fn.invoke({ url, targets: ['Svc.Claim', 'Svc.Write'] });
    expect(out.ok).toBe(true);
    expect(received).toEqual(['Svc.Claim', 'Svc.Write']);
  });
});
