import { Validations, type Stack } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import type { Api } from './api';
import type { JobQueue } from './job-queue';
import type { Notifier } from './notifier';
import type { Storage } from './storage';

/**
 * Every cdk-nag AwsSolutions finding that is acknowledged rather than fixed, each on the
 * narrowest construct and, for wildcard resources, for the exact resource, with its reason.
 * Anything not listed here fails `cdk synth`.
 */
export function acknowledgeFindings(
  stack: Stack,
  parts: { api: Api; storage: Storage; notifier: Notifier; resultsPrefixes: string[]; workers: Array<{ jobQueue: JobQueue; prefix: string }> },
): void {
  const { api, storage, notifier, resultsPrefixes, workers } = parts;
  const ack = (scope: IConstruct, id: string, reason: string): void =>
    Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });

  // Object-level S3 rights are granted on a key prefix: the only way to name "the objects
  // this function writes or reads", since keys are per job.
  const objects = (bucket: s3.Bucket, prefix: string): string =>
    `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${prefix}*]`;
  const prefixReason = (what: string): string =>
    `${what}: object keys are per job (<type prefix>/{jobId}/...), so the grant names the type's key prefix, not every object`;
  const policyOf = (fn: { role: { node: IConstruct['node'] } }) => fn.role.node.findChild('DefaultPolicy').node.defaultChild!;
  for (const prefix of resultsPrefixes) ack(policyOf(api.handler), objects(storage.resultsBucket, prefix), prefixReason('API presigns result downloads'));
  for (const { jobQueue, prefix } of workers) ack(policyOf(jobQueue.worker), objects(storage.resultsBucket, prefix), prefixReason('worker writes its outputs'));
  ack(policyOf(api.handler), 'AwsSolutions-IAM5[Resource::*]', "cloudwatch:GetMetricData (GET /queues: the queues' oldest-message age) supports no resource-level permissions");
  // Lambda's DynamoDB event source needs dynamodb:ListStreams, which has no resource-level permissions.
  ack(policyOf(notifier.worker), 'AwsSolutions-IAM5[Resource::*]', 'dynamodb:ListStreams (the stream event source) supports no resource-level permissions; every other stream action names the table\'s stream');

  ack(
    notifier.dlq.node.defaultChild!,
    'AwsSolutions-SQS3',
    "this queue is itself a dead-letter queue: the on-failure destination of the notifier's stream event source (cdk-nag only recognises redrive-policy DLQs)",
  );

  const rest = api.restApi;
  ack(
    rest.deploymentStage.node.defaultChild!,
    'AwsSolutions-APIG3',
    'WAF is an account-level choice with its own cost; the API is protected by API keys, a usage plan (throttle + quota) and request validation. Attach a web ACL to the stage where required',
  );
  for (const method of rest.methods) {
    const isConsole = method.httpMethod === 'GET' && (method.resource.path === '/' || method.resource.path === '/console/{file}');
    if (method.httpMethod === 'OPTIONS' || method.resource.path === '/openapi.json' || isConsole) {
      const reason =
        method.httpMethod === 'OPTIONS'
          ? 'CORS preflight: browsers send OPTIONS without credentials by design, so it cannot require a key; it only returns the allowed methods and headers'
          : isConsole
            ? 'the console page and its script and stylesheet are static and hold nothing secret (a person types an API key into the page, which sends it with every API call); a browser cannot send a key to load the page itself'
            : 'the OpenAPI document describes the public contract and holds nothing secret, so tools and people read it without a key';
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
