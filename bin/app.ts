#!/usr/bin/env node
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { builtInJobTypes } from '../job-types';
import type { JobTypePlugin } from '../lib/job-type';
import { OffloadStack } from '../lib/offload-stack';

const app = new App();
// cdk-nag AwsSolutions: synth fails while any finding is neither fixed nor acknowledged
// (acknowledgements, each with its reason, live in lib/nag.ts and each type's infra).
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

// `-c jobTypesModule=path/to/registry.ts` (exporting `jobTypes`) deploys another registry,
// e.g. the built-in types plus your own; by default, the built-in ones.
const registry: string | undefined = app.node.tryGetContext('jobTypesModule');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const jobTypes: readonly JobTypePlugin[] = registry ? require(path.resolve(registry)).jobTypes : builtInJobTypes;

new OffloadStack(app, app.node.tryGetContext('stackName') ?? 'Offload', {
  description: 'offload: serverless job queue (API Gateway, S3, SQS, DynamoDB, SNS, Lambda)',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  jobTypes,
});
