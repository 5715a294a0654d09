import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { sharedInstance, useSharedInstance } from './client';

/**
 * Extensible without forking: a job type that lives only under test/fixtures (wordcount),
 * composed with the built-in ones by a registry of its own (`-c jobTypesModule=...`), runs
 * end to end through local mode: submit -> its worker -> succeeded with outputs -> notified.
 * The shared instance deploys that registry (TEST_CONTEXT in global-setup.ts).
 */
const ctx = sharedInstance();
useSharedInstance('shared');

async function api(method: string, p: string, body?: unknown) {
  const res = await ctx.call(method, p, body === undefined ? {} : { json: body });
  return { status: res.status, json: res.json };
}

describe('a job type from outside the tree', () => {
  it('is deployed with its own queue and listed by the stack', () => {
    expect(ctx.outputs.JobTypes.split(',')).toEqual(['thumbnail', 'report', 'wordcount']);
    expect(ctx.outputs.WordcountQueueUrl).toMatch(/^http/);
    expect(ctx.outputs.WordcountDlqUrl).toMatch(/^http/);
  });

  it('runs end to end: submit, worker, succeeded with its output, one notification', async () => {
    const cfg = ctx.awsConfig;
    const sqs = new SQSClient(cfg);
    const q = await sqs.send(new CreateQueueCommand({ QueueName: `plugin-sub-${Date.now()}` }));
    const arn = `arn:aws:sqs:${ctx.region}:123456789012:${q.QueueUrl!.split('/').pop()}`;
    await new SNSClient(cfg).send(
      new SubscribeCommand({ TopicArn: ctx.outputs.NotificationTopicArn, Protocol: 'sqs', Endpoint: arn, Attributes: { RawMessageDelivery: 'true' } }),
    );

    const bad = await api('POST', 'jobs', { type: 'wordcount', input: { text: '' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('input.text');

    const res = await api('POST', 'jobs', { type: 'wordcount', input: { text: 'the cat and the hat and the bat' } });
    expect(res.status).toBe(202);
    const jobId: string = res.json.jobId;
    await expect.poll(async () => (await api('GET', `jobs/${jobId}`)).json.status, { timeout: 60_000, interval: 250 }).toBe('succeeded');
    const job = (await api('GET', `jobs/${jobId}`)).json;
    expect(job).toMatchObject({ type: 'wordcount', input: { text: 'the cat and the hat and the bat' }, progress: { done: 1, total: 1 } });
    expect(job.outputs).toHaveLength(1);
    const counts = await (await fetch(job.outputs[0].url)).json();
    expect(counts).toEqual({ words: 8, top: [['the', 3], ['and', 2], ['bat', 1]] });

    const listed = await api('GET', 'jobs?type=wordcount');
    expect(listed.json.jobs.map((j: any) => j.jobId)).toContain(jobId);

    const seen: any[] = [];
    await expect
      .poll(
        async () => {
          const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
          for (const m of got.Messages ?? []) seen.push(JSON.parse(m.Body!));
          return seen.filter((n) => n.jobId === jobId).length;
        },
        { timeout: 30_000, interval: 100 },
      )
      .toBe(1);
    expect(seen.find((n) => n.jobId === jobId)).toMatchObject({ type: 'wordcount', status: 'succeeded', notificationId: `${jobId}:${job.completedAt}` });
  });
});
