/** An error the API turns into `{ error: { code, message } }` with its status code. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * A job failure that retrying cannot fix (bad input): the job fails at once with this code
 * and the message is acknowledged.
 */
export class PermanentJobError extends Error {
  readonly permanent = true;
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PermanentJobError';
  }
}

/** True for errors that carry a permanent job failure code (ours or the image core's). */
export function isPermanent(err: unknown): err is Error & { code: string; permanent: true } {
  return typeof err === 'object' && err !== null && (err as { permanent?: unknown }).permanent === true &&
    typeof (err as { code?: unknown }).code === 'string';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
