import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { Construct } from 'constructs';
import { OffloadFunction } from './offload-function';

export interface SweeperProps {
  intervalMinutes: number;
  environment: Record<string, string>;
  logRetentionDays: number;
  removalPolicy: RemovalPolicy;
}

/** A scheduled function that fails unfinished jobs past their deadline (see lambda/sweeper): no job stays stuck. */
export class Sweeper extends Construct {
  readonly worker: OffloadFunction;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: SweeperProps) {
    super(scope, id);
    this.worker = new OffloadFunction(this, 'Function', {
      entry: 'sweeper',
      description: 'offload sweeper: fails unfinished jobs past their deadline',
      timeoutSeconds: 60,
      memoryMb: 256,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      environment: props.environment,
    });
    this.rule = new events.Rule(this, 'Schedule', {
      description: 'offload: sweep unfinished jobs past their deadline',
      schedule: events.Schedule.rate(Duration.minutes(props.intervalMinutes)),
      targets: [new targets.LambdaFunction(this.worker.fn, { retryAttempts: 2 })],
    });
  }
}
