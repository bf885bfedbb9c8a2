import { parseArgs } from 'node:util';
import { PLUGIN_MODES, type PluginMode, startSandbox } from './index';

/**
 * `npm run sandbox`: starts the sandbox, prints ONE line of JSON on stdout once everything is ready, keeps
 * running, and shuts down cleanly on SIGINT/SIGTERM. Progress and errors go to stderr.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { plugin: { type: 'string', default: 'versioned' } } });
  if (!PLUGIN_MODES.includes(values.plugin as PluginMode))
    throw new Error(`--plugin must be one of ${PLUGIN_MODES.join(', ')}, not "${values.plugin}"`);
  const plugin = values.plugin as PluginMode;
  process.stderr.write(`sandbox: starting etcd, kube-apiserver and the KMS v2 plugin (${plugin})…\n`);
  const sandbox = await startSandbox({ plugin });
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
