import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadKubeConfig } from '../shared/cluster/kube';
import { unproven } from '../shared/cluster/sealing';
import { httpSecretStore } from '../shared/cluster/secret-store';
import { loadConfig } from '../shared/config';
import type { Continuation } from '../shared/jobs/payload';
import { firstContinuation, nothingKept, runJob } from '../shared/jobs/run';
import type { Logger } from '../shared/log';
import type { SecretStore } from '../shared/reencrypt/secrets-api';

/**
 * The re-encryption function's job on a cluster, as FC runs it: the engine the handler calls, with the
 * function's settings (its defaults: polite, the etcd guard), each invocation given s.yaml's timeout less the
 * budget margin, a hand-over starting the next invocation from the continuation. Every write is counted per
 * Secret, so "every Secret written once" is checked, not assumed.
 */
export interface JobFigures {
  secrets: number;
  timeoutSeconds: number;
  marginSeconds: number;
  invocations: number;
  handOvers: number;
  wallMs: number;
  writes: number;
  distinct: number;
  writtenOnce: boolean;
}

/** s.yaml's timeout of the re-encryption function (FC's real limit for it). */
function functionTimeoutSeconds(): number {
  const spec = parse(readFileSync(join(__dirname, '..', 's.yaml'), 'utf8')) as {
    resources?: Record<string, { props?: { functionName?: string; timeout?: number } }>;
  };
  const fn = Object.values(spec.resources ?? {}).find((r) => r.props?.functionName?.endsWith('-reencrypt'));
  if (!fn?.props?.timeout) throw new Error('s.yaml names no timeout for the re-encryption function');
  return fn.props.timeout;
}

const quiet: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => quiet,
};

export async function functionJobAt(
  kubeconfig: string,
  secrets: number,
  log: (l: string) => void,
): Promise<JobFigures> {
  const { reencrypt } = loadConfig({ SENTINEL_REGION: 'cn-hangzhou' });
  const timeoutSeconds = functionTimeoutSeconds();
  const kc = loadKubeConfig({ path: kubeconfig });
  const inner = httpSecretStore(kc);
  const written = new Map<string, number>();
  const count = (ns: string, name: string) =>
    written.set(`${ns}/${name}`, (written.get(`${ns}/${name}`) ?? 0) + 1);
  const store: SecretStore = {
    ...inner,
    patchMetadata: async (ns, name, patch) => {
      const got = await inner.patchMetadata(ns, name, patch);
      count(ns, name);
      return got;
    },
    ...(inner.writeMetadata
      ? {
          writeMetadata: async (ns: string, name: string, patch: { metadata: Record<string, unknown> }) => {
            const got = await inner.writeMetadata?.(ns, name, patch);
            count(ns, name);
            return got;
          },
        }
      : {}),
  };
  const keyVersionId = `function-job-${Date.now()}`;
  let from: Continuation = firstContinuation(keyVersionId, new Date(), 'sweeping');
  const started = performance.now();
  let invocations = 0;
  try {
    for (;;) {
      invocations++;
      let next: Continuation | undefined;
      const result = await runJob(
        {
          jobId: keyVersionId,
          clusterId: 'bench',
          keyVersionId,
          strategy: reencrypt.strategy,
          pageSize: reencrypt.pageSize,
          concurrency: reencrypt.concurrency,
          polite: reencrypt.polite,
          etcdSpace: { quotaBytes: 8 * 1024 ** 3, share: reencrypt.etcdQuotaShare },
        },
        {
          secrets: store,
          evidence: async () => unproven('the benchmark proves nothing'),
          store: nothingKept(),
          budget: {
            deadline: Date.now() + timeoutSeconds * 1000 - reencrypt.budgetMarginMs,
            handOver: async (c) => {
              next = c;
            },
          },
          log: quiet,
          now: Date.now,
          adoption: { delayMs: 0, timeoutMs: 60_000 },
        },
        from,
      );
      log(`function job: invocation ${invocations}: ${result.status}`);
      if (result.status !== 'continued' || !next) break;
      from = next;
    }
  } finally {
    inner.close();
    kc.close();
  }
  const writes = [...written.values()].reduce((a, b) => a + b, 0);
  return {
    secrets,
    timeoutSeconds,
    marginSeconds: reencrypt.budgetMarginMs / 1000,
    invocations,
    handOvers: invocations - 1,
    wallMs: Math.round(performance.now() - started),
    writes,
    distinct: written.size,
    writtenOnce: written.size === secrets && writes === secrets,
  };
}
