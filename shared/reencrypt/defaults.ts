/** The sweep's defaults and vocabulary, in a module of their own so the CLI loads nothing else for them. */
export const DEFAULT_PAGE_SIZE = 500;
/**
 * Writes in flight. From `npm run bench` (BENCHMARKS.md): on loopback 32 and 64 are within noise of each other
 * (the API server is saturated either way); with the API server 10 ms away, as a real one is across a network,
 * 64 was faster in 5 of 6 paired runs (more requests in flight hide the round trip: Little's law). The sweep
 * halves it on every 429 (AIMD, `throttle.ts`), so an API server that cannot take 64 says so and is obeyed.
 */
export const DEFAULT_CONCURRENCY = 64;
/**
 * The strategies, defined here once (configuration, the CLI's flag and the job payload's schema field,
 * strategy-field.ts, all read this list). How a sweep decides what to write: `annotate` writes every Secret not yet marked with the target key
 * version (the mark is the suite's record); `stale-only` asks the API server to store only what it reports
 * stale (an empty patch on the resourceVersion), which needs no mark.
 */
export const STRATEGIES = ['annotate', 'stale-only'] as const;
export type Strategy = (typeof STRATEGIES)[number];
