import * as fs from 'node:fs';
import * as path from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { LocalApiServer } from './api-server';
import { cacheKey, DEFAULT_CACHE_DIR, obtainAssembly, type CachedAssembly } from './assembly-cache';
import {
  assemblyBootstrapNeeds,
  bootstrapQualifier,
  callerAccount,
  creds,
  defaultBootstrapNeeds,
  deploy,
  ensureBootstrapped,
  missingBootstrap,
  motoAccount,
  placeholderFunctionCode,
  PROJECT_ROOT,
  synth,
  synthContext,
  warmCloudFormation,
} from './deploy';
import type { Emulator } from './emulator';
import { SqsEventSource } from './event-source';
import { parseFaults } from './faults';
import { LocalFunction } from './function-pool';
import { headStart, type HeadStart } from './head-start';
import { DynamoStreamEventSource } from './stream-source';
import { discover, warmUp } from './topology';

export interface LocalOptions {
  /** API port; 0 picks a free one. */
  port?: number;
  region?: string;
  stackName?: string;
  /** CDK context overrides for the deployed stack. */
  context?: Record<string, string>;
  /** Where to write the state file (default .offload/local.json); null for none. */
  stateFile?: string | null;
  /** Fault injection spec (default: OFFLOAD_LOCAL_FAULTS) and seed (default: OFFLOAD_LOCAL_FAULTS_SEED). */
  faults?: string;
  faultSeed?: number;
  /** Cap on each event source's concurrency (default: the mapping's MaximumConcurrency). */
  maxConcurrency?: number;
  /**
   * More source folders or files that shape the stack (relative to the project root), hashed
   * into the cache key besides STACK_SOURCE_ROOTS and the project's other top-level entries
   * (see local/assembly-cache.ts); e.g. a test fixture's job types under test/.
   */
  extraSourceRoots?: string[];
  /** Where cached cloud assemblies live (default .offload/cache). */
  cacheDir?: string;
  /**
   * Upload the functions' real code to the emulator (zipped by `cdk deploy`), instead of
   * the placeholders local mode puts there (it runs the bundles from the cloud assembly).
   */
  uploadCode?: boolean;
  /** The emulator and the CDK CLI, when the caller started them already (see head-start.ts). */
  headStart?: HeadStart;
  log?: (line: string) => void;
}

/** Where a start's time went, in ms. */
export interface StartTimings {
  /** The emulator answering (moto started here, or AWS_ENDPOINT_URL). */
  emulator: number;
  /** The cloud assembly: the cache key, then the cached entry or `cdk synth` (in parallel with the emulator's start when moto is ours). */
  assembly: number;
  cached: boolean;
  /** The emulator's account, then the bootstrap resources `cdk deploy` needs (see ensureBootstrapped; on a first start, alongside the synth). */
  bootstrap: number;
  /** `cdk deploy --method=direct` (and the function code placeholders before it). */
  deploy: number;
  /** Reading the deployed stack and applying what the emulator ignores. */
  discover: number;
  total: number;
}

export interface LocalState {
  apiUrl: string;
  apiKey: string;
  awsEndpoint: string;
  region: string;
  stackName: string;
  outputs: Record<string, string>;
  /** The cloud assembly this instance deployed (its template and the bundles it runs). */
  cloudAssembly: string;
}

export interface LocalHandle extends LocalState {
  eventSources: SqsEventSource[];
  streamSources: DynamoStreamEventSource[];
  functions: LocalFunction[];
  readyMs: number;
  timings: StartTimings;
  stop(): Promise<void>;
}

export const DEFAULT_STATE_FILE = path.join(PROJECT_ROOT, '.offload', 'local.json');

/**
 * Local mode: the real stack, deployed into an AWS emulator, with its Lambda functions run
 * from their synthesized bundles by a local runtime (child processes), its SQS event
 * sources polled with Lambda's semantics, its scheduled rules on timers, and its REST API
 * served over HTTP.
 */
