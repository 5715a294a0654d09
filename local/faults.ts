/**
 * Fault injection for reliability tests, local runtime only (never in handler code or the
 * stack): OFFLOAD_LOCAL_FAULTS="throw=0.2,timeout=0.05,lose-ack=0.05", per SQS-triggered
 * invocation:
 * - throw: the invocation fails before the handler runs (the batch fails);
 * - timeout: the environment is killed at a random moment of the first `timeoutWindowMs` of
 *   the run and the invocation counts as timed out (the batch fails), whether or not the
 *   handler got as far as returning;
 * - lose-ack: the handler runs, but the deletes are skipped, as if the acknowledgement
 *   was lost (the messages come back after the visibility timeout).
 * OFFLOAD_LOCAL_FAULTS_SEED makes the draws reproducible.
 */
export type Fault = 'none' | 'throw' | 'timeout' | 'lose-ack';

export interface FaultPlan {
  draw(): Fault;
  /** For `timeout`: when to kill, in ms from the start of the run. */
  killDelayMs(): number;
  readonly rates: Record<Exclude<Fault, 'none'>, number>;
}

const KINDS = ['throw', 'timeout', 'lose-ack'] as const;

export function parseFaults(spec: string | undefined, seed?: number, timeoutWindowMs = 1500): FaultPlan {
  const rates = { throw: 0, timeout: 0, 'lose-ack': 0 };
  for (const part of (spec ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [kind, value] = part.split('=');
    const rate = Number(value);
    if (!(KINDS as readonly string[]).includes(kind) || !Number.isFinite(rate) || rate < 0 || rate > 1) {
      throw new Error(`OFFLOAD_LOCAL_FAULTS: bad entry ${JSON.stringify(part)} (expected throw|timeout|lose-ack=0..1)`);
    }
    rates[kind as (typeof KINDS)[number]] = rate;
  }
  const total = rates.throw + rates.timeout + rates['lose-ack'];
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
