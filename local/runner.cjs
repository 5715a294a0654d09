'use strict';
/**
 * One Lambda execution environment: a child process that loads a function's bundle from
 * cdk.out once (the cold start) and then runs one invocation at a time, as the parent asks
 * over IPC. Plain JavaScript so that the child starts as fast as Lambda's runtime would.
 *
 * argv: <bundle dir> <handler, e.g. index.handler>
 */
const path = require('node:path');

const [bundleDir, handlerSpec] = process.argv.slice(2);
const dot = handlerSpec.lastIndexOf('.');
const modulePath = path.join(bundleDir, handlerSpec.slice(0, dot));
const exportName = handlerSpec.slice(dot + 1);

// Test hooks (see LocalFunction.crashAfterCall and the `crash` fault): an invocation may arm
// a crash of this environment
// - after an AWS API call matching a pattern (tested against the call's X-Amz-Target header,
//   `DynamoDB_20120810.UpdateItem`, or for REST APIs such as S3 its `METHOD /path`),
// - after the nth AWS API call of the invocation, or
// - when the handler has returned, before its result is sent (its side effects all done);
// or it may make every AWS call matching a pattern fail with a network error (`failCalls`).
// The environment SIGKILLs itself the moment that response arrives (or the handler returns),
// as if the process died right there, after one line on stderr naming the point.
// Installed before the bundle loads (the SDK looks http.request up at call time).
let crash = null;
let calls = 0;
let lastCall = 'none';
function die(why) {
  require('node:fs').writeSync(2, `[runtime] environment killed ${why}\n`);
  process.kill(process.pid, 'SIGKILL');
}
for (const mod of [require('node:http'), require('node:https')]) {
  const request = mod.request;
  mod.request = function patchedRequest(...args) {
    const req = request.apply(this, args);
    if (crash !== null) {
      const call = String(req.getHeader('x-amz-target') ?? `${req.method} ${req.path}`);
      const n = ++calls;
      lastCall = `#${n} (${call})`;
      if (crash.failCalls instanceof RegExp && crash.failCalls.test(call)) {
        process.nextTick(() => req.destroy(Object.assign(new Error(`injected network failure (${call})`), { code: 'ECONNRESET' })));
      } else if ((crash.call instanceof RegExp && crash.call.test(call)) || crash.afterCall === n) {
        req.once('response', () => die(`after AWS call #${n} (${call})`));
      }
    }
    return req;
  };
}

let handler;
let initError;
const initStart = process.hrtime.bigint();
try {
  handler = require(modulePath)[exportName];
  if (typeof handler !== 'function') throw new Error(`${handlerSpec} is not a function in ${bundleDir}`);
} catch (err) {
  initError = err;
}
const initMs = Number(process.hrtime.bigint() - initStart) / 1e6;

function serializeError(err) {
  if (err instanceof Error) return { errorType: err.name, errorMessage: err.message, stack: err.stack };
  return { errorType: 'Error', errorMessage: String(err) };
}

process.on('message', async (msg) => {
  if (!msg || msg.type !== 'invoke') return;
  const { id, event, context: ctx } = msg;
  crash = msg.crash && typeof msg.crash === 'object' ? msg.crash : null;
  calls = 0;
  lastCall = 'none';
  if (initError) {
    process.send({ type: 'result', id, error: { ...serializeError(initError), errorType: 'Runtime.ImportModuleError' } });
    return;
  }
  const deadline = Date.now() + ctx.remainingMs;
  const context = {
    ...ctx,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    succeed() {},
    fail() {},
  };
  try {
    const result = await handler(event, context);
    if (crash !== null && crash.beforeReturn === true) die(`as the handler returned, before its result was sent (last AWS call ${lastCall})`);
    process.send({ type: 'result', id, result: result === undefined ? null : result });
  } catch (err) {
    console.error(JSON.stringify({ level: 'ERROR', message: 'Invoke Error', ...serializeError(err) }));
    process.send({ type: 'result', id, error: serializeError(err) });
  } finally {
    crash = null;
  }
});

// The parent owns this environment: when it is gone (however it ended), so is this process.
process.on('disconnect', () => process.exit(0));
// A terminal Ctrl-C is for the parent, which decides when environments stop.
process.on('SIGINT', () => undefined);

process.send({ type: 'ready', initMs, error: initError ? serializeError(initError) : undefined });
