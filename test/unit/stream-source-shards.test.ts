import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record,
  type DynamoDBStreamsClient,
  type Shard,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoStreamEventSource, type StreamSourceConfig } from '../../local/stream-source';
import { streamSourceConfig } from '../helpers/stream-config';

/**
 * Shard lineage, which moto cannot show (its streams have one shard that never closes):
 * a fake DynamoDB Streams API with a parent shard that closes and children that appear.
 */
const ARN = 'arn:aws:dynamodb:us-east-1:123456789012:table/jobs/stream/2026-01-01T00:00:00.000';

class FakeStreams {
  shards: Shard[] = [];
  /** Records per shard; a shard is closed when `closed` has it (GetRecords then ends it). */
  records = new Map<string, _Record[]>();
  closed = new Set<string>();
  iteratorRequests: Array<{ shardId: string; type: string; seq?: string }> = [];
  describes = 0;

  add(shardId: string, parent: string | undefined, ids: string[]) {
    this.shards.push({ ShardId: shardId, ParentShardId: parent, SequenceNumberRange: { StartingSequenceNumber: '0' } });
    this.records.set(
      shardId,
      ids.map((id, i) => ({
        eventID: `${shardId}-${i}`,
        eventName: 'INSERT',
        awsRegion: 'us-east-1',
        dynamodb: { Keys: { id: { S: id } }, NewImage: { id: { S: id } }, SequenceNumber: `${shardId.length}${i}`, SizeBytes: 10, StreamViewType: 'NEW_AND_OLD_IMAGES', ApproximateCreationDateTime: new Date() },
      })),
    );
  }

  send = async (cmd: unknown): Promise<any> => {
    if (cmd instanceof DescribeStreamCommand) {
      this.describes++;
      return { StreamDescription: { StreamArn: ARN, Shards: [...this.shards] } };
    }
    if (cmd instanceof GetShardIteratorCommand) {
      const { ShardId, ShardIteratorType, SequenceNumber } = cmd.input;
      this.iteratorRequests.push({ shardId: ShardId!, type: ShardIteratorType!, seq: SequenceNumber });
      const all = this.records.get(ShardId!)!;
      const at = ShardIteratorType === 'LATEST' ? all.length : 0;
      return { ShardIterator: JSON.stringify({ shard: ShardId, at }) };
    }
    if (cmd instanceof GetRecordsCommand) {
      const { shard, at } = JSON.parse(cmd.input.ShardIterator!) as { shard: string; at: number };
      const all = this.records.get(shard)!;
      const got = all.slice(at, at + (cmd.input.Limit ?? 1000));
      const next = at + got.length;
      const done = this.closed.has(shard) && next >= all.length;
      return { Records: got, NextShardIterator: done ? undefined : JSON.stringify({ shard, at: next }) };
    }
    throw new Error(`unexpected command ${(cmd as object).constructor.name}`);
  };
}

const config = (over: Partial<StreamSourceConfig> = {}): StreamSourceConfig => streamSourceConfig(ARN, over);

const sources: DynamoStreamEventSource[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
});

function run(fake: FakeStreams, over: Partial<StreamSourceConfig> = {}) {
  const seen: string[] = [];
  /** Which shards were closed when each record was delivered. */
  const closedAt: Record<string, string[]> = {};
  const source = new DynamoStreamEventSource(
    fake as unknown as Pick<DynamoDBStreamsClient, 'send'>,
    undefined,
    config(over),
    async (event: DynamoDBStreamEvent) => {
      for (const r of event.Records) {
        seen.push(r.dynamodb!.Keys!.id.S!);
        closedAt[r.dynamodb!.Keys!.id.S!] = [...fake.closed];
      }
      return { ok: true, result: null, ms: 1 };
    },
    { pollIntervalMs: 5, describeIntervalMs: 60_000 },
  );
  sources.push(source);
  source.start();
  return { source, seen, closedAt };
}

describe('DynamoStreamEventSource shards', () => {
  it('reads a child shard only after its parent is drained, and finds new shards when one closes', async () => {
    const fake = new FakeStreams();
    fake.add('shard-parent', undefined, ['p1', 'p2']);
    fake.add('shard-child', 'shard-parent', ['c1']);
    const { source, seen, closedAt } = run(fake);
    await expect.poll(() => seen).toEqual(['p1', 'p2']);
    expect(source.stats.shards).toBe(2); // the child has its iterator, but waits

    // The parent closes (a split): a new shard shows up and is read from its start.
    fake.add('shard-late', 'shard-parent', ['n1']);
    fake.closed.add('shard-parent');
    await expect.poll(() => [...seen].sort()).toEqual(['c1', 'n1', 'p1', 'p2']);
    expect(seen.slice(0, 2)).toEqual(['p1', 'p2']);
    expect(closedAt.c1).toEqual(['shard-parent']); // not before the parent was done
    expect(fake.describes).toBeGreaterThanOrEqual(2); // the second came from the close, not the 60 s timer
    expect(fake.iteratorRequests.find((r) => r.shardId === 'shard-late')?.type).toBe('TRIM_HORIZON');
  });

  it('LATEST applies to the shards there at the start, not to those that appear later', async () => {
    const fake = new FakeStreams();
    fake.add('shard-a', undefined, ['old']);
    const { source, seen } = run(fake, { startingPosition: 'LATEST' });
    await expect.poll(() => source.stats.shards).toBe(1);
    fake.records.get('shard-a')!.push({ ...fake.records.get('shard-a')![0], dynamodb: { ...fake.records.get('shard-a')![0].dynamodb, Keys: { id: { S: 'new' } }, SequenceNumber: '99' } });
    fake.add('shard-b', 'shard-a', ['b1']);
    fake.closed.add('shard-a');
    await expect.poll(() => seen).toEqual(['new', 'b1']);
    expect(fake.iteratorRequests.map((r) => `${r.shardId} ${r.type}`)).toEqual(['shard-a LATEST', 'shard-b TRIM_HORIZON']);
  });
});
