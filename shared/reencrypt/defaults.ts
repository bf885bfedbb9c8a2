/** The sweep's defaults, in a module of their own so the CLI's `--help` loads nothing else. */
export const DEFAULT_PAGE_SIZE = 500;
/**
 * From `npm run bench` (BENCHMARKS.md): on loopback 32 was the fastest (16 within 10%, 64 slower as the API
 * server saturates); an API server across a network needs more requests in flight to hide the latency.
 */
export const DEFAULT_CONCURRENCY = 32;
