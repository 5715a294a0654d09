import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where the shared instance writes its state file once it is ready (see sharedInstance()). */
    sharedStateFile: string;
    /** Written instead when the shared instance could not start: the reason and its log's tail. */
    sharedFailedFile: string;
    localLog: string;
    /** A directory for the shared instance's reader-writer lock (see useSharedInstance()). */
    sharedLockDir: string;
  }
}

/**
 * Starts the shared local-mode instance for the e2e project, the way a developer does
 * (`npm start`, here with a free port and its own state file), and stops it after the last
 * test. It does not wait for it: vitest runs every project's global setup before any test
 * file, so waiting here would hold back the whole run (unit, infra, integration, and the e2e
 * files that start instances of their own) for the ~20 s of synth and deploy. The files that
 * use it wait for its state file (sharedInstance() in client.ts).
 *
 * Short worker timeouts keep the derived visibility timeouts (6x) short, so a retry finishes
 * within the tests' time.
 */
export const TEST_CONTEXT = {
  thumbnailTimeoutSeconds: '5', // visibility 30 s
  reportTimeoutSeconds: '20', // visibility 120 s
  thumbnailMaxConcurrency: '4',
  sweepIntervalMinutes: '1',
  // The built-in types and the test-only wordcount type (plugin-type.test.ts): a registry of
  // its own, as a user composes one.
  jobTypesModule: 'test/fixtures/job-types/index.ts',
};

export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  const root = path.resolve(__dirname, '..', '..');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-e2e-'));
  const stateFile = path.join(dir, 'local.json');
  const failedFile = path.join(dir, 'failed');
  const logFile = path.join(dir, 'local.log');
  const lockDir = path.join(dir, 'lock');
  fs.mkdirSync(lockDir);
  const log = fs.openSync(logFile, 'a');
  const args = ['--import', 'tsx', 'local/main.ts', '--port', '0', '--state-file', stateFile];
  for (const [k, v] of Object.entries(TEST_CONTEXT)) args.push('-c', `${k}=${v}`);
  const env = { ...process.env };
  delete env.AWS_ENDPOINT_URL; // always a fresh emulator of our own
  const child: ChildProcess = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', log, log, 'ipc'] });
  let stopping = false;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('exit', (code, signal) => {
    if (fs.existsSync(stateFile) || stopping) return;
    const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
    fs.writeFileSync(failedFile, `local mode exited before it was ready (code ${code}, signal ${signal}); log ${logFile}:\n${tail}\n`);
  });

  provide('sharedStateFile', stateFile);
  provide('sharedFailedFile', failedFile);
  provide('localLog', logFile);
  provide('sharedLockDir', lockDir);

  return async () => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    fs.closeSync(log);
    if (fs.existsSync(stateFile)) throw new Error('local mode left its state file behind');
  };
}
