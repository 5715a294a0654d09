/**
 * offload as a construct library: compose the built-in job types with your own in your own
 * CDK app, without forking.
 *
 *   import { OffloadStack, builtInJobTypes } from 'offload';
 *   new OffloadStack(app, 'Jobs', { jobTypes: [...builtInJobTypes, myType] });
 *
 * A type's runtime half (`defineJobType`, `createWorker`) is exported from `offload/runtime`.
 */
export { builtInJobTypes } from '../job-types';
export { Api } from './api';
export { configFromContext, DEFAULT_CONFIG, resolveJobTypeSettings, type OffloadConfig } from './config';
export { JobQueue } from './job-queue';
export { acknowledge, allow, type JobTypeInfraContext, type JobTypePlugin } from './job-type';
export { OffloadStack, OUTPUT_KEYS, type OffloadStackProps } from './offload-stack';
export { openApiDocument } from './openapi';
