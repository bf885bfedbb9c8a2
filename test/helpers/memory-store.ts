import { setTimeout as sleep } from 'node:timers/promises';
import { KEY_VERSION_ANNOTATION } from '../../shared/reencrypt/annotations';
import type { SecretRef, SecretStore } from '../../shared/reencrypt/secrets-api';

/** Secrets in memory, listed in key order with numeric continue tokens; hooks inject faults on cue. */
export function memoryStore(count: number) {
  const secrets: SecretRef[] = Array.from({ length: count }, (_, i) => ({
    namespace: 'ns',
    name: `s-${String(i).padStart(3, '0')}`,
    resourceVersion: '1',
  }));
  const patched: string[] = [];
  const hooks: {
    beforePatch?: (name: string) => void;
    beforeList?: (continueToken: string | undefined) => void;
  } = {};
  const store: SecretStore = {
    async list({ limit, continueToken }) {
      hooks.beforeList?.(continueToken);
      const from = continueToken ? Number(continueToken) : 0;
      const items = secrets.slice(from, from + limit).map((s) => ({ ...s }));
      const next = from + limit;
      return { items, ...(next < secrets.length ? { continueToken: String(next) } : {}) };
    },
    /** As `list`, with each Secret's type (the estimate's listing). */
    async listSummaries(options) {
      const page = await store.list(options);
      return { ...page, items: page.items.map((s) => ({ ...s, type: 'Opaque' })) };
    },
    /** As `list`, with each Secret's size (100 bytes each; the estimate's listing with --read-secret-sizes). */
    async listSizes(options) {
      const page = await store.list(options);
      return { ...page, items: page.items.map((s) => ({ ...s, type: 'Opaque', bytes: 100 })) };
    },
    async get(_ns, name) {
      return { ...(secrets.find((s) => s.name === name) as SecretRef) };
    },
    async patchMetadata(_ns, name, patch) {
      hooks.beforePatch?.(name);
      await sleep(1);
      patched.push(name);
      const s = secrets.find((x) => x.name === name) as SecretRef;
      // A merge patch: a value sets the annotation, null removes it (as the API server does).
      const changes = (patch.metadata.annotations ?? {}) as Record<string, string | null>;
      if (changes[KEY_VERSION_ANNOTATION]) {
        const kept: Record<string, string> = { ...(s.annotations ?? {}) };
        for (const [name, value] of Object.entries(changes))
          if (value === null) delete kept[name];
          else kept[name] = value;
        s.annotations = kept;
      }
      return { ...s };
    },
  };
  return { store, patched, hooks, secrets };
}
