import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
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
          include: ['test/integration/**/*.test.ts'],
          // One real control plane per run (etcd + kube-apiserver + KMS v2 plugin), shared by the files,
          // which therefore run one after another.
          globalSetup: ['test/setup/sandbox.ts'],
          fileParallelism: false,
          testTimeout: 240_000,
          // Set-ups seed thousands of Secrets and wait for a key adoption (itself bounded at 150 s).
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
