import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface K8sBinaries {
  version: string;
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
}

export const K8S_VERSION = readFileSync(join(__dirname, 'K8S_VERSION'), 'utf8').trim();

export function binDir(version = K8S_VERSION): string {
  const cache = process.env.ACK_KMS_SENTINEL_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ack-kms-sentinel');
  return join(cache, 'k8s', `v${version}`, 'bin');
}

/**
 * The pinned kube-apiserver, etcd and kubectl, built from the Go module proxy by `build.sh` when the cache
 * for this version is missing (a few minutes, once), reused otherwise.
 */
export function ensureBinaries(): K8sBinaries {
  const dir = binDir();
  const binaries = {
    version: K8S_VERSION,
    kubeApiserver: join(dir, 'kube-apiserver'),
    etcd: join(dir, 'etcd'),
    kubectl: join(dir, 'kubectl'),
  };
  const complete = existsSync(join(dir, '..', '.complete'));
  if (!complete || !existsSync(binaries.kubeApiserver) || !existsSync(binaries.etcd) || !existsSync(binaries.kubectl)) {
    const result = spawnSync('bash', [join(__dirname, 'build.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (result.status !== 0) {
      throw new Error(`building the Kubernetes binaries failed (exit ${result.status}); run sandbox/k8s-bins/build.sh to see why`);
    }
  }
  return binaries;
}
