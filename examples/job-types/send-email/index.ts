import type { JobTypePlugin } from '../../../lib/job-type';
import { definition } from './definition';

export const sendEmail: JobTypePlugin = {
  definition,
  dir: __dirname,
  infra: ({ stack, jobQueue, settings, allow }) => {
    // Only this identity may be used as the sender.
    allow(jobQueue.worker.fn, ['ses:SendEmail'], [`arn:${stack.partition}:ses:${stack.region}:${stack.account}:identity/${String(settings.from)}`]);
  },
};
