import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { ensureMoto, PINNED, pythonInterpreter, ToolMissingError } from './python-tools';

/** An AWS API emulator endpoint: one we started (moto) or one given by AWS_ENDPOINT_URL. */
export interface Emulator {
  endpoint: string;
  owned: boolean;
  stop(): Promise<void>;
}

/** A free TCP port on the loopback interface. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** No emulator can run here; the message is one line saying what to install. */
export class EmulatorMissingError extends ToolMissingError {}

/** Exit code of the launcher when moto's server cannot be imported. */
const NO_MOTO = 3;

/**
 * moto (5.x) hands a table's stream records to every event source mapping ever created on
 * the stream, disabled or deleted ones too: on each write it runs the function (in Docker,
 * which fails here) and then empties the shard, so GetRecords never returns a record and
 * sequence numbers restart. Local mode disables those mappings and reads the stream itself
 * (local/stream-source.ts); this makes moto honour a disabled or deleted mapping, as Lambda
 * does. If moto's internals change, moto runs unpatched.
 */
const MOTO_STREAM_MAPPING_FIX =
  'try:\n' +
  '    from moto.awslambda.models import LambdaBackend as _LB\n' +
  '    _send_ddb = _LB.send_dynamodb_items\n' +
  '    def _send_ddb_if_enabled(self, function_arn, items, source):\n' +
  '        live = [m for m in self._event_source_mappings.values() if m.function_arn == function_arn and m.event_source_arn == source and m.enabled]\n' +
  '        return _send_ddb(self, function_arn, items, source) if live else None\n' +
  '    _LB.send_dynamodb_items = _send_ddb_if_enabled\n' +
  'except Exception as e:\n' +
  '    print(f"offload: moto stream mapping fix not applied: {e}", file=sys.stderr)\n';

/**
 * moto delivers an SNS message to each subscription inside Publish, and a delivery that fails
 * (e.g. to an SQS queue deleted while still subscribed) fails the Publish itself. On AWS,
 * delivery is asynchronous: Publish succeeds, and a failed delivery is retried by SNS and then
 * dropped or dead-lettered per subscription; it never fails the publisher. Without this, one
 * deleted subscriber queue makes every later notification of the stack fail and blocks the
 * notifier's stream shard. Patched in the server process, as for the stream mappings.
 */
const MOTO_SNS_DELIVERY_FIX =
  'try:\n' +
  '    from moto.sns.models import Subscription as _Sub\n' +
  '    _deliver = _Sub.publish\n' +
  '    def _deliver_or_drop(self, *args, **kwargs):\n' +
  '        try:\n' +
  '            return _deliver(self, *args, **kwargs)\n' +
  '        except Exception as e:\n' +
  '            print(f"offload: SNS delivery to {self.endpoint} failed and was dropped (as SNS does after its retries): {e}", file=sys.stderr)\n' +
  '    _Sub.publish = _deliver_or_drop\n' +
  'except Exception as e:\n' +
  '    print(f"offload: moto SNS delivery fix not applied: {e}", file=sys.stderr)\n';

/**
 * moto's server under a watchdog: it exits when its stdin closes, i.e. when the process
 * that started it is gone, however that process ended (even SIGKILL). When moto's server
 * cannot be imported (missing, or broken) it exits with NO_MOTO (no separate probe: the import is most of
 * moto's start-up time).
 */
const MOTO_LAUNCHER =
  'import os, sys, threading\n' +
  'threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()\n' +
  'try:\n' +
  '    from moto.server import main\n' +
  'except Exception as e:\n' +
  `    sys.stderr.write('%s\\n' % e); os._exit(${NO_MOTO})\n` +
  MOTO_STREAM_MAPPING_FIX +
  MOTO_SNS_DELIVERY_FIX +
  'main(sys.argv[1:])\n';

/**
 * Starts moto's server on a free loopback port and resolves once it answers. It runs in its
 * own process group, so a Ctrl-C in the terminal reaches only local mode, which then stops
 * it after the last in-flight work.
 *
 * The interpreter is OFFLOAD_PYTHON (default python3); when it has no moto, the project's
 * venv (.offload/venv), where moto is installed when missing (see python-tools.ts).
 */
export async function startMoto(opts: { port?: number; progress?: (line: string) => void } = {}): Promise<Emulator> {
  const first = await launchMoto(pythonInterpreter(), opts.port);
  if (first !== 'no-moto') return first;
  let python: string;
  try {
    python = await ensureMoto({ progress: opts.progress });
  } catch (err) {
    if (err instanceof ToolMissingError) {
      throw new EmulatorMissingError(`${err.message} (or run LocalStack and set AWS_ENDPOINT_URL=http://localhost:4566)`);
    }
    throw err;
  }
  const second = await launchMoto(python, opts.port);
  if (second === 'no-moto') throw new EmulatorMissingError(`moto's server does not import with ${python}; install it with: pip install "${PINNED.moto}"`);
  return second;
}

async function launchMoto(python: string, wantedPort?: number): Promise<Emulator | 'no-moto'> {
  const port = wantedPort ?? (await freePort());
  const child = spawn(python, ['-c', MOTO_LAUNCHER, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
    detached: true,
  });
  let spawnError: NodeJS.ErrnoException | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const probe = `http://127.0.0.1:${port}/moto-api/`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (spawnError || child.exitCode === NO_MOTO) {
      process.removeListener('exit', killOnExit);
      return 'no-moto';
    }
    if (child.exitCode !== null) throw new Error(`moto exited with code ${child.exitCode}: ${tail}`);
    try {
      if ((await fetch(probe)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      process.removeListener('exit', killOnExit);
      child.kill('SIGKILL');
      throw new Error(`moto did not answer on port ${port} within 30 s: ${tail}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    endpoint: `http://localhost:${port}`,
    owned: true,
    stop: () =>
      new Promise<void>((resolve) => {
        process.removeListener('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** AWS_ENDPOINT_URL when set, otherwise a moto server of our own. */
export async function resolveEmulator(opts: { port?: number; progress?: (line: string) => void } = {}): Promise<Emulator> {
  const given = process.env.AWS_ENDPOINT_URL;
  if (given) return { endpoint: given.replace(/\/$/, ''), owned: false, stop: async () => undefined };
  return startMoto(opts);
}
