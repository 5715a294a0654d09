#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OffloadStack } from '../lib/offload-stack';

const app = new App();
// cdk-nag AwsSolutions: synth fails while any finding is neither fixed nor acknowledged
// (acknowledgements, each with its reason, live in lib/nag.ts).
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

new OffloadStack(app, app.node.tryGetContext('stackName') ?? 'Offload', {
  description: 'offload: serverless job queue (API Gateway, S3, SQS, DynamoDB, SNS, Lambda)',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
