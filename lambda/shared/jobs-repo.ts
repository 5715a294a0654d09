import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  paginateQuery,
  type UpdateCommandInput,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { DEFAULT_PRIORITY, INDEXES, isJobId, isTerminal, SWEEP_SHARDS, type Priority } from './contract';
import type { JobError, JobProgress, JobRecord, JobStatus, StoredOutput } from './model';

export interface NewJob {
  jobId: string;
  type: string;
  status: 'awaiting_upload' | 'queued';
  input?: Record<string, unknown>;
  createdAt?: string;
  /** Its lane (default normal). */
  priority?: Priority;
  /** When its delayed message becomes visible (ISO). */
  runAfter?: string;
  /** From now, how long until the sweeper may fail the job if nothing moved it on. */
  sweepAfterMs: number;
}

export type ClaimResult = { claimed: true; job: JobRecord } | { claimed: false; job: JobRecord | undefined };

export interface TerminalPatch {
  status: 'succeeded' | 'failed' | 'cancelled';
  outputs?: StoredOutput[];
  error?: JobError;
  /** Replaces the job's input (a worker that learnt facts about it, e.g. an image's dimensions). */
  input?: Record<string, unknown>;
  /** When the claim started the job (the claimed record's startedAt): gives processingMs. */
  startedAt?: string;
}

/** What `cancel` did: see JobsRepo.cancel. */
export type CancelResult =
  | { outcome: 'cancelled' | 'requested' | 'terminal'; job: JobRecord }
  | { outcome: 'missing'; job?: undefined };

/**
 * A remembered Idempotency-Key (an item of the jobs table keyed `idem#<sha256>`, with no
 * `type` or `status`, so no index, list or notification ever sees it).
 */
export interface IdempotencyRecord {
  /** `pending`: its first request is running; `done`: `response` is the answer to replay; `released`: the first request failed, the key is free. */
  state: 'pending' | 'done' | 'released';
  /** What the request was (method, route, body...): a repeat must match it. */
  fingerprint: string;
  /** Which request holds a pending key (only it completes or releases it). */
  owner: string;
  /** Epoch ms after which a pending key's holder is taken for dead (another request may take it over). */
  lockUntil?: number;
  /** The first request's response, as JSON (`{ statusCode, headers, body }`). */
  response?: string;
  /** TTL (epoch seconds). */
  expiresAt: number;
}

export interface ListQuery {
  /** The types to list (one, or every registered type). */
  types: string[];
  status?: JobStatus;
  limit: number;
  cursor?: string;
}

type Key = Record<string, unknown>;

/** The sweep index partition of a job: by its id's first hex digit, so state changes spread over SWEEP_SHARDS partitions. */
export const sweepShardOf = (jobId: string): string => `d${(parseInt(jobId[0] ?? '0', 16) || 0) % SWEEP_SHARDS}`;
export const SWEEP_SHARD_KEYS: readonly string[] = Array.from({ length: SWEEP_SHARDS }, (_, i) => `d${i}`);

/** A status-filtered list reads at most this many items per type and request; then it answers with a cursor. */
export const MAX_FILTERED_READS = 300;

/**
 * The jobs table. Every state change is a conditional write, so duplicate deliveries of a
 * message cannot process a job twice, and only the invocation that holds a job's lease can
 * finish it.
 *
 *   awaiting_upload | queued --claim--> processing --finish--> succeeded | failed | cancelled
 *                                 ^          | release (transient error: retried)
 *                                 +----------+
 *   awaiting_upload | queued --cancel--> cancelled;  processing --cancel--> cancelRequested
 *
 * A claim is also allowed when a previous holder's lease ran out (its invocation died) and
 * for a job that failed with `retries_exhausted` (its message was redriven from the DLQ).
 *
 * Every unfinished job carries a deadline (`sweepAt`, in the sparse byDeadline index):
 * the time after which no delivery can still come for it. The sweeper fails jobs past it;
 * every transition moves it, and a terminal write removes it.
 */
