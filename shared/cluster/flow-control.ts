import type { FlowControl, KubeHttp } from './kube-http';
import { SENTINEL_USER } from './rbac';

/**
 * API Priority and Fairness for the suite (deploy/apf.yaml is these objects, checked by a test): every request
 * of the suite's identities is classified into a priority level of its own with few seats, which it may
 * neither lend nor borrow, so a sweep at full speed queues behind its own seats instead of taking the API
 * server's from every controller, kubelet and deploy pipeline.
 *
 * Seats: a Limited level's nominal concurrency limit is the server's total (`--max-requests-inflight` +
 * `--max-mutating-requests-inflight`, 400 + 200 by default) × its shares / the sum of every level's shares
 * (245 for the default set): 2 shares are 5 seats on a default API server. The queue holds a whole default
 * sweep (64 in flight) without 429s: the sweep is one flow (ByUser), so one queue.
 */
export const FLOW_CONTROL_NAME = 'ack-kms-sentinel';
const API = '/apis/flowcontrol.apiserver.k8s.io/v1';
const LABELS = { 'app.kubernetes.io/name': 'ack-kms-sentinel' };

export function priorityLevel() {
  return {
    apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
    kind: 'PriorityLevelConfiguration',
    metadata: { name: FLOW_CONTROL_NAME, labels: LABELS },
    spec: {
      type: 'Limited',
      limited: {
        nominalConcurrencyShares: 2,
        lendablePercent: 0,
        borrowingLimitPercent: 0,
        limitResponse: { type: 'Queue', queuing: { queues: 16, handSize: 4, queueLengthLimit: 128 } },
      },
    },
  };
}

/**
 * Matched before `global-default` (9900) and `service-accounts` (9000), after the system's own schemas
 * (`exempt`, `probes`, `system-leader-election`, `kube-controller-manager`, `kube-system-service-accounts`, all
 * ≤ 900): the suite's identities by user name, the RAM roles' names on ACK given by the grant step.
 */
export function flowSchema(users: string[] = [SENTINEL_USER]) {
  if (!users.length) throw new RangeError('a FlowSchema needs at least one user');
  return {
    apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
    kind: 'FlowSchema',
    metadata: { name: FLOW_CONTROL_NAME, labels: LABELS },
    spec: {
      priorityLevelConfiguration: { name: FLOW_CONTROL_NAME },
      matchingPrecedence: 1000,
      distinguisherMethod: { type: 'ByUser' },
      rules: [
        {
          subjects: users.map((name) => ({ kind: 'User', user: { name } })),
          resourceRules: [
            { verbs: ['*'], apiGroups: ['*'], resources: ['*'], clusterScope: true, namespaces: ['*'] },
          ],
          nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
        },
      ],
    },
  };
}

/**
 * Both objects, the level first: what the grant step hands its manifest applier (`extra`), with the user names
 * ACK gives the functions' RAM roles (the uids it grants permissions to) beside the suite's own user.
 */
export const flowControlManifest = (users?: string[]) => [priorityLevel(), flowSchema(users)];

const ACCEPT = 'application/json';
const APPLY = 'application/apply-patch+yaml';

/**
 * Applies both objects (server-side apply: fields another manager set are left alone, ours are put back), the
 * level first, so the schema never points at a level that does not exist. Needs `patch` (and `create`, which
 * apply implies for a new object) on `prioritylevelconfigurations` and `flowschemas` named `ack-kms-sentinel`.
 * Returns the UIDs the API server gave them: its answers name the level by UID.
 */
export async function applyFlowControl(
  http: KubeHttp,
  users?: string[],
): Promise<{ priorityLevelUid: string; flowSchemaUid: string }> {
  const apply = async (plural: string, object: object) => {
    const path = `${API}/${plural}/${FLOW_CONTROL_NAME}?fieldManager=ack-kms-sentinel&force=true`;
    const got = (await http.call('PATCH', path, ACCEPT, JSON.stringify(object), true, APPLY)) as {
      metadata?: { uid?: string };
    };
    return got.metadata?.uid ?? '';
  };
  const priorityLevelUid = await apply('prioritylevelconfigurations', priorityLevel());
  const flowSchemaUid = await apply('flowschemas', flowSchema(users));
  return { priorityLevelUid, flowSchemaUid };
}

/**
 * The names behind an answer's APF UIDs, where the identity may list the objects (the sweep's does not need
 * to: its report keeps the UIDs); undefined names when it may not.
 */
export async function flowControlNames(
  http: KubeHttp,
  uids: FlowControl,
): Promise<FlowControl & { flowSchema?: string; priorityLevel?: string }> {
  const nameOf = async (plural: string, uid: string) => {
    try {
      const list = (await http.call('GET', `${API}/${plural}`, ACCEPT)) as {
        items?: Array<{ metadata?: { name?: string; uid?: string } }>;
      };
      return list.items?.find((i) => i.metadata?.uid === uid)?.metadata?.name;
    } catch {
      return undefined;
    }
  };
  const [flowSchema, priorityLevel] = await Promise.all([
    nameOf('flowschemas', uids.flowSchemaUid),
    nameOf('prioritylevelconfigurations', uids.priorityLevelUid),
  ]);
  return {
    ...uids,
    ...(flowSchema ? { flowSchema } : {}),
    ...(priorityLevel ? { priorityLevel } : {}),
  };
}
