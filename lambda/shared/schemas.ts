// zod's tree-shakable build: a few KB in each bundle instead of ~450 KB (cold starts).
import * as z from 'zod/mini';
import { DEFAULT_PRIORITY, JOB_STATUSES, MAX_DELAY_SECONDS, MAX_WAIT_SECONDS, PRIORITIES, type Priority } from './contract';
import { HttpError } from './errors';

/** `image/JPEG; charset=x` -> `image/jpeg`; `image/jpg` is a common misspelling of `image/jpeg`. */
export function normalizeContentType(value: string | undefined): string {
  const base = (value ?? '').split(';')[0].trim().toLowerCase();
  return base === 'image/jpg' || base === 'image/pjpeg' ? 'image/jpeg' : base;
}

/**
 * Options of every submit route, as top-level body fields next to the route's own:
 * `priority` (the lane: `high` or `normal`, default normal) and `delaySeconds` (0..900: the
 * message stays invisible that long; not on uploads, where the upload is the trigger).
 */
export const SubmitOptions = z.strictObject({
  priority: z.optional(z.enum(PRIORITIES, { error: `priority must be one of ${PRIORITIES.join(', ')}` })),
  delaySeconds: z.optional(
    z.number({ error: `delaySeconds must be a whole number from 0 to ${MAX_DELAY_SECONDS}` }).check(
      z.int(`delaySeconds must be a whole number from 0 to ${MAX_DELAY_SECONDS}`),
      z.gte(0, 'delaySeconds must be at least 0'),
      z.lte(MAX_DELAY_SECONDS, `delaySeconds must be at most ${MAX_DELAY_SECONDS}`),
    ),
  ),
});
export type SubmitOptions = z.infer<typeof SubmitOptions>;
export const SUBMIT_OPTION_KEYS = Object.keys(SubmitOptions.shape) as (keyof SubmitOptions)[];

/** Submit options with their defaults filled in. */
export interface ResolvedSubmitOptions {
  priority: Priority;
  delaySeconds: number;
}
export const resolveSubmitOptions = (o: SubmitOptions = {}): ResolvedSubmitOptions => ({
  priority: o.priority ?? DEFAULT_PRIORITY,
  delaySeconds: o.delaySeconds ?? 0,
});

/**
 * Splits a submit body into its submit options (checked: a 400 names the field) and the rest
 * (the route's own fields). `allowed` limits the options a route takes (uploads: priority only).
 */
export function splitSubmitOptions(
  body: unknown,
  allowed: readonly (keyof SubmitOptions)[] = SUBMIT_OPTION_KEYS,
): { options: ResolvedSubmitOptions; rest: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { options: resolveSubmitOptions(), rest: body };
  const given: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    // Defined, not assigned: a JSON key `__proto__` stays an own (unknown, refused) field.
    Object.defineProperty((allowed as readonly string[]).includes(k) ? given : rest, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  const parsed = SubmitOptions.safeParse(given);
  if (!parsed.success) throw new HttpError(400, 'invalid_request', describeIssues(parsed.error));
  return { options: resolveSubmitOptions(parsed.data), rest };
}

/** A route's body schema with the submit options it takes beside its own fields (API Gateway models, OpenAPI). */
export function withSubmitOptions<Shape extends z.core.$ZodLooseShape>(
  schema: z.ZodMiniObject<Shape>,
  allowed: readonly (keyof SubmitOptions)[] = SUBMIT_OPTION_KEYS,
) {
  const shape = Object.fromEntries(allowed.map((k) => [k, SubmitOptions.shape[k]])) as Partial<typeof SubmitOptions.shape>;
  return z.extend(schema, shape);
}

/** `POST /jobs`: any registered type; its input is checked by the type's own schema. */
export const SubmitRequest = z.strictObject({
  type: z.string().check(z.minLength(1, 'type must not be empty'), z.maxLength(64)),
  input: z.record(z.string(), z.unknown()),
  ...SubmitOptions.shape,
});

export const ListJobsQuery = z.strictObject({
  type: z.optional(z.string().check(z.maxLength(64))),
  status: z.optional(z.enum(JOB_STATUSES)),
  limit: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(100)), 20),
  cursor: z.optional(z.string().check(z.maxLength(4096))),
});

export { MAX_WAIT_SECONDS };

/** `GET /jobs/{jobId}?waitSeconds=N`: answer as soon as the job is terminal, or after N seconds with its state. */
export const GetJobQuery = z.object({
  waitSeconds: z.optional(
    z.string().check(z.regex(/^(?:[0-9]|1[0-9]|20)$/, `waitSeconds must be a whole number from 0 to ${MAX_WAIT_SECONDS}`)),
  ),
});

/** The `Idempotency-Key` header of a submit: 1-255 printable ASCII characters. */
export const IdempotencyKey = z.string().check(
  z.regex(/^[\x20-\x7e]{1,255}$/, 'the Idempotency-Key header must be 1 to 255 printable ASCII characters'),
);

/** A whole-number setting within bounds; context values arrive as strings. */
export const settingInt = (min: number, max: number) =>
  z.coerce.number().check(z.int(`must be a whole number from ${min} to ${max}`), z.gte(min, `must be at least ${min}`), z.lte(max, `must be at most ${max}`));

/** One readable line from a schema error: `size: size must be at least 1 byte; unknown field(s): extra`. */
export function describeIssues(error: { issues: ReadonlyArray<z.core.$ZodIssue> }, prefix = ''): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const path = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
      if (i.code === 'unrecognized_keys') return `unknown field(s)${path ? ` in ${path}` : ''}: ${i.keys.join(', ')}`;
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}

/** The body as JSON, or a 400 that says what is wrong with it. */
export function parseJsonBody(body: Buffer | undefined): unknown {
  if (!body || body.length === 0) throw new HttpError(400, 'invalid_request', 'the request body is empty');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_request', 'the request body is not valid JSON');
  }
}
