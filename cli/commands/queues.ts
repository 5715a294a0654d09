import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { SQSClient } from '@aws-sdk/client-sqs';
import { awsErrorMessage, awsFailure, type CliContext } from '../context';
import { JOB_TYPES_OUTPUT, queueOutputs, typesFromOutputs } from '../dead-letters';
import { EXIT_OK } from '../errors';
import { formatDuration, formatTable } from '../output';
import { oldestAgesFromCloudWatch, peekOldestAge, queueCounts, queueNameFromUrl } from '../sqs';

export interface QueueRow {
  /** Each deployed type's queues and DLQ: `thumbnail`, `thumbnail-high`, `thumbnail-dlq`, `report`, `report-high`, `report-dlq`, ... */
  name: string;
  url: string;
  visible: number;
  inFlight: number;
  delayed: number;
  /** Age of the oldest message in seconds, when known. */
  oldestAgeSeconds: number | null;
  /**
   * Where the age comes from: `cloudwatch` (ApproximateAgeOfOldestMessage), `peek` (a
   * VisibilityTimeout-0 receive on a DLQ: a lower bound when the DLQ holds more than 10
   * messages), or null (unknown: shown as n/a).
   */
  oldestAgeSource: 'cloudwatch' | 'peek' | null;
}

/**
 * `offload queues`: depth, in-flight, delayed and oldest-message age of every type's two
 * lanes (normal and high) and its DLQ (a stack from before lanes, without
 * `<Type>HighQueueUrl`, shows no high row).
 *
 * SQS has no "age of the oldest message" attribute, and the obvious way to measure it
 * (receive and look at SentTimestamp) is not harmless: every receive increments the
 * message's ApproximateReceiveCount, and on a queue with a redrive policy that pushes
 * messages towards the DLQ (and a VisibilityTimeout-0 receive still races the workers).
 * So the age is CloudWatch's ApproximateAgeOfOldestMessage (latest 1-minute Maximum of
 * the last 15 minutes) for every queue; when CloudWatch has no datapoint, a DLQ (which has
 * no redrive policy, so a receive count changes nothing) is peeked, and a source queue is
 * shown as n/a. Emulators publish no SQS metrics, so locally source queues show n/a.
 */
export async function queues(ctx: CliContext, opts: { json?: boolean }): Promise<number> {
  const { term } = ctx;
  const types = typesFromOutputs(await ctx.stackOutputs([JOB_TYPES_OUTPUT]));
  const outputs = await ctx.stackOutputs(types.flatMap((n) => [queueOutputs(n).queue, queueOutputs(n).dlq]));
  const sqs = new SQSClient(ctx.aws());
  const cw = new CloudWatchClient(ctx.aws());
  try {
    const targets = types.flatMap((n) => [
      { name: n, url: outputs[queueOutputs(n).queue], dlq: false },
      ...(outputs[queueOutputs(n).high] ? [{ name: `${n}-high`, url: outputs[queueOutputs(n).high], dlq: false }] : []),
      { name: `${n}-dlq`, url: outputs[queueOutputs(n).dlq], dlq: true },
    ]);
    const [counts, ages] = await Promise.all([
      Promise.all(
        targets.map((t) =>
          queueCounts(sqs, t.url).catch((err) => {
            throw awsFailure(`cannot read queue ${t.name} (${t.url})`, err);
          }),
        ),
      ),
      oldestAgesFromCloudWatch(cw, targets.map((t) => queueNameFromUrl(t.url))).catch((err) => {
        term.warn(`CloudWatch metrics unavailable (${awsErrorMessage(err)}): oldest-message ages of source queues are n/a`);
        return new Map<string, number>();
      }),
    ]);
    const rows: QueueRow[] = await Promise.all(
      targets.map(async (t, i): Promise<QueueRow> => {
        const c = counts[i];
        const row: QueueRow = { name: t.name, url: t.url, visible: c.visible, inFlight: c.inFlight, delayed: c.delayed, oldestAgeSeconds: null, oldestAgeSource: null };
        const fromCw = ages.get(queueNameFromUrl(t.url));
        if (fromCw !== undefined) {
          row.oldestAgeSeconds = fromCw;
          row.oldestAgeSource = 'cloudwatch';
        } else if (t.dlq && !c.hasRedrive && c.visible > 0) {
          const peeked = await peekOldestAge(sqs, t.url).catch(() => ({ seconds: undefined, seen: 0 }));
          if (peeked.seconds !== undefined) {
            row.oldestAgeSeconds = Math.round(peeked.seconds);
            row.oldestAgeSource = 'peek';
          }
        }
        return row;
      }),
    );

    if (opts.json) {
      term.json(rows);
      return EXIT_OK;
    }
    term.out(
      formatTable(
        [{ header: 'QUEUE' }, { header: 'VISIBLE', align: 'right' }, { header: 'IN FLIGHT', align: 'right' }, { header: 'DELAYED', align: 'right' }, { header: 'OLDEST', align: 'right' }, { header: '' }],
        rows.map((r) => [
          r.name.endsWith('-dlq') && r.visible > 0 ? term.style('red', r.name) : r.name,
          String(r.visible),
          String(r.inFlight),
          String(r.delayed),
          r.oldestAgeSeconds === null && r.visible + r.inFlight + r.delayed === 0
            ? '-'
            : (r.oldestAgeSource === 'peek' && r.visible > 10 ? '≥' : '') + formatDuration(r.oldestAgeSeconds),
          r.oldestAgeSource === 'peek' ? term.style('dim', '(peeked)') : '',
        ]),
      ),
    );
    return EXIT_OK;
  } finally {
    sqs.destroy();
    cw.destroy();
  }
}
