import { openCluster } from '../shared/cluster/kube';
import { clusterKubeconfig } from '../shared/cluster/user-kubeconfig';
import { DISABLE_WARNING, disableEncryption } from '../shared/encryption/disable';
import { encryptionStateIn } from '../shared/encryption/enable';
import { createLogger } from '../shared/log';
import { cloudFor } from './cloud';
import { EXIT } from './exit-codes';
import { printJson, say as sayOn } from './output';

export interface DisableFlags {
  clusterId: string;
  confirmDisable?: boolean;
  config?: string;
  json?: boolean;
}

/** `ack-kms-sentinel disable --cluster-id <id> --confirm-disable`: exit 0 when off, 1 otherwise, 2 unconfirmed. */
export async function disableCommand(flags: DisableFlags): Promise<number> {
  const say = (line: string) => sayOn(process.stderr, line);
  say(`warning: ${DISABLE_WARNING}`);
  if (!flags.confirmDisable) {
    say('nothing done: add --confirm-disable to turn Secret encryption off');
    return EXIT.usage;
  }
  const { config, clients } = await cloudFor(flags);
  const open = async () => openCluster(await clusterKubeconfig(clients, flags.clusterId, 15));
  const report = await disableEncryption(
    {
      clients,
      encryptionState: encryptionStateIn(open, config, createLogger({ level: 'error', sink: () => {} })),
      onStep: (entry) => say(`${entry.status === 'done' ? '✓' : '✗'} ${entry.step}: ${entry.detail}`),
    },
    { clusterId: flags.clusterId, confirmed: true },
  );
  say(report.outcome);
  if (flags.json) printJson(process.stdout, report);
  return ['disabled', 'already-disabled'].includes(report.outcome) ? EXIT.done : EXIT.failed;
}
