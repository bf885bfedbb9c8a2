import dns from 'node:dns';

/**
 * SLS SDKs put the project in the host name (`<project>.<endpoint>`: docs/cloud-facts.md#sls-pulllogs), which nothing resolves
 * for a loopback endpoint. In the sandbox's own process (emulator, in-process handlers, tests) names ending
 * in `.127.0.0.1` resolve to 127.0.0.1. `@darabonba/typescript` ignores the SDK's `httpProxy` setting, so a
 * proxy is no way in. Production code is unchanged: on Alibaba Cloud the names resolve.
 */
let installed = false;

export function resolveLoopbackSubdomains(): void {
  if (installed) return;
  installed = true;
  const original = dns.lookup;
  const patched = ((hostname: string, options: unknown, callback?: unknown) => {
    if (typeof hostname === 'string' && hostname.endsWith('.127.0.0.1')) {
      const cb = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void;
      const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
      process.nextTick(() =>
        all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4),
      );
      return;
    }
    return (original as (...args: unknown[]) => void)(hostname, options, callback);
  }) as typeof dns.lookup;
  dns.lookup = patched;
}
