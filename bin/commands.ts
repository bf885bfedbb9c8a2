import type * as AuditModule from './audit-command';
import type * as DisableModule from './disable-command';
import type * as EnableModule from './enable-command';
import type * as GrantModule from './grant-command';
import type * as InvokeModule from './invoke-command';
import type * as OutputModule from './output';
import type * as ReencryptModule from './reencrypt-command';
import type * as ServeModule from './serve-command';

/**
 * The commands' modules, each loaded when its command runs (a bundle evaluates a dynamically imported module
 * only then). The CLI's build makes this module and all it loads a bundle of its own, dist/commands.js, apart
 * from the small one that parses the command line (dist/cli.js): `--help` and usage errors read neither it nor
 * its code cache.
 */
export const commands = {
  audit: (): Promise<typeof AuditModule> => import('./audit-command.js'),
  disable: (): Promise<typeof DisableModule> => import('./disable-command.js'),
  enable: (): Promise<typeof EnableModule> => import('./enable-command.js'),
  grant: (): Promise<typeof GrantModule> => import('./grant-command.js'),
  invoke: (): Promise<typeof InvokeModule> => import('./invoke-command.js'),
  output: (): Promise<typeof OutputModule> => import('./output.js'),
  reencrypt: (): Promise<typeof ReencryptModule> => import('./reencrypt-command.js'),
  serve: (): Promise<typeof ServeModule> => import('./serve-command.js'),
};
