import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { TERMINAL_STATUSES } from '../lambda/shared/contract';
import { OffloadFunction } from './offload-function';

export interface NotifierProps {
  table: dynamodb.Table;
  environment: Record<string, string>;
  logRetentionDays: number;
  dlqRetentionDays: number;
  removalPolicy: RemovalPolicy;
}

/**
 * The outbox relay: the jobs table's stream, filtered to records whose new image is
 * terminal, into the notifier function; failed batches are retried (bisected, from the
 * failed record), and after the retries their stream positions go to a DLQ.
 */
export class Notifier extends Construct {
  readonly worker: OffloadFunction;
  readonly dlq: sqs.Queue;

  constructor(scope: Construct, id: string, props: NotifierProps) {
    super(scope, id);
    this.worker = new OffloadFunction(this, 'Function', {
      entry: 'notifier',
      description: 'offload notifier: completion notifications from the jobs table stream (outbox)',
      timeoutSeconds: 30,
      memoryMb: 256,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      environment: props.environment,
    });
    this.dlq = new sqs.Queue(this, 'Dlq', {
      retentionPeriod: Duration.days(props.dlqRetentionDays),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy: props.removalPolicy,
    });
    this.worker.fn.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        bisectBatchOnError: true,
        retryAttempts: 10,
        maxRecordAge: Duration.hours(24),
        reportBatchItemFailures: true,
        onFailure: new SqsDlq(this.dlq),
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.or('INSERT', 'MODIFY'),
            dynamodb: { NewImage: { status: { S: lambda.FilterRule.or(...TERMINAL_STATUSES) } } },
          }),
        ],
      }),
    );
  }
}
