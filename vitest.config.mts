import { defineConfig } from 'vitest/config';

const OWN_SANDBOX = [
  'test/integration/pipeline.test.ts',
  'test/integration/demo.test.ts',
  'test/integration/demo-ack-plugin.test.ts',
  'test/integration/demo-ack-restart.test.ts',
  'test/integration/sandbox-command.test.ts',
  'test/integration/sealing-proof.test.ts',
  'test/integration/fleet.test.ts',
  'test/integration/demo-enable.test.ts',
];

export default defineConfig({
  test: {
    // Vitest's default is one worker per core but one, which on a 2-core machine runs every file in turn;
    // most integration time is spent waiting (an API server, a key adoption), so files overlap well.
    maxWorkers: 8,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    coverage: {
      provider: 'v8',
      include: ['shared/**/*.ts', 'functions/**/*.ts', 'bin/**/*.ts', 'sandbox/**/*.ts'],
      reporter: ['text-summary', 'text'],
      thresholds: {
        'shared/events/**': { lines: 95 },
      },
    },
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          // One real control plane per run (etcd + kube-apiserver + KMS v2 plugin), shared by the suites of
          // shared-sandbox.test.ts, which runs them one after another; the other files start their own.
          include: ['test/integration/shared-sandbox.test.ts'],
          globalSetup: ['test/setup/sandbox.ts'],
          testTimeout: 240_000,
          // Set-ups seed thousands of Secrets and wait for a key adoption (itself bounded at 150 s).
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          // Files that start their own sandbox (the pipeline's emulator calls its handlers in-process; the
          // demos and the sandbox command are run as users run them): side by side with the unit tests and
          // the shared sandbox's suites, so their waits for a key adoption overlap with other work.
          name: 'own-sandbox',
          include: OWN_SANDBOX,
          // A demo starts a sandbox, seeds, waits for the job, maybe restarts kube-apiserver: on a loaded
          // shared machine that has taken four minutes.
          testTimeout: 420_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
