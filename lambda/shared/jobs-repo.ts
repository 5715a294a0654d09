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
import { LEASE_SHARD, type JobError, type JobRecord, type JobStatus, type JobType, type StoredOutput, type ThumbnailInput } from './model';

export interface NewJob {
  jobId: string;
  type: JobType;
  status: JobStatus;
  input?: ThumbnailInput;
  params?: JobRecord['params'];
  createdAt?: string;
}

export type ClaimResult = { claimed: true; job: JobRecord } | { claimed: false; job: JobRecord | undefined };

export interface TerminalPatch {
  status: 'succeeded' | 'failed';
  outputs?: StoredOutput[];
  error?: JobError;
  input?: ThumbnailInput;
  /** When the claim started the job (the claimed record's startedAt): gives processingMs. */
  startedAt?: string;
}

export interface ListQuery {
  type?: JobType;
  status?: JobStatus;
  limit: number;
  cursor?: string;
}

type Key = Record<string, unknown>;

/**
 * The jobs table. Every state change is a conditional write, so duplicate deliveries of a
 * message cannot process a job twice, and only the invocation that holds a job's lease can
 * finish it.
 *
 *   awaiting_upload | queued --claim--> processing --finish--> succeeded | failed
 *                                 ^          | release (transient error: retried)
 *                                 +----------+
 *
 * A claim is also allowed when a previous holder's lease ran out (its invocation died) and
 * for a job that failed with `retries_exhausted` (its message was redriven from the DLQ).
 */
