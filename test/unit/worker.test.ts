import { describe, expect, it } from 'vitest';
import { PermanentJobError } from '../../lambda/shared/errors';
import { DEFAULT_CORE_SETTINGS, type CoreSettings } from '../../lambda/shared/job-type';
import type { ClaimResult, TerminalPatch } from '../../lambda/shared/jobs-repo';
import type { JobError, JobProgress, JobRecord } from '../../lambda/shared/model';
import {
  backoffSeconds,
  JobCancelledError,
  jsonMessageJobs,
  RetryLaterError,
  runJob,
  throttledProgress,
  type RunnerDeps,
  type RunOptions,
  type WorkResult,
} from '../../lambda/shared/worker';

describe('backoffSeconds', () => {
  const top = () => 1; // the ceiling itself (full jitter's largest value)

  it('grows exponentially with the receive count, from the base', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffSeconds(n, 2, 10_000, top))).toEqual([2, 4, 8, 16, 32]);
    expect([1, 2, 3].map((n) => backoffSeconds(n, 5, 10_000, top))).toEqual([5, 10, 20]);
    // A count below 1 is the first delivery's.
    expect(backoffSeconds(0, 2, 10_000, top)).toBe(2);
  });

  it('is capped', () => {
    expect([8, 9, 10, 50].map((n) => backoffSeconds(n, 2, 300, top))).toEqual([256, 300, 300, 300]);
    // An exponent far past any float (2^2000 is Infinity) still gives the cap.
    expect(backoffSeconds(2001, 2, 300, top)).toBe(300);
  });

  it('jitters over the whole of [0, ceiling]', () => {
    expect(backoffSeconds(3, 2, 300, () => 0)).toBe(0);
    expect(backoffSeconds(3, 2, 300, () => 0.5)).toBe(4);
    let seed = 7;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const s = backoffSeconds(4, 2, 300, random);
      expect(Number.isInteger(s)).toBe(true);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(16);
      seen.add(s);
    }
    expect(seen.size).toBeGreaterThan(10); // spread, not one value
  });

  it("stays within SQS's visibility timeout range 0..43200", () => {
    expect(backoffSeconds(30, 1000, 1_000_000, top)).toBe(43200);
    expect(backoffSeconds(1, 100_000, 100_000, top)).toBe(43200);
    expect(backoffSeconds(1, 0, 0, top)).toBe(0);
    for (const r of [0, 0.25, 0.999999]) {
      const s = backoffSeconds(64, 43200, 1e9, () => r);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(43200);
    }
  });
});

describe('throttledProgress', () => {
  const harness = () => {
    let t = 10_000;
    const writes: JobProgress[] = [];
    const progress = throttledProgress(async (p) => void writes.push(p), 1000, () => t);
    return { progress, writes, at: (ms: number) => void (t = ms) };
  };

  it('writes the first call, drops a burst within the interval, writes again once it has passed', async () => {
    const { progress, writes, at } = harness();
    await progress(1, 10);
    at(10_100);
    await progress(2, 10);
    at(10_999);
    await progress(3, 10);
    expect(writes).toEqual([{ done: 1, total: 10 }]);
    at(11_000);
    await progress(4, 10);
    expect(writes).toEqual([{ done: 1, total: 10 }, { done: 4, total: 10 }]);
  });

  it('always writes the final value (done >= total), even within the interval', async () => {
    const { progress, writes, at } = harness();
    await progress(1, 3);
    at(10_001);
    await progress(3, 3);
    at(10_002);
    await progress(4, 3);
    expect(writes).toEqual([{ done: 1, total: 3 }, { done: 3, total: 3 }, { done: 4, total: 3 }]);
  });

  it('writes { done } alone when there is no total (never final)', async () => {
    const { progress, writes, at } = harness();
    await progress(5);
    at(10_500);
    await progress(6);
    expect(writes).toEqual([{ done: 5 }]);
  });
});

