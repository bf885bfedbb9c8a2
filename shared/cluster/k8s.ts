/**
 * `@kubernetes/client-node`, loaded on first use: about 1 MB of code that only the paths reading a cluster
 * need. The function bundles ship it beside themselves (deploy/build.sh), so a cold start does not parse it.
 */
export type K8s = typeof import('@kubernetes/client-node');
let loaded: K8s | undefined;
export const k8s = (): K8s => {
  loaded ??= require('@kubernetes/client-node') as K8s;
  return loaded;
};

/** client-node's `ApiException` (a status code and the raw body), recognised by shape, not by class. */
export function isApiException(err: unknown): err is Error & { code: number; body: unknown } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number' && 'body' in err;
}
