import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { sqsClient } from '../shared/clients';
import { oldestAgesFromCloudWatch, queueCounts, queueNameFromUrl } from '../shared/queue-stats';
import type { QueueStats } from './console';

let cloudWatch: CloudWatchClient | undefined;

/**
 * `GET /queues`: each type's work queue and DLQ counts (GetQueueAttributes) and the work
 * queue's oldest message age (CloudWatch GetMetricData, one call for every queue; null when
 * CloudWatch has no datapoint, as for an idle queue or an emulator).
 */
export async function queueStats(types: { type: string; queueUrl: string; dlqUrl: string }[]): Promise<QueueStats[]> {
  cloudWatch ??= new CloudWatchClient({});
  const [counts, ages] = await Promise.all([
    Promise.all(types.map(async (t) => ({ work: await queueCounts(sqsClient(), t.queueUrl), dlq: await queueCounts(sqsClient(), t.dlqUrl) }))),
    oldestAgesFromCloudWatch(
      cloudWatch,
      types.map((t) => queueNameFromUrl(t.queueUrl)),
    ).catch(() => new Map<string, number>()),
  ]);
  return types.map((t, i) => ({
    type: t.type,
    visible: counts[i].work.visible,
    inFlight: counts[i].work.inFlight,
    delayed: counts[i].work.delayed,
    oldestAgeSeconds: ages.get(queueNameFromUrl(t.queueUrl)) ?? null,
    deadLetters: counts[i].dlq.visible + counts[i].dlq.inFlight,
  }));
}
