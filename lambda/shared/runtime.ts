/** What a job type's own code imports (`offload/runtime`): its definition and its worker. */
export { JOB_STATUSES, UPLOAD_PREFIX, isJobId, type JobStatus } from './contract';
export { PermanentJobError } from './errors';
export { defineJobType, DEFAULT_CORE_SETTINGS, type CoreSettings, type JobTypeDefinition, type MessageJob, type TypeRoute, type TypeRouteContext } from './job-type';
export type { JobRecord, JobView, StoredOutput } from './model';
export { settingInt } from './schemas';
export { createWorker, type WorkContext, type WorkResult } from './worker';
