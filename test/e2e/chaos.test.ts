import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startLocal, type LocalHandle } from '../../local';
import { drainNotifications } from './notifications';

/**
 * Reliability under faults: a local-mode instance of its own, with the local runtime
 * injecting failures into every invocation it makes from a queue, the table's stream and the
 * schedule (see local/faults.ts): throw 5 %, timeout 3 % (killed at a random moment),
 * lost acknowledgement 3 %, and crash 12 %: the environment SIGKILLed at a step drawn evenly
 * from right after the worker's claim, in the middle of its work (after its 2nd-6th AWS
 * call), and after its terminal write (the handler returned, the acknowledgement not sent);
 * for the notifier, between two publishes of a stream batch; for the sweeper, between two of
 * its writes. 300 photo jobs go through it.
 */
const JOBS = 300;
const FAULTS = 'throw=0.05,timeout=0.03,lose-ack=0.03,crash=0.12';
let local: LocalHandle;
let logFile: string;
/** Invocations whose environment was killed (injected timeouts, and any real timeout or crash). */
let killedInvocations = 0;
/** Scheduled sweeper runs killed by a crash fault. */
let sweeperCrashes = 0;

const cfg = () => ({ endpoint: local.awsEndpoint, region: local.region, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

beforeAll(async () => {
  logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'offload-chaos-')), 'local.log');
  const out = fs.createWriteStream(logFile);
  local = await startLocal({
    port: 0,
    stateFile: null,
    faults: FAULTS,
    faultSeed: Number(process.env.OFFLOAD_CHAOS_SEED ?? 20261123),
    log: (line) => {
      if (/^\[thumbnail poller\] invocation failed \((timeout|crash)\)/.test(line)) killedInvocations++;
      if (/scheduled run killed by fault injection/.test(line)) sweeperCrashes++;
      out.write(`${line}\n`);
    },
    // Short timeouts: visibility 18 s, sweeper grace after a lease 36-108 s (by receives left), swept every minute;
    // retries after at most 5 s; a job whose every delivery failed before its handler ran is
    // failed once the queue's retention (300 s, longer than any job here waits in the queue) is past.
    context: {
      thumbnailTimeoutSeconds: '3',
      thumbnailBatchSize: '2',
      thumbnailMaxConcurrency: '4',
      sweepIntervalMinutes: '1',
      'jobs.thumbnail.maxQueuedSeconds': '300',
      'jobs.thumbnail.retryBaseSeconds': '1',
      'jobs.thumbnail.retryMaxSeconds': '5',
    },
  });
}, 600_000);

afterAll(async () => {
  await local?.stop();
});

async function api(method: string, p: string, init: { body?: Uint8Array; headers?: Record<string, string> } = {}) {
  const res = await fetch(new URL(p, local.apiUrl), { method, headers: { 'x-api-key': local.apiKey, ...init.headers }, body: init.body });
  return { status: res.status, json: (await res.json()) as any };
}

