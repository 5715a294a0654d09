import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { INDEXES } from '../lambda/shared/contract';

/**
 * The jobs table: one item per job, keyed by jobId; a GSI lists jobs by type and creation
 * time (`GET /jobs`, reports); a sparse GSI lists unfinished jobs by deadline, spread over
 * SWEEP_SHARDS partitions (the sweeper). Its stream (new and old images) is the outbox that
 * completion notifications fan out from. `dynamodb.Table`, not `TableV2`: emulators deploy
 * the former.
 */
export class JobsTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: { removalPolicy: RemovalPolicy }) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'jobId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: 'expiresAt',
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      removalPolicy: props.removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: INDEXES.byType,
      partitionKey: { name: 'type', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'createdAt', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: INDEXES.byDeadline,
      partitionKey: { name: 'sweepShard', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sweepAt', type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      // What the sweeper needs to end a job with one write: failed (by status), or cancelled.
      nonKeyAttributes: ['type', 'status', 'cancelRequested'],
    });
  }
}