export async function startLocal(opts: LocalOptions = {}): Promise<LocalHandle> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const head = opts.headStart ?? headStart(log);
  const started = head.startedAt;
  const region = opts.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const stackName = opts.stackName ?? 'Offload';
  const credentials = creds();
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((err) => log(`[local] cleanup: ${(err as Error).message}`));
  };

  try {
    const timings: Partial<StartTimings> = {};
    const since = (t: number) => Date.now() - t;
    const context = synthContext(stackName, opts.context ?? {});
    // What the assembly's preparation says waits until the emulator is up: when no emulator
    // can start, the one line saying what to install is all the user sees.
    let held: string[] | undefined = [];
    const alog = (line: string) => (held ? held.push(line) : log(line));
    // Leases on cache entries, released when this instance stops (or fails to start).
    const leases: CachedAssembly[] = [];
    cleanups.push(async () => leases.splice(0).forEach((a) => a.release()));
    const obtain = (account: string, endpoint: string, signal?: AbortSignal): Promise<CachedAssembly> => {
      const t = Date.now();
      // A registry given with -c jobTypesModule (e.g. under test/fixtures) shapes the stack too: hash its folder.
      const registry = context.jobTypesModule ? [path.dirname(path.resolve(PROJECT_ROOT, context.jobTypesModule))] : [];
      const key = cacheKey({ stackName, account, region, context, extraSourceRoots: [...(opts.extraSourceRoots ?? []), ...registry] });
      return obtainAssembly({
        key,
        cacheDir: opts.cacheDir ?? DEFAULT_CACHE_DIR,
        log: (l) => alog(`[local] ${l}`),
        synth: (outDir) => {
          alog(`[local] synthesizing ${stackName} for aws://${account}/${region} (no cached cloud assembly ${key.key.slice(0, 12)})`);
          return synth({ outDir, account, region, endpoint, context, log: (l) => alog(`[local] ${l}`), signal });
        },
      }).then((a) => {
        leases.push(a);
        timings.assembly = since(t);
        timings.cached = a.hit;
        if (a.hit) alog(`[local] cloud assembly ${a.key.slice(0, 12)} from the cache (${path.relative(PROJECT_ROOT, a.dir)})`);
        return a;
      });
    };

    // The CDK CLI loads (most of a deploy's CPU) while the emulator starts.
    const cli = head.cli;
    cleanups.push(async () => cli.dispose());
    // With a moto of our own, its account is known before it answers: the cloud assembly
    // (cached, or synthesized) is prepared while moto starts.
    const own = head.motoEndpoint !== undefined;
    const early = own ? new AbortController() : undefined;
    const earlyAssembly = own ? head.motoEndpoint!.then((endpoint) => obtain(motoAccount(), endpoint, early!.signal)) : undefined;
    earlyAssembly?.catch(() => undefined);
    let emulator: Emulator;
    try {
      emulator = await head.emulator;
    } catch (err) {
      early?.abort(err);
      await earlyAssembly?.catch(() => undefined);
      throw err;
    }
    timings.emulator = since(head.startedAt);
    cleanups.push(() => emulator.stop());
    log(`[local] AWS endpoint ${emulator.endpoint}${emulator.owned ? ' (moto, started here)' : ''}`);
    for (const line of held) log(line);
    held = undefined;

    // The bootstrap resources are named before the synth ends: on a first start they are
    // made (and moto's CloudFormation loaded) while the app is still being synthesized.
    const tBootstrap = Date.now();
    // A moto of our own answers for the account it read from this process's environment.
    const account = own ? motoAccount() : await callerAccount(emulator.endpoint, region);
    const planned = defaultBootstrapNeeds(bootstrapQualifier(context), account, region);
    const bootstrapping = ensureBootstrapped({ endpoint: emulator.endpoint, region, needs: planned }).then((r) => {
      timings.bootstrap = since(tBootstrap);
      return r;
    });
    bootstrapping.catch(() => undefined);
    // Then moto's CloudFormation backend, which the deploy needs, and its set-up of the
    // services discover() reads (see warmUp): during the synth on a first start, while the
    // CDK CLI starts its deploy on a cached one. (Not alongside the bootstrap calls: moto
    // would load S3 and SSM only after CloudFormation, which imports their models.)
    const warm = bootstrapping
      .then(() => warmCloudFormation({ endpoint: emulator.endpoint, region }))
      .then(() => warmUp({ endpoint: emulator.endpoint, region, credentials }))
      .catch(() => undefined);
    const assembly = (await earlyAssembly) ?? (await obtain(account, emulator.endpoint));
    const cloudAssembly = assembly.dir;
    const bootstrap = await bootstrapping;
    if (bootstrap === 'created') log(`[local] bootstrap resources for aws://${account}/${region}: staging bucket and version parameter`);
    // A synthesizer other than CDK's default may name other ones.
    const missing = missingBootstrap(planned, assemblyBootstrapNeeds(cloudAssembly, stackName, account, region));
    if (missing) await ensureBootstrapped({ endpoint: emulator.endpoint, region, needs: missing });
    log(`[local] deploying ${stackName}`);
    let t = Date.now();
    if (!opts.uploadCode) await placeholderFunctionCode({ endpoint: emulator.endpoint, region, account, cloudAssembly, stackName });
    const deployed = await deploy({ cli, endpoint: emulator.endpoint, region, account, stackName, cloudAssembly, log: (l) => log(`[local] ${l}`) });
    timings.deploy = since(t);
    await warm;
    t = Date.now();
    const topology = await discover({
      endpoint: emulator.endpoint,
      region,
      stackName,
      template: deployed.template,
      cloudAssembly,
      credentials,
      log,
    });
    timings.discover = since(t);

    const runtimeEnv = {
      AWS_ENDPOINT_URL: emulator.endpoint,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    };
    const functions = new Map<string, LocalFunction>();
    for (const [arn, spec] of topology.functions) functions.set(arn, new LocalFunction(spec, runtimeEnv, log));
    cleanups.push(async () => {
      await Promise.all([...functions.values()].map((f) => f.stop()));
    });
    const fn = (arn: string) => {
      const f = functions.get(arn);
      if (!f) throw new Error(`no local function ${arn}`);
      return f;
    };

    const server = new LocalApiServer(topology.api, (arn, event) => fn(arn).invoke(event), log);
    const apiUrl = await server.listen(opts.port ?? Number(process.env.PORT ?? 3000));
    cleanups.push(() => server.close());

    const faultSpec = opts.faults ?? process.env.OFFLOAD_LOCAL_FAULTS;
    const seedEnv = process.env.OFFLOAD_LOCAL_FAULTS_SEED;
    const faults = faultSpec ? parseFaults(faultSpec, opts.faultSeed ?? (seedEnv ? Number(seedEnv) : undefined)) : undefined;
    if (faults) log(`[local] fault injection on SQS, stream and scheduled invocations: ${JSON.stringify(faults.rates)}`);
    const sqs = new SQSClient({ endpoint: emulator.endpoint, region, credentials });
    const eventSources = topology.eventSources.map((es) => {
      const config = { ...es, maxConcurrency: opts.maxConcurrency ? Math.min(opts.maxConcurrency, es.maxConcurrency) : es.maxConcurrency };
      const source = new SqsEventSource(sqs, config, (event, o) => fn(es.functionArn).invoke(event, o), { faults, log });
      source.start();
      log(`[local] ${es.label} <- SQS ${es.queueArn.split(':').pop()} (batch ${config.batchSize}, window ${config.batchingWindowSeconds}s, concurrency ${config.maxConcurrency})`);
      return source;
    });
    // In-flight invocations get a short grace; then their environments are killed (their
    // messages come back after the visibility timeout, as after a crash).
    cleanups.push(async () => {
      await Promise.race([Promise.all(eventSources.map((s) => s.stop())), new Promise((r) => setTimeout(r, 5000))]);
    });

    // DynamoDB stream event sources (the outbox): one ordered reader per shard.
    const streams = new DynamoDBStreamsClient({ endpoint: emulator.endpoint, region, credentials });
    const streamSources = topology.streamSources.map((ss) => {
      const source = new DynamoStreamEventSource(streams, sqs, ss, (event, o) => fn(ss.functionArn).invoke(event, o), { log, faults });
      source.start();
      log(`[local] ${ss.label} <- DynamoDB stream ${ss.streamArn.split(':table/').pop()} (${ss.startingPosition}, batch ${ss.batchSize}, ${ss.filterPatterns.length} filters)`);
      return source;
    });
    cleanups.push(async () => {
      await Promise.race([Promise.all(streamSources.map((s) => s.stop())), new Promise((r) => setTimeout(r, 5000))]);
    });

    const timers = topology.schedules.map((s) => {
      log(`[local] ${s.label} every ${s.everyMs / 1000}s (scheduled rule)`);
      return setInterval(() => {
        const event = {
          version: '0',
          id: crypto.randomUUID(),
          'detail-type': 'Scheduled Event',
          source: 'aws.events',
          account: deployed.account,
          time: new Date().toISOString(),
          region,
          resources: [s.ruleArn],
          detail: {},
        };
        // Of the injected faults only `crash` applies to a scheduled run (nothing retries it
        // but the next run, which is what a crash tests).
        const crash = faults?.draw() === 'crash' ? faults.crashPoint() : undefined;
        fn(s.functionArn)
          .invoke(event, crash ? { crash: crash.point } : {})
          .then((o) => {
            if (!o.ok && o.kind === 'crash' && crash) log(`[local] ${s.label} scheduled run killed by fault injection (crash ${crash.step})`);
            else if (!o.ok) log(`[local] ${s.label} scheduled run failed: ${o.error.errorMessage}`);
          })
          .catch(() => undefined);
      }, s.everyMs);
    });
    cleanups.push(async () => timers.forEach((t) => clearInterval(t)));

    const state: LocalState = {
      apiUrl,
      apiKey: topology.api.apiKey,
      awsEndpoint: emulator.endpoint,
      region,
      stackName,
      outputs: { ...deployed.outputs, ApiUrl: apiUrl, ApiKeyId: topology.api.apiKeyId },
      cloudAssembly,
    };
    const stateFile = opts.stateFile === undefined ? DEFAULT_STATE_FILE : opts.stateFile;
    if (stateFile) {
      fs.mkdirSync(path.dirname(stateFile), { recursive: true });
      fs.writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`);
      cleanups.push(async () => fs.rmSync(stateFile, { force: true }));
    }
    const readyMs = Date.now() - started;
    const done = { ...timings, total: readyMs } as StartTimings;
    const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    log(
      `[local] start: emulator ${sec(done.emulator)}, cloud assembly ${sec(done.assembly)} (${done.cached ? 'cached' : 'cdk synth'}${own ? ', alongside the emulator' : ''}), ` +
        `bootstrap ${sec(done.bootstrap)}, deploy ${sec(done.deploy)}, discover ${sec(done.discover)}, total ${sec(readyMs)}`,
    );
    return { ...state, eventSources, streamSources, functions: [...functions.values()], readyMs, timings: done, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