export class JobsRepo {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly index: string,
    private readonly ttlDays: number,
    private readonly now: () => Date = () => new Date(),
    private readonly leasesIndex: string = 'byLease',
  ) {}

  /** Creates a job; returns false when a job with this id exists already. */
  async create(job: NewJob): Promise<JobRecord | undefined> {
    const now = this.now();
    const item: JobRecord = {
      jobId: job.jobId,
      type: job.type,
      status: job.status,
      createdAt: job.createdAt ?? now.toISOString(),
      updatedAt: now.toISOString(),
      attempts: 0,
      ...(job.input ? { input: job.input } : {}),
      ...(job.params ? { params: job.params } : {}),
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

  /** Takes the job for processing, for leaseMs. */
  async claim(jobId: string, owner: string, leaseMs: number, input?: Partial<ThumbnailInput>): Promise<ClaimResult> {
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
      ':nowMs': now.getTime(),
      ':now': now.toISOString(),
      ':zero': 0,
      ':one': 1,
      ':shard': LEASE_SHARD,
    };
    const sets = [
      '#s = :processing',
      'attempts = if_not_exists(attempts, :zero) + :one',
      'leaseOwner = :owner',
      'leaseUntil = :until',
      'leaseShard = :shard',
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
          UpdateExpression: `SET ${sets.join(', ')} REMOVE #err, completedAt, notifiedAt, progress`,
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
  async progress(jobId: string, owner: string, done: number, total?: number): Promise<void> {
    await this.updateIf({
      Key: { jobId },
      UpdateExpression: 'SET progress = :p, updatedAt = :now',
      ConditionExpression: 'leaseOwner = :owner',
      ExpressionAttributeValues: {
        ':p': total === undefined ? { done } : { done, total },
        ':now': this.now().toISOString(),
        ':owner': owner,
      },
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
    const removes = ['leaseOwner', 'leaseUntil', 'leaseShard'];
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

  /** Gives the job back after a transient error, so it waits (queued) for the message's next delivery. */
  async release(jobId: string, owner: string, lastError: JobError): Promise<void> {
    await this.updateIf({
      Key: { jobId },
      UpdateExpression: 'SET #s = :queued, lastError = :err, updatedAt = :now REMOVE leaseOwner, leaseUntil, leaseShard',
      ConditionExpression: '#s = :processing AND leaseOwner = :owner',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':queued': 'queued',
        ':processing': 'processing',
        ':owner': owner,
        ':err': lastError,
        ':now': this.now().toISOString(),
      },
    });
  }

  /** Jobs whose lease ran out before `cutoffMs` (epoch ms), oldest first, from the sparse leases index. */
  async *expiredLeases(cutoffMs: number): AsyncGenerator<Pick<JobRecord, 'jobId' | 'type' | 'leaseUntil'>> {
    yield* this.queryAll({
      IndexName: this.leasesIndex,
      KeyConditionExpression: 'leaseShard = :s AND leaseUntil < :cutoff',
      ExpressionAttributeValues: { ':s': LEASE_SHARD, ':cutoff': cutoffMs },
    });
  }

  /**
   * Fails a job whose last holder died and whose message will not come back (it went to
   * the DLQ): only if the lease is still the one that was found expired.
   */
  async abandon(jobId: string, leaseUntil: number, error: JobError): Promise<JobRecord | undefined> {
    return this.failIf(jobId, error, '#s = :processing AND leaseUntil = :lu', { ':processing': 'processing', ':lu': leaseUntil });
  }

  /**
   * Fails a job whose message is in the DLQ while the job never finished: never claimed
   * (every delivery failed before the handler ran) or held by an expired lease.
   */
  async failDeadLettered(jobId: string, error: JobError): Promise<JobRecord | undefined> {
    return this.failIf(jobId, error, '#s IN (:awaiting, :queued) OR (#s = :processing AND leaseUntil < :nowMs)', {
      ':awaiting': 'awaiting_upload',
      ':queued': 'queued',
      ':processing': 'processing',
      ':nowMs': this.now().getTime(),
    });
  }

  /**
   * Fails a queued job whose message could not be sent (so nothing would ever run it); a
   * no-op once anything else has moved the job on.
   */
  async failQueued(jobId: string, error: JobError): Promise<JobRecord | undefined> {
    return this.failIf(jobId, error, '#s = :queued', { ':queued': 'queued' });
  }

  private async failIf(jobId: string, error: JobError, condition: string, values: Record<string, unknown>): Promise<JobRecord | undefined> {
    const now = this.now().toISOString();
    return this.updateIf({
      Key: { jobId },
      UpdateExpression:
        'SET #s = :failed, #err = :err, completedAt = :now, updatedAt = :now, outputs = :none REMOVE leaseOwner, leaseUntil, leaseShard',
      ConditionExpression: `attribute_exists(jobId) AND (${condition})`,
      ExpressionAttributeNames: { '#s': 'status', '#err': 'error' },
      ExpressionAttributeValues: { ':failed': 'failed', ':err': error, ':now': now, ':none': [], ...values },
      ReturnValues: 'ALL_NEW',
    });
  }

  /** Marks the completion notification as sent; false if it was marked already. */
  async markNotified(jobId: string, completedAt: string): Promise<boolean> {
    const marked = await this.updateIf({
      Key: { jobId },
      UpdateExpression: 'SET notifiedAt = :now',
      ConditionExpression: 'attribute_not_exists(notifiedAt) AND completedAt = :completedAt',
      ExpressionAttributeValues: { ':now': this.now().toISOString(), ':completedAt': completedAt },
    });
    return marked !== undefined;
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
  async *streamByType(type: JobType, fromIso: string, toIso: string, pageSize = 500): AsyncGenerator<JobRecord> {
    yield* this.queryAll({
      IndexName: this.index,
      KeyConditionExpression: '#t = :t AND createdAt BETWEEN :a AND :b',
      ExpressionAttributeNames: { '#t': 'type' },
      ExpressionAttributeValues: { ':t': type, ':a': fromIso, ':b': toIso },
      Limit: pageSize,
    });
  }

  /** Every item a query matches, page after page (the SDK's paginator; `Limit` is the page size). */
  private async *queryAll(input: Omit<QueryCommandInput, 'TableName'>): AsyncGenerator<JobRecord> {
    for await (const page of paginateQuery({ client: this.doc }, { TableName: this.table, ...input })) {
      for (const item of page.Items ?? []) yield item as JobRecord;
    }
  }

  /**
   * Newest jobs first, of one type or of every type (one query per type, merged by
   * creation time). The cursor holds each type's position.
   */
  async list(q: ListQuery): Promise<{ jobs: JobRecord[]; nextCursor: string | null }> {
    const types: JobType[] = q.type ? [q.type] : ['report', 'thumbnail'];
    const positions = decodeCursor(q.cursor, types);
    const pages = await Promise.all(
      types.map(async (type) => {
        const pos = positions[type];
        if (pos === null) return { type, items: [] as JobRecord[], exhausted: true };
        return { type, ...(await this.queryType(type, q.status, q.limit, pos)) };
      }),
    );
    const merged = pages
      .flatMap((p) => p.items.map((item) => ({ type: p.type, item })))
      .sort((a, b) => (a.item.createdAt < b.item.createdAt ? 1 : a.item.createdAt > b.item.createdAt ? -1 : 0))
      .slice(0, q.limit);
    const next: Record<string, Key | null | undefined> = {};
    let more = false;
    for (const page of pages) {
      const taken = merged.filter((m) => m.type === page.type);
      const allTaken = taken.length === page.items.length;
      if (allTaken && page.exhausted) {
        next[page.type] = null;
      } else {
        more = true;
        const last = taken.at(-1)?.item;
        next[page.type] = last ? { jobId: last.jobId, type: last.type, createdAt: last.createdAt } : positions[page.type];
      }
    }
    return { jobs: merged.map((m) => m.item), nextCursor: more ? encodeCursor(next) : null };
  }

  private async queryType(
    type: JobType,
    status: JobStatus | undefined,
    limit: number,
    startKey: Key | undefined,
  ): Promise<{ items: JobRecord[]; exhausted: boolean }> {
    const items: JobRecord[] = [];
    let key = startKey;
    // A status filter applies after Limit, so keep reading until the page is full.
    do {
      const input: QueryCommandInput = {
        TableName: this.table,
        IndexName: this.index,
        KeyConditionExpression: '#t = :t',
        ExpressionAttributeNames: { '#t': 'type', ...(status ? { '#s': 'status' } : {}) },
        ExpressionAttributeValues: { ':t': type, ...(status ? { ':s': status } : {}) },
        ...(status ? { FilterExpression: '#s = :s' } : {}),
        ScanIndexForward: false,
        ExclusiveStartKey: key,
        Limit: status ? Math.max(limit, 100) : limit,
      };
      const out = await this.doc.send(new QueryCommand(input));
      const page = (out.Items ?? []) as JobRecord[];
      let i = 0;
      for (; i < page.length && items.length < limit; i++) items.push(page[i]);
      if (items.length >= limit) return { items, exhausted: i === page.length && !out.LastEvaluatedKey };
      key = out.LastEvaluatedKey;
    } while (key);
    return { items, exhausted: true };
  }
}

export class InvalidCursorError extends Error {}

function encodeCursor(positions: Record<string, Key | null | undefined>): string {
  return Buffer.from(JSON.stringify(positions)).toString('base64url');
}

function decodeCursor(cursor: string | undefined, types: JobType[]): Record<string, Key | null | undefined> {
  const positions: Record<string, Key | null | undefined> = {};
  if (!cursor) return positions;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('cursor is not valid');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidCursorError('cursor is not valid');
  for (const type of types) {
    const pos = (parsed as Record<string, unknown>)[type];
    if (pos === undefined) {
      throw new InvalidCursorError(`cursor does not belong to this query (type ${type})`);
    }
    if (pos === null) {
      positions[type] = null;
      continue;
    }
    // Only a key of the index, rebuilt from exactly its three attributes, reaches DynamoDB.
    const k = pos as Record<string, unknown>;
    const keys = typeof k === 'object' && !Array.isArray(k) ? Object.keys(k).sort().join(',') : '';
    if (
      keys !== 'createdAt,jobId,type' ||
      k.type !== type ||
      typeof k.jobId !== 'string' ||
      !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(k.jobId) ||
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

/** ALL_OLD on a failed condition comes back marshalled (AttributeValue map). */
function unmarshallLoose(item: Record<string, unknown>): Record<string, unknown> {
  return unmarshall(item as Parameters<typeof unmarshall>[0]);
}
