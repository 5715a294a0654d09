/**
 * The registry: every job type offload ships. The stack, the API, the sweeper, monitoring,
 * the CLI and local mode iterate this list and never name a type. Adding a type = its folder
 * + one line here (or, in your own CDK app, `jobTypes: [...builtInJobTypes, yours]`).
 */
import type { JobTypePlugin } from '../lib/job-type';
import { report } from './report';
import { thumbnail } from './thumbnail';

export const builtInJobTypes: readonly JobTypePlugin[] = [thumbnail, report];