describe('jsonMessageJobs', () => {
  it('reads { jobId } and refuses anything else', () => {
    const jobId = '0b7a3c2e-1f4d-4e5a-9b8c-7d6e5f4a3b2c';
    expect(jsonMessageJobs(JSON.stringify({ jobId, type: 'report' }), 'report')).toEqual([{ jobId }]);
    expect(() => jsonMessageJobs('nope', 'report')).toThrow(/not JSON/);
    expect(() => jsonMessageJobs('{"jobId":"x","type":"report"}', 'report')).toThrow(/no job id/);
    expect(() => jsonMessageJobs('null', 'report')).toThrow(/not a JSON object/);
    expect(() => jsonMessageJobs(JSON.stringify({ jobId, type: 'thumbnail' }), 'report')).toThrow(/not a report job message/);
    expect(() => jsonMessageJobs(JSON.stringify({ jobId }), 'report')).toThrow(/not a report job message/);
    // A message of the first API ({ jobId, params }) is not one the API sends any more: poison.
    expect(() => jsonMessageJobs(JSON.stringify({ jobId, type: 'report', params: {} }), 'report')).toThrow(/unknown field\(s\): params/);
  });
});

describe('runJob (fake repository)', () => {
  const JOB = '0b7a3c2e-1f4d-4e5a-9b8c-7d6e5f4a3b2c';
  const settings: CoreSettings = { ...DEFAULT_CORE_SETTINGS, timeoutSeconds: 30, maxReceiveCount: 3 };
  const VISIBILITY = 180;
  const LEASE_MS = 30_000;
  /** Redelivery grace of a claim on the 2nd of 3 receives: 2 x (1 receive left + this one) x visibility. */
  const GRACE_MS = 2 * 2 * 180 * 1000;

  const record = (over: Partial<JobRecord> = {}): JobRecord => ({
    jobId: JOB,
    type: 'report',
    status: 'processing',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:01.000Z',
    startedAt: '2026-01-01T00:00:01.000Z',
    attempts: 1,
    input: { from: '2026-01-01', to: '2026-01-02' },
    ...over,
  });

  /** A repository that answers as told and records every call. */
  const fake = (opts: { claim?: ClaimResult; finish?: JobRecord | undefined | 'echo'; cancelRequested?: (read: number) => boolean } = {}) => {
    const calls = {
      claim: [] as unknown[][],
      finish: [] as [string, string, TerminalPatch][],
      release: [] as [string, string, JobError, number][],
      progress: [] as [string, string, JobProgress][],
      cancelReads: 0,
    };
    const repo: RunnerDeps['repo'] = {
      claim: async (...args: unknown[]) => {
        calls.claim.push(args);
        return opts.claim ?? { claimed: true, job: record() };
      },
      finish: async (jobId: string, owner: string, patch: TerminalPatch) => {
        calls.finish.push([jobId, owner, patch]);
        const f = 'finish' in opts ? opts.finish : 'echo';
        return f === 'echo' ? record({ status: patch.status, error: patch.error, outputs: patch.outputs }) : f;
      },
      release: async (jobId: string, owner: string, err: JobError, sweepAfterMs: number) => {
        calls.release.push([jobId, owner, err, sweepAfterMs]);
      },
      progress: async (jobId: string, owner: string, p: JobProgress) => {
        calls.progress.push([jobId, owner, p]);
      },
      create: async () => {
        throw new Error('runJob never creates');
      },
      isCancelRequested: async () => (opts.cancelRequested ?? (() => false))(++calls.cancelReads),
    } as RunnerDeps['repo'];
    const logged: string[] = [];
    const log = (level: string) => (...args: unknown[]) => void logged.push(`${level}: ${String(args[0])}`);
    const deps: RunnerDeps = { repo, logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }, now: () => 0 };
    return { deps, calls, logged };
  };
  const opts = (receiveCount = 1, claimInput?: Record<string, unknown>): RunOptions => ({
    message: { jobId: JOB, ...(claimInput ? { claimInput } : {}) },
    owner: `m-1#${receiveCount}`,
    receiveCount,
    settings,
    visibilityTimeoutSeconds: VISIBILITY,
    remainingMs: () => LEASE_MS,
  });
  const never = async (): Promise<WorkResult> => {
    throw new Error('the work must not run');
  };

  it('claims with the lease and grace of the settings, works, and finishes with the result', async () => {
    const { deps, calls } = fake();
    const outputs = [{ name: 'report', format: 'csv', contentType: 'text/csv', bytes: 3, key: `reports/${JOB}/report.csv` }];
    const outcome = await runJob(deps, opts(2, { bytes: 9 }), async (job, progress) => {
      expect(job.jobId).toBe(JOB);
      await progress({ done: 1, total: 2 });
      return { outputs, input: { from: '2026-01-01', to: '2026-01-02', rows: 2 } };
    });
    expect(outcome).toBe('succeeded');
    expect(calls.claim).toEqual([[JOB, 'm-1#2', LEASE_MS, GRACE_MS, { bytes: 9 }]]);
    expect(calls.progress).toEqual([[JOB, 'm-1#2', { done: 1, total: 2 }]]);
    expect(calls.finish).toEqual([
      [JOB, 'm-1#2', { status: 'succeeded', outputs, input: { from: '2026-01-01', to: '2026-01-02', rows: 2 }, startedAt: '2026-01-01T00:00:01.000Z' }],
    ]);
    expect(calls.release).toEqual([]);
  });

  it('gives a claim on the first receive the grace of every receive, and one on the last only its own', async () => {
    for (const [receive, grace] of [
      [1, 2 * 3 * 180_000],
      [3, 2 * 1 * 180_000],
    ] as const) {
      const { deps, calls } = fake();
      await runJob(deps, opts(receive), async () => ({ outputs: [] }));
      expect(calls.claim[0][3], `receive ${receive}`).toBe(grace);
    }
  });

  it.each(['succeeded', 'failed', 'cancelled'] as const)('acknowledges a duplicate delivery of a %s job without work or a finish', async (status) => {
    const { deps, calls } = fake({ claim: { claimed: false, job: record({ status }) } });
    expect(await runJob(deps, opts(2), never)).toBe('duplicate');
    expect(calls.finish).toEqual([]);
    expect(calls.release).toEqual([]);
  });

  it('drops a message for a job that does not exist', async () => {
    const { deps, calls } = fake({ claim: { claimed: false, job: undefined } });
    expect(await runJob(deps, opts(), never)).toBe('missing');
    expect(calls.finish).toEqual([]);
  });

  it('asks for a retry while another invocation holds the job', async () => {
    const { deps, calls } = fake({ claim: { claimed: false, job: record({ status: 'processing', leaseOwner: 'other#1' }) } });
    await expect(runJob(deps, opts(), never)).rejects.toBeInstanceOf(RetryLaterError);
    expect(calls.finish).toEqual([]);
    expect(calls.release).toEqual([]);
  });

  it('fails a permanent error at once with its code, without rethrowing (the message is acknowledged)', async () => {
    const { deps, calls } = fake();
    const outcome = await runJob(deps, opts(1), async () => {
      throw new PermanentJobError('corrupt_image', 'the JPEG ends early');
    });
    expect(outcome).toBe('failed');
    expect(calls.finish).toEqual([
      [JOB, 'm-1#1', { status: 'failed', error: { code: 'corrupt_image', message: 'the JPEG ends early' }, startedAt: '2026-01-01T00:00:01.000Z' }],
    ]);
    expect(calls.release).toEqual([]);
  });

  it('treats any error carrying permanent: true and a code as permanent', async () => {
    const { deps, calls } = fake();
    const foreign = Object.assign(new Error('too many pixels'), { permanent: true as const, code: 'image_too_large' });
    expect(await runJob(deps, opts(1), async () => Promise.reject(foreign))).toBe('failed');
    expect(calls.finish[0][2].error).toEqual({ code: 'image_too_large', message: 'too many pixels' });
  });

  it('releases the job and rethrows a transient error before the last receive', async () => {
    const { deps, calls } = fake();
    const boom = new Error('S3 is having a moment');
    await expect(runJob(deps, opts(2), async () => Promise.reject(boom))).rejects.toBe(boom);
    // Queued again; the sweeper may fail it once every remaining delivery is out.
    expect(calls.release).toEqual([[JOB, 'm-1#2', { code: 'transient', message: 'S3 is having a moment' }, settings.retryMaxSeconds * 1000 + GRACE_MS]]);
    expect(calls.finish).toEqual([]);
  });

  it.each([3, 4])('on receive %i of 3 fails the job retries_exhausted AND rethrows (so the message goes to the DLQ)', async (receive) => {
    const { deps, calls } = fake();
    const boom = new Error('S3 is having a moment');
    await expect(runJob(deps, opts(receive), async () => Promise.reject(boom))).rejects.toBe(boom);
    expect(calls.release).toEqual([]);
    expect(calls.finish).toHaveLength(1);
    expect(calls.finish[0][2]).toMatchObject({ status: 'failed', error: { code: 'retries_exhausted', message: expect.stringMatching(new RegExp(`after ${receive} attempts: S3 is having a moment`)) } });
  });

  it('asks for a retry when the lease was lost before the finish', async () => {
    const { deps, calls } = fake({ finish: undefined });
    await expect(runJob(deps, opts(1), async () => ({ outputs: [] }))).rejects.toBeInstanceOf(RetryLaterError);
    expect(calls.finish).toHaveLength(1);
  });

  it('asks for a retry (not the transient error) when the lease was lost before recording retries_exhausted', async () => {
    const { deps } = fake({ finish: undefined });
    await expect(runJob(deps, opts(3), async () => Promise.reject(new Error('boom')))).rejects.toBeInstanceOf(RetryLaterError);
  });

  describe('cancellation', () => {
    /** Work that runs until its signal is aborted, then rejects with the signal's reason. */
    const untilAborted = (seen: { reason?: unknown }) => async (_job: JobRecord, _p: unknown, signal: AbortSignal): Promise<WorkResult> =>
      new Promise<WorkResult>((_, reject) =>
        signal.addEventListener('abort', () => {
          seen.reason = signal.reason;
          reject(signal.reason as Error);
        }),
      );

    it('polls cancelRequested while the work runs, aborts its signal, and ends the job cancelled (acknowledged)', async () => {
      const { deps, calls } = fake({ cancelRequested: (read) => read >= 3 });
      const seen: { reason?: unknown } = {};
      const outcome = await runJob(deps, { ...opts(1), cancelPollMs: 5 }, untilAborted(seen));
      expect(outcome).toBe('cancelled');
      expect(calls.cancelReads).toBe(3);
      expect(seen.reason).toBeInstanceOf(JobCancelledError);
      expect(calls.finish).toEqual([[JOB, 'm-1#1', { status: 'cancelled', startedAt: '2026-01-01T00:00:01.000Z' }]]);
      expect(calls.release).toEqual([]);
    });

    it('ends the job cancelled whatever error the aborted work throws (even on the last receive: no retries_exhausted)', async () => {
      const { deps, calls } = fake({ cancelRequested: () => true });
      const outcome = await runJob(deps, { ...opts(3), cancelPollMs: 1 }, async (_job, _p, signal) => {
        await new Promise((r) => signal.addEventListener('abort', r));
        throw new Error('socket hang up');
      });
      expect(outcome).toBe('cancelled');
      expect(calls.finish.map((f) => f[2].status)).toEqual(['cancelled']);
    });

    it('ends the job succeeded when the work finished first: one terminal write, never both', async () => {
      const { deps, calls } = fake({ cancelRequested: () => true });
      // The work returns before the first read of cancelRequested is due.
      const outcome = await runJob(deps, { ...opts(1), cancelPollMs: 60_000 }, async () => ({ outputs: [] }));
      expect(outcome).toBe('succeeded');
      expect(calls.cancelReads).toBe(0);
      expect(calls.finish.map((f) => f[2].status)).toEqual(['succeeded']);
    });

    it('ends the job succeeded when the work returns its result even though its signal was aborted', async () => {
      const { deps, calls } = fake({ cancelRequested: () => true });
      const outcome = await runJob(deps, { ...opts(1), cancelPollMs: 1 }, async (_job, _p, signal) => {
        await new Promise((r) => signal.addEventListener('abort', r));
        return { outputs: [] };
      });
      expect(outcome).toBe('succeeded');
      expect(calls.finish.map((f) => f[2].status)).toEqual(['succeeded']);
    });

    it('asks for a retry when the lease was lost before the cancelled write (another holder decides)', async () => {
      const { deps, calls } = fake({ finish: undefined, cancelRequested: () => true });
      await expect(runJob(deps, { ...opts(1), cancelPollMs: 1 }, untilAborted({}))).rejects.toBeInstanceOf(RetryLaterError);
      expect(calls.finish.map((f) => f[2].status)).toEqual(['cancelled']);
    });

    it('ends a job claimed with cancelRequested already set cancelled, without work', async () => {
      const { deps, calls } = fake({ claim: { claimed: true, job: record({ cancelRequested: true }) } });
      expect(await runJob(deps, opts(2), never)).toBe('cancelled');
      expect(calls.finish.map((f) => f[2].status)).toEqual(['cancelled']);
      expect(calls.cancelReads).toBe(0);
    });

    it('keeps polling after a failed read', async () => {
      let failed = false;
      const { deps, calls, logged } = fake({
        cancelRequested: (read) => {
          if (read === 1) {
            failed = true;
            throw new Error('throttled');
          }
          return read >= 2;
        },
      });
      expect(await runJob(deps, { ...opts(1), cancelPollMs: 1 }, untilAborted({}))).toBe('cancelled');
      expect(failed).toBe(true);
      expect(logged).toContain('warn: could not read whether the job was cancelled');
      expect(calls.cancelReads).toBe(2);
    });

    it('writes the outcome only once no read of cancelRequested is in flight (the terminal write stays the last call)', async () => {
      const { deps } = fake();
      const order: string[] = [];
      let release!: () => void;
      deps.repo.isCancelRequested = async () => {
        order.push('read');
        await new Promise<void>((r) => (release = r));
        order.push('read done');
        return false;
      };
      const finish = deps.repo.finish.bind(deps.repo);
      deps.repo.finish = async (...args) => {
        order.push('finish');
        return finish(...args);
      };
      let returned = false;
      const run = runJob(deps, { ...opts(1), cancelPollMs: 1 }, async () => {
        await expect.poll(() => order).toEqual(['read']);
        returned = true;
        return { outputs: [] };
      });
      await expect.poll(() => returned).toBe(true);
      release();
      expect(await run).toBe('succeeded');
      expect(order).toEqual(['read', 'read done', 'finish']);
    });

    it("lets the invocation's own timeout signal through as a transient failure, not a cancellation", async () => {
      const { deps, calls } = fake();
      const timeout = new AbortController();
      const run = runJob(deps, { ...opts(1), signal: timeout.signal, cancelPollMs: 60_000 }, async (job, p, signal) => {
        const pending = untilAborted({})(job, p, signal);
        timeout.abort(new Error('the invocation is about to time out'));
        return pending;
      });
      await expect(run).rejects.toThrow(/about to time out/);
      expect(calls.release).toHaveLength(1);
      expect(calls.finish).toEqual([]);
    });
  });
});
