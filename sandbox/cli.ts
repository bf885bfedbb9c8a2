import { parseArgs } from 'node:util';
import { MAX_API_SERVERS } from './controlplane/controlplane';
import { BALANCER_MODES, type BalancerMode } from './controlplane/load-balancer';
import { PLUGIN_MODES, type PluginMode, startSandbox } from './index';

/**
 * `npm run sandbox`: starts the sandbox, prints ONE line of JSON on stdout once everything is ready, keeps
 * running, and shuts down cleanly on SIGINT/SIGTERM. Progress and errors go to stderr.
 *
 * `--plugin <mode>`, `--api-servers <n>` (behind a load balancer when more than one), `--lb <mode>` (how the
 * balancer spreads connections) and `--no-lease-access` (the suite's identity may not list the API servers'
 * identity leases): docs/sandbox.md.
 */
function options() {
  const { values } = parseArgs({
    options: {
      plugin: { type: 'string', default: 'versioned' },
      'api-servers': { type: 'string', default: '1' },
      lb: { type: 'string', default: 'round-robin' },
      'no-lease-access': { type: 'boolean', default: false },
    },
  });
  if (!PLUGIN_MODES.includes(values.plugin as PluginMode))
    throw new Error(`--plugin must be one of ${PLUGIN_MODES.join(', ')}, not "${values.plugin}"`);
  const apiServers = Number(values['api-servers']);
  if (!Number.isInteger(apiServers) || apiServers < 1 || apiServers > MAX_API_SERVERS)
    throw new Error(`--api-servers must be a whole number from 1 to ${MAX_API_SERVERS}`);
  if (!BALANCER_MODES.includes(values.lb as BalancerMode))
    throw new Error(`--lb must be one of ${BALANCER_MODES.join(', ')}, not "${values.lb}"`);
  return {
    plugin: values.plugin as PluginMode,
    apiServers,
    loadBalancer: values.lb as BalancerMode,
    leaseAccess: !values['no-lease-access'],
  };
}

async function main(): Promise<void> {
  const o = options();
  process.stderr.write(
    `sandbox: starting etcd, ${o.apiServers === 1 ? 'kube-apiserver' : `${o.apiServers} kube-apiservers behind a load balancer (${o.loadBalancer})`} and the KMS v2 plugin (${o.plugin})…\n`,
  );
  const sandbox = await startSandbox(o);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`sandbox: ${signal}, stopping…\n`);
    await sandbox.stop();
    process.stderr.write('sandbox: stopped\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.stdout.write(`${JSON.stringify(sandbox.info)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`sandbox: failed to start: ${err.message}\n`);
  process.exit(1);
});
