import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamApiRecord,
  type AttributeValue as SdkAttributeValue,
  type DynamoDBStreamsClient,
  type Shard,
  type ShardIteratorType,
} from '@aws-sdk/client-dynamodb-streams';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { AttributeValue, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { compileFilterCriteria } from './filter-pattern';
import type { FaultPlan } from './faults';
import type { InvokeOptions, InvokeOutcome } from './function-pool';

export interface StreamSourceConfig {
  /** Short label for logs (the function's). */
  label: string;
  /** The function the mapping invokes (named in the OnFailure record). */
  functionArn: string;
  streamArn: string;
  region: string;
  startingPosition: 'TRIM_HORIZON' | 'LATEST';
  /** Records per invocation (Lambda's default for DynamoDB: 100). */
  batchSize: number;
  batchingWindowSeconds: number;
  bisectBatchOnFunctionError: boolean;
  /** -1: retry until the record leaves the stream (Lambda's default). */
  maximumRetryAttempts: number;
  /** -1: no limit (Lambda's default). */
  maximumRecordAgeSeconds: number;
  reportBatchItemFailures: boolean;
  /** FilterCriteria.Filters[].Pattern: JSON strings; none means every record. */
  filterPatterns: string[];
  /** DestinationConfig.OnFailure for an SQS queue, resolved to its URL. */
  onFailure?: { destinationArn: string; queueUrl: string };
}

export type StreamInvoke = (event: DynamoDBStreamEvent, opts: InvokeOptions) => Promise<InvokeOutcome>;

export interface StreamSourceStats {
  /** Shards with an iterator (being read or done). */
  shards: number;
  /** Records read from the stream. */
  read: number;
  /** Records dropped by the FilterCriteria without an invocation. */
  filteredOut: number;
  invocations: number;
  /** Invocations that threw, timed out, crashed or answered a malformed failure list. */
  failedInvocations: number;
  /** Invocations that reported some records failed (ReportBatchItemFailures). */
  partialFailures: number;
  /** Re-invocations of records after a failure (bisected halves are not retries). */
  retries: number;
  bisections: number;
  /** Records the function succeeded on. */
  succeeded: number;
  /** Records given up on (retries exhausted or too old). */
  discarded: number;
  /** Discarded batches whose record went to the OnFailure destination. */
  sentToDestination: number;
  /** Injected faults drawn, by kind (see faults.ts). */
  faults: Record<string, number>;
  /** `crash` faults that killed their environment, by step. */
  crashes: Record<string, number>;
}

/** One stream record as the source keeps it: the event record and when it arrived. */
interface Rec {
  record: DynamoDBRecord;
  seq: string;
  arrivedMs: number;
}

interface ShardState {
  id: string;
  parentId?: string;
  done: Promise<void>;
  finish: () => void;
  lastRead?: string;
}

export interface StreamSourceOptions {
  log?: (line: string) => void;
  /** Wait before the next GetRecords when a shard had nothing new (Lambda polls 4 times a second). */
  pollIntervalMs?: number;
  /** How often the stream is described for new shards. */
  describeIntervalMs?: number;
  /** Wait before the nth retry of a failed batch. */
  retryBackoffMs?: (retry: number) => number;
  /** Fault injection (tests only), drawn per invocation. */
  faults?: FaultPlan;
}

/**
 * A DynamoDB Streams event source with Lambda's semantics: each shard read in order from
 * the mapping's starting position (new shards from their start, after their parent), one
 * batch in flight per shard, records that match none of the FilterCriteria dropped without
 * an invocation, and on failure:
 * - a thrown error, a timeout or a malformed response fails the whole batch: it is retried
 *   as is, or split in two first with BisectBatchOnFunctionError (a split does not use up a
 *   retry);
 * - with ReportBatchItemFailures, `{ batchItemFailures: [{ itemIdentifier: <SequenceNumber> }] }`
 *   checkpoints before the lowest reported sequence number and retries from there;
 * - after MaximumRetryAttempts retries, or once the oldest record is older than
 *   MaximumRecordAgeInSeconds, the batch is discarded: its metadata goes to the OnFailure
 *   SQS queue (as Lambda's invocation record, with DDBStreamBatchInfo) and the shard moves on.
 * Checkpoints live in memory: a restarted source starts again from its starting position.
 */
export class DynamoStreamEventSource {
  readonly stats: StreamSourceStats = {
    shards: 0,
    read: 0,
    filteredOut: 0,
    invocations: 0,
    failedInvocations: 0,
    partialFailures: 0,
    retries: 0,
    bisections: 0,
    succeeded: 0,
    discarded: 0,
    sentToDestination: 0,
    faults: {},
    crashes: {},
  };
  private stopped = true;
  private readonly abort = new AbortController();
  private readonly shards = new Map<string, ShardState>();
  private readonly loops: Promise<void>[] = [];
  private readonly matches: (record: unknown) => boolean;
  private describing?: Promise<void>;
  private firstDescribe = true;

  constructor(
    private readonly streams: Pick<DynamoDBStreamsClient, 'send'>,
    private readonly sqs: Pick<SQSClient, 'send'> | undefined,
    readonly config: StreamSourceConfig,
    private readonly invoke: StreamInvoke,
    private readonly opts: StreamSourceOptions = {},
  ) {
    this.matches = compileFilterCriteria(config.filterPatterns);
    if (config.onFailure && !sqs) throw new Error(`${config.label}: an OnFailure destination needs an SQS client`);
  }

  start(): void {
    if (!this.stopped) return;
    setMaxListeners(0, this.abort.signal);
    this.stopped = false;
    this.loops.push(this.discoverLoop());
  }

  /** Stops polling; an invocation in flight finishes (the pool's own timeout bounds it). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    // Shard loops are added while discovery runs; wait until none is left to add.
    for (let n = 0; n !== this.loops.length; ) {
      n = this.loops.length;
      await Promise.allSettled(this.loops);
    }
  }

  private log(line: string): void {
    this.opts.log?.(`[${this.config.label} <- stream] ${line}`);
  }

  private async discoverLoop(): Promise<void> {
    while (!this.stopped) {
      await this.describe();
      await this.sleep(this.opts.describeIntervalMs ?? 5000);
    }
  }

  /** DescribeStream (all pages); starts a loop for each shard not seen before. Single-flight. */
  private describe(): Promise<void> {
    this.describing ??= (async () => {
      try {
        const found: Shard[] = [];
        let start: string | undefined;
        do {
          const out = await this.streams.send(new DescribeStreamCommand({ StreamArn: this.config.streamArn, ExclusiveStartShardId: start }), {
            abortSignal: this.abort.signal,
          });
          found.push(...(out.StreamDescription?.Shards ?? []));
          start = out.StreamDescription?.LastEvaluatedShardId;
        } while (start && !this.stopped);
        // Shards there at the start begin at the mapping's starting position; later ones
        // (children of split or closed shards) from their first record.
        const position: ShardIteratorType = this.firstDescribe ? this.config.startingPosition : 'TRIM_HORIZON';
        this.firstDescribe = false;
        for (const s of found) {
          if (!s.ShardId || this.shards.has(s.ShardId) || this.stopped) continue;
          let finish!: () => void;
          const done = new Promise<void>((r) => (finish = r));
          const state: ShardState = { id: s.ShardId, parentId: s.ParentShardId, done, finish };
          this.shards.set(s.ShardId, state);
          this.loops.push(this.shardLoop(state, position).finally(() => state.finish()));
        }
      } catch (err) {
        if (!this.stopped) this.log(`DescribeStream failed: ${(err as Error).message}`);
      } finally {
        this.describing = undefined;
      }
    })();
    return this.describing;
  }

  private async iterator(shard: ShardState, position: ShardIteratorType): Promise<string | undefined> {
    const out = await this.streams.send(
      new GetShardIteratorCommand(
        shard.lastRead
          ? { StreamArn: this.config.streamArn, ShardId: shard.id, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: shard.lastRead }
          : { StreamArn: this.config.streamArn, ShardId: shard.id, ShardIteratorType: position },
      ),
      { abortSignal: this.abort.signal },
    );
    return out.ShardIterator;
  }

  private async shardLoop(shard: ShardState, position: ShardIteratorType): Promise<void> {
    // The position is taken now (LATEST means now); the reading waits for the parent.
    let iterator: string | undefined;
    for (;;) {
      try {
        iterator = await this.iterator(shard, position);
        break;
      } catch (err) {
        if (this.stopped) return;
        this.log(`GetShardIterator for ${shard.id} failed: ${(err as Error).message}; will retry`);
        await this.sleep(1000);
      }
    }
    this.stats.shards++;
    const parent = shard.parentId ? this.shards.get(shard.parentId) : undefined;
    if (parent) await Promise.race([parent.done, this.stoppedSignal()]);

    const batchSize = Math.max(1, this.config.batchSize);
    const windowMs = this.config.batchingWindowSeconds * 1000;
    const buffer: Rec[] = [];
    let windowStart = 0;
    while (!this.stopped) {
      let got = 0;
      if (iterator && buffer.length < batchSize) {
        try {
          const out = await this.streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: Math.min(1000, batchSize) }), {
            abortSignal: this.abort.signal,
          });
          iterator = out.NextShardIterator;
          for (const r of out.Records ?? []) {
            got++;
            this.stats.read++;
            const rec = this.toRec(r);
            shard.lastRead = rec.seq;
            if (this.matches(rec.record)) buffer.push(rec);
            else this.stats.filteredOut++;
          }
        } catch (err) {
          if (this.stopped) break;
          // An expired or unknown iterator (or a passing fault): take a new one after what was read.
          this.log(`GetRecords on ${shard.id} failed: ${(err as Error).message}; repositioning`);
          await this.sleep(1000);
          try {
            iterator = await this.iterator(shard, position);
          } catch {
            // tried again on the next round
          }
          continue;
        }
      }
      if (buffer.length === 0) {
        if (!iterator) break; // closed and drained
        if (got === 0) await this.sleep(this.opts.pollIntervalMs ?? 250);
        continue;
      }
      if (windowMs > 0 && buffer.length < batchSize && iterator) {
        windowStart ||= Date.now();
        const left = windowStart + windowMs - Date.now();
        if (left > 0) {
          if (got === 0) await this.sleep(Math.min(left, this.opts.pollIntervalMs ?? 250));
          continue;
        }
      }
      windowStart = 0;
      await this.settle(shard, buffer.splice(0, batchSize));
    }
    if (!iterator && !this.stopped) {
      this.log(`shard ${shard.id} closed`);
      void this.describe(); // look for its children now
    }
  }

  /** One invocation, with a fault drawn from the plan (tests only). */
  private async invokeWithFaults(recs: Rec[]): Promise<InvokeOutcome> {
    const fault = this.opts.faults?.draw() ?? 'none';
    if (fault === 'none' || fault === 'lose-ack') return this.invoke(this.toEvent(recs), {});
    this.stats.faults[fault] = (this.stats.faults[fault] ?? 0) + 1;
    const faults = this.opts.faults!;
    if (fault === 'throw') {
      this.log(`fault injected: invocation failed before running (${recs.length} records)`);
      return { ok: false, kind: 'error', error: { errorType: 'InjectedFault', errorMessage: 'fault injected: invocation failed before running' }, ms: 0 };
    }
    if (fault === 'timeout') return this.invoke(this.toEvent(recs), { killAfterMs: faults.killDelayMs() });
    const crash = faults.crashPoint();
    const outcome = await this.invoke(this.toEvent(recs), { crash: crash.point });
    if (!outcome.ok && outcome.kind === 'crash') this.stats.crashes[crash.step] = (this.stats.crashes[crash.step] ?? 0) + 1;
    return outcome;
  }

  /**
   * Runs one batch until every record in it succeeded or was discarded. Bisected halves
   * and the tail left by a partial failure are queued in order, so the shard stays ordered.
   */
  private async settle(shard: ShardState, batch: Rec[]): Promise<void> {
    const work: Array<{ recs: Rec[]; retries: number; last?: LastInvocation }> = [{ recs: batch, retries: 0 }];
    while (work.length > 0) {
      // Once stopped, nothing more is invoked: a restarted source reads the stream again.
      if (this.stopped) return;
      const item = work[0];
      const maxAge = this.config.maximumRecordAgeSeconds;
      if (maxAge >= 0 && Date.now() - item.recs[0].arrivedMs > maxAge * 1000) {
        await this.discard(shard, item.recs, 'RecordAgeExceeded', item.retries, item.last);
        work.shift();
        continue;
      }
      const requestId = randomUUID();
      this.stats.invocations++;
      let outcome: InvokeOutcome;
      try {
        outcome = await this.invokeWithFaults(item.recs);
      } catch (err) {
        outcome = { ok: false, kind: 'error', error: { errorType: 'Error', errorMessage: (err as Error).message }, ms: 0 };
      }
      const verdict = outcome.ok ? this.readResponse(item.recs, outcome.result) : { failedAt: 0, malformed: false };
      item.last = { requestId, outcome };
      if (verdict.failedAt === undefined) {
        this.stats.succeeded += item.recs.length;
        work.shift();
        continue;
      }
      const wholeBatch = !outcome.ok || verdict.malformed;
      if (wholeBatch) {
        this.stats.failedInvocations++;
        const why = outcome.ok ? 'malformed batchItemFailures' : `${outcome.kind}: ${outcome.error.errorMessage}`;
        this.log(`invocation failed (${why}); ${item.recs.length} records, retry ${item.retries}`);
        if (this.config.bisectBatchOnFunctionError && item.recs.length > 1) {
          const half = Math.ceil(item.recs.length / 2);
          this.stats.bisections++;
          work.splice(0, 1, { recs: item.recs.slice(0, half), retries: item.retries, last: item.last }, { recs: item.recs.slice(half), retries: item.retries, last: item.last });
          continue;
        }
      } else {
        this.stats.partialFailures++;
        this.stats.succeeded += verdict.failedAt;
        item.recs = item.recs.slice(verdict.failedAt);
        this.log(`function reported failures from ${item.recs[0].seq}; ${item.recs.length} records, retry ${item.retries}`);
      }
      const maxRetries = this.config.maximumRetryAttempts;
      if (maxRetries >= 0 && item.retries >= maxRetries) {
        await this.discard(shard, item.recs, 'RetryAttemptsExhausted', item.retries, item.last);
        work.shift();
        continue;
      }
      item.retries++;
      this.stats.retries++;
      await this.sleep(this.opts.retryBackoffMs?.(item.retries) ?? Math.min(2000, 100 * 2 ** (item.retries - 1)));
    }
  }

  /**
   * Reads the function's response as Lambda does for a stream: `failedAt` is the index of
   * the first record to retry (undefined: all succeeded); `malformed` fails the whole batch.
   */
  private readResponse(recs: Rec[], result: unknown): { failedAt?: number; malformed: boolean } {
    if (!this.config.reportBatchItemFailures || result === null || result === undefined) return { malformed: false };
    const failures = (result as { batchItemFailures?: unknown }).batchItemFailures;
    if (failures === undefined || failures === null) return { malformed: false };
    if (!Array.isArray(failures)) return { failedAt: 0, malformed: true };
    let failedAt: number | undefined;
    for (const f of failures) {
      const id = (f as { itemIdentifier?: unknown })?.itemIdentifier;
      const index = typeof id === 'string' && id !== '' ? recs.findIndex((r) => r.seq === id) : -1;
      // An empty, missing or unknown identifier fails the whole batch.
      if (index < 0) return { failedAt: 0, malformed: true };
      failedAt = failedAt === undefined ? index : Math.min(failedAt, index);
    }
    return { failedAt, malformed: false };
  }

  private async discard(shard: ShardState, recs: Rec[], condition: 'RetryAttemptsExhausted' | 'RecordAgeExceeded', retries: number, last?: LastInvocation): Promise<void> {
    this.stats.discarded += recs.length;
    const first = recs[0];
    const lastRec = recs[recs.length - 1];
    const dest = this.config.onFailure;
    this.log(`discarding ${recs.length} records ${first.seq}..${lastRec.seq} (${condition})${dest ? `; metadata to ${dest.destinationArn}` : ''}`);
    if (!dest || !this.sqs) return;
    const body = {
      requestContext: {
        requestId: last?.requestId ?? randomUUID(),
        functionArn: this.config.functionArn,
        condition,
        approximateInvokeCount: last ? retries + 1 : 0,
      },
      responseContext: {
        statusCode: 200,
        executedVersion: '$LATEST',
        ...(last && !last.outcome.ok ? { functionError: 'Unhandled' } : {}),
      },
      version: '1.0',
      timestamp: new Date().toISOString(),
      DDBStreamBatchInfo: {
        shardId: shard.id,
        startSequenceNumber: first.seq,
        endSequenceNumber: lastRec.seq,
        approximateArrivalOfFirstRecord: new Date(first.arrivedMs).toISOString(),
        approximateArrivalOfLastRecord: new Date(lastRec.arrivedMs).toISOString(),
        batchSize: recs.length,
        streamArn: this.config.streamArn,
      },
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.sqs.send(new SendMessageCommand({ QueueUrl: dest.queueUrl, MessageBody: JSON.stringify(body) }));
        this.stats.sentToDestination++;
        return;
      } catch (err) {
        this.log(`sending to ${dest.destinationArn} failed: ${(err as Error).message}`);
        if (attempt >= 5 || this.stopped) return;
        await this.sleep(200 * attempt);
      }
    }
  }

  private toRec(r: StreamApiRecord): Rec {
    const d = r.dynamodb ?? {};
    const arrived = d.ApproximateCreationDateTime instanceof Date ? d.ApproximateCreationDateTime.getTime() : Date.now();
    const record: DynamoDBRecord = {
      eventID: r.eventID,
      eventName: r.eventName as DynamoDBRecord['eventName'],
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: r.awsRegion ?? this.config.region,
      dynamodb: {
        ApproximateCreationDateTime: Math.floor(arrived / 1000),
        ...(d.Keys ? { Keys: toWireMap(d.Keys) } : {}),
        ...(d.NewImage ? { NewImage: toWireMap(d.NewImage) } : {}),
        ...(d.OldImage ? { OldImage: toWireMap(d.OldImage) } : {}),
        SequenceNumber: d.SequenceNumber,
        SizeBytes: d.SizeBytes,
        StreamViewType: d.StreamViewType as NonNullable<DynamoDBRecord['dynamodb']>['StreamViewType'],
      },
      eventSourceARN: this.config.streamArn,
      ...(r.userIdentity ? { userIdentity: { type: r.userIdentity.Type, principalId: r.userIdentity.PrincipalId } } : {}),
    };
    return { record, seq: d.SequenceNumber ?? '', arrivedMs: arrived };
  }

  private toEvent(recs: Rec[]): DynamoDBStreamEvent {
    return { Records: recs.map((r) => r.record) };
  }

  private stoppedSignal(): Promise<void> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) return resolve();
      this.abort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  /** A sleep that ends early when the source stops. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done, { once: true });
    });
  }
}

interface LastInvocation {
  requestId: string;
  outcome: InvokeOutcome;
}

/** The SDK's attribute values (binary as bytes) in the wire form Lambda's event carries (binary as base64). */
export function toWire(v: SdkAttributeValue): AttributeValue {
  if (v.S !== undefined) return { S: v.S };
  if (v.N !== undefined) return { N: v.N };
  if (v.B !== undefined) return { B: Buffer.from(v.B).toString('base64') };
  if (v.SS !== undefined) return { SS: v.SS };
  if (v.NS !== undefined) return { NS: v.NS };
  if (v.BS !== undefined) return { BS: v.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (v.M !== undefined) return { M: toWireMap(v.M) };
  if (v.L !== undefined) return { L: v.L.map(toWire) };
  if (v.NULL !== undefined) return { NULL: v.NULL };
  if (v.BOOL !== undefined) return { BOOL: v.BOOL };
  return v as unknown as AttributeValue;
}

export function toWireMap(m: Record<string, SdkAttributeValue>): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, toWire(v)]));
}
