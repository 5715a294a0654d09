import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { JOB_STATUSES } from '../lambda/shared/contract';
import { ApiError } from './api-client';
import type { GlobalFlags } from './config';
import { CliContext } from './context';
import { cancel } from './commands/cancel';
import { dlq } from './commands/dlq';
import { jobs } from './commands/jobs';
import { queues } from './commands/queues';
import { report } from './commands/report';
import { status } from './commands/status';
import { upload } from './commands/upload';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, oneLine } from './errors';
import { Terminal } from './output';

/** `offload`: the command-line client of the offload HTTP API and its queues (commander wiring only). */

function positiveInt(max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) {
      throw new InvalidArgumentError(`expected a whole number from 1 to ${max}`);
    }
    return n;
  };
}

function nonNegativeSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds (0 = no limit)');
  return n;
}

function version(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const CONFIG_HELP = `
Configuration (first found wins, per setting):
  1. --api, --api-key, --region, --stack
  2. OFFLOAD_API_URL, OFFLOAD_API_KEY (AWS: AWS_ENDPOINT_URL, AWS_REGION, the usual credential chain)
  3. --config FILE, else .offload/local.json (written by local mode: npm start)
  4. --outputs-file FILE, else .offload/outputs.json (cdk deploy --outputs-file .offload/outputs.json)
  5. with --stack NAME: the stack's outputs from CloudFormation; without a key: the ApiKeyId
     output's value from API Gateway (needs apigateway:GET)

Exit codes: 0 ok, 1 a request, upload or job failed, 2 usage or configuration error.
Progress goes to stderr (bars on a terminal, plain lines otherwise or with NO_COLOR); results to stdout.`;

export function buildProgram(term: Terminal, setExit: (code: number) => void, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): Command {
  const program = new Command('offload');
  program
    .description('Client for the offload job queue: upload photos, request reports, watch jobs and queues.')
    .version(version(), '-V, --version')
    .option('--api <url>', 'base URL of the API (env OFFLOAD_API_URL)')
    .option('--api-key <key>', 'API key (env OFFLOAD_API_KEY)')
    .option('--config <file>', 'local-mode config file (default .offload/local.json)')
    .option('--outputs-file <file>', 'CDK outputs file (default .offload/outputs.json)')
    .option('--stack <name>', 'stack whose outputs to use (read from CloudFormation when no file has them)')
    .option('--region <region>', 'AWS region for queue commands (env AWS_REGION)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (s) => term.streams.stdout.write(s),
      writeErr: (s) => term.streams.stderr.write(s),
      outputError: (s, write) => write(`offload: ${s.replace(/^error: /, '').trim()}\n`),
    })
    .exitOverride()
    .showSuggestionAfterError(true)
    .addHelpText('after', CONFIG_HELP);

  const context = (cmd: Command): CliContext => CliContext.load(cmd.optsWithGlobals() as GlobalFlags, env, cwd, term);
  const run =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) =>
      setExit(await fn(...args));

  program
    .command('upload')
    .description('upload photos (presigned PUT, streamed from disk) and optionally wait for their thumbnails')
    .argument('<files...>', 'files or globs (quote globs to let offload expand them: "photos/**/*.jpg")')
    .option('-w, --wait', 'wait until every job is terminal; exit 1 if any failed')
    .option('-c, --concurrency <n>', 'uploads at once', positiveInt(64), 4)
    .option('--timeout <seconds>', 'with --wait: give up on a job after this long (0 = never)', nonNegativeSeconds, 0)
    .option('--json', 'print the jobs as a JSON array on stdout')
    .addHelpText('after', '\nExamples:\n  offload upload photo.jpg\n  offload upload "shoot/**/*.{jpg,png}" --wait --concurrency 8\n  offload upload a.jpg --wait --json | jq -r \'.[0].outputs[].url\'')
    .action(run((files: string[], opts, cmd: Command) => upload(context(cmd), files, opts)));

  program
    .command('status')
    .description("show jobs' state, outputs (with download URLs) and errors")
    .argument('<jobIds...>', 'job ids')
    .option('--json', 'print the jobs as a JSON array')
    .action(run((ids: string[], opts, cmd: Command) => status(context(cmd), ids, opts)));

  program
    .command('cancel')
    .description('cancel jobs: one not started is cancelled at once, a processing one is asked to stop')
    .argument('<jobIds...>', 'job ids')
    .option('--json', 'print the jobs as a JSON array')
    .action(run((ids: string[], opts, cmd: Command) => cancel(context(cmd), ids, opts)));

  program
    .command('jobs')
    .description('list jobs, newest first')
    .option('--type <type>', 'only this job type (the API names the known ones)')
    .addOption(new Option('--status <status>', 'only this status').choices(JOB_STATUSES))
    .option('-n, --limit <n>', 'how many jobs to show (pages are followed)', positiveInt(10_000), 20)
    .option('--json', 'print the jobs as a JSON array')
    .action(run((opts, cmd: Command) => jobs(context(cmd), opts)));

  program
    .command('report')
    .description('request a report of the uploads of a date range (CSV and PDF)')
    .requiredOption('--from <date>', 'first day, YYYY-MM-DD (UTC), today or yesterday')
    .requiredOption('--to <date>', 'last day, inclusive')
    .option('--format <formats>', 'csv, pdf or csv,pdf (default: both)')
    .option('-w, --wait', 'wait for the report, showing its progress')
    .option('-o, --out <dir>', 'download the outputs into this directory as report-<from>-to-<to>.<format> (implies --wait)')
    .option('--timeout <seconds>', 'with --wait: give up after this long (0 = never)', nonNegativeSeconds, 0)
    .option('--json', 'print the job as JSON (with --out: plus "files")')
    .addHelpText('after', '\nExamples:\n  offload report --from 2025-01-01 --to 2025-01-31 --out reports/\n  offload report --from today --to today --format csv --wait')
    .action(run((opts, cmd: Command) => report(context(cmd), opts)));

  program
    .command('queues')
    .description('depth, in-flight, delayed and oldest-message age of the job queues and their DLQs')
    .option('--json', 'print the queues as a JSON array')
    .action(run((opts, cmd: Command) => queues(context(cmd), opts)));

  program
    .command('dlq')
    .description('list the dead letters of a queue with their jobs and last errors, or move them back (--redrive)')
    .argument('<type>', 'a deployed job type (offload queues lists them), e.g. thumbnail or report')
    .option('--peek <n>', 'how many messages to look at (they stay in the DLQ)', positiveInt(1000), 10)
    .option('--redrive', 'move every dead letter back to its source queue')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nListing only peeks: messages are hidden for a moment and made visible again at once.\n' +
        '--redrive uses SQS StartMessageMoveTask; where the endpoint lacks it (moto), each message is\n' +
        'sent to the source queue and only then deleted from the DLQ.\n\nExamples:\n  offload dlq thumbnail\n  offload dlq report --redrive',
    )
    .action(run((type: string, opts, cmd: Command) => dlq(context(cmd), type, opts)));

  return program;
}

/** Where the CLI runs: its environment and working directory (the process's by default). */
export interface CliSurroundings {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Runs the CLI; resolves with the exit code (never throws). Output goes through `term` (its
 * streams: stdout and stderr); `env` and `cwd` stand for the process's, so that the CLI can
 * run in-process (tests) exactly as it runs as a command.
 */
export async function main(argv: string[] = process.argv, term = new Terminal(), where: CliSurroundings = {}): Promise<number> {
  let exitCode = EXIT_OK;
  const env = where.env ?? process.env;
  const program = buildProgram(
    term,
    (code) => {
      exitCode = code;
    },
    env,
    where.cwd ?? process.cwd(),
  );
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; parse errors were already printed as one line.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof CliError) {
      term.error(err.message);
      return err.exitCode;
    }
    if (err instanceof ApiError) {
      term.error(`${err.code}: ${err.message}`);
      return EXIT_FAILURE;
    }
    term.error(oneLine(err));
    if (env.OFFLOAD_DEBUG) console.error(err);
    return EXIT_FAILURE;
  }
}

/** Runs main and exits with its code (after stdout drains; forced 2 s later if a socket lingers). */
export function runAsScript(): void {
  void main().then((code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 2000).unref();
  });
}

if (require.main === module) runAsScript();
