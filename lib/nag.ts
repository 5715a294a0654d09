import { Validations, type Stack } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import { REPORT_PREFIX, THUMBNAIL_PREFIX, UPLOAD_PREFIX } from '../lambda/shared/model';
import type { Api } from './api';
import type { JobQueue } from './job-queue';
import type { Storage } from './storage';

/**
 * Every cdk-nag AwsSolutions finding that is acknowledged rather than fixed, each on the
 * narrowest construct and, for wildcard resources, for the exact resource, with its reason.
 * Anything not listed here fails `cdk synth`.
 */
export function acknowledgeFindings(
  stack: Stack,
  parts: { api: Api; storage: Storage; thumbnails: JobQueue; reports: JobQueue },
): void {
  const { api, storage, thumbnails, reports } = parts;
  const ack = (scope: IConstruct, id: string, reason: string): void =>
    Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });

  // Object-level S3 rights are granted on a key prefix: the only way to name "the objects
  // this function writes or reads", since keys are per job.
  const objects = (bucket: s3.Bucket, prefix: string): string =>
    `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${prefix}*]`;
  const prefixReason = (what: string): string =>
    `${what}: object keys are per job (uploads/{jobId}/..., thumbnails/{jobId}/..., reports/{jobId}/...), so the grant names the key prefix, not every object`;
  const apiPolicy = api.handler.role.node.findChild('DefaultPolicy').node.defaultChild!;
  ack(apiPolicy, objects(storage.rawBucket, UPLOAD_PREFIX), prefixReason('API presigns and writes uploads'));
  ack(apiPolicy, objects(storage.resultsBucket, THUMBNAIL_PREFIX), prefixReason('API presigns thumbnail downloads'));
  ack(apiPolicy, objects(storage.resultsBucket, REPORT_PREFIX), prefixReason('API presigns report downloads'));
  const thumbPolicy = thumbnails.worker.role.node.findChild('DefaultPolicy').node.defaultChild!;
  ack(thumbPolicy, objects(storage.rawBucket, UPLOAD_PREFIX), prefixReason('thumbnail worker reads uploads'));
  ack(thumbPolicy, objects(storage.resultsBucket, THUMBNAIL_PREFIX), prefixReason('thumbnail worker writes thumbnails'));
  const reportPolicy = reports.worker.role.node.findChild('DefaultPolicy').node.defaultChild!;
  ack(reportPolicy, objects(storage.resultsBucket, REPORT_PREFIX), prefixReason('report worker writes reports'));

  const rest = api.restApi;
  const cloudWatchRole = rest.node.findChild('CloudWatchRole').node.defaultChild!;
  ack(
    cloudWatchRole,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    'the account-level role API Gateway needs to write access and execution logs; AWS documents this managed policy for exactly that role',
  );
  ack(
    rest.deploymentStage.node.defaultChild!,
    'AwsSolutions-APIG3',
    'WAF is an account-level choice with its own cost; the API is protected by API keys, a usage plan (throttle + quota) and request validation. Attach a web ACL to the stage where required',
  );
  for (const method of rest.methods) {
    if (method.httpMethod === 'OPTIONS') {
      const reason =
        'CORS preflight: browsers send OPTIONS without credentials by design, so it cannot require a key; it only returns the allowed methods and headers';
      ack(method.node.defaultChild!, 'AwsSolutions-APIG4', reason);
      ack(method.node.defaultChild!, 'AwsSolutions-COG4', reason);
      continue;
    }
    ack(
      method.node.defaultChild!,
      'AwsSolutions-APIG4',
      'offload is a machine-to-machine API: every route requires an API key tied to a usage plan; user-level auth (IAM/Cognito/Lambda authorizer) belongs to the web server that calls it',
    );
    ack(
      method.node.defaultChild!,
      'AwsSolutions-COG4',
      'no end users call this API directly; callers are servers holding an API key (see AwsSolutions-APIG4)',
    );
  }
}
