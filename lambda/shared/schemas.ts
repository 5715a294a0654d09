// zod's tree-shakable build: a few KB in each bundle instead of ~450 KB (cold starts).
import * as z from 'zod/mini';
import { JOB_STATUSES, JOB_TYPES } from './model';

/** Image types accepted for upload; the worker checks the bytes themselves, not this label. */
export const ACCEPTED_IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/tiff', 'image/avif'] as const;
const EXT: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/tiff': 'tiff',
  'image/avif': 'avif',
};
export const extensionFor = (contentType: string): string => EXT[contentType] ?? 'bin';

/** `image/JPEG; charset=x` -> `image/jpeg`; `image/jpg` is a common misspelling of `image/jpeg`. */
export function normalizeContentType(value: string | undefined): string {
  const base = (value ?? '').split(';')[0].trim().toLowerCase();
  return base === 'image/jpg' || base === 'image/pjpeg' ? 'image/jpeg' : base;
}

export const UploadRequest = z.strictObject({
  filename: z.string().check(z.minLength(1, 'filename must not be empty'), z.maxLength(1024, 'filename is longer than 1024 characters')),
  contentType: z.string().check(z.minLength(1), z.maxLength(255)),
  size: z.number().check(
    z.refine((n) => Number.isInteger(n), 'size must be a whole number of bytes'),
    z.positive('size must be at least 1 byte'),
  ),
});
export type UploadRequest = z.infer<typeof UploadRequest>;

const isoDate = z.string().check(
  z.regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date as YYYY-MM-DD'),
  z.refine((s) => {
    const d = new Date(`${s}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
  }, 'is not a calendar date'),
);

const Formats = z.array(z.enum(['csv', 'pdf'])).check(
  z.minLength(1, 'formats must name at least one of csv, pdf'),
  z.maxLength(2),
  z.refine((f) => new Set(f).size === f.length, 'formats must not repeat'),
);

export const ReportRequest = z.strictObject({ from: isoDate, to: isoDate, formats: z.optional(Formats) });
export type ReportRequest = z.infer<typeof ReportRequest>;

/** The message the API puts on the reports queue (formats resolved). */
export const ReportMessage = z.object({
  jobId: z.uuid(),
  params: z.object({ from: isoDate, to: isoDate, formats: Formats }).check(z.refine((p) => p.from <= p.to, 'from is after to')),
});

export const ListJobsQuery = z.strictObject({
  type: z.optional(z.enum(JOB_TYPES)),
  status: z.optional(z.enum(JOB_STATUSES)),
  limit: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(100)), 20),
  cursor: z.optional(z.string().check(z.maxLength(4096))),
});

/** One readable line from a schema error: `size: size must be at least 1 byte; unknown field(s): extra`. */
export function describeIssues(error: { issues: ReadonlyArray<z.core.$ZodIssue> }): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.join('.');
      if (i.code === 'unrecognized_keys') return `unknown field(s): ${i.keys.join(', ')}`;
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}
