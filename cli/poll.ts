import { MAX_WAIT_SECONDS } from '../lambda/shared/contract';
import { ApiError, isTerminal, type Job } from './api-client';
import { mapLimit, sleep as realSleep } from './concurrency';
import { CliError } from './errors';

export interface WatchOptions {
  /** First and fastest poll interval (ms). */
  intervalMs?: number;
  /** The interval grows by half each round nothing changes, up to this (ms). */
  maxIntervalMs?: number;
  /** Jobs polled at once per round (the API's usage plan throttles per key). */
  concurrency?: number;
  /** Give up waiting after this long (ms); 0 = never. */
  timeoutMs?: number;
  /**
   * Long-poll: each request asks the API to hold it until the job is terminal or this many
   * seconds pass (`GET /jobs/{jobId}?waitSeconds=`), while at most `concurrency` jobs are
   * watched (more are polled in turn, without waiting). 0 = plain polling.
   */
  waitSeconds?: number;
  /** Consecutive transient failures (throttling, no answer) tolerated per job. */
  maxErrors?: number;
  sleep?: (ms: number) => Promise<void>;
}

interface Pending {
  last?: Job;
  errors: number;
  deadline: number;
  resolve(job: Job): void;
  reject(err: Error): void;
}

/** A fingerprint of what a person watching would notice. */
const fingerprint = (j: Job): string => `${j.status}|${j.updatedAt}|${j.progress?.done ?? ''}|${j.attempts}`;

/**
 * Watches any number of jobs in one loop of rounds. While no more jobs are watched than
 * `concurrency`, each round long-polls them (the API answers when a job is terminal, or after
 * `waitSeconds` with its state), so a job's end is seen at once without polling; with more,
 * each round reads every job once. A round that came back sooner than the interval (a job
 * that changed, an API without long-polls) is followed by a pause: ~500 ms while something
 * changes, backing off to a few seconds while nothing does. `watch()` resolves with the
 * terminal job; `onUpdate` sees every change.
 */
export class JobWatcher {
  private readonly pending = new Map<string, Pending>();
  private running = false;
  private interval: number;
  private readonly o: Required<WatchOptions>;

  constructor(
    private readonly client: { getJob(jobId: string, opts?: { waitSeconds?: number }): Promise<Job> },
    private readonly onUpdate: (job: Job) => void = () => undefined,
    opts: WatchOptions = {},
  ) {
    this.o = { intervalMs: 500, maxIntervalMs: 5000, concurrency: 4, timeoutMs: 0, maxErrors: 10, waitSeconds: MAX_WAIT_SECONDS, sleep: realSleep, ...opts };
    this.interval = this.o.intervalMs;
  }

  watch(jobId: string): Promise<Job> {
    return new Promise<Job>((resolve, reject) => {
      this.pending.set(jobId, { errors: 0, deadline: this.o.timeoutMs > 0 ? Date.now() + this.o.timeoutMs : Infinity, resolve, reject });
      this.interval = this.o.intervalMs;
      if (!this.running) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.size > 0) {
        const ids = [...this.pending.keys()];
        const longPoll = this.o.waitSeconds > 0 && ids.length <= this.o.concurrency;
        const started = Date.now();
        const changed = await mapLimit(ids, this.o.concurrency, (id) => this.pollOne(id, longPoll));
        this.interval = changed.some(Boolean) ? this.o.intervalMs : Math.min(this.o.maxIntervalMs, Math.round(this.interval * 1.5));
        // A long-poll that held its request has waited already.
        const waited = longPoll && Date.now() - started >= this.o.intervalMs;
        if (this.pending.size > 0 && !waited) await this.o.sleep(this.interval);
      }
    } finally {
      this.running = false;
    }
  }

  /** One poll of one job; true when something changed. */
  private async pollOne(jobId: string, longPoll: boolean): Promise<boolean> {
    const p = this.pending.get(jobId);
    if (!p) return false;
    try {
      // Never held past the watch's own deadline.
      const waitSeconds = longPoll ? Math.min(this.o.waitSeconds, Math.floor((p.deadline - Date.now()) / 1000)) : 0;
      const job = waitSeconds > 0 ? await this.client.getJob(jobId, { waitSeconds }) : await this.client.getJob(jobId);
      p.errors = 0;
      const changed = !p.last || fingerprint(p.last) !== fingerprint(job);
      p.last = job;
      if (changed) this.onUpdate(job);
      if (isTerminal(job.status)) {
        this.pending.delete(jobId);
        p.resolve(job);
      } else if (Date.now() > p.deadline) {
        this.pending.delete(jobId);
        p.reject(new CliError(`job ${jobId} is still ${job.status} after ${Math.round(this.o.timeoutMs / 1000)} s`));
      }
      return changed;
    } catch (err) {
      const transient = err instanceof ApiError && err.transient;
      if (!transient || ++p.errors > this.o.maxErrors || Date.now() > p.deadline) {
        this.pending.delete(jobId);
        p.reject(err as Error);
      }
      return false;
    }
  }
}