export class JobsRepo {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly ttlDays: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Creates a job; returns undefined when a job with this id exists already. */
  async create(job: NewJob): Promise<JobRecord | undefined> {
    const now = this.now();
    const item: JobRecord = {
      jobId: job.jobId,
      type: job.type,
      status: job.status,
      createdAt: job.createdAt ?? now.toISOString(),
      updatedAt: now.toISOString(),
      attempts: 0,
      priority: job.priority ?? DEFAULT_PRIORITY,
      ...(job.runAfter ? { runAfter: job.runAfter } : {}),
      ...(job.input ? { input: job.input } : {}),
      sweepShard: sweepShardOf(job.jobId),
      sweepAt: now.getTime() + job.sweepAfterMs,
      expiresAt: Math.floor(now.getTime() / 1000) + this.ttlDays * 86400,
    };
    try {
      await this.doc.send(
        new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(jobId)' }),
      );
      return item;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return undefined;
      throw err;
    }
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { jobId }, ConsistentRead: true }));
    return out.Item as JobRecord | undefined;
  }

  /**
   * Takes the job for processing, for leaseMs; the sweeper may fail it `graceMs` after the
   * lease runs out (by then every remaining delivery of its message has been tried).
   */
  async claim(jobId: string, owner: string, leaseMs: number, graceMs: number, input?: Record<string, unknown>): Promise<ClaimResult> {
    const now = this.now();
    const names: Record<string, string> = { '#s': 'status', '#err': 'error' };
    const values: Record<string, unknown> = {
      ':processing': 'processing',
      ':awaiting': 'awaiting_upload',
      ':queued': 'queued',
      ':failed': 'failed',
      ':exhausted': 'retries_exhausted',
      ':owner': owner,
      ':until': now.getTime() + leaseMs,
      ':sweepAt': now.getTime() + leaseMs + graceMs,
      ':shard': sweepShardOf(jobId),
      ':nowMs': now.getTime(),
      ':now': now.toISOString(),
      ':zero': 0,
      ':one': 1,
    };
    const sets = [
      '#s = :processing',
      'attempts = if_not_exists(attempts, :zero) + :one',
      'leaseOwner = :owner',
      'leaseUntil = :until',
      'sweepShard = :shard',
      'sweepAt = :sweepAt',
      'updatedAt = :now',
      'startedAt = if_not_exists(startedAt, :now)',
    ];
    for (const [k, v] of Object.entries(input ?? {})) {
      if (v === undefined) continue;
      names['#input'] = 'input';
      names[`#in_${k}`] = k;
      values[`:in_${k}`] = v;
      sets.push(`#input.#in_${k} = :in_${k}`);
    }
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { jobId },
          UpdateExpression: `SET ${sets.join(', ')} REMOVE #err, completedAt, progress`,
          ConditionExpression:
            'attribute_exists(jobId) AND (#s IN (:awaiting, :queued) OR (#s = :processing AND leaseUntil < :nowMs) OR (#s = :failed AND #err.code = :exhausted))',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { claimed: true, job: out.Attributes as JobRecord };
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) {
        return { claimed: false, job: err.Item ? (unmarshallLoose(err.Item) as unknown as JobRecord) : await this.get(jobId) };
      }
      throw err;
    }
  }

  /** Records progress while processing (only the lease holder can). */
  async progress(jobId: string, owner: string, progress: JobProgress): Promise<void> {
    await this.updateIf({
      Key: { jobId },
      UpdateExpression: 'SET progress = :p, updatedAt = :now',
      ConditionExpression: 'leaseOwner = :owner',
      ExpressionAttributeValues: { ':p': progress, ':now': this.now().toISOString(), ':owner': owner },
    });
  }

  /** Moves the job to its terminal state; returns the new record, or undefined if the lease was lost. */
  async finish(jobId: string, owner: string, patch: TerminalPatch): Promise<JobRecord | undefined> {
    const now = this.now();
    const values: Record<string, unknown> = {
      ':status': patch.status,
      ':now': now.toISOString(),
      ':owner': owner,
      ':processing': 'processing',
      ':outputs': patch.outputs ?? [],
    };
    const sets = ['#s = :status', 'completedAt = :now', 'updatedAt = :now', 'outputs = :outputs'];
    const removes = ['leaseOwner', 'leaseUntil', 'sweepShard', 'sweepAt'];
    if (patch.error) {
      values[':err'] = patch.error;
      sets.push('#err = :err');
    } else {
      removes.push('#err');
    }
    if (patch.input) {
      values[':input'] = patch.input;
      sets.push('#input = :input');
    }
    if (patch.startedAt) {
      values[':ms'] = now.getTime() - Date.parse(patch.startedAt);
      sets.push('processingMs = :ms');
    }
    return this.updateIf({
      Key: { jobId },
      UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
      ConditionExpression: '#s = :processing AND leaseOwner = :owner',
      ExpressionAttributeNames: { '#s': 'status', '#err': 'error', ...(patch.input ? { '#input': 'input' } : {}) },
      ExpressionAttributeValues: values,
      ReturnValues: 'ALL_NEW',
    });
  }

  /**
   * Gives the job back after a transient error, so it waits (queued) for the message's next
   * delivery; the sweeper may fail it `sweepAfterMs` from now.
   */
  async release(jobId: string, owner: string, lastError: JobError, sweepAfterMs: number): Promise<void> {
    const now = this.now();
    await this.updateIf({
      Key: { jobId },
      UpdateExpression: 'SET #s = :queued, lastError = :err, updatedAt = :now, sweepAt = :sweepAt REMOVE leaseOwner, leaseUntil',
      ConditionExpression: '#s = :processing AND leaseOwner = :owner',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':queued': 'queued',
        ':processing': 'processing',
        ':owner': owner,
        ':err': lastError,
        ':now': now.toISOString(),
        ':sweepAt': now.getTime() + sweepAfterMs,
      },
    });
  }

  /**
   * Cancels a job: one not started yet (`awaiting_upload` or `queued`) becomes `cancelled` at
   * once (terminal: no claim takes it any more, so its message is acknowledged without work
   * and a late upload does not revive it); a `processing` one gets `cancelRequested`, which
   * its worker polls (it then ends the job `cancelled`, or `succeeded` if the work finished
   * first: its terminal write is conditional on its lease). A finished job is left as it is
   * (`terminal`). Each step is a conditional write; when the job moved on in between (e.g. a
   * release back to `queued`), it tries again on the state it finds.
   */
  async cancel(jobId: string): Promise<CancelResult> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.now().toISOString();
      let old: JobRecord | undefined;
      try {
        const out = await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { jobId },
            UpdateExpression:
              'SET #s = :cancelled, completedAt = :now, updatedAt = :now, outputs = :none REMOVE leaseOwner, leaseUntil, sweepShard, sweepAt',
            ConditionExpression: 'attribute_exists(#t) AND #s IN (:awaiting, :queued)',
            ExpressionAttributeNames: { '#s': 'status', '#t': 'type' },
            ExpressionAttributeValues: { ':cancelled': 'cancelled', ':awaiting': 'awaiting_upload', ':queued': 'queued', ':now': now, ':none': [] },
            ReturnValues: 'ALL_NEW',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { outcome: 'cancelled', job: out.Attributes as JobRecord };
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
        old = err.Item ? (unmarshallLoose(err.Item) as unknown as JobRecord) : await this.get(jobId);
      }
      if (!old?.type) return { outcome: 'missing' };
      if (isTerminal(old.status)) return { outcome: 'terminal', job: old };
      if (old.status !== 'processing') continue;
      const requested = await this.updateIf({
        Key: { jobId },
        UpdateExpression: 'SET cancelRequested = :yes, updatedAt = :now',
        ConditionExpression: '#s = :processing',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':yes': true, ':now': now, ':processing': 'processing' },
        ReturnValues: 'ALL_NEW',
      });
      if (requested) return { outcome: 'requested', job: requested };
    }
    throw new Error(`job ${jobId} kept changing while it was being cancelled`);
  }

  /** Whether cancellation was asked for (a consistent read of one attribute: what a worker polls while it works). */
  async isCancelRequested(jobId: string): Promise<boolean> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { jobId }, ConsistentRead: true, ProjectionExpression: 'cancelRequested' }),
    );
    return out.Item?.cancelRequested === true;
  }

  /**
   * Takes an Idempotency-Key for one request (`id` is `idem#<sha256>`): a conditional put of
   * a `pending` record, which succeeds when the key is new, expired (TTL deletion lags),
   * released by a request that failed, or held by a request that died (`lockUntil` passed).
   * Otherwise it returns the record that holds the key.
   */
  async idemBegin(
    id: string,
    take: { fingerprint: string; owner: string; lockMs: number; ttlSeconds: number },
  ): Promise<{ won: true } | { won: false; record: IdempotencyRecord | undefined }> {
    const nowMs = this.now().getTime();
    const nowSec = Math.floor(nowMs / 1000);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            jobId: id,
            idemState: 'pending',
            idemFingerprint: take.fingerprint,
            idemOwner: take.owner,
            idemLockUntil: nowMs + take.lockMs,
            expiresAt: nowSec + take.ttlSeconds,
          },
          ConditionExpression:
            'attribute_not_exists(jobId) OR expiresAt < :nowSec OR idemState = :released OR (idemState = :pending AND idemLockUntil < :nowMs)',
          ExpressionAttributeValues: { ':nowSec': nowSec, ':nowMs': nowMs, ':released': 'released', ':pending': 'pending' },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { won: true };
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      return { won: false, record: err.Item ? idemRecord(unmarshallLoose(err.Item)) : await this.idemGet(id) };
    }
  }

  /** The record of an Idempotency-Key (consistent read), or undefined (none, or expired). */
  async idemGet(id: string): Promise<IdempotencyRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { jobId: id }, ConsistentRead: true }));
    const record = out.Item ? idemRecord(out.Item) : undefined;
    return record && record.expiresAt >= Math.floor(this.now().getTime() / 1000) ? record : undefined;
  }

  /** Stores the response of the request that holds the key; false if it does not hold it any more. */
  async idemComplete(id: string, owner: string, response: string): Promise<boolean> {
    const done = await this.updateIf({
      Key: { jobId: id },
      UpdateExpression: 'SET idemState = :done, idemResponse = :r REMOVE idemLockUntil',
      ConditionExpression: 'idemOwner = :owner AND idemState = :pending',
      ExpressionAttributeValues: { ':done': 'done', ':r': response, ':owner': owner, ':pending': 'pending' },
    });
    return done !== undefined;
  }

  /** Frees the key after its request failed (nothing is remembered for it), so a retry runs. */
  async idemRelease(id: string, owner: string): Promise<void> {
    await this.updateIf({
      Key: { jobId: id },
      UpdateExpression: 'SET idemState = :released REMOVE idemLockUntil',
      ConditionExpression: 'idemOwner = :owner AND idemState = :pending',
      ExpressionAttributeValues: { ':released': 'released', ':owner': owner, ':pending': 'pending' },
    });
  }

  /** Unfinished jobs of one sweep partition whose deadline passed before `nowMs`, oldest first. */
  async *due(shard: string, nowMs: number): AsyncGenerator<Pick<JobRecord, 'jobId' | 'type' | 'status' | 'sweepAt' | 'cancelRequested'>> {
    yield* this.queryAll({
      IndexName: INDEXES.byDeadline,
      KeyConditionExpression: 'sweepShard = :s AND sweepAt < :now',
      ExpressionAttributeValues: { ':s': shard, ':now': nowMs },
    });
  }

  /**
   * Fails a job whose deadline passed: only if nothing moved it since it was found (its
   * `sweepAt` is still the one read, so a claim or release in between wins). A job whose
   * cancellation was asked for (`cancelRequested`, read from the deadline index with the rest:
   * its worker died before it could stop) ends `cancelled` instead. One conditional write
   * either way.
   */
  async sweep(jobId: string, sweepAt: number, error: JobError, cancelRequested = false): Promise<JobRecord | undefined> {
    if (!cancelRequested) return this.failIf(jobId, error, 'sweepAt = :found', { ':found': sweepAt });
    const now = this.now().toISOString();
    return this.updateIf({
      Key: { jobId },
      UpdateExpression:
        'SET #s = :cancelled, completedAt = :now, updatedAt = :now, outputs = :none REMOVE leaseOwner, leaseUntil, sweepShard, sweepAt',
      ConditionExpression: 'attribute_exists(jobId) AND sweepAt = :found AND cancelRequested = :yes',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':cancelled': 'cancelled', ':now': now, ':none': [], ':found': sweepAt, ':yes': true },
      ReturnValues: 'ALL_NEW',
    });
  }

  /**
   * Fails a queued job whose message could not be sent or whose upload could not be stored
   * (so nothing would ever run it); a no-op once anything else has moved the job on.
   */
  async failQueued(jobId: string, error: JobError): Promise<JobRecord | undefined> {
    return this.failIf(jobId, error, '#s = :queued', { ':queued': 'queued' });
  }

  private async failIf(jobId: string, error: JobError, condition: string, values: Record<string, unknown>): Promise<JobRecord | undefined> {
    const now = this.now().toISOString();
    return this.updateIf({
      Key: { jobId },
      UpdateExpression:
        'SET #s = :failed, #err = :err, completedAt = :now, updatedAt = :now, outputs = :none REMOVE leaseOwner, leaseUntil, sweepShard, sweepAt',
      ConditionExpression: `attribute_exists(jobId) AND (${condition})`,
      ExpressionAttributeNames: { '#s': 'status', '#err': 'error' },
      ExpressionAttributeValues: { ':failed': 'failed', ':err': error, ':now': now, ':none': [], ...values },
      ReturnValues: 'ALL_NEW',
    });
  }

  /**
   * One conditional update of this table: the record as the update left it (with
   * ReturnValues ALL_NEW; `{}` without), or undefined when the condition did not hold.
   */
  private async updateIf(input: Omit<UpdateCommandInput, 'TableName'>): Promise<JobRecord | undefined> {
    try {
      const out = await this.doc.send(new UpdateCommand({ TableName: this.table, ...input }));
      return (out.Attributes ?? {}) as JobRecord;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return undefined;
      throw err;
    }
  }

  /** Streams the jobs of one type created in [fromIso, toIso], oldest first, page by page. */
  async *streamByType(type: string, fromIso: string, toIso: string, pageSize = 500): AsyncGenerator<JobRecord> {
    yield* this.queryAll({
      IndexName: INDEXES.byType,
      KeyConditionExpression: '#t = :t AND createdAt BETWEEN :a AND :b',
      ExpressionAttributeNames: { '#t': 'type' },
      ExpressionAttributeValues: { ':t': type, ':a': fromIso, ':b': toIso },
      Limit: pageSize,
    });
  }

  /** Every item a query matches, page after page (the SDK's paginator; `Limit` is the page size). */
  private async *queryAll<T = JobRecord>(input: Omit<QueryCommandInput, 'TableName'>): AsyncGenerator<T> {
    for await (const page of paginateQuery({ client: this.doc }, { TableName: this.table, ...input })) {
      for (const item of page.Items ?? []) yield item as T;
    }
  }

  /**
   * Newest jobs first, of one type or of several (one query per type, merged by creation
   * time). The cursor holds each type's position. With a status filter each type reads at
   * most MAX_FILTERED_READS items per request: a page may then hold fewer than `limit` jobs
   * (even none) and still carry a cursor.
   */
  async list(q: ListQuery): Promise<{ jobs: JobRecord[]; nextCursor: string | null }> {
    const types = [...q.types].sort();
    const positions = decodeCursor(q.cursor, types);
    const pages = await Promise.all(
      types.map(async (type) => {
        const pos = positions[type];
        if (pos === null) return { type, items: [] as JobRecord[], next: null };
        return { type, ...(await this.queryType(type, q.status, q.limit, pos)) };
      }),
    );
    const merged = pages
      .flatMap((p) => p.items.map((item) => ({ type: p.type, item })))
      .sort((a, b) => (a.item.createdAt < b.item.createdAt ? 1 : a.item.createdAt > b.item.createdAt ? -1 : 0))
      .slice(0, q.limit);
    const next: Record<string, Key | typeof START | null | undefined> = {};
    let more = false;
    for (const page of pages) {
      const taken = merged.filter((m) => m.type === page.type);
      if (taken.length === page.items.length) {
        // Every job read was taken: go on from where the read stopped.
        next[page.type] = page.next;
        if (page.next !== null) more = true;
      } else {
        more = true;
        const last = taken.at(-1)?.item;
        next[page.type] = last ? indexKey(last) : (positions[page.type] ?? START);
      }
    }
    return { jobs: merged.map((m) => m.item), nextCursor: more ? encodeCursor(next) : null };
  }

  /** Up to `limit` jobs of one type after `startKey`, and where to go on from (null: nothing more). */
  private async queryType(
    type: string,
    status: JobStatus | undefined,
    limit: number,
    startKey: Key | undefined,
  ): Promise<{ items: JobRecord[]; next: Key | null }> {
    const items: JobRecord[] = [];
    let key = startKey;
    let read = 0;
    // A status filter applies after Limit, so keep reading until the page is full or the read budget is spent.
    do {
      const input: QueryCommandInput = {
        TableName: this.table,
        IndexName: INDEXES.byType,
        KeyConditionExpression: '#t = :t',
        ExpressionAttributeNames: { '#t': 'type', ...(status ? { '#s': 'status' } : {}) },
        ExpressionAttributeValues: { ':t': type, ...(status ? { ':s': status } : {}) },
        ...(status ? { FilterExpression: '#s = :s' } : {}),
        ScanIndexForward: false,
        ExclusiveStartKey: key,
        Limit: status ? Math.min(Math.max(limit, 100), MAX_FILTERED_READS - read) : limit,
      };
      const out = await this.doc.send(new QueryCommand(input));
      read += out.ScannedCount ?? 0;
      const page = (out.Items ?? []) as JobRecord[];
      let i = 0;
      for (; i < page.length && items.length < limit; i++) items.push(page[i]);
      if (items.length >= limit) {
        const done = i === page.length && !out.LastEvaluatedKey;
        return { items, next: done ? null : i < page.length ? indexKey(items.at(-1)!) : (out.LastEvaluatedKey ?? null) };
      }
      key = out.LastEvaluatedKey;
      if (key && status && read >= MAX_FILTERED_READS) return { items, next: key };
    } while (key);
    return { items, next: null };
  }
}

