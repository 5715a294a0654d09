/**
 * Exit codes of the CLI:
 * - 0: everything asked for succeeded;
 * - 1: a request, an upload or a job failed (the API or AWS said no, or a job ended `failed`);
 * - 2: usage or configuration error (bad flags, no API URL or key, unreadable config file).
 */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** An error the CLI reports as one line (`offload: <message>`) and exits with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Bad flags or missing/unreadable configuration: exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
}

/** The message of anything thrown, on one line. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
