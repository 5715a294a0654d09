import { z } from 'zod';
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
  filename: z.string().min(1, 'filename must not be empty').max(1024, 'filename is longer than 1024 characters'),
  contentType: z.string().min(1).max(255),
  size: z.number().int('size must be a whole number of bytes').positive('size must be at least 1 byte'),
});
export type UploadRequest = z.infer<typeof UploadRequest>;

const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date as YYYY-MM-DD')
  .refine((s) => {
    const d = new Date(`${s}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
  }, 'is not a calendar date');

export const ReportRequest = z.strictObject({
  from: isoDate,
  to: isoDate,
  formats: z
    .array(z.enum(['csv', 'pdf']))
    .min(1, 'formats must name at least one of csv, pdf')
    .max(2)
    .refine((f) => new Set(f).size === f.length, 'formats must not repeat')
    .optional(),
});
export type ReportRequest = z.infer<typeof ReportRequest>;

export const ListJobsQuery = z.strictObject({
  type: z.enum(JOB_TYPES).optional(),
  status: z.enum(JOB_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(4096).optional(),
});

/** One readable line from a zod error: `size: size must be at least 1 byte; extra: unrecognized key`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.join('.');
      if (i.code === 'unrecognized_keys') return `unknown field(s): ${i.keys.join(', ')}`;
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}