export class InvalidCursorError extends Error {}

/** A type's position in a cursor before any of its jobs was taken. */
const START = 'start';

const indexKey = (job: JobRecord): Key => ({ jobId: job.jobId, type: job.type, createdAt: job.createdAt });

function encodeCursor(positions: Record<string, Key | typeof START | null | undefined>): string {
  return Buffer.from(JSON.stringify(positions)).toString('base64url');
}

function decodeCursor(cursor: string | undefined, types: string[]): Record<string, Key | null | undefined> {
  const positions: Record<string, Key | null | undefined> = {};
  if (!cursor) return positions;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('cursor is not valid');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidCursorError('cursor is not valid');
  if (Object.keys(parsed).sort().join(',') !== types.join(',')) {
    throw new InvalidCursorError(`cursor does not belong to this query (types ${types.join(', ')})`);
  }
  for (const type of types) {
    const pos = (parsed as Record<string, unknown>)[type];
    if (pos === undefined) throw new InvalidCursorError(`cursor does not belong to this query (type ${type})`);
    if (pos === null) {
      positions[type] = null;
      continue;
    }
    if (pos === START) continue;
    // Only a key of the index, rebuilt from exactly its three attributes, reaches DynamoDB.
    const k = pos as Record<string, unknown>;
    const keys = typeof k === 'object' && !Array.isArray(k) ? Object.keys(k).sort().join(',') : '';
    if (
      keys !== 'createdAt,jobId,type' ||
      k.type !== type ||
      !isJobId(k.jobId) ||
      typeof k.createdAt !== 'string' ||
      !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/.test(k.createdAt) ||
      Number.isNaN(Date.parse(k.createdAt))
    ) {
      throw new InvalidCursorError('cursor is not valid');
    }
    positions[type] = { jobId: k.jobId, type, createdAt: k.createdAt };
  }
  return positions;
}

function idemRecord(item: Record<string, unknown>): IdempotencyRecord {
  return {
    state: item.idemState as IdempotencyRecord['state'],
    fingerprint: String(item.idemFingerprint ?? ''),
    owner: String(item.idemOwner ?? ''),
    ...(typeof item.idemLockUntil === 'number' ? { lockUntil: item.idemLockUntil } : {}),
    ...(typeof item.idemResponse === 'string' ? { response: item.idemResponse } : {}),
    expiresAt: Number(item.expiresAt ?? 0),
  };
}

/** ALL_OLD on a failed condition comes back marshalled (AttributeValue map). */
function unmarshallLoose(item: Record<string, unknown>): Record<string, unknown> {
  return unmarshall(item as Parameters<typeof unmarshall>[0]);
}
