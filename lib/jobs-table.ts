import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

export const JOBS_BY_TYPE_INDEX = 'byTypeCreatedAt';
/** Sparse index: only jobs holding a lease (processing) have `leaseShard`. */
export const LEASES_INDEX = 'byLease';

/**
 * The jobs table: one item per job, keyed by jobId; a GSI lists jobs by type and creation
 * time (used by `GET /jobs` and by the report worker); a sparse GSI lists held leases by
 * expiry (used by the sweeper). `dynamodb.Table`, not `TableV2`:
 * emulators deploy the former.
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
      removalPolicy: props.removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: JOBS_BY_TYPE_INDEX,
      partitionKey: { name: 'type', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'createdAt', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: LEASES_INDEX,
      partitionKey: { name: 'leaseShard', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'leaseUntil', type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: ['type'],
    });
  }
}
