import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { startLocal, type LocalHandle } from '../../local';
import type { LocalFunction } from '../../local/function-pool';
import { clientFor, type E2eClient } from './client';
import { drainNotifications } from './notifications';

/**
 * Messages that come back: a local-mode instance of this file's own, with short worker
 * timeouts (the visibility timeouts are derived: 6 x those), so that each redelivery takes
 * seconds, not minutes.
 *
 * - Crash: a thumbnail worker's environment SIGKILLed mid-batch (by the local runtime's hook,
 *   right after it claimed a job): its messages come back after the visibility timeout and
 *   the jobs complete.
 * - Poison messages put straight on each work queue. The workers fail a message they cannot
 *   read on every receive; the queue's redrive policy moves it to its DLQ after
 *   maxReceiveCount receives; the DLQ-depth alarm would fire; and local mode keeps serving.
 * - A transient failure on every attempt: the job fails as retries_exhausted and its message
 *   goes to the DLQ.
 *
 * A message moves to the DLQ on the receive after its last allowed one, maxReceiveCount
 * visibility timeouts after it was sent (here 3 x 36 s on the thumbnail queue, 3 x 18 s on the report queue). The poison messages
 * and the transient failure are sent together and awaited together.
 */
const CONTEXT = {
  // visibility 36 s: a cold environment (sharp's load, a 1024x768 photo) on a loaded 2-core
  // machine must fit in one worker timeout, or its crash-test job runs out of receives.
  thumbnailTimeoutSeconds: '6',
  reportTimeoutSeconds: '3', // visibility 18 s
  // Gathers the crash test's uploads into one batch (the kill then cuts a batch short).
  thumbnailBatchingWindowSeconds: '1',
  sweepIntervalMinutes: '1',
  // The shortest upload URL life: a presigned upload never made is swept (upload_expired)
  // two minutes after its job was created (the URL's life and a minute).
  presignTtlSeconds: '60',
};
let local: LocalHandle;
let ctx: E2eClient;
let sqs: SQSClient;
/** Every line local mode logged (its functions' lines are prefixed `[label] `). */
const logged: string[] = [];
const RUN = `poison-e2e-${randomUUID()}`;

beforeAll(async () => {
  const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'offload-poison-')), 'local.log');
  const out = fs.createWriteStream(logFile);
  local = await startLocal({
    port: 0,
    stateFile: null,
    context: CONTEXT,
    log: (line) => {
      logged.push(line);
      out.write(`${line}\n`);
    },
  });
  ctx = clientFor(local);
  sqs = new SQSClient(ctx.awsConfig);
  template = deployedTemplate();
  lanes.thumbnails = await lane('thumbnails', 'ThumbnailQueueUrl', 'ThumbnailDlqUrl', 'thumbnail');
  lanes.reports = await lane('reports', 'ReportQueueUrl', 'ReportDlqUrl', 'report');
}, 600_000);

afterAll(async () => {
  await local?.stop();
});

type LaneName = 'thumbnails' | 'reports';

/** A work queue as the deployed template describes it, and the live queues it names. */
interface Lane {
  name: LaneName;
  /** The function whose log lines local mode prefixes with `[prefix]`. */
  logPrefix: string;
  queueUrl: string;
  dlqUrl: string;
  dlqArn: string;
  dlqLogicalId: string;
  maxReceiveCount: number;
  visibilitySeconds: number;
  alarm: { logicalId: string; props: Record<string, any> };
}

interface Poison {
  label: string;
  lane: LaneName;
  body: string;
  messageId?: string;
  sentAt?: number;
  /** A report message's job id, when it has a well-formed one (see the known bug below). */
  jobId?: string;
}

interface Letter {
  dlq: LaneName;
  body: string;
  /** ApproximateReceiveCount on the first receive from the DLQ. */
  receiveCount: number;
  /** When that receive returned. */
  receivedAt: number;
  at: number;
}

