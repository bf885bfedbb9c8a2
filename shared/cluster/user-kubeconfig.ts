import type { CloudClients } from '../cloud/clients';
import { RetryableError } from '../errors';
import { type Cluster, openCluster } from './kube';

/**
 * In a file of its own, so only the functions that reach a cluster carry `cs:DescribeClusterUserKubeconfig`
 * (the per-function RAM policies are checked against the files each function's bundle holds).
 */
/**
 * A short-lived kubeconfig for the suite's identity in the cluster. With `clusterEndpoint: 'private'` it names
 * the API server's VPC address (`PrivateIpAddress=true`): functions in the cluster's VPC reach it there, and
 * the API server need not face the internet.
 */
export async function clusterKubeconfig(
  clients: Pick<CloudClients, 'csRoa' | 'clusterEndpoint'>,
  clusterId: string,
  minutes = 60,
): Promise<string> {
  const body = (await clients.csRoa(
    'DescribeClusterUserKubeconfig',
    'GET',
    `/k8s/${encodeURIComponent(clusterId)}/user_config`,
    {
      TemporaryDurationMinutes: String(minutes),
      ...(clients.clusterEndpoint === 'private' ? { PrivateIpAddress: 'true' } : {}),
    },
  )) as { config?: string };
  // An answer without its one field is a malformed answer, transient as normalize.ts treats an unreadable
  // one (MalformedResponse): FC's retry or the next tick asks again.
  if (!body.config)
    throw new RetryableError(`DescribeClusterUserKubeconfig ${clusterId}: no kubeconfig in the answer`, {
      code: 'NoKubeconfig',
      service: 'cs',
    });
  return body.config;
}

/** Opens a cluster with a short-lived kubeconfig of the suite's identity, runs `use`, and closes it. */
export async function withCluster<T>(
  clients: Pick<CloudClients, 'csRoa' | 'clusterEndpoint'>,
  clusterId: string,
  minutes: number,
  use: (cluster: Cluster) => Promise<T>,
): Promise<T> {
  const cluster = openCluster(await clusterKubeconfig(clients, clusterId, minutes));
  try {
    return await use(cluster);
  } finally {
    cluster.close();
  }
}