async function allThumbnailJobs(): Promise<any[]> {
  const jobs: any[] = [];
  let cursor: string | null = null;
  do {
    const res: any = await api('GET', `jobs?type=thumbnail&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    jobs.push(...res.json.jobs);
    cursor = res.json.nextCursor;
  } while (cursor);
  return jobs;
}

describe('chaos', () => {
  it(`${JOBS} photo jobs under injected faults: none stuck, nothing lost, one notification each`, async () => {
    const sqs = new SQSClient(cfg());
    const sns = new SNSClient(cfg());
    const s3 = new S3Client(cfg());
    const sub = await sqs.send(new CreateQueueCommand({ QueueName: 'chaos-subscriber' }));
    const subArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: sub.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn;
    await sns.send(new SubscribeCommand({ TopicArn: local.outputs.NotificationTopicArn, Protocol: 'sqs', Endpoint: subArn, Attributes: { RawMessageDelivery: 'true' } }));

    // 300 distinct small photos, uploaded directly, 8 at a time.
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < JOBS) {
          const i = next++;
          const img = await sharp({ create: { width: 240 + (i % 50), height: 180, channels: 3, background: { r: i % 256, g: (i * 7) % 256, b: 90 } } })
            .jpeg()
            .toBuffer();
          const res = await api('POST', `uploads?filename=chaos-${i}.jpg`, { body: new Uint8Array(img), headers: { 'content-type': 'image/jpeg' } });
          expect(res.status).toBe(202);
          ids.push(res.json.jobId);
        }
      }),
    );

    // Every job ends succeeded or failed: none stuck in queued or processing.
    const jobs: any[] = await vi.waitFor(
      async () => {
        const mine = (await allThumbnailJobs()).filter((j) => ids.includes(j.jobId));
        const open = mine.filter((j) => j.status !== 'succeeded' && j.status !== 'failed');
        if (mine.length !== JOBS || open.length > 0) throw new Error(`${JOBS - mine.length + open.length} jobs not terminal: ${JSON.stringify(open.slice(0, 3))}`);
        return mine;
      },
      { timeout: 600_000, interval: 2000 },
    );
    const succeeded = jobs.filter((j) => j.status === 'succeeded');
    const failed = jobs.filter((j) => j.status === 'failed');
    // Faults are transient: a job fails only when every allowed attempt was hit.
    for (const j of failed) expect(j.error.code, JSON.stringify(j)).toBe('retries_exhausted');
    expect(succeeded.length).toBeGreaterThan(JOBS * 0.8);
    // The normal lane's event source (the uploads are normal; the high lane is a mapping of its own).
    const worker = local.eventSources.find((s) => s.config.label === 'thumbnail' && s.config.queueUrl === local.outputs.ThumbnailQueueUrl)!;
    const notifier = local.streamSources[0];
    const faults = worker.stats.faults;
    expect(faults.throw).toBeGreaterThan(0);
    expect(faults.timeout).toBeGreaterThan(0);
    expect(faults['lose-ack']).toBeGreaterThan(0);
    // Killed at every step of a job's life: after the claim, mid-work, after the terminal write...
    expect(worker.stats.crashes['after-first-call'] ?? 0, 'worker killed right after its claim').toBeGreaterThan(0);
    expect(worker.stats.crashes['mid-run'] ?? 0, 'worker killed mid-work').toBeGreaterThan(0);
    expect(worker.stats.crashes['before-return'] ?? 0, 'worker killed after its terminal write').toBeGreaterThan(0);
    // ...and mid stream delivery (the notifier, between publishes of a batch).
    expect(Object.values(notifier.stats.crashes).reduce((a, b) => a + b, 0), 'notifier killed mid-delivery').toBeGreaterThan(0);
    expect(notifier.stats.discarded, 'stream records given up on').toBe(0);

    // Every succeeded job has all its outputs, in the results bucket.
    const keys = new Set<string>();
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: local.outputs.ResultsBucketName, Prefix: 'thumbnails/', ContinuationToken: token }));
      for (const o of page.Contents ?? []) keys.add(o.Key!);
      token = page.NextContinuationToken;
    } while (token);
    for (const j of succeeded) {
      expect(j.outputs).toHaveLength(6);
      for (const o of j.outputs) expect(keys.has(`thumbnails/${j.jobId}/${o.name}.${o.format === 'jpeg' ? 'jpg' : o.format}`)).toBe(true);
    }

    // Exactly one notification per job: one outcome each (notificationId = jobId:completedAt).
    // SNS delivers at least once, and a worker killed between publishing and recording the
    // publication sends it again on redelivery: subscribers dedupe on notificationId. Such
    // repeats can only come from killed invocations (the injected timeouts, and a real timeout
    // should the machine be too slow for one), so there are at most as many.
    // A job finished by an invocation killed before it published is notified when its message
    // comes back (a visibility timeout later), or by the sweeper: read until every job has its
    // notification, then until the subscriber queue is quiet.
    const notifications = await drainNotifications(sqs, sub.QueueUrl!, ids, 180_000);
    const seen = new Map<string, Set<string>>();
    let deliveries = 0;
    for (const [jobId, list] of notifications) {
      for (const n of list) {
        expect(n.notificationId).toBe(`${n.jobId}:${n.completedAt}`);
        seen.set(jobId, (seen.get(jobId) ?? new Set()).add(n.notificationId));
        deliveries++;
      }
    }
    const outcomes = ids.map((id) => seen.get(id)?.size ?? 0);
    expect(outcomes.filter((c) => c !== 1), 'jobs without exactly one notification').toEqual([]);
    // The one outcome notified is the job's final state.
    for (const j of jobs) {
      for (const n of notifications.get(j.jobId)!) expect({ status: n.status, completedAt: n.completedAt }).toEqual({ status: j.status, completedAt: j.completedAt });
    }
    expect(killedInvocations).toBeGreaterThanOrEqual(faults.timeout);

    // The DLQ holds every job failed by retries_exhausted. The only other messages it may
    // hold are of jobs that succeeded but whose acknowledgement was lost on the last allowed
    // receive (SQS then moves the message on; redriving it is a no-op duplicate).
    // Dead letters are read by this test only: each one's receive count is what the work
    // queue gave it (maxReceiveCount) plus this first read. offload never receives from a DLQ.
    const maxReceiveCount = JSON.parse(
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: local.outputs.ThumbnailQueueUrl, AttributeNames: ['RedrivePolicy'] }))).Attributes!.RedrivePolicy!,
    ).maxReceiveCount as number;
    const receiveCounts: number[] = [];
    const dead = new Map<string, number>();
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: local.outputs.ThumbnailDlqUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    const total = Number(attrs.Attributes!.ApproximateNumberOfMessages) + Number(attrs.Attributes!.ApproximateNumberOfMessagesNotVisible);
    let collected = 0;
    // Until every message is read (the sweeper may hide a few for seconds while it reads them).
    await vi.waitFor(
      async () => {
        const got = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: local.outputs.ThumbnailDlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 300, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }),
        );
        collected += got.Messages?.length ?? 0;
        for (const m of got.Messages ?? []) {
          receiveCounts.push(Number(m.Attributes?.ApproximateReceiveCount));
          const key = decodeURIComponent(JSON.parse(m.Body!).Records[0].s3.object.key.replace(/\+/g, ' '));
          const jobId = key.split('/')[1];
          dead.set(jobId, (dead.get(jobId) ?? 0) + 1);
        }
        if (collected < total) throw new Error(`${collected} of ${total} DLQ messages read`);
      },
      { timeout: 60_000, interval: 0 },
    );
    expect(receiveCounts.filter((c) => c !== maxReceiveCount + 1), 'dead letters received by anyone but this test').toEqual([]);
    const failedIds = new Set(failed.map((j) => j.jobId));
    for (const id of failedIds) expect(dead.has(id), `DLQ holds failed job ${id}`).toBe(true);
    for (const id of dead.keys()) {
      if (failedIds.has(id)) continue;
      expect(succeeded.some((j) => j.jobId === id), `DLQ message of job ${id}: neither failed nor succeeded`).toBe(true);
    }
    console.log(
      `chaos: ${succeeded.length} succeeded, ${failed.length} failed (retries_exhausted), faults ${JSON.stringify(faults)}, ` +
        `worker crashes ${JSON.stringify(worker.stats.crashes)}, notifier faults ${JSON.stringify(notifier.stats.faults)} crashes ${JSON.stringify(notifier.stats.crashes)}, ` +
        `sweeper crashes ${sweeperCrashes}, ${deliveries - JOBS} repeated deliveries, ` +
        `DLQ ${dead.size} (${[...dead.keys()].filter((id) => !failedIds.has(id)).length} lost acks of finished jobs)`,
    );
  }, 900_000);
});
