/**
 * A queue's figures as operators read them: SQS's approximate counts, and CloudWatch's age
 * of the oldest message. Shared by the CLI (`offload queues`) and the API (`GET /queues`,
 * the console).
 */
import { GetMetricDataCommand, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** `https://sqs.eu-west-1.amazonaws.com/123456789012/Offload-ThumbnailsQueue` -> `Offload-ThumbnailsQueue`. */
export function queueNameFromUrl(url: string): string {
  return url.replace(/\/+$/, '').split('/').pop() ?? url;
}

export interface QueueCounts {
  visible: number;
  inFlight: number;
  delayed: number;
  arn?: string;
  /** The queue sends its failures to a DLQ (so receiving from it has consequences). */
  hasRedrive: boolean;
}

export async function queueCounts(sqs: Pick<SQSClient, 'send'>, url: string): Promise<QueueCounts> {
  const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
  const a = res.Attributes ?? {};
  const n = (k: string) => Number(a[k as keyof typeof a] ?? 0) || 0;
  return {
    visible: n('ApproximateNumberOfMessages'),
    inFlight: n('ApproximateNumberOfMessagesNotVisible'),
    delayed: n('ApproximateNumberOfMessagesDelayed'),
    arn: a.QueueArn,
    hasRedrive: Boolean(a.RedrivePolicy),
  };
}

/**
 * CloudWatch's ApproximateAgeOfOldestMessage (Maximum over 1-minute periods) for each queue
 * name: the latest datapoint of the last 15 minutes, or undefined when CloudWatch has none
 * (an idle queue publishes none; emulators publish none at all).
 */
export async function oldestAgesFromCloudWatch(cw: Pick<CloudWatchClient, 'send'>, queueNames: string[], now = new Date()): Promise<Map<string, number>> {
  const res = await cw.send(
    new GetMetricDataCommand({
      StartTime: new Date(now.getTime() - 15 * 60_000),
      EndTime: now,
      ScanBy: 'TimestampDescending',
      MetricDataQueries: queueNames.map((name, i) => ({
        Id: `q${i}`,
        ReturnData: true,
        MetricStat: {
          Metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateAgeOfOldestMessage', Dimensions: [{ Name: 'QueueName', Value: name }] },
          Period: 60,
          Stat: 'Maximum',
        },
      })),
    }),
  );
  const ages = new Map<string, number>();
  for (const r of res.MetricDataResults ?? []) {
    const i = Number(r.Id?.slice(1));
    const points = (r.Timestamps ?? []).map((t, j) => ({ t: new Date(t).getTime(), v: r.Values?.[j] }));
    points.sort((a, b) => b.t - a.t);
    const latest = points.find((p) => typeof p.v === 'number');
    if (latest && queueNames[i] !== undefined) ages.set(queueNames[i], latest.v!);
  }
  return ages;
}

