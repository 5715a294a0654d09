import * as z from 'zod/mini';
import { defineJobType } from '../../../lambda/shared/job-type';

/** Sends one e-mail through Amazon SES: slow (SES round trips, throttling) and retryable, so it belongs on a queue. */
export const definition = defineJobType({
  name: 'send-email',
  description: 'sends one e-mail through Amazon SES',
  inputKind: 'json',
  input: z.strictObject({
    to: z.email(),
    subject: z.string().check(z.minLength(1), z.maxLength(200)),
    text: z.string().check(z.minLength(1), z.maxLength(100_000)),
  }),
  settings: { defaults: { from: 'offload@example.com' }, schema: z.object({ from: z.email() }) },
  core: { timeoutSeconds: 15, memoryMb: 256, batchSize: 10, maxConcurrency: 5, retryBaseSeconds: 5, retryMaxSeconds: 600 },
  errorCodes: ['rejected'],
});
