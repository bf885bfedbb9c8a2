import type { KubeConfig, V1ObjectMeta } from '@kubernetes/client-node';
import { kubeSpace } from '../etcd/space';
import type { Marks } from '../reencrypt/annotations';
import type {
  ListOptions,
  SecretRef,
  SecretStore,
  SecretSummary,
  SizedSecret,
} from '../reencrypt/secrets-api';
import { KubeHttp } from './kube-http';

/**
 * The sweep's `SecretStore` (`reencrypt/secrets-api.ts`) on the one Kubernetes HTTP client (`kube-http.ts`):
 * metadata only. Lists and patch responses ask the API server for `PartialObjectMetadata`, so Secret data
 * never crosses the wire to us, never sits in our memory, and a page of Helm release Secrets of hundreds of
 * KiB costs a few hundred bytes each. The estimate asks for the API server's table (type and number of keys,
 * with the metadata); only its `listSizes`, asked for explicitly, reads whole Secrets, and keeps their sizes.
 */
export const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
export const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
export const METADATA_TABLE = 'application/json;as=Table;g=meta.k8s.io;v=v1';

/**
 * The suite's own annotations are named under this prefix (the marks of `reencrypt/annotations.ts`), and are
 * the only ones a SecretRef keeps: others are dropped on arrival, since
 * `kubectl.kubernetes.io/last-applied-configuration` of a Secret created by `kubectl apply` holds its whole
 * `data`.
 */
export const SUITE_ANNOTATION_PREFIX = 'ack-kms-sentinel.io/';

/**
 * The vendor document's annotation, which the suite writes with its mark (RFC 3339, UTC): when the mark was
 * written, and so whether it predates the last time encryption was turned on. Kept with the suite's own.
 */
export const ROTATION_TIME_ANNOTATION = 'encryption-key-rotation-time';

/**
 * Who the API server records as having made the suite's writes (`metadata.managedFields[].manager`), as kubectl,
 * Helm and controllers name themselves: without it, Node's HTTP client shows up as `node-fetch` or `unknown`.
 */
export const FIELD_MANAGER = 'ack-kms-sentinel';

/** A Secret's metadata as the sweep keeps it (the suite's marks only). */
export const secretRef = (m: V1ObjectMeta | undefined): SecretRef => {
  const marks = suiteAnnotations(m?.annotations);
  return {
    namespace: m?.namespace ?? '',
    name: m?.name ?? '',
    resourceVersion: m?.resourceVersion ?? '',
    ...(marks ? { annotations: marks } : {}),
    ...(m?.creationTimestamp ? { createdAt: new Date(m.creationTimestamp) } : {}),
  };
};

/** No allocation for a Secret without the suite's annotations (most of them, on a sweep's first run). */
function suiteAnnotations(all: Record<string, string> | undefined): Marks | undefined {
  let marks: Record<string, string> | undefined;
  for (const name in all) {
    const value = all[name];
    if (
      value !== undefined &&
      (name.startsWith(SUITE_ANNOTATION_PREFIX) || name === ROTATION_TIME_ANNOTATION)
    ) {
      marks ??= {};
      marks[name] = value;
    }
  }
  return marks;
}

/** The last write any manager made, from `managedFields`. */
function lastWrite(m: V1ObjectMeta | undefined): { lastWrite?: Date } {
  const times = (m?.managedFields ?? [])
    .map((f) => (f.time ? new Date(f.time).getTime() : 0))
    .filter((t) => t > 0);
  return times.length ? { lastWrite: new Date(Math.max(...times)) } : {};
}

/** A whole Secret reduced to what the estimate needs; its data does not outlive this call. */
function sized(s: { metadata?: V1ObjectMeta; type?: string; data?: Record<string, string> }): SizedSecret {
  let bytes = 0;
  for (const v of Object.values(s.data ?? {}))
    bytes += Math.floor((v.length * 3) / 4) - (v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0);
  return { ...secretRef(s.metadata), type: s.type ?? 'Opaque', bytes, ...lastWrite(s.metadata) };
}

interface SecretTable {
  columnDefinitions?: Array<{ name?: string }>;
  rows?: Array<{ cells?: unknown[]; object?: { metadata?: V1ObjectMeta } }> | null;
  metadata?: { continue?: string };
}

