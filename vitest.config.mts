import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Longest first (minutes on 2 cores: most of it waiting for an API server), so the longest start first. */
const OWN_SANDBOX = [
  'test/integration/demo-enable.test.ts',
  'test/integration/sealing-proof.test.ts',
  'test/integration/demo-ack-restart.test.ts',
  'test/integration/pipeline.test.ts',
  'test/integration/fleet.test.ts',
  'test/integration/demo-ack-plugin.test.ts',
  'test/integration/demo.test.ts',
  'test/integration/multi-apiserver.test.ts',
  'test/integration/sandbox-command.test.ts',
  'test/integration/cli-status.test.ts',
  'test/integration/rehearsal.test.ts',
  'test/integration/neighbours.test.ts',
];

/**
 * Vitest starts the files in this order, as workers free up: the shared sandbox's suites (project
 * `integration`), then the files with a sandbox of their own, then the unit tests. With 8 workers one file with
 * a sandbox waits for a free worker. Without Vitest's cache of earlier durations (a clean clone: CI), it orders
 * a project's files by size, and a four-minute file could be the one that waits; the list above puts the
 * shortest there.
 */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = OWN_SANDBOX.indexOf(relative(process.cwd(), f.moduleId));
      return i < 0 ? OWN_SANDBOX.length : i;
    };
    const sorted = await super.sort(files);
    const own = sorted.filter((f) => f.project.name === 'own-sandbox').sort((a, b) => rank(a) - rank(b));
    return sorted.map((f) => (f.project.name === 'own-sandbox' ? (own.shift() as TestSpecification) : f));
  }
}

export default defineConfig({
  test: {
    // Vitest's default is one worker per core but one, which on a 2-core machine runs every file in turn;
    // most integration time is spent waiting (an API server, a key adoption), so files overlap well.
    maxWorkers: 8,
    sequence: { sequencer: LongestFirst },
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
