/**
 * The HTTP Secret store lives with the Kubernetes access it is (`shared/cluster/secret-store.ts`); this name
 * stays only for `bin/reencrypt-command.ts`, which is being rewritten on main: remove it once that imports
 * the store from there.
 */
export { httpSecretStore } from '../cluster/secret-store';