const poisons: Poison[] = [
  { label: 'thumbnails: not JSON', lane: 'thumbnails', body: `this is not JSON { ${RUN}` },
  { label: 'thumbnails: JSON, not an S3 event', lane: 'thumbnails', body: JSON.stringify({ hello: 'world', run: RUN }) },
  { label: 'thumbnails: S3 event without records', lane: 'thumbnails', body: JSON.stringify({ Records: [] }) },
  { label: 'thumbnails: S3 record without s3', lane: 'thumbnails', body: JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', run: RUN }] }) },
  { label: 'reports: not JSON', lane: 'reports', body: `not JSON at all ${RUN}` },
  { label: 'reports: {}', lane: 'reports', body: '{}' },
  {
    label: 'reports: job id not a UUID',
    lane: 'reports',
    body: JSON.stringify({ jobId: `not-a-uuid-${RUN}`, params: { from: '2026-01-01', to: '2026-01-31', formats: ['csv'] } }),
  },
];
// A report message with from > to: the API never sends one, so it is poison (a regression:
// it once parsed, and the worker dropped it instead of failing it).
const backwards: Poison = (() => {
  const jobId = randomUUID();
  return {
    label: 'reports: params with from > to',
    lane: 'reports',
    jobId,
    body: JSON.stringify({ jobId, params: { from: '2026-03-01', to: '2026-01-01', formats: ['csv'] } }),
  };
})();
const all = [...poisons, backwards];

const lanes = {} as Record<LaneName, Lane>;
let template: any;
/** First sighting of each of our messages in a DLQ, by message id. */
const letters = new Map<string, Letter>();
/** Report messages the worker dropped (logged 'no such job; message dropped'), by job id. */
const dropped = new Set<string>();

/** The template this instance deployed (from its own cloud assembly). */
function deployedTemplate(): any {
  return JSON.parse(fs.readFileSync(path.join(local.cloudAssembly, `${local.stackName}.template.json`), 'utf8'));
}

const refOf = (outputKey: string): string => template.Outputs[outputKey].Value.Ref;

async function attributes(url: string, names: string[]): Promise<Record<string, string>> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: names as any }));
  return out.Attributes ?? {};
}

/** Reads a lane's definition from the template and checks the live queues against it. */
async function lane(name: LaneName, queueOutput: string, dlqOutput: string, logPrefix: string): Promise<Lane> {
  const queueId = refOf(queueOutput);
  const queue = template.Resources[queueId];
  expect(queue.Type).toBe('AWS::SQS::Queue');
  const redrive = queue.Properties.RedrivePolicy;
  const dlqLogicalId: string = redrive.deadLetterTargetArn['Fn::GetAtt'][0];
  expect(redrive.deadLetterTargetArn['Fn::GetAtt'][1]).toBe('Arn');
  // The DLQ the redrive policy names is the one the stack outputs as this lane's DLQ.
  expect(refOf(dlqOutput), `${dlqOutput} is the DLQ of ${queueOutput}`).toBe(dlqLogicalId);

  const alarms = Object.entries<any>(template.Resources).filter(
    ([, r]) =>
      r.Type === 'AWS::CloudWatch::Alarm' &&
      r.Properties.MetricName === 'ApproximateNumberOfMessagesVisible' &&
      r.Properties.Namespace === 'AWS/SQS' &&
      JSON.stringify(r.Properties.Dimensions) === JSON.stringify([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqLogicalId, 'QueueName'] } }]),
  );
  expect(alarms.map(([id]) => id), `DLQ-depth alarm of ${dlqLogicalId}`).toHaveLength(1);

  const queueUrl = ctx.outputs[queueOutput];
  const dlqUrl = ctx.outputs[dlqOutput];
  const live = await attributes(queueUrl, ['RedrivePolicy', 'VisibilityTimeout']);
  const dlqArn = (await attributes(dlqUrl, ['QueueArn'])).QueueArn;
  const policy = JSON.parse(live.RedrivePolicy);
  expect({ target: policy.deadLetterTargetArn, max: Number(policy.maxReceiveCount) }).toEqual({ target: dlqArn, max: redrive.maxReceiveCount });
  return {
    name,
    logPrefix,
    queueUrl,
    dlqUrl,
    dlqArn,
    dlqLogicalId,
    maxReceiveCount: redrive.maxReceiveCount,
    visibilitySeconds: Number(live.VisibilityTimeout),
    alarm: { logicalId: alarms[0][0], props: alarms[0][1].Properties },
  };
}

