import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { REPORT_PREFIX, THUMBNAIL_PREFIX, UPLOAD_PREFIX } from '../lambda/shared/model';
import { Api } from './api';
import { configFromContext, type OffloadConfig } from './config';
import { JobQueue } from './job-queue';
import { JOBS_BY_TYPE_INDEX, JobsTable, LEASES_INDEX } from './jobs-table';
import { acknowledgeFindings } from './nag';
import { Monitoring } from './monitoring';
import { Notifications } from './notifications';
import { Storage } from './storage';
import { Sweeper } from './sweeper';

export interface OffloadStackProps extends StackProps {
  /** Overrides on top of the defaults and the CDK context. */
  config?: Partial<OffloadConfig>;
}

/** The output keys clients and tools read. */
export const OUTPUT_KEYS = [
  'ApiUrl',
  'ApiKeyId',
  'RawBucketName',
  'ResultsBucketName',
  'JobsTableName',
  'ThumbnailQueueUrl',
  'ThumbnailDlqUrl',
  'ReportQueueUrl',
  'ReportDlqUrl',
  'NotificationTopicArn',
] as const;

/**
 * offload: API Gateway -> S3 / SQS -> Lambda workers -> DynamoDB job status -> SNS.
 * One construct per concern, composed here.
 */
export class OffloadStack extends Stack {
  readonly config: OffloadConfig;

