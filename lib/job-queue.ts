import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { CoreSettings } from '../lambda/shared/job-type';
import { visibilityTimeoutFor } from './config';
import { OffloadFunction } from './offload-function';

export interface JobQueueProps {
  /** The job type's name. */
  type: string;
  /** The worker's entry file (the type's worker.ts). */
  entry: string;
  description: string;
  settings: CoreSettings;
  dlqRetentionDays: number;
  logRetentionDays: number;
  removalPolicy: RemovalPolicy;
  environment: Record<string, string>;
  nativeModules?: string[];
}

/**
 * One job type's two lanes (a normal and a high-priority queue), their dead-letter queue and
 * the worker both lanes feed.
 *
 * Two event sources on the same worker: the high lane's gets `highMaxConcurrency` (default
 * twice the normal lane's `maxConcurrency`), so under load a high job is picked up by a
 * poller of its own instead of waiting behind the normal backlog.
 *
 * One DLQ for both lanes, not one per lane: an operator redrives a type, and SQS's redrive
 * (StartMessageMoveTask without a destination) returns each dead letter to the queue it came
 * from, so a high job's message goes back to the high lane; one DLQ per type also keeps one
 * depth alarm and one `offload dlq <type>` per type.
 *
 * Each queue's visibility timeout is derived from the worker's timeout (6x, as AWS
 * recommends for Lambda event sources) and is never set by hand; its retention is the
 * type's maxQueuedSeconds. Every queue uses SSE-SQS and refuses non-TLS requests. The event
 * sources report partial batch failures, so only the failed records of a batch are retried;
 * after `maxReceiveCount` receives a message moves to the DLQ, where it stays redrivable
 * for `dlqRetentionDays`.
 */
export class JobQueue extends Construct {
  /** The normal lane. */
  readonly queue: sqs.Queue;
  /** The high-priority lane. */
  readonly highQueue: sqs.Queue;
  /** The dead letters of both lanes. */
  readonly dlq: sqs.Queue;
  readonly worker: OffloadFunction;
  readonly visibilityTimeoutSeconds: number;

  constructor(scope: Construct, id: string, props: JobQueueProps) {
    super(scope, id);
    const s = props.settings;
    this.visibilityTimeoutSeconds = visibilityTimeoutFor(s.timeoutSeconds);

    this.dlq = new sqs.Queue(this, 'Dlq', {
      retentionPeriod: Duration.days(props.dlqRetentionDays),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy: props.removalPolicy,
    });
    const lane = (id: string): sqs.Queue =>
      new sqs.Queue(this, id, {
        visibilityTimeout: Duration.seconds(this.visibilityTimeoutSeconds),
        retentionPeriod: Duration.seconds(s.maxQueuedSeconds),
        receiveMessageWaitTime: Duration.seconds(20),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: this.dlq, maxReceiveCount: s.maxReceiveCount },
        removalPolicy: props.removalPolicy,
      });
    this.queue = lane('Queue');
    this.highQueue = lane('HighQueue');
    this.worker = new OffloadFunction(this, 'Worker', {
      entryFile: props.entry,
      description: props.description,
      timeoutSeconds: s.timeoutSeconds,
      memoryMb: s.memoryMb,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      environment: {
        ...props.environment,
        QUEUE_URL: this.queue.queueUrl,
        HIGH_QUEUE_URL: this.highQueue.queueUrl,
        VISIBILITY_TIMEOUT_SECONDS: String(this.visibilityTimeoutSeconds),
      },
      nativeModules: props.nativeModules,
    });

    for (const [queue, maxConcurrency] of [
      [this.queue, s.maxConcurrency],
      [this.highQueue, s.highMaxConcurrency],
    ] as const) {
      this.worker.fn.addEventSource(
        new SqsEventSource(queue, {
          batchSize: s.batchSize,
          maxBatchingWindow: s.batchingWindowSeconds > 0 ? Duration.seconds(s.batchingWindowSeconds) : undefined,
          maxConcurrency,
          reportBatchItemFailures: true,
        }),
      );
    }
  }
}
