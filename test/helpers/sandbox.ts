import { readFileSync } from 'node:fs';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { inject } from 'vitest';
import type { SandboxInfo } from '../../sandbox';

export const sandboxInfo = () => inject('sandbox');

export function kubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(readFileSync(path, 'utf8'));
  return kc;
}

export const coreApi = (path: string): CoreV1Api => kubeConfig(path).makeApiClient(CoreV1Api);

async function control<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${sandboxInfo().control}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(`sandbox control ${path}: ${json.error}`);
  return json;
}

export const kmsState = () =>
  control<{ keyId: string; adoptedKeyId?: string; stats?: { errors: number } }>('GET', '/kms');
export const rotateKey = () => control<{ keyId: string }>('POST', '/kms/rotate');
export const refuseEncrypt = (refuse: boolean) =>
  control<{ refuseEncrypt: boolean }>('POST', '/kms/refuse-encrypt', { refuse });
export const probeKms = () =>
  control<{ status: number; stats: { encrypt: number; errors: number } }>('POST', '/apiserver/probe-kms');
export const waitForAdoption = (keyId: string, timeoutMs = 150_000) =>
  control<{ adoptedKeyId: string }>('POST', '/kms/wait-adoption', { keyId, timeoutMs });

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const run = pLimit(limit);
  await Promise.all(items.map((item) => run(() => fn(item))));
}

/**
 * What a function run against the sandbox is configured with before a test's own settings: the region and
 * account, the Edge cluster filter, the emulator for every cloud endpoint the functions call, the state namespace.
 */
export const sandboxFunctionEnv = (info: SandboxInfo): Record<string, string> => ({
  SENTINEL_REGION: info.cloud.region,
  SENTINEL_ACCOUNT_ID: info.cloud.accountId,
  SENTINEL_CLUSTER_PROFILE: 'Edge',
  SENTINEL_ENDPOINT_KMS: info.cloud.endpoint,
  SENTINEL_ENDPOINT_CS: info.cloud.endpoint,
  SENTINEL_ENDPOINT_ACTIONTRAIL: info.cloud.endpoint,
  SENTINEL_ENDPOINT_FC: info.cloud.endpoint,
  SENTINEL_ENDPOINT_SLS: info.cloud.endpoint,
  SENTINEL_STATE_NAMESPACE: info.stateNamespace,
});
