import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { UPLOAD_PREFIX } from '../../lambda/shared/contract';
import type { JobTypePlugin } from '../../lib/job-type';
import { definition } from './definition';

/**
 * The thumbnail type's CDK side: the raw bucket's ObjectCreated events under uploads/ feed
 * its queue; its worker reads uploads; the API writes and presigns them.
 */
export const thumbnail: JobTypePlugin = {
  definition,
  dir: __dirname,
  // sharp's linux-arm64 binary is installed beside the bundle.
  nativeModules: ['sharp'],
  contextAliases: {
    thumbnailTimeoutSeconds: 'timeoutSeconds',
    thumbnailMemoryMb: 'memoryMb',
    thumbnailBatchSize: 'batchSize',
    thumbnailBatchingWindowSeconds: 'batchingWindowSeconds',
    thumbnailMaxConcurrency: 'maxConcurrency',
    thumbnailSizes: 'sizes',
    maxPixels: 'maxPixels',
    maxUploadBytes: 'maxUploadBytes',
    directUploadMaxBytes: 'directUploadMaxBytes',
  },
  infra: ({ stack, jobQueue, storage, table, api, allow, acknowledge }) => {
    const raw = storage.rawBucket;
    const worker = jobQueue.worker.fn;
    allow(worker, ['s3:GetObject'], [raw.arnForObjects(`${UPLOAD_PREFIX}*`)]);
    // ListBucket turns a missing object into a 404 (not_found) instead of a 403; only under uploads/.
    allow(worker, ['s3:ListBucket'], [raw.bucketArn], { StringLike: { 's3:prefix': [`${UPLOAD_PREFIX}*`] } });
    // Objects put by other tools arrive without a job: the worker creates one.
    allow(worker, ['dynamodb:PutItem'], [table.table.tableArn]);
    allow(api.handler.fn, ['s3:PutObject'], [raw.arnForObjects(`${UPLOAD_PREFIX}*`)]);

    // ObjectCreated under uploads/ -> the queue, set on the bucket itself
    // (NotificationConfiguration) instead of CDK's BucketNotifications custom resource, so
    // emulators deploy it. S3 checks that it may send to the queue when the bucket is
    // created: the bucket depends on the queue policy, which names the bucket by its
    // computed name (not by reference) to avoid a cycle.
    jobQueue.queue.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowRawBucketEvents',
        principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [jobQueue.queue.queueArn],
        conditions: {
          ArnEquals: { 'aws:SourceArn': `arn:${stack.partition}:s3:::${storage.rawBucketName}` },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );
    const cfnBucket = raw.node.defaultChild as s3.CfnBucket;
    cfnBucket.notificationConfiguration = {
      queueConfigurations: [
        { event: 's3:ObjectCreated:*', queue: jobQueue.queue.queueArn, filter: { s3Key: { rules: [{ name: 'prefix', value: UPLOAD_PREFIX }] } } },
      ],
    };
    raw.node.addDependency(jobQueue.queue.node.findChild('Policy'));

    const objects = `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(cfnBucket)}.Arn>/${UPLOAD_PREFIX}*]`;
    const reason = 'object keys are per job (uploads/{jobId}/{filename}), so the grant names the key prefix, not every object';
    acknowledge(jobQueue.worker.role.node.findChild('DefaultPolicy').node.defaultChild!, objects, `thumbnail worker reads uploads: ${reason}`);
    acknowledge(api.handler.role.node.findChild('DefaultPolicy').node.defaultChild!, objects, `API presigns and writes uploads: ${reason}`);
  },
};
