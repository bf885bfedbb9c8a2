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

/**
 * client-node's `KubeConfig` class, without the rest of the package when it is not loaded yet: reading a
 * kubeconfig and its credentials needs only `dist/config.js`. The CLI's sweep needs nothing more, and its bundle
 * keeps that module apart from the ~700 generated API and model modules (bin/build-cli.js), so a sweep starts
 * without initialising them. Unbundled (tests, tsx) and in the functions (deploy/build.sh) it is the package's
 * own class. In the CLI the whole package is a bundle of its own with a second copy of this class; whichever
 * loads first serves, and `makeApiClient` on either takes an API class from the other: client-node's generated
 * code checks nothing by class (the CLI's audit, enable and invoke runs in the integration suites do it).
 */
export const kubeConfigClass = (): K8s['KubeConfig'] =>
  loaded?.KubeConfig ??
  (require('@kubernetes/client-node/dist/config.js') as Pick<K8s, 'KubeConfig'>).KubeConfig;

/** client-node's `ApiException` (a status code and the raw body), recognised by shape, not by class. */
export function isApiException(err: unknown): err is Error & { code: number; body: unknown } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number' && 'body' in err;
}
