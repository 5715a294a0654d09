import type { CrashPoint } from './function-pool';

/**
 * Fault injection for reliability tests, local runtime only (never in handler code or the
 * stack): OFFLOAD_LOCAL_FAULTS="throw=0.2,timeout=0.05,lose-ack=0.05", per SQS-triggered
 * invocation:
 * - throw: the invocation fails before the handler runs (the batch fails);
 * - timeout: the environment is killed at a random moment of the first `timeoutWindowMs` of
 *   the run and the invocation counts as timed out (the batch fails), whether or not the
 *   handler got as far as returning;
 * - lose-ack: the handler runs, but the deletes are skipped, as if the acknowledgement
 *   was lost (the messages come back after the visibility timeout);
 * - crash: the environment is SIGKILLed at a step of the run drawn evenly from three:
 *   right after its first AWS call took effect (a worker's claim), after a later call in the
 *   middle of the work (the 2nd to the 6th), or once the handler has returned, before the
 *   event source hears of it (a worker's terminal write done, the acknowledgement not).
 *   A run that makes fewer calls than drawn is not killed.
 * The same plan applies to DynamoDB stream sources (the notifier: `crash` then cuts a
 * delivery between two publishes; `throw` and `timeout` fail the batch; `lose-ack` does not
 * apply to streams and counts as none).
 * OFFLOAD_LOCAL_FAULTS_SEED makes the draws reproducible.
 */
export type Fault = 'none' | 'throw' | 'timeout' | 'lose-ack' | 'crash';

/** The steps a `crash` fault kills at (see above). */
export type CrashStep = 'after-first-call' | 'mid-run' | 'before-return';

export interface DrawnCrash {
  step: CrashStep;
  point: CrashPoint;
}

export interface FaultPlan {
  draw(): Fault;
  /** For `timeout`: when to kill, in ms from the start of the run. */
  killDelayMs(): number;
  /** For `crash`: where to kill. */
  crashPoint(): DrawnCrash;
  readonly rates: Record<Exclude<Fault, 'none'>, number>;
}

const KINDS = ['throw', 'timeout', 'lose-ack', 'crash'] as const;

export function parseFaults(spec: string | undefined, seed?: number, timeoutWindowMs = 1500): FaultPlan {
  const rates = { throw: 0, timeout: 0, 'lose-ack': 0, crash: 0 };
  for (const part of (spec ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [kind, value] = part.split('=');
    const rate = Number(value);
    if (!(KINDS as readonly string[]).includes(kind) || !Number.isFinite(rate) || rate < 0 || rate > 1) {
      throw new Error(`OFFLOAD_LOCAL_FAULTS: bad entry ${JSON.stringify(part)} (expected throw|timeout|lose-ack|crash=0..1)`);
    }
    rates[kind as (typeof KINDS)[number]] = rate;
  }
  const total = rates.throw + rates.timeout + rates['lose-ack'] + rates.crash;
  if (total > 1) throw new Error(`OFFLOAD_LOCAL_FAULTS: rates add up to ${total} > 1`);
  const random = seed === undefined ? Math.random : mulberry32(seed);
  return {
    rates,
    draw() {
      if (total === 0) return 'none';
      let r = random();
      for (const kind of KINDS) {
        if (r < rates[kind]) return kind;
        r -= rates[kind];
      }
      return 'none';
    },
    killDelayMs: () => Math.floor(random() * timeoutWindowMs),
    crashPoint() {
      const r = random();
      if (r < 1 / 3) return { step: 'after-first-call', point: { afterCall: 1 } };
      if (r < 2 / 3) return { step: 'mid-run', point: { afterCall: 2 + Math.floor(random() * 5) } };
      return { step: 'before-return', point: { beforeReturn: true } };
    },
  };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
