import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type RequestOptions } from 'node:https';

/** One keep-alive agent with a kubeconfig's TLS material (as `applyToHTTPSOptions` gives it). */
export function keepAliveAgent(server: string, opts: RequestOptions): HttpAgent | HttpsAgent {
  const common = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64 };
  return server.startsWith('http:')
    ? new HttpAgent(common)
    : new HttpsAgent({
        ...common,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
        ...(opts.servername ? { servername: opts.servername } : {}),
      });
}
