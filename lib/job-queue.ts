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
 * One job type's queue, its dead-letter queue and its worker.
 *
 * The queue's visibility timeout is derived from the worker's timeout (6x, as AWS
 * recommends for Lambda event sources) and is never set by hand; its retention is the
 * type's maxQueuedSeconds. Both queues use SSE-SQS and refuse non-TLS requests. The event
 * source reports partial batch failures, so only the failed records of a batch are retried;
 * after `maxReceiveCount` receives a message moves to the DLQ, where it stays redrivable
 * for `dlqRetentionDays`.
 */
export class JobQueue extends Construct {
  readonly queue: sqs.Queue;
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
    this.queue = new sqs.Queue(this, 'Queue', {
      visibilityTimeout: Duration.seconds(this.visibilityTimeoutSeconds),
      retentionPeriod: Duration.seconds(s.maxQueuedSeconds),
      receiveMessageWaitTime: Duration.seconds(20),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.dlq, maxReceiveCount: s.maxReceiveCount },
      removalPolicy: props.removalPolicy,
    });
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
        VISIBILITY_TIMEOUT_SECONDS: String(this.visibilityTimeoutSeconds),
      },
      nativeModules: props.nativeModules,
    });

    this.worker.fn.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: s.batchSize,
        maxBatchingWindow: s.batchingWindowSeconds > 0 ? Duration.seconds(s.batchingWindowSeconds) : undefined,
        maxConcurrency: s.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
  }
}
