import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { visibilityTimeoutFor } from './config';
import { OffloadFunction } from './offload-function';

export interface JobQueueProps {
  /** Short name of the job type's queue, e.g. `thumbnails`. */
  name: string;
  /** Worker folder under lambda/. */
  entry: string;
  description: string;
  timeoutSeconds: number;
  memoryMb: number;
  batchSize: number;
  batchingWindowSeconds: number;
  maxConcurrency: number;
  maxReceiveCount: number;
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
 * recommends for Lambda event sources) and is never set by hand. Both queues use SSE-SQS
 * and refuse non-TLS requests. The event source reports partial batch failures, so only the
 * failed records of a batch are retried; after `maxReceiveCount` receives a message moves
 * to the DLQ, where it stays redrivable for `dlqRetentionDays`.
 */
export class JobQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly dlq: sqs.Queue;
  readonly worker: OffloadFunction;
  readonly visibilityTimeoutSeconds: number;

  constructor(scope: Construct, id: string, props: JobQueueProps) {
    super(scope, id);
    this.visibilityTimeoutSeconds = visibilityTimeoutFor(props.timeoutSeconds);

    this.dlq = new sqs.Queue(this, 'Dlq', {
      retentionPeriod: Duration.days(props.dlqRetentionDays),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy: props.removalPolicy,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      visibilityTimeout: Duration.seconds(this.visibilityTimeoutSeconds),
      retentionPeriod: Duration.days(4),
      receiveMessageWaitTime: Duration.seconds(20),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.dlq, maxReceiveCount: props.maxReceiveCount },
      removalPolicy: props.removalPolicy,
    });
    this.worker = new OffloadFunction(this, 'Worker', {
      entry: props.entry,
      description: props.description,
      timeoutSeconds: props.timeoutSeconds,
      memoryMb: props.memoryMb,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      environment: { ...props.environment, MAX_RECEIVE_COUNT: String(props.maxReceiveCount) },
      nativeModules: props.nativeModules,
    });

    this.worker.fn.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: props.batchSize,
        maxBatchingWindow: props.batchingWindowSeconds > 0 ? Duration.seconds(props.batchingWindowSeconds) : undefined,
        maxConcurrency: props.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
  }

  get fn(): lambda.IFunction {
    return this.worker.fn;
  }
}
