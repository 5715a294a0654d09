import * as z from 'zod/mini';

/**
 * Every function reads its environment through one schema, once, at cold start: a missing
 * or malformed variable fails the cold start and names the variable. No silent defaults:
 * the stack sets every variable a function reads.
 */
export function parseEnv<S extends z.ZodMiniType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`);
  throw new Error(`invalid function environment: ${problems.join('; ')}`);
}

/** A non-empty string variable. */
export const str = () => z.string().check(z.minLength(1, 'is not set'));
/** A whole number given as a string. */
export const int = () =>
  z.pipe(
    z.string().check(z.regex(/^-?\d+$/, 'is not a whole number')),
    z.transform((s) => Number(s)),
  );
/** A JSON document given as a string, checked by `inner`. */
export const json = <T extends z.ZodMiniType>(inner: T) =>
  z.pipe(
    z.pipe(
      z.string().check(z.minLength(2, 'is not set')),
    z.transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.issues.push({ code: 'custom', message: 'is not valid JSON', input: s });
        return z.NEVER;
      }
    }),
    ),
    inner,
  );

/** What every function of the platform reads. */
export const BaseEnv = z.object({
  JOBS_TABLE: str(),
  JOB_TTL_DAYS: int(),
});
