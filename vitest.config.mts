import { defineConfig } from 'vitest/config';

/**
 * Four projects:
 * - unit: pure cores, no AWS, no emulator;
 * - infra: the synthesized CloudFormation template (assertions, snapshot, cdk-nag, cfn-lint);
 * - integration: pieces against a real AWS API, moto (each file starts its own moto server):
 *   the job repository on DynamoDB, the local runtime's SQS event source;
 * - e2e: local mode (moto + the local Lambda runtime) driven over HTTP, as a client would:
 *   one shared instance (started by the global setup) for the files that only look at their
 *   own jobs, and instances of their own (startLocal) for chaos.test.ts (faults injected) and
 *   poison.test.ts (short timeouts, exact receive counts, a crash).
 *
 * Files run in parallel, e2e included: most of an e2e file's time is spent waiting (for
 * visibility timeouts, for the sweeper), not computing, so more workers than cores. Enough
 * that every file starts at once: the unit, infra and integration files then run while the
 * e2e instances are still starting (synth and deploy), not later, beside chaos.test.ts's
 * burst of 300 jobs, whose 3 s worker timeout wants the cores.
 */
export default defineConfig({
  test: {
    maxWorkers: 20,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          // Fixtures are generated in beforeAll hooks; on a loaded machine that takes a while.
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          environment: 'node',
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // A condition polled with expect.poll is given time on a loaded 2-core machine (it
          // still passes as soon as it holds).
          expect: { poll: { timeout: 30_000, interval: 50 } },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/e2e/global-setup.ts'],
          expect: { poll: { timeout: 30_000, interval: 100 } },
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