type Held = Message & { receivedAt: number };

/** Receives every visible message of a queue, holding each for 20 s. */
async function receiveAll(url: string): Promise<Held[]> {
  const held: Held[] = [];
  for (let i = 0; i < 100; i++) {
    const got = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 20, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['All'] }),
    );
    if (!got.Messages?.length) break;
    const receivedAt = Date.now();
    held.push(...got.Messages.map((m) => ({ ...m, receivedAt })));
  }
  return held;
}

/**
 * Every message visible in a DLQ, made visible again at once: a look that leaves the queue
 * as it was (others' messages included) but for the receive counts.
 */
async function scan(url: string): Promise<Held[]> {
  const seen = await receiveAll(url);
  await release(url, seen);
  return seen;
}

async function release(url: string, messages: Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    const chunk = messages.slice(i, i + 10);
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })) }),
    );
  }
}

function logLines(): string[] {
  return [...logged];
}

/** Lines where a worker says it could not read one of our messages (one per receive). */
function malformedLines(lines: string[], p: Poison): string[] {
  const l = lanes[p.lane];
  return lines.filter((line) => line.startsWith(`[${l.logPrefix}] `) && /"message":"malformed (report )?message"/.test(line) && line.includes(`"messageId":"${p.messageId}"`));
}

describe('crash', () => {
  it('a worker process killed mid-batch: its messages come back after the visibility timeout and complete', async () => {
    const thumbnail = local.functions.find((f) => f.spec.label === 'thumbnail')!;
    // The kill: the first thumbnail environment to claim a job (the conditional UpdateItem
    // that makes it `processing`) dies as the claim returns, its batch unfinished.
    // Only an invocation with one of this test's uploads carries it (not, say, the test events S3
    // sends each queue when its notification is set up, which make no claim).
    const crashed = thumbnail.arm({ call: /^DynamoDB_20120810\.UpdateItem$/ }, { when: (event) => JSON.stringify(event).includes('crash-') });
    onTestFinished(() => thumbnail.cancelCrash());
    const photo = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg().toBuffer();
    const ids = await Promise.all([0, 1, 2, 3].map((i) => ctx.presignedUpload(`crash-${i}.jpg`, 'image/jpeg', photo)));
    await crashed;
    // Killed mid-job: a job of the killed batch is claimed and unfinished (until its message
    // comes back, after the visibility timeout).
    const states = await Promise.all(ids.map(async (id) => (await ctx.call('GET', `jobs/${id}`)).json.status));
    expect(states, 'killed a thumbnail worker mid-batch').toContain('processing');
    const jobs = await Promise.all(ids.map((id) => ctx.waitForJob(id, 180_000)));
    for (const job of jobs) expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    expect(Math.max(...jobs.map((j) => j.attempts))).toBeGreaterThanOrEqual(2);
  }, 240_000);
});

