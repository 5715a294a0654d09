import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    apiUrl: string;
    apiKey: string;
    awsEndpoint: string;
    region: string;
    outputs: Record<string, string>;
    localLog: string;
    cloudAssembly: string;
  }
}

/**
 * Starts local mode once for the e2e project, the way a developer does (`npm start`, here
 * with a free port and its own state file), and stops it after the last test. Short worker
 * timeouts keep the derived visibility timeouts (6x) short, so retries and DLQ paths finish
 * within the tests' time.
 */
export const TEST_CONTEXT = {
  thumbnailTimeoutSeconds: '5', // visibility 30 s
  reportTimeoutSeconds: '20', // visibility 120 s
  thumbnailMaxConcurrency: '4',
  sweepIntervalMinutes: '1',
};

export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  const root = path.resolve(__dirname, '..', '..');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-e2e-'));
  const stateFile = path.join(dir, 'local.json');
  const logFile = path.join(dir, 'local.log');
  const log = fs.openSync(logFile, 'a');
  const args = ['--import', 'tsx', 'local/main.ts', '--port', '0', '--state-file', stateFile];
  for (const [k, v] of Object.entries(TEST_CONTEXT)) args.push('-c', `${k}=${v}`);
  const env = { ...process.env };
  delete env.AWS_ENDPOINT_URL; // always a fresh emulator of our own
  const child: ChildProcess = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', log, log, 'ipc'] });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    fs.closeSync(log);
  };

  const deadline = Date.now() + 180_000;
  while (!fs.existsSync(stateFile)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
      throw new Error(`local mode did not become ready (exit ${child.exitCode}); log ${logFile}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  provide('apiUrl', state.apiUrl);
  provide('apiKey', state.apiKey);
  provide('awsEndpoint', state.awsEndpoint);
  provide('region', state.region);
  provide('outputs', state.outputs);
  provide('localLog', logFile);
  provide('cloudAssembly', state.cloudAssembly);
  return async () => {
    await stop();
    if (fs.existsSync(stateFile)) throw new Error('local mode left its state file behind');
  };
}
