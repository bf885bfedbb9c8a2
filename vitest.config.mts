import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    coverage: {
      provider: 'v8',
      include: ['shared/**/*.ts', 'functions/**/*.ts', 'bin/**/*.ts'],
      reporter: ['text-summary', 'text'],
      thresholds: {
        'shared/events/**': { lines: 95 },
      },
    },
  },
});
