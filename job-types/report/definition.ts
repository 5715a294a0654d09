// zod's tree-shakable build: a few KB in each bundle instead of ~450 KB (cold starts).
import * as z from 'zod/mini';
import { HttpError } from '../../lambda/shared/errors';
import { defineJobType } from '../../lambda/shared/job-type';
import type { JobRecord } from '../../lambda/shared/model';
import { normalizeContentType, parseJsonBody, settingInt, splitSubmitOptions, withSubmitOptions } from '../../lambda/shared/schemas';

const isoDate = z.string().check(
  z.regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date as YYYY-MM-DD'),
  z.refine((s) => {
    const d = new Date(`${s}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
  }, 'is not a calendar date'),
);

export const REPORT_FORMATS = ['csv', 'pdf'] as const;
const Formats = z.array(z.enum(REPORT_FORMATS)).check(
  z.minLength(1, 'formats must name at least one of csv, pdf'),
  z.maxLength(2),
  z.refine((f) => new Set(f).size === f.length, 'formats must not repeat'),
);

/** A report's input: a range of days (inclusive, UTC) and the formats to make (default both). */
export const ReportInput = z.strictObject({ from: isoDate, to: isoDate, formats: z.optional(Formats) });
export type ReportInput = z.infer<typeof ReportInput>;

export const ReportSettings = z.object({
  /** Longest report range in days. */
  maxDays: settingInt(1, 3660),
});
export type ReportSettings = z.infer<typeof ReportSettings>;

export const formatsOf = (input: ReportInput): ('csv' | 'pdf')[] => input.formats ?? [...REPORT_FORMATS];

/**
 * Reports: the upload (thumbnail) jobs of a date range, streamed from the jobs table into
 * a CSV and a PDF with charts. Long and heavy: one per invocation, at most two at once.
 */
export const definition = defineJobType({
  name: 'report',
  description: 'a CSV and a PDF with charts over the upload jobs of a date range',
  inputKind: 'json',
  input: ReportInput,
  check: (input, settings) => {
    if (input.from > input.to) return `from (${input.from}) is after to (${input.to})`;
    const days = (Date.parse(`${input.to}T00:00:00Z`) - Date.parse(`${input.from}T00:00:00Z`)) / 86_400_000 + 1;
    if (days > settings.maxDays) return `the range covers ${days} days; the limit is ${settings.maxDays}`;
    return undefined;
  },
  settings: { defaults: { maxDays: 366 }, schema: ReportSettings },
  core: { timeoutSeconds: 600, memoryMb: 1024, batchSize: 1, batchingWindowSeconds: 0, maxConcurrency: 2 },
  resultsPrefix: 'reports/',
  // Kept from the first API: a report's input is also shown as `params`, with its formats resolved.
  view: (job: JobRecord) => {
    const input = job.input as ReportInput | undefined;
    return input ? { params: { from: input.from, to: input.to, formats: formatsOf(input) } } : {};
  },
  downloadName: (job, output) => {
    const input = job.input as ReportInput | undefined;
    return `offload-report-${input?.from}-to-${input?.to}.${output.format}`;
  },
  routes: [
    {
      method: 'POST',
      path: '/reports',
      operationName: 'CreateReport',
      summary:
        'Request a report of the upload jobs of a date range (the same as POST /jobs {"type":"report"}); priority and delaySeconds as on POST /jobs',
      body: withSubmitOptions(ReportInput),
      handle: async (req, ctx) => {
        if (normalizeContentType(req.headers['content-type']) !== 'application/json') {
          throw new HttpError(415, 'unsupported_media_type', 'send application/json { from, to, formats?, priority?, delaySeconds? }');
        }
        const { options, rest } = splitSubmitOptions(parseJsonBody(req.body));
        const job = await ctx.submit(rest as Record<string, unknown>, options);
        return { statusCode: 202, body: { jobId: job.jobId, statusUrl: ctx.statusUrl(req, job.jobId) } };
      },
    },
  ],
});
