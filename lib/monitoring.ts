import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { JobQueue } from './job-queue';
import type { Notifier } from './notifier';
import type { OffloadFunction } from './offload-function';

export interface MonitoringProps {
  alarmTopic: sns.ITopic;
  queues: Array<{ label: string; jobQueue: JobQueue }>;
  apiFunction: OffloadFunction;
  /** The sweeper: its errors are alarmed too (a failing sweeper would leave jobs stuck). */
  sweeperFunction: OffloadFunction;
  /** The outbox relay: its errors and dead letters mean notifications are late or lost. */
  notifier: Notifier;
  apiName: string;
  apiStage: string;
  oldestMessageSeconds: number;
}

/**
 * Alarms (all publishing to the alarm topic) and one dashboard.
 * - DLQ depth > 0: a job failed for good and its message waits to be inspected or redriven.
 * - Age of the oldest message above a threshold: workers are not keeping up (backpressure).
 * - Worker errors and throttles.
 */
export class Monitoring extends Construct {
  readonly alarms: cw.Alarm[] = [];
  readonly dashboard: cw.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const action = new cwActions.SnsAction(props.alarmTopic);
    const alarm = (alarmId: string, metric: cw.IMetric, threshold: number, description: string): void => {
      const a = new cw.Alarm(this, alarmId, {
        metric,
        threshold,
        evaluationPeriods: 1,
        datapointsToAlarm: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      a.addAlarmAction(action);
      a.addOkAction(action);
      this.alarms.push(a);
    };

    this.dashboard = new cw.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(new cw.TextWidget({ markdown: '# offload\nQueues, workers and API', width: 24, height: 1 }));

    for (const { label, jobQueue } of props.queues) {
      const { queue, highQueue, dlq, worker } = jobQueue;
      const fn = worker.fn;
      const period = Duration.minutes(1);
      const dlqDepth = dlq.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' });
      const age = queue.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' });
      const highAge = highQueue.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' });
      const errors = fn.metricErrors({ period, statistic: 'Sum' });
      const throttles = fn.metricThrottles({ period, statistic: 'Sum' });

      alarm(`${label}DlqDepth`, dlqDepth, 0, `${label}: messages in the dead-letter queue (failed jobs to inspect or redrive)`);
      alarm(`${label}OldestMessage`, age, props.oldestMessageSeconds, `${label}: oldest message older than ${props.oldestMessageSeconds}s (workers are not keeping up)`);
      alarm(`${label}HighOldestMessage`, highAge, props.oldestMessageSeconds, `${label}: oldest high-priority message older than ${props.oldestMessageSeconds}s (the high lane is not keeping up)`);
      alarm(`${label}WorkerErrors`, errors, 0, `${label}: worker invocations failed`);
      alarm(`${label}WorkerThrottles`, throttles, 0, `${label}: worker invocations throttled`);

      this.dashboard.addWidgets(
        new cw.GraphWidget({
          title: `${label}: depth and in-flight`,
          left: [
            queue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum', label: 'visible' }),
            queue.metricApproximateNumberOfMessagesNotVisible({ period, statistic: 'Maximum', label: 'in flight' }),
            highQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum', label: 'high: visible' }),
            highQueue.metricApproximateNumberOfMessagesNotVisible({ period, statistic: 'Maximum', label: 'high: in flight' }),
            dlq.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum', label: 'DLQ' }),
          ],
          width: 6,
        }),
        new cw.GraphWidget({ title: `${label}: age of oldest message (s)`, left: [age.with({ label: 'normal' }), highAge.with({ label: 'high' })], width: 6 }),
        new cw.GraphWidget({
          title: `${label}: throughput`,
          left: [
            queue.metricNumberOfMessagesSent({ period, statistic: 'Sum', label: 'sent' }),
            queue.metricNumberOfMessagesDeleted({ period, statistic: 'Sum', label: 'completed' }),
            highQueue.metricNumberOfMessagesSent({ period, statistic: 'Sum', label: 'high: sent' }),
            highQueue.metricNumberOfMessagesDeleted({ period, statistic: 'Sum', label: 'high: completed' }),
            fn.metricInvocations({ period, statistic: 'Sum', label: 'invocations' }),
          ],
          width: 6,
        }),
        new cw.GraphWidget({
          title: `${label}: errors and duration`,
          left: [errors, throttles],
          right: [fn.metricDuration({ period, statistic: 'p50' }), fn.metricDuration({ period, statistic: 'p95' })],
          width: 6,
        }),
      );
    }

    const apiMetric = (metricName: string, statistic: string): cw.Metric =>
      new cw.Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiName: props.apiName, Stage: props.apiStage },
        period: Duration.minutes(1),
        statistic,
      });
    const apiFn = props.apiFunction.fn;
    alarm('ApiFunctionErrors', apiFn.metricErrors({ period: Duration.minutes(1), statistic: 'Sum' }), 0, 'API: function invocations failed');
    alarm('SweeperErrors', props.sweeperFunction.fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }), 0, 'sweeper: invocations failed (abandoned jobs may stay processing)');
    alarm('NotifierErrors', props.notifier.worker.fn.metricErrors({ period: Duration.minutes(1), statistic: 'Sum' }), 0, 'notifier: invocations failed (completion notifications are retried)');
    alarm('NotifierDlqDepth', props.notifier.dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }), 0, 'notifier: stream batches gave up (notifications lost; see the DLQ for their stream positions)');
    alarm('Api5xx', apiMetric('5XXError', 'Sum'), 0, 'API: 5xx responses');
    this.dashboard.addWidgets(
      new cw.GraphWidget({ title: 'API: requests and errors', left: [apiMetric('Count', 'Sum'), apiMetric('4XXError', 'Sum'), apiMetric('5XXError', 'Sum')], width: 12 }),
      new cw.GraphWidget({ title: 'API: latency (ms)', left: [apiMetric('Latency', 'p50'), apiMetric('Latency', 'p95')], width: 12 }),
    );
  }
}
