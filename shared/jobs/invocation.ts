import type { Cluster } from '../cluster/kube';
import { proofSettings, readSealingEvidence } from '../cluster/sealing';
import { withCluster } from '../cluster/user-kubeconfig';
import { describeKey } from '../kms/keys';
import type { Invocation } from '../runtime/handler';
import type { Services } from '../runtime/services';
import { encodeJobPayload, type JobPayload, taskIdFor } from './payload';
import { firstContinuation, type JobPorts, type JobSpec, type RunResult, runJob, summarize } from './run';
import { configMapState, jobStore, type StateAdapter } from './store';

/** What an invocation answers FC: the run, with its sweep's report summarised. */
export type InvocationResult = Omit<RunResult, 'report'> & { report?: Partial<RunResult['report']> };

/**
 * The function's job: one invocation of `reencrypt`, with the state ConfigMap as its store and FC async
 * invocation as its hand-over (task id `<jobId>[-a<attempt>]-i<n>`, which FC deduplicates). Apart from the
 * engine so the CLI's sweep loads neither the payload's nor the state's schemas (zod is a bundle of its own,
 * loaded only by the commands that need it).
 */
export async function runJobInvocation(
  job: JobPayload,
  inv: Invocation,
  services: Services,
): Promise<InvocationResult> {
  return withCluster(services.clients, job.clusterId, 60, (cluster) =>
    runInCluster(job, inv, services, cluster, configMapState(cluster.core, inv.config.stateNamespace)),
  );
}

/** The cluster as the job reaches it: its Secrets and its API servers' evidence. */
export type JobCluster = Pick<Cluster, 'secrets' | 'getRaw' | 'apiServerIdentities'>;

/** One invocation against an open cluster and its state. */
export async function runInCluster(
  job: JobPayload,
  inv: Invocation,
  services: Services,
  cluster: JobCluster,
  state: StateAdapter,
): Promise<InvocationResult> {
  const log = inv.log.child({ jobId: job.jobId, clusterId: job.clusterId });
  const { reencrypt } = inv.config;
  const ref = {
    jobId: job.jobId,
    keyId: job.keyId,
    keyVersionId: job.keyVersionId,
    attempt: job.attempt ?? 1,
  };
  const key = await describeKey(services.clients, job.keyId);
  const ports: JobPorts = {
    secrets: cluster.secrets,
    evidence: () => readSealingEvidence(cluster, key, proofSettings(reencrypt)),
    key,
    store: jobStore(state, ref, { log, now: inv.now }),
    budget: {
      deadline: inv.deadline - reencrypt.budgetMarginMs,
      handOver: async (next) => {
        const payload = encodeJobPayload({ ...job, checkpoint: next });
        await services.invoker.invokeAsync(reencrypt.functionName, payload, {
          taskId: taskIdFor(job.jobId, job.attempt, next.invocation),
        });
      },
    },
    log,
    now: inv.now,
    adoption: { delayMs: reencrypt.adoptionDelayMs, timeoutMs: reencrypt.adoptionTimeoutMs },
    notifier: services.notifier,
  };
  const spec: JobSpec = {
    jobId: job.jobId,
    clusterId: job.clusterId,
    keyVersionId: job.keyVersionId,
    strategy: reencrypt.strategy,
    pageSize: reencrypt.pageSize,
    concurrency: reencrypt.concurrency,
    polite: reencrypt.polite,
    etcdSpace: { quotaBytes: reencrypt.etcdQuotaBytes, share: reencrypt.etcdQuotaShare },
  };
  const from =
    job.checkpoint ?? firstContinuation(job.keyVersionId, new Date(inv.now()), 'waiting-for-adoption');
  const { report, ...run } = await runJob(spec, ports, from);
  return report ? { ...run, report: summarize(report) } : run;
}
