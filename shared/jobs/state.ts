import type { CoreV1Api } from '@kubernetes/client-node';
import { z } from 'zod';
import { isApiException } from '../cluster/k8s';
import { normalizeError } from '../errors';
import { JOB_PHASES, sweepCheckpointSchema } from './payload';

/**
 * Per-cluster state without a database: one ConfigMap in the suite's state namespace holds the last key
 * version fully re-encrypted and the job in progress (phase, checkpoint, last report). Behind a two-method
 * interface, like kube-storage-version-migrator's progress tracker, so the loop does not know where it lives.
 */
export const STATE_CONFIGMAP = 'ack-kms-sentinel-state';

const jobSchema = z.object({
  jobId: z.string(),
  keyId: z.string(),
  keyVersionId: z.string(),
  phase: z.enum(JOB_PHASES),
  attempt: z.number().int().min(1).optional(),
  invocation: z.number().int().min(1),
  /** When this attempt was claimed. */
  startedAt: z.string().optional(),
  updatedAt: z.string(),
  checkpoint: sweepCheckpointSchema.optional(),
  report: z.record(z.string(), z.unknown()).optional(),
});

export const clusterStateSchema = z.object({
  completedKeyVersion: z.string().optional(),
  completedAt: z.string().optional(),
  /**
   * What the completion rests on: `proven` by the API servers' evidence, or `unproven` (ActionTrail only).
   * Absent for a completion written before the suite read that evidence: treated as unproven.
   */
  completedProof: z.enum(['proven', 'unproven']).optional(),
  job: jobSchema.optional(),
});

export type ClusterState = z.output<typeof clusterStateSchema>;
export type JobState = z.output<typeof jobSchema>;

export interface StateStore {
  load(): Promise<ClusterState>;
  save(state: ClusterState): Promise<void>;
}

export function configMapStateStore(core: CoreV1Api, namespace: string, name = STATE_CONFIGMAP): StateStore {
  let resourceVersion: string | undefined;
  return {
    async load() {
      try {
        const cm = await core.readNamespacedConfigMap({ namespace, name });
        resourceVersion = cm.metadata?.resourceVersion;
        const raw = cm.data?.state;
        if (!raw) return {};
        // A state written by another version, by hand, or cut short: start over safely (the annotations skip
        // done work) rather than fail every invocation on it.
        let json: unknown;
        try {
          json = JSON.parse(raw);
        } catch {
          return {};
        }
        const parsed = clusterStateSchema.safeParse(json);
        return parsed.success ? parsed.data : {};
      } catch (err) {
        if (isApiException(err) && err.code === 404) {
          resourceVersion = undefined;
          return {};
        }
        throw normalizeError(err, { service: 'kubernetes', operation: 'read state ConfigMap' });
      }
    },
    async save(state) {
      const body = {
        metadata: {
          name,
          namespace,
          labels: { 'app.kubernetes.io/name': 'ack-kms-sentinel' },
          ...(resourceVersion ? { resourceVersion } : {}),
        },
        data: { state: JSON.stringify(state) },
      };
      try {
        const saved = resourceVersion
          ? await core.replaceNamespacedConfigMap({ namespace, name, body })
          : await core.createNamespacedConfigMap({ namespace, body });
        resourceVersion = saved.metadata?.resourceVersion;
      } catch (err) {
        throw normalizeError(err, { service: 'kubernetes', operation: 'save state ConfigMap' });
      }
    },
  };
}
