import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { FaultProxy } from '../sandbox/controlplane/fault-proxy';
import { startSandbox } from '../sandbox/index';
import { splitKeyId } from '../sandbox/kms-plugin/key-provider';
import { coreApiFor, pool } from './cluster';
import { measure } from './measure';

const count = Number(process.env.N ?? 1000);
const bytes = Number(process.env.B ?? 100 * 1024);
const rounds = Number(process.env.R ?? 3);
const variants = (process.env.V ?? 'ours,sat64,sat32').split(',');
async function main() {
  const sb = await startSandbox({});
  try {
    const core = coreApiFor(sb.info.kubeconfig);
    const nss = Array.from({ length: 10 }, (_, i) => `exp-${i}`);
    for (const name of nss) await core.createNamespace({ body: { metadata: { name } } });
    const payload = randomBytes(bytes).toString('base64');
    await pool(
      Array.from({ length: count }, (_, i) => i),
      32,
      async (i) => {
        await core.createNamespacedSecret({
          namespace: nss[i % 10] ?? '',
          body: { metadata: { name: `s-${i}` }, type: 'helm.sh/release.v1', data: { release: payload } },
        });
      },
    );
    const rot = (await (await fetch(`${sb.info.control}/kms/rotate`, { method: 'POST' })).json()) as {
      keyId: string;
    };
    await fetch(`${sb.info.control}/kms/wait-adoption`, {
      method: 'POST',
      body: JSON.stringify({ keyId: rot.keyId }),
    });
    const version = splitKeyId(rot.keyId).keyVersionId;
    const lat = Number(process.env.L ?? 0);
    const proxy = lat ? await FaultProxy.start(sb.info.apiServer, sb.info.caFile) : undefined;
    proxy?.inject({ match: {}, fault: { type: 'latency', ms: lat } });
    const kc = proxy
      ? proxy.kubeconfigFrom(sb.info.kubeconfig, join(sb.info.workDir, 'exp.kubeconfig'))
      : sb.info.kubeconfig;
    process.stderr.write(`seeded ${count}\n`);
    for (let r = 0; r < rounds; r++)
      for (const v of variants) {
        const [cmd, ...args] = v.startsWith('sat')
          ? [process.execPath, '/tmp/exp/saturate.js', kc, v.slice(3)]
          : v.startsWith('ours')
            ? [
                process.execPath,
                ...(process.env.OURS ?? '/tmp/exp/cli.js').split(' '),
                'reencrypt',
                '--kubeconfig',
                kc,
                '--key-version',
                `${version}-${r}-${v}`,
                '--json',
                ...(v.slice(4) ? v.slice(5).split(':') : []),
              ]
            : [];
        const m = await measure(cmd as string, args);
        process.stderr.write(
          `${r} ${v}: ${Math.round(m.wallMs)} ms ${Math.round((count * 1000) / m.wallMs)}/s exit ${m.exitCode} ${m.exitCode ? m.stderr.slice(-300) : ''}\n`,
        );
      }
  } finally {
    await sb.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