describe('poison messages', () => {
  beforeAll(async () => {
    // All at once, and with the transient failure below, so the visibility timeouts are waited out once.
    await Promise.all([
      ...all.map(async (p) => {
        const sent = await sqs.send(new SendMessageCommand({ QueueUrl: lanes[p.lane].queueUrl, MessageBody: p.body }));
        p.messageId = sent.MessageId!;
        p.sentAt = Date.now();
      }),
      startTransientFailure(),
      startKillPoints(),
    ]);
  });

  it('the deployed stack wires each work queue to its DLQ, with a DLQ-depth alarm, and the timings of this file', () => {
    for (const l of Object.values(lanes)) {
      expect(l.maxReceiveCount, l.name).toBe(3);
      expect(l.alarm.props, l.name).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 1, Statistic: 'Maximum' });
      expect(l.alarm.props.AlarmActions?.length, `${l.alarm.logicalId} notifies someone`).toBeGreaterThan(0);
    }
    // Derived visibility: 6 x the worker timeout of this file's context.
    expect(lanes.thumbnails.visibilitySeconds).toBe(6 * Number(CONTEXT.thumbnailTimeoutSeconds));
    expect(lanes.reports.visibilitySeconds).toBe(6 * Number(CONTEXT.reportTimeoutSeconds));
    expect(all.every((p) => p.messageId)).toBe(true);
  });

  it('moves every poison message to its own DLQ after exactly maxReceiveCount receives', async () => {
    const settled = (p: Poison) => letters.has(p.messageId!) || (p.jobId !== undefined && dropped.has(p.jobId));
    const look = async () => {
      for (const l of Object.values(lanes)) {
        for (const m of await scan(l.dlqUrl)) {
          if (!all.some((p) => p.messageId === m.MessageId) || letters.has(m.MessageId!)) continue;
          letters.set(m.MessageId!, {
            dlq: l.name,
            body: m.Body!,
            receiveCount: Number(m.Attributes?.ApproximateReceiveCount),
            receivedAt: m.receivedAt,
            at: Date.now(),
          });
        }
      }
      for (const line of logLines()) {
        if (!line.startsWith('[report] ') || !line.includes('"message":"no such job; message dropped"')) continue;
        for (const p of all) if (p.jobId && line.includes(`"jobId":"${p.jobId}"`)) dropped.add(p.jobId);
      }
    };
    // Until each one is settled (the table below says which were not), at most maxReceiveCount
    // visibility timeouts and a minute after the last was sent.
    const timeout = Math.max(...all.map((p) => p.sentAt! + (lanes[p.lane].maxReceiveCount * lanes[p.lane].visibilitySeconds + 60) * 1000)) - Date.now();
    await vi
      .waitFor(
        async () => {
          await look();
          const open = all.filter((p) => !settled(p));
          if (open.length > 0) throw new Error(`not in a DLQ yet: ${open.map((p) => p.label).join('; ')}`);
        },
        { timeout, interval: 2000 },
      )
      .catch((err: Error) => {
        // The ones still missing are judged below, message by message.
        if (!err.message.startsWith('not in a DLQ yet')) throw err;
      });

    const lines = logLines();
    const report = poisons.map((p) => {
      const l = lanes[p.lane];
      const letter = letters.get(p.messageId!);
      return {
        label: p.label,
        dlq: letter?.dlq,
        body: letter?.body,
        // SQS (and moto) keep a message's receive count when it moves to the DLQ: our first
        // receive from the DLQ is the one after the worker's maxReceiveCount receives. Nothing
        // of offload's receives from a DLQ, so nothing else is counted.
        receiveCountInDlq: letter?.receiveCount,
        workerReceives: malformedLines(lines, p).length,
        // It moved only once its last allowed receive's visibility timeout was over.
        waitedOutRetries: letter ? letter.at >= p.sentAt! + (l.maxReceiveCount - 1) * l.visibilitySeconds * 1000 : undefined,
      };
    });
    expect(report).toEqual(
      poisons.map((p) => ({
        label: p.label,
        dlq: p.lane,
        body: p.body,
        receiveCountInDlq: lanes[p.lane].maxReceiveCount + 1,
        workerReceives: lanes[p.lane].maxReceiveCount,
        waitedOutRetries: true,
      })),
    );
  });

  it('the DLQ-depth alarms would fire: their metric, read from the queues, is over the threshold', async () => {
    // moto publishes no SQS metrics: evaluate each alarm's metric (ApproximateNumberOfMessagesVisible
    // of the queue its QueueName dimension names) from the queue itself.
    for (const l of Object.values(lanes)) {
      await scan(l.dlqUrl); // anything we hold is visible again
      const visible = Number((await attributes(l.dlqUrl, ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages);
      const ours = poisons.filter((p) => p.lane === l.name && letters.get(p.messageId!)?.dlq === l.name).length;
      expect(ours, l.name).toBe(poisons.filter((p) => p.lane === l.name).length);
      // Others may have left letters there too (photos.test.ts sends one): at least ours.
      expect(visible, `${l.name} DLQ depth`).toBeGreaterThanOrEqual(ours);
      const { Threshold, ComparisonOperator } = l.alarm.props;
      const breaching = ComparisonOperator === 'GreaterThanThreshold' ? visible > Threshold : ComparisonOperator === 'GreaterThanOrEqualToThreshold' ? visible >= Threshold : false;
      expect(breaching, `${l.alarm.logicalId}: ${visible} ${ComparisonOperator} ${Threshold}`).toBe(true);
    }
  });

  it('no crash loop: each worker read each poison message only maxReceiveCount times', async () => {
    // No more attempts can come: the messages are in the DLQs, and the work queues hold
    // nothing (visible, in flight or delayed) that a worker could still receive.
    await vi.waitFor(
      async () => {
        for (const l of Object.values(lanes)) {
          const a = await attributes(l.queueUrl, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed']);
          const left = Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible) + Number(a.ApproximateNumberOfMessagesDelayed);
          if (left > 0) throw new Error(`${left} messages still on the ${l.name} queue`);
        }
      },
      { timeout: 120_000, interval: 1000 },
    );
    const lines = logLines();
    const counts = poisons.map((p) => malformedLines(lines, p).length);
    expect(counts).toEqual(poisons.map((p) => lanes[p.lane].maxReceiveCount));
    // Across all of them, the backwards report message included: at most maxReceiveCount each.
    const total = lines.filter((line) => /"message":"malformed (report )?message"/.test(line) && all.some((p) => line.includes(`"messageId":"${p.messageId}"`))).length;
    expect(total).toBeLessThanOrEqual(all.reduce((n, p) => n + lanes[p.lane].maxReceiveCount, 0));
  });

  it('local mode is still healthy: the API answers, a photo and a report still go through', async () => {
    const list = await ctx.call('GET', 'jobs?limit=5');
    expect(list.status).toBe(200);
    expect(Array.isArray(list.json.jobs)).toBe(true);

    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c04020' } }).jpeg().toBuffer();
    const jobId = await ctx.presignedUpload('after-poison.jpg', 'image/jpeg', jpeg);
    const job = await ctx.waitForJob(jobId, 120_000);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.outputs).toHaveLength(6);

    const rep = await ctx.call('POST', 'reports', { json: { from: '2001-02-01', to: '2001-02-02', formats: ['csv'] } });
    expect(rep.status).toBe(202);
    const done = await ctx.waitForJob(rep.json.jobId, 120_000);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
  });

  // Regression: ReportMessage once accepted from > to, and the worker acknowledged the
  // message ('no such job') instead of failing it into the DLQ.
  it('a report message whose range runs backwards (from > to) is poison too', () => {
    const letter = letters.get(backwards.messageId!);
    expect({ dropped: dropped.has(backwards.jobId!), dlq: letter?.dlq, body: letter?.body }).toEqual({ dropped: false, dlq: 'reports', body: backwards.body });
    expect(malformedLines(logLines(), backwards)).toHaveLength(lanes.reports.maxReceiveCount);
  });
});

