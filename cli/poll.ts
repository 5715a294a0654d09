import { ApiError, isTerminal, type ApiClient, type Job } from './api-client';
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
 * Polls `GET /jobs/{id}` for any number of jobs in one loop: every ~500 ms while something
 * changes, backing off to a few seconds while nothing does. `watch()` resolves with the
 * terminal job; `onUpdate` sees every change.
 */
export class JobWatcher {
  private readonly pending = new Map<string, Pending>();
  private running = false;
  private interval: number;
  private readonly o: Required<WatchOptions>;

  constructor(
    private readonly client: Pick<ApiClient, 'getJob'>,
    private readonly onUpdate: (job: Job) => void = () => undefined,
    opts: WatchOptions = {},
  ) {
    this.o = { intervalMs: 500, maxIntervalMs: 5000, concurrency: 4, timeoutMs: 0, maxErrors: 10, sleep: realSleep, ...opts };
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
        const changed = await mapLimit(ids, this.o.concurrency, (id) => this.pollOne(id));
        this.interval = changed.some(Boolean) ? this.o.intervalMs : Math.min(this.o.maxIntervalMs, Math.round(this.interval * 1.5));
        if (this.pending.size > 0) await this.o.sleep(this.interval);
      }
    } finally {
      this.running = false;
    }
  }

  /** One poll of one job; true when something changed. */
  private async pollOne(jobId: string): Promise<boolean> {
    const p = this.pending.get(jobId);
    if (!p) return false;
    try {
      const job = await this.client.getJob(jobId);
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
