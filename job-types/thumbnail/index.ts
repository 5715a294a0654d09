import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { PRIORITIES, UPLOAD_PREFIXES } from '../../lambda/shared/contract';
import type { JobTypePlugin } from '../../lib/job-type';
import { definition } from './definition';

/**
 * The thumbnail type's CDK side: the raw bucket's ObjectCreated events feed its queues, one
 * prefix per lane (uploads/ -> the normal queue, priority-uploads/ -> the high queue: S3
 * refuses overlapping prefixes for one event type); its worker reads uploads; the API writes
 * and presigns them.
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
    const prefixes = PRIORITIES.map((p) => UPLOAD_PREFIXES[p]);
    const uploads = prefixes.map((prefix) => raw.arnForObjects(`${prefix}*`));
    allow(worker, ['s3:GetObject'], uploads);
    // ListBucket turns a missing object into a 404 (not_found) instead of a 403; only under the upload prefixes.
    allow(worker, ['s3:ListBucket'], [raw.bucketArn], { StringLike: { 's3:prefix': prefixes.map((prefix) => `${prefix}*`) } });
    // Objects put by other tools arrive without a job: the worker creates one.
    allow(worker, ['dynamodb:PutItem'], [table.table.tableArn]);
    allow(api.handler.fn, ['s3:PutObject'], uploads);

    // ObjectCreated under each lane's prefix -> that lane's queue, set on the bucket itself
    // (NotificationConfiguration) instead of CDK's BucketNotifications custom resource, so
    // emulators deploy it. S3 checks that it may send to the queues when the bucket is
    // created: the bucket depends on the queue policies, which name the bucket by its
    // computed name (not by reference) to avoid a cycle.
    const lanes = PRIORITIES.map((priority) => ({ prefix: UPLOAD_PREFIXES[priority], queue: priority === 'high' ? jobQueue.highQueue : jobQueue.queue }));
    for (const { queue } of lanes) {
      queue.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'AllowRawBucketEvents',
          principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
          actions: ['sqs:SendMessage'],
          resources: [queue.queueArn],
          conditions: {
            ArnEquals: { 'aws:SourceArn': `arn:${stack.partition}:s3:::${storage.rawBucketName}` },
            StringEquals: { 'aws:SourceAccount': stack.account },
          },
        }),
      );
      raw.node.addDependency(queue.node.findChild('Policy'));
    }
    const cfnBucket = raw.node.defaultChild as s3.CfnBucket;
    cfnBucket.notificationConfiguration = {
      queueConfigurations: lanes.map(({ prefix, queue }) => ({
        event: 's3:ObjectCreated:*',
        queue: queue.queueArn,
        filter: { s3Key: { rules: [{ name: 'prefix', value: prefix }] } },
      })),
    };

    const reason = 'object keys are per job ({uploads,priority-uploads}/{jobId}/{filename}), so the grant names the key prefix, not every object';
    for (const prefix of prefixes) {
      const objects = `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(cfnBucket)}.Arn>/${prefix}*]`;
      acknowledge(jobQueue.worker.role.node.findChild('DefaultPolicy').node.defaultChild!, objects, `thumbnail worker reads uploads: ${reason}`);
      acknowledge(api.handler.role.node.findChild('DefaultPolicy').node.defaultChild!, objects, `API presigns and writes uploads: ${reason}`);
    }
  },
};
