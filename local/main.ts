#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { headStart } from './head-start';
import type * as Local from './index';
import { ToolMissingError } from './python-tools';

/**
 * `npm start` / `npm run local`: the whole pipeline on one machine, against an AWS emulator.
 *   npm start -- --port 3000 -c thumbnailTimeoutSeconds=10
 */
const program = new Command()
  .name('offload-local')
  .description('Deploy the Offload stack into an AWS emulator and run its functions, queues and API locally')
  .option('-p, --port <port>', 'API port (0 = any free port)', (v) => parseIntArg(v), Number(process.env.PORT ?? 3000))
  .option('-c, --context <key=value>', 'CDK context for the deployed stack (repeatable)', collectContext, {} as Record<string, string>)
  .option('--stack-name <name>', 'stack name', 'Offload')
  .option('--max-concurrency <n>', "cap each SQS event source's concurrency (default: the stack's)", (v) => parseIntArg(v))
  .option('--state-file <path>', 'where to write the state file (default .offload/local.json)')
  .option('--cache-dir <path>', 'where cached cloud assemblies live (default .offload/cache)')
  .option('--upload-code', "upload the functions' real code to the emulator (default: placeholders; the functions run from the cloud assembly)")
  .option('--source-root <path>', 'another folder or file that shapes the stack, hashed into the cache key (repeatable)', collectList, [] as string[])
  .parse();

function collectList(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseIntArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

function collectContext(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected key=value');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

async function main(): Promise<void> {
  const o = program.opts<{
    port: number;
    context: Record<string, string>;
    stackName: string;
    maxConcurrency?: number;
    stateFile?: string;
    cacheDir?: string;
    sourceRoot: string[];
    uploadCode?: boolean;
  }>();
  // moto and the CDK CLI start first; the rest of local mode (the AWS SDK clients) loads meanwhile.
  const head = headStart();
  const { startLocal } = require('./index') as typeof Local;
  let handle: Local.LocalHandle | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n[local] ${signal}: stopping`);
    await handle?.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGHUP', () => void shutdown('SIGHUP'));
  // Started by a test or a tool that died: don't outlive it.
  if (process.send) process.on('disconnect', () => void shutdown('parent gone'));

  handle = await startLocal({
    port: o.port,
    context: o.context,
    stackName: o.stackName,
    maxConcurrency: o.maxConcurrency,
    stateFile: o.stateFile,
    cacheDir: o.cacheDir,
    extraSourceRoots: o.sourceRoot,
    uploadCode: o.uploadCode,
    headStart: head,
  });
  if (stopping) return;
  console.log('');
  console.log(`offload local mode is ready in ${(handle.readyMs / 1000).toFixed(1)} s`);
  console.log(`  API:          ${handle.apiUrl}`);
  console.log(`  API key:      ${handle.apiKey}   (header x-api-key)`);
  console.log(`  console:      ${handle.apiUrl}   (open in a browser, enter the key)`);
  console.log(`  AWS endpoint: ${handle.awsEndpoint} (region ${handle.region})`);
  console.log(`  state file:   ${o.stateFile ?? '.offload/local.json'}`);
  console.log('  Ctrl-C stops everything.');
  console.log('');
}

main().catch(async (err) => {
  // A missing tool is one line saying what to install; anything else keeps its stack.
  console.error(`offload-local: ${err instanceof ToolMissingError ? err.message : (err as Error).stack}`);
  process.exit(1);
});
