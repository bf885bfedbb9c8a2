import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { KEY_VERSION_ANNOTATION } from '../../shared/reencrypt/annotations';
import { pool } from './sandbox';

export const dataDigest = (data: Record<string, string> | undefined): string =>
  createHash('sha256')
    .update(JSON.stringify(Object.entries(data ?? {}).sort()))
    .digest('hex');

export interface SeedOptions {
  namespaces: string[];
  count: number;
  /** Indexes of Secrets made immutable. */
  immutable?: number[];
  /** Indexes of Secrets with a payload of about 900 KiB. */
  large?: number[];
  /** Size of the other Secrets' payload in bytes. */
  size?: number;
  prefix?: string;
}

/** Creates namespaces and Secrets; returns `namespace/name` → digest of the data as created. */
export async function seedSecrets(admin: CoreV1Api, o: SeedOptions): Promise<Map<string, string>> {
  for (const name of o.namespaces) {
    await admin.createNamespace({ body: { metadata: { name } } }).catch((err: { code?: number }) => {
      if (err.code !== 409) throw err;
    });
  }
  const digests = new Map<string, string>();
  const secrets: V1Secret[] = Array.from({ length: o.count }, (_, i) => ({
    metadata: {
      name: `${o.prefix ?? 's'}-${String(i).padStart(5, '0')}`,
      namespace: o.namespaces[i % o.namespaces.length],
    },
    type: 'Opaque',
    immutable: o.immutable?.includes(i) ? true : undefined,
    data: {
      payload: randomBytes(o.large?.includes(i) ? 900 * 1024 : (o.size ?? 32)).toString('base64'),
    },
  }));
  await pool(secrets, 24, async (s) => {
    await admin.createNamespacedSecret({ namespace: s.metadata?.namespace ?? '', body: s });
    digests.set(`${s.metadata?.namespace}/${s.metadata?.name}`, dataDigest(s.data));
  });
  return digests;
}

/** Every Secret of the namespaces: its key version annotation and its data digest (admin reads). */
export async function snapshot(
  admin: CoreV1Api,
  namespaces: string[],
): Promise<Map<string, { version?: string; digest: string }>> {
  const out = new Map<string, { version?: string; digest: string }>();
  for (const namespace of namespaces) {
    let token: string | undefined;
    do {
      const page = await admin.listNamespacedSecret({
        namespace,
        limit: 200,
        ...(token ? { _continue: token } : {}),
      });
      for (const s of page.items) {
        out.set(`${namespace}/${s.metadata?.name}`, {
          ...(s.metadata?.annotations?.[KEY_VERSION_ANNOTATION]
            ? { version: s.metadata.annotations[KEY_VERSION_ANNOTATION] }
            : {}),
          digest: dataDigest(s.data),
        });
      }
      token = page.metadata?._continue;
    } while (token);
  }
  return out;
}

/** Writes a kubeconfig text to a temporary file (for APIs that take a path). */
export function kubeConfigText(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'kc-')), 'kubeconfig');
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}
