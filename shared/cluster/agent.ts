import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type RequestOptions } from 'node:https';
import { createSecureContext } from 'node:tls';

/**
 * One keep-alive agent with a kubeconfig's TLS material (as `applyToHTTPSOptions` gives it). Its connections
 * share one TLS context: given only `ca`/`cert`/`key`, Node builds a context per connection (parsing the CA
 * bundle and the key each time), which for the sweep's 64 connections opened at once was ~0.1 s of CPU at the
 * start of every run (BENCHMARKS.md).
 */
export function keepAliveAgent(
  server: string,
  opts: RequestOptions,
  /** Inactivity after which a connection times out (its request, if one is in flight, emits 'timeout'). */
  socketTimeoutMs?: number,
): HttpAgent | HttpsAgent {
  const common = {
    keepAlive: true,
    maxSockets: 256,
    maxFreeSockets: 256,
    ...(socketTimeoutMs ? { timeout: socketTimeoutMs } : {}),
  };
  if (server.startsWith('http:')) return new HttpAgent(common);
  return new HttpsAgent({
    ...common,
    secureContext: createSecureContext({
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.cert ? { cert: opts.cert } : {}),
      ...(opts.key ? { key: opts.key } : {}),
    }),
    ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
    ...(opts.servername ? { servername: opts.servername } : {}),
  });
}
