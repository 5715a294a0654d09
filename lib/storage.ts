import { Aws, Duration, Fn, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { PRIORITIES, UPLOAD_PREFIXES } from '../lambda/shared/contract';

export interface StorageProps {
  removalPolicy: RemovalPolicy;
  rawExpirationDays: number;
  resultsExpirationDays: number;
  corsOrigins: string[];
}

/**
 * The raw-uploads bucket, the results bucket (thumbnails, reports) and the bucket that
 * receives both buckets' server access logs.
 *
 * All three block public access, enforce TLS and encrypt at rest (SSE-S3). No
 * `autoDeleteObjects`: it is a CDK custom resource, which emulators cannot run.
 */
export class Storage extends Construct {
  readonly logBucket: s3.Bucket;
  readonly rawBucket: s3.Bucket;
  readonly resultsBucket: s3.Bucket;
  /**
   * The raw bucket's name, as a CloudFormation expression that does not reference the
   * bucket resource. The thumbnails queue's policy names the bucket through it, which lets
   * the bucket's notification configuration depend on that policy without a cycle.
   */
  readonly rawBucketName: string;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const common = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      removalPolicy: props.removalPolicy,
    } satisfies s3.BucketProps;

    this.logBucket = new s3.Bucket(this, 'AccessLogs', {
      ...common,
      // Log delivery is granted by bucket policy (not ACLs), so ACLs stay disabled.
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
    });

    // Unique per stack: account, region and the first block of the stack's UUID.
    const stackUuid = Fn.select(2, Fn.split('/', Aws.STACK_ID));
    this.rawBucketName = Fn.join('-', ['offload-raw', Aws.ACCOUNT_ID, Aws.REGION, Fn.select(0, Fn.split('-', stackUuid))]);

    this.rawBucket = new s3.Bucket(this, 'Raw', {
      ...common,
      bucketName: this.rawBucketName,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'raw/',
      lifecycleRules: [
        // One rule per lane's upload prefix (the first keeps its id from before lanes).
        ...PRIORITIES.map((p) => ({
          id: p === 'normal' ? 'expire-raw-uploads' : `expire-raw-uploads-${p}`,
          prefix: UPLOAD_PREFIXES[p],
          expiration: Duration.days(props.rawExpirationDays),
        })),
        { id: 'abort-incomplete-multipart', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      // Browsers PUT straight to the presigned URL.
      cors: [
        {
          allowedMethods: [s3.HttpMethods.PUT],
          allowedOrigins: props.corsOrigins,
          allowedHeaders: ['*'],
          maxAge: 3600,
        },
      ],
    });

    this.resultsBucket = new s3.Bucket(this, 'Results', {
      ...common,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'results/',
      lifecycleRules: [
        { id: 'abort-incomplete-multipart', abortIncompleteMultipartUploadAfter: Duration.days(1) },
        ...(props.resultsExpirationDays > 0
          ? [{ id: 'expire-results', expiration: Duration.days(props.resultsExpirationDays) }]
          : []),
      ],
      cors: [
        {
          allowedMethods: [s3.HttpMethods.GET, s3.HttpMethods.HEAD],
          allowedOrigins: props.corsOrigins,
          allowedHeaders: ['*'],
          maxAge: 3600,
        },
      ],
    });
  }
}
