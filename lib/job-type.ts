import * as path from 'node:path';
import type { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { AnyJobType, CoreSettings } from '../lambda/shared/job-type';
import type { Api } from './api';
import type { JobQueue } from './job-queue';
import type { JobsTable } from './jobs-table';
import type { Storage } from './storage';

/** What a type's infrastructure hook gets: its own queue and worker, and the platform's shared parts. */
export interface JobTypeInfraContext {
  stack: Stack;
  jobQueue: JobQueue;
  settings: CoreSettings & Record<string, unknown>;
  storage: Storage;
  table: JobsTable;
  api: Api;
  /** Grants named actions on named resources (no wildcard actions anywhere). */
  allow(grantee: iam.IGrantable, actions: string[], resources: string[], conditions?: Record<string, unknown>): void;
  /** Acknowledges one cdk-nag finding on one construct, with its reason. */
  acknowledge(scope: IConstruct, id: string, reason: string): void;
}

/**
 * A job type as the CDK app sees it: its definition (the same object its functions use),
 * the folder holding `definition.ts` and `worker.ts`, and its own infrastructure.
 */
export interface JobTypePlugin {
  definition: AnyJobType;
  /** The type's folder: `definition.ts` (exports `definition`) and `worker.ts` (exports `handler`). */
  dir: string;
  /** Native modules left out of the worker bundle and installed for linux-arm64 next to it. */
  nativeModules?: string[];
  /** Flat context keys kept from before per-type settings: `thumbnailTimeoutSeconds` -> `timeoutSeconds`. */
  contextAliases?: Record<string, string>;
  /** Extra grants, S3 wiring, alarms and nag acknowledgements of the type. */
  infra?(ctx: JobTypeInfraContext): void;
}

export const workerEntry = (plugin: JobTypePlugin): string => path.join(plugin.dir, 'worker.ts');
export const definitionModule = (plugin: JobTypePlugin): string => path.join(plugin.dir, 'definition.ts');

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });
}

export function allow(grantee: iam.IGrantable, actions: string[], resources: string[], conditions?: Record<string, unknown>): void {
  grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources, conditions }));
}
