import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { sqsClient } from '../shared/clients';
import { oldestAgesFromCloudWatch, queueCounts, queueNameFromUrl } from '../shared/queue-stats';
import type { QueueStats } from './console';

let cloudWatch: CloudWatchClient | undefined;

/**
 * `GET /queues`: each type's two lanes (normal and high) added up, and its DLQ
 * (GetQueueAttributes), with the older of the lanes' oldest-message ages (CloudWatch
 * GetMetricData, one call for every queue; null when CloudWatch has no datapoint, as for an
 * idle queue or an emulator).
 */
export async function queueStats(
  types: { type: string; queueUrl: string; highQueueUrl: string; dlqUrl: string }[],
  /** Told when CloudWatch could not be read (the ages are then null): the counts still answer. */
  onAgesUnavailable: (err: unknown) => void = () => undefined,
): Promise<QueueStats[]> {
  cloudWatch ??= new CloudWatchClient({});
  const [counts, ages] = await Promise.all([
    Promise.all(
      types.map(async (t) => {
        const [normal, high, dlq] = await Promise.all([t.queueUrl, t.highQueueUrl, t.dlqUrl].map((url) => queueCounts(sqsClient(), url)));
        return { normal, high, dlq };
      }),
    ),
    oldestAgesFromCloudWatch(
      cloudWatch,
      types.flatMap((t) => [queueNameFromUrl(t.queueUrl), queueNameFromUrl(t.highQueueUrl)]),
    ).catch((err: unknown) => {
      onAgesUnavailable(err);
      return new Map<string, number>();
    }),
  ]);
  return types.map((t, i) => {
    const { normal, high, dlq } = counts[i];
    const lanesAges = [ages.get(queueNameFromUrl(t.queueUrl)), ages.get(queueNameFromUrl(t.highQueueUrl))].filter((a): a is number => a !== undefined);
    return {
      type: t.type,
      visible: normal.visible + high.visible,
      inFlight: normal.inFlight + high.inFlight,
      delayed: normal.delayed + high.delayed,
      oldestAgeSeconds: lanesAges.length > 0 ? Math.max(...lanesAges) : null,
      deadLetters: dlq.visible + dlq.inFlight,
    };
  });
}