  constructor(scope: Construct, id: string, props: OffloadStackProps = {}) {
    super(scope, id, props);
    const config = (this.config = configFromContext(this.node, props.config));
    const removalPolicy = config.ephemeral ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const corsOrigins = config.corsOrigins.split(',').map((o) => o.trim()).filter(Boolean);

    const storage = new Storage(this, 'Storage', {
      removalPolicy,
      rawExpirationDays: config.rawExpirationDays,
      resultsExpirationDays: config.resultsExpirationDays,
      corsOrigins,
    });
    const jobs = new JobsTable(this, 'Jobs', { removalPolicy });
    const notifications = new Notifications(this, 'Notifications', {
      notifyEmail: config.notifyEmail,
      alarmEmail: config.alarmEmail,
      removalPolicy,
    });

    const common = {
      JOBS_TABLE: jobs.table.tableName,
      JOBS_INDEX: JOBS_BY_TYPE_INDEX,
      LEASES_INDEX,
      RAW_BUCKET: storage.rawBucket.bucketName,
      RESULTS_BUCKET: storage.resultsBucket.bucketName,
      TOPIC_ARN: notifications.completionTopic.topicArn,
      PRESIGN_TTL_SECONDS: String(config.presignTtlSeconds),
      JOB_TTL_DAYS: String(config.jobTtlDays),
      POWERTOOLS_METRICS_NAMESPACE: 'offload',
      POWERTOOLS_LOG_LEVEL: 'INFO',
    };
    const queueCommon = {
      maxReceiveCount: config.maxReceiveCount,
      dlqRetentionDays: config.dlqRetentionDays,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
    };

    const thumbnails = new JobQueue(this, 'Thumbnails', {
      ...queueCommon,
      name: 'thumbnails',
      entry: 'thumbnail',
      description: 'offload thumbnail worker: one decode, every size, JPEG/PNG + WebP',
      timeoutSeconds: config.thumbnailTimeoutSeconds,
      memoryMb: config.thumbnailMemoryMb,
      batchSize: config.thumbnailBatchSize,
      batchingWindowSeconds: config.thumbnailBatchingWindowSeconds,
      maxConcurrency: config.thumbnailMaxConcurrency,
      environment: {
        ...common,
        POWERTOOLS_SERVICE_NAME: 'offload-thumbnail',
        THUMBNAIL_SIZES: config.thumbnailSizes,
        MAX_PIXELS: String(config.maxPixels),
        MAX_UPLOAD_BYTES: String(config.maxUploadBytes),
        WORKER_TIMEOUT_SECONDS: String(config.thumbnailTimeoutSeconds),
      },
      nativeModules: ['sharp'],
    });
    const reports = new JobQueue(this, 'Reports', {
      ...queueCommon,
      name: 'reports',
      entry: 'report',
      description: 'offload report worker: CSV + PDF over the upload jobs of a date range',
      timeoutSeconds: config.reportTimeoutSeconds,
      memoryMb: config.reportMemoryMb,
      batchSize: config.reportBatchSize,
      batchingWindowSeconds: config.reportBatchingWindowSeconds,
      maxConcurrency: config.reportMaxConcurrency,
      environment: {
        ...common,
        POWERTOOLS_SERVICE_NAME: 'offload-report',
        WORKER_TIMEOUT_SECONDS: String(config.reportTimeoutSeconds),
      },
      // pdfkit reads its font metrics and ICC profile from files next to its code at run
      // time, which esbuild cannot inline: it is installed beside the bundle instead.
      nativeModules: ['pdfkit'],
    });

    const api = new Api(this, 'Api', {
      environment: {
        ...common,
        POWERTOOLS_SERVICE_NAME: 'offload-api',
        REPORT_QUEUE_URL: reports.queue.queueUrl,
        MAX_UPLOAD_BYTES: String(config.maxUploadBytes),
        DIRECT_UPLOAD_MAX_BYTES: String(config.directUploadMaxBytes),
        REPORT_MAX_DAYS: String(config.reportMaxDays),
        CORS_ORIGINS: corsOrigins.join(','),
      },
      timeoutSeconds: config.apiTimeoutSeconds,
      memoryMb: config.apiMemoryMb,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
      corsOrigins,
      rateLimit: config.apiRateLimit,
      burstLimit: config.apiBurstLimit,
      quotaPerDay: config.apiQuotaPerDay,
    });

    this.wireUploadsToThumbnailQueue(storage, thumbnails);

    // A lease left behind can only be retried while its message has receives left.
    const sweeper = new Sweeper(this, 'Sweeper', {
      intervalMinutes: config.sweepIntervalMinutes,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
      environment: {
        ...common,
        POWERTOOLS_SERVICE_NAME: 'offload-sweeper',
        THUMBNAIL_GRACE_SECONDS: String(config.maxReceiveCount * thumbnails.visibilityTimeoutSeconds),
        REPORT_GRACE_SECONDS: String(config.maxReceiveCount * reports.visibilityTimeoutSeconds),
        THUMBNAIL_DLQ_URL: thumbnails.dlq.queueUrl,
        REPORT_DLQ_URL: reports.dlq.queueUrl,
      },
    });

    // Least-privilege grants: named actions on named resources, no wildcard actions.
    const table = jobs.table;
    const tableActions = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'];
    const tableResources = [table.tableArn, `${table.tableArn}/index/${JOBS_BY_TYPE_INDEX}`, `${table.tableArn}/index/${LEASES_INDEX}`];
    const allow = (grantee: iam.IGrantable, actions: string[], resources: string[]): void => {
      grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources }));
    };
    for (const fn of [api.handler.fn, thumbnails.worker.fn, reports.worker.fn, sweeper.worker.fn]) allow(fn, tableActions, tableResources);

    allow(api.handler.fn, ['s3:PutObject'], [storage.rawBucket.arnForObjects(`${UPLOAD_PREFIX}*`)]);
    allow(api.handler.fn, ['s3:GetObject'], [
      storage.resultsBucket.arnForObjects(`${THUMBNAIL_PREFIX}*`),
      storage.resultsBucket.arnForObjects(`${REPORT_PREFIX}*`),
    ]);
    allow(api.handler.fn, ['sqs:SendMessage'], [reports.queue.queueArn]);

    allow(thumbnails.worker.fn, ['s3:GetObject'], [storage.rawBucket.arnForObjects(`${UPLOAD_PREFIX}*`)]);
    // ListBucket turns a missing object into a 404 (not_found) instead of a 403.
    allow(thumbnails.worker.fn, ['s3:ListBucket'], [storage.rawBucket.bucketArn]);
    allow(thumbnails.worker.fn, ['s3:PutObject'], [storage.resultsBucket.arnForObjects(`${THUMBNAIL_PREFIX}*`)]);
    notifications.grantPublish(thumbnails.worker.fn);

    allow(reports.worker.fn, ['s3:PutObject', 's3:AbortMultipartUpload'], [storage.resultsBucket.arnForObjects(`${REPORT_PREFIX}*`)]);
    notifications.grantPublish(reports.worker.fn);
    notifications.grantPublish(sweeper.worker.fn);
    // The sweeper reads the DLQs (and makes what it read visible again); it deletes nothing.
    allow(sweeper.worker.fn, ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility'], [thumbnails.dlq.queueArn, reports.dlq.queueArn]);

    new Monitoring(this, 'Monitoring', {
      alarmTopic: notifications.alarmTopic,
      queues: [
        { label: 'Thumbnails', jobQueue: thumbnails },
        { label: 'Reports', jobQueue: reports },
      ],
      apiFunction: api.handler,
      sweeperFunction: sweeper.worker,
      apiName: api.restApi.restApiName,
      apiStage: api.restApi.deploymentStage.stageName,
      oldestMessageSeconds: config.alarmOldestMessageSeconds,
    });

    const outputs: Record<(typeof OUTPUT_KEYS)[number], [string, string]> = {
      ApiUrl: [api.restApi.url, 'Base URL of the REST API'],
      ApiKeyId: [api.apiKey.keyId, 'Id of the default API key (aws apigateway get-api-key --include-value --api-key ID)'],
      RawBucketName: [storage.rawBucket.bucketName, 'Raw uploads bucket'],
      ResultsBucketName: [storage.resultsBucket.bucketName, 'Thumbnails and reports bucket'],
      JobsTableName: [table.tableName, 'Jobs table'],
      ThumbnailQueueUrl: [thumbnails.queue.queueUrl, 'Thumbnail jobs queue'],
      ThumbnailDlqUrl: [thumbnails.dlq.queueUrl, 'Thumbnail dead-letter queue'],
      ReportQueueUrl: [reports.queue.queueUrl, 'Report jobs queue'],
      ReportDlqUrl: [reports.dlq.queueUrl, 'Report dead-letter queue'],
      NotificationTopicArn: [notifications.completionTopic.topicArn, 'Job completion topic (attributes: type, status)'],
    };
    for (const [key, [value, description]] of Object.entries(outputs)) {
      new CfnOutput(this, key, { value, description });
    }

    acknowledgeFindings(this, { api, storage, thumbnails, reports });
  }

  /**
   * ObjectCreated under uploads/ in the raw bucket -> thumbnails queue, set on the bucket
   * itself (AWS::S3::Bucket NotificationConfiguration) instead of through CDK's
   * BucketNotifications custom resource, so emulators and LocalStack's community edition
   * deploy it. S3 checks that it may send to the queue when the bucket is created, so the
   * bucket depends on the queue policy, and the policy names the bucket by its computed name
   * (not by reference) to avoid a cycle.
   */
  private wireUploadsToThumbnailQueue(storage: Storage, thumbnails: JobQueue): void {
    thumbnails.queue.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowRawBucketEvents',
        principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [thumbnails.queue.queueArn],
        conditions: {
          ArnEquals: { 'aws:SourceArn': `arn:${this.partition}:s3:::${storage.rawBucketName}` },
          StringEquals: { 'aws:SourceAccount': this.account },
        },
      }),
    );
    const cfnBucket = storage.rawBucket.node.defaultChild as s3.CfnBucket;
    cfnBucket.notificationConfiguration = {
      queueConfigurations: [
        {
          event: 's3:ObjectCreated:*',
          queue: thumbnails.queue.queueArn,
          filter: { s3Key: { rules: [{ name: 'prefix', value: UPLOAD_PREFIX }] } },
        },
      ],
    };
    // addToResourcePolicy (and enforceSSL) keep the statements in the queue's one QueuePolicy.
    storage.rawBucket.node.addDependency(thumbnails.queue.node.findChild('Policy'));
  }
}