/** A table row (`includeObject=Metadata`): the type from its Type column, the rest from its metadata. */
function summaries(table: SecretTable): SecretSummary[] {
  const typeAt = (table.columnDefinitions ?? []).findIndex((c) => c.name === 'Type');
  return (table.rows ?? []).map((row) => {
    const type = typeAt >= 0 ? row.cells?.[typeAt] : undefined;
    const meta = row.object?.metadata;
    return {
      ...secretRef(meta),
      type: typeof type === 'string' && type ? type : 'Opaque',
      ...lastWrite(meta),
    };
  });
}

/** A list request's path: the scope, the page and the selectors, as the lister asks for them. */
function listPath(o: ListOptions): string {
  const query = new URLSearchParams({ limit: String(o.limit) });
  if (o.continueToken) query.set('continue', o.continueToken);
  if (o.labelSelector) query.set('labelSelector', o.labelSelector);
  if (o.fieldSelector) query.set('fieldSelector', o.fieldSelector);
  const base = o.namespace
    ? `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/secrets`
    : '/api/v1/secrets';
  return `${base}?${query}`;
}

/** The Secret store on a client of its own (the CLI's sweep and audit); `close()` closes its connections. */
export function httpSecretStore(
  kc: KubeConfig,
  /** A request with no byte from the server for this long fails as ETIMEDOUT (retried as a reset is). */
  requestTimeoutMs?: number,
): SecretStore & { close(): void } {
  return secretStore(new KubeHttp(kc, requestTimeoutMs));
}

/** The Secret store on `http` (a cluster's one client: `kube.ts`); `close()` closes its connections. */
export function secretStore(http: KubeHttp): SecretStore & { close(): void } {
  const call = http.call.bind(http);
  const secretPath = (namespace: string, name: string) =>
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;

  return {
    async list(o) {
      const list = (await call('GET', listPath(o), METADATA_LIST)) as {
        items?: Array<{ metadata?: V1ObjectMeta }> | null;
        metadata?: { continue?: string; remainingItemCount?: number };
      };
      return {
        // An empty PartialObjectMetadataList comes back with `items: null`.
        items: (list.items ?? []).map((s) => secretRef(s.metadata)),
        ...(list.metadata?.continue ? { continueToken: list.metadata.continue } : {}),
        ...(list.metadata?.remainingItemCount === undefined
          ? {}
          : { remainingItemCount: list.metadata.remainingItemCount }),
      };
    },
    async listSummaries(o) {
      const table = (await call(
        'GET',
        `${listPath(o)}&includeObject=Metadata`,
        METADATA_TABLE,
      )) as SecretTable;
      return {
        items: summaries(table),
        ...(table.metadata?.continue ? { continueToken: table.metadata.continue } : {}),
      };
    },
    async listSizes(o) {
      const list = (await call('GET', listPath(o), 'application/json')) as {
        items?: Array<{ metadata?: V1ObjectMeta; type?: string; data?: Record<string, string> }> | null;
        metadata?: { continue?: string };
      };
      return {
        items: (list.items ?? []).map((s) => sized(s)),
        ...(list.metadata?.continue ? { continueToken: list.metadata.continue } : {}),
      };
    },
    async get(namespace, name) {
      const got = (await call('GET', secretPath(namespace, name), METADATA_ONLY)) as {
        metadata?: V1ObjectMeta;
      };
      return secretRef(got.metadata);
    },
    async patchMetadata(namespace, name, patch) {
      const got = (await call(
        'PATCH',
        `${secretPath(namespace, name)}?fieldManager=${FIELD_MANAGER}`,
        METADATA_ONLY,
        JSON.stringify(patch),
      )) as {
        metadata?: V1ObjectMeta;
      };
      return secretRef(got.metadata);
    },
    async writeMetadata(namespace, name, patch) {
      await call(
        'PATCH',
        `${secretPath(namespace, name)}?fieldManager=${FIELD_MANAGER}`,
        METADATA_ONLY,
        JSON.stringify(patch),
        false,
      );
    },
    space: kubeSpace(http),
    flowControl: () => http.flowControl,
    close: () => http.close(),
  };
}