/** A job whose S3 event names a bucket that does not exist: every read fails (not a missing key), which the worker must treat as transient and retry. */
const transient = { jobId: '', subscriberUrl: '' };

async function startTransientFailure(): Promise<void> {
  // Its notification, read by a subscriber of the completion topic (as photos.test.ts does for its jobs).
  const q = await sqs.send(new CreateQueueCommand({ QueueName: `e2e-transient-subscriber-${Date.now()}` }));
  transient.subscriberUrl = q.QueueUrl!;
  const arn = (await attributes(transient.subscriberUrl, ['QueueArn'])).QueueArn;
  await new SNSClient(ctx.awsConfig).send(
    new SubscribeCommand({
      TopicArn: ctx.outputs.NotificationTopicArn,
      Protocol: 'sqs',
      Endpoint: arn,
      Attributes: { RawMessageDelivery: 'true', FilterPolicy: JSON.stringify({ type: ['thumbnail'] }) },
    }),
  );
  const created = await ctx.call('POST', 'uploads', { json: { filename: 'lost.jpg', contentType: 'image/jpeg', size: 10 } });
  transient.jobId = created.json.jobId;
  const event = {
    Records: [
      {
        eventName: 'ObjectCreated:Put',
        s3: { bucket: { name: 'no-such-bucket-e2e' }, object: { key: `uploads/${transient.jobId}/lost.jpg`, size: 10 } },
      },
    ],
  };
  await sqs.send(new SendMessageCommand({ QueueUrl: ctx.outputs.ThumbnailQueueUrl, MessageBody: JSON.stringify(event) }));
}

describe('transient failures', () => {
  // After the poison messages' receive counts were taken: looking into the DLQ counts as a receive.
  it('sends a transient failure to the DLQ after maxReceiveCount, as retries_exhausted', async () => {
    const { jobId } = transient;
    const job = await ctx.waitForJob(jobId, 240_000);
    expect(job.status).toBe('failed');
    expect(job.error.code).toBe('retries_exhausted');
    expect(job.attempts).toBe(3);
    // The message is in the DLQ, intact and redrivable.
    const body = await vi.waitFor(
      async () => {
        const found = (await scan(lanes.thumbnails.dlqUrl)).map((m) => m.Body!).find((b) => b.includes(jobId));
        if (!found) throw new Error(`the message of job ${jobId} is not in the DLQ`);
        return found;
      },
      { timeout: 120_000, interval: 1000 },
    );
    expect(JSON.parse(body).Records[0].s3.object.key).toBe(`uploads/${jobId}/lost.jpg`);
    // Its one outcome is notified exactly once, with type and status.
    const seen = await drainNotifications(sqs, transient.subscriberUrl, [jobId], 120_000);
    const list = seen.get(jobId) ?? [];
    expect(list.length, `notifications for ${jobId}`).toBe(1);
    expect(list[0]).toMatchObject({ jobId, type: 'thumbnail', status: 'failed' });
    expect(list[0].completedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });
});

/**
 * The three places where a notification used to be lost, each killed there (the local
 * runtime's test hooks), each expected to end with exactly one notification, sent from the
 * table's stream (the outbox), not by the writer of the terminal state:
 * - a worker killed after its terminal write, on every receive through the last allowed one
 *   (its message then goes to the DLQ, and nothing ever runs the job again);
 * - the sweeper killed right after it failed a job (an upload that never came);
 * - the API failing a direct upload whose put to S3 failed (the job, already `queued`, is
 *   failed at once, not left queued with no message behind it).
 */
const kill = {
  subscriberUrl: '',
  reportJobId: '',
  /** The runtime's line for each kill of the report worker. */
  reportKills: Promise.resolve([] as string[]),
  sweptJobId: '',
  sweeperKilled: Promise.resolve(),
  upload: { status: 0, json: {} as any },
};

function fn(label: string): LocalFunction {
  return local.functions.find((f) => f.spec.label === label)!;
}

async function startKillPoints(): Promise<void> {
  const q = await sqs.send(new CreateQueueCommand({ QueueName: `e2e-kill-subscriber-${Date.now()}` }));
  kill.subscriberUrl = q.QueueUrl!;
  const arn = (await attributes(kill.subscriberUrl, ['QueueArn'])).QueueArn;
  await new SNSClient(ctx.awsConfig).send(
    new SubscribeCommand({ TopicArn: ctx.outputs.NotificationTopicArn, Protocol: 'sqs', Endpoint: arn, Attributes: { RawMessageDelivery: 'true' } }),
  );

  // 1. The report worker, killed as its handler returns (after the terminal write, before the
  //    acknowledgement) on each of the message's maxReceiveCount receives. Only this job's
  //    messages carry the hook (the poison messages here have no `type`).
  const report = fn('report');
  const isOurs = (event: any) =>
    (event?.Records ?? []).some((r: any) => {
      try {
        const body = JSON.parse(r.body);
        return body.type === 'report' && (kill.reportJobId === '' || body.jobId === kill.reportJobId);
      } catch {
        return false;
      }
    });
  kill.reportKills = (async () => {
    const lines: string[] = [];
    for (let i = 0; i < lanes.reports.maxReceiveCount; i++) {
      const { pid } = await report.arm({ beforeReturn: true }, { when: isOurs });
      lines.push(await vi.waitFor(() => {
        const line = logLines().filter((l) => l.startsWith('[report] [runtime] environment killed'))[i];
        if (!line) throw new Error(`no kill line for report environment ${pid}`);
        return line;
      }, { timeout: 15_000, interval: 50 }));
    }
    return lines;
  })();
  // Judged by its test; until then a failure is not an unhandled rejection.
  kill.reportKills.catch(() => undefined);
  const created = await ctx.call('POST', 'reports', { json: { from: '2001-03-01', to: '2001-03-02', formats: ['csv'] } });
  expect(created.status).toBe(202);
  kill.reportJobId = created.json.jobId;

  // 2. The sweeper, killed right after its first terminal write: a presigned upload whose
  //    file never comes is failed upload_expired once its URL's life is over.
  const sweeper = fn('sweeper');
  kill.sweeperKilled = sweeper.arm({ call: /^DynamoDB_20120810\.UpdateItem$/ }).then(() => undefined);
  const presigned = await ctx.call('POST', 'uploads', { json: { filename: 'never-sent.jpg', contentType: 'image/jpeg', size: 1000 } });
  expect(presigned.status).toBe(201);
  kill.sweptJobId = presigned.json.jobId;

  // 3. The API, its put of a direct upload to S3 failing (every attempt: the bucket cannot be reached).
  const api = fn('api');
  const putFailed = api.arm({ failCalls: /^PUT .*\/uploads\// }, { when: (e: any) => e?.queryStringParameters?.filename === 'put-fails.jpg' });
  const jpeg = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#2060c0' } }).jpeg().toBuffer();
  kill.upload = await ctx.call('POST', 'uploads?filename=put-fails.jpg', { body: jpeg, headers: { 'content-type': 'image/jpeg' } });
  await putFailed;
}

describe('kill points: exactly one notification each', () => {
  let notified: Map<string, any[]>;

  it('a worker killed after its terminal write on every allowed receive: the job is succeeded, its message in the DLQ', async () => {
    const lines = await kill.reportKills;
    expect(lines).toHaveLength(lanes.reports.maxReceiveCount);
    // The first kill came right after the terminal write: the handler's last AWS call was the
    // job's UpdateItem (a worker writes nothing after it: the stream notifies).
    expect(lines[0]).toMatch(/as the handler returned, before its result was sent \(last AWS call #\d+ \(DynamoDB_20120810\.UpdateItem\)\)/);
    const job = await ctx.waitForJob(kill.reportJobId, 60_000);
    expect({ status: job.status, attempts: job.attempts }).toEqual({ status: 'succeeded', attempts: 1 });
    await vi.waitFor(
      async () => {
        const found = (await scan(lanes.reports.dlqUrl)).some((m) => m.Body!.includes(kill.reportJobId));
        if (!found) throw new Error(`the message of job ${kill.reportJobId} is not in the report DLQ`);
      },
      { timeout: 120_000, interval: 1000 },
    );
  });

  it('the sweeper killed right after failing a job: upload_expired', async () => {
    await kill.sweeperKilled;
    const job = await ctx.waitForJob(kill.sweptJobId, 30_000);
    expect({ status: job.status, code: job.error?.code }).toEqual({ status: 'failed', code: 'upload_expired' });
  });

  it('a direct upload whose put to S3 fails: 503 naming the job, which is failed upload_failed at once', async () => {
    expect(kill.upload.status).toBe(503);
    expect(kill.upload.json.error.code).toBe('upload_failed');
    const jobId = /job ([0-9a-f-]{36}) is failed/.exec(kill.upload.json.error.message)?.[1];
    expect(jobId, kill.upload.json.error.message).toBeDefined();
    const job = (await ctx.call('GET', `jobs/${jobId}`)).json;
    expect({ status: job.status, code: job.error?.code }).toEqual({ status: 'failed', code: 'upload_failed' });
    kill.upload.json.jobId = jobId;
  });

  it('each of the three jobs is notified exactly once, with its final status', async () => {
    const ids = [kill.reportJobId, kill.sweptJobId, kill.upload.json.jobId as string];
    notified = await drainNotifications(sqs, kill.subscriberUrl, ids, 120_000);
    // One delivery each (nothing here fails the notifier, so not even SNS-style repeats).
    expect(ids.map((id) => (notified.get(id) ?? []).length)).toEqual([1, 1, 1]);
    for (const id of ids) expect(notified.get(id)![0].notificationId).toMatch(new RegExp(`^${id}:`));
    expect(ids.map((id) => notified.get(id)![0].status)).toEqual(['succeeded', 'failed', 'failed']);
  });
});
