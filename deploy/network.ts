import type { Resolved } from './check';

/**
 * How the functions reach the clusters' API servers, as the resolved s.yaml says:
 * - `vpc`: the functions run in the clusters' VPC (`vpcConfig`) and ask CS for kubeconfigs naming the API
 *   server's private address (SENTINEL_CLUSTER_ENDPOINT=private). The API server's security group must
 *   accept TCP 6443 from the vSwitches' CIDR blocks (or from the functions' security group).
 * - `public`: no VPC; each kubeconfig names the cluster's internet endpoint, which must accept connections
 *   from Function Compute's egress addresses (they change: the API server's access list cannot pin them).
 */
export interface NetworkMode {
  mode: 'vpc' | 'public';
  /** One line for the deployer. */
  summary: string;
  problems: string[];
}

interface VpcConfig {
  vpcId?: string;
  vSwitchIds?: string[] | string;
  securityGroupId?: string;
}

const EXAMPLES = {
  SENTINEL_VPC_ID: 'vpc-bp1opxu1zkhn00gzv****',
  SENTINEL_VSWITCH_IDS: 'vsw-bp1s1835zfhtj8iw5****,vsw-bp1gp8wrqk0de5xms****',
  SENTINEL_SECURITY_GROUP_ID: 'sg-bp1fg655nh68xyz9****',
};

function vpcProblems(vpc: VpcConfig): string[] {
  const problems: string[] = [];
  const need = (name: keyof typeof EXAMPLES, ok: boolean, what: string) => {
    if (!ok) problems.push(`${name}: ${what} (example: ${name}=${EXAMPLES[name]})`);
  };
  const vSwitches = Array.isArray(vpc.vSwitchIds) ? vpc.vSwitchIds : [];
  need('SENTINEL_VPC_ID', /^vpc-[a-z0-9*]+$/.test(vpc.vpcId ?? ''), 'must be a VPC id');
  need(
    'SENTINEL_VSWITCH_IDS',
    vSwitches.length > 0 && vSwitches.every((v) => /^vsw-[a-z0-9*]+$/.test(v.trim())),
    'must list the vSwitch ids (comma-separated) the functions use in that VPC',
  );
  need(
    'SENTINEL_SECURITY_GROUP_ID',
    /^sg-[a-z0-9*]+$/.test(vpc.securityGroupId ?? ''),
    'must be the security group the functions use in that VPC',
  );
  return problems;
}

/** The network mode of a resolved deployment, and what is inconsistent about it. */
export function networkMode(r: Resolved): NetworkMode {
  const first = r.functions[0]?.props;
  const vpc = (first?.vpcConfig ?? {}) as VpcConfig;
  const endpoint = first?.environmentVariables?.SENTINEL_CLUSTER_ENDPOINT || 'public';
  const set = Boolean(
    vpc.vpcId || vpc.securityGroupId || (Array.isArray(vpc.vSwitchIds) && vpc.vSwitchIds.length),
  );
  if (!set) {
    return {
      mode: 'public',
      summary:
        "network: public endpoints. Each cluster's API server must have an internet endpoint (an EIP) that accepts " +
        "connections from Function Compute's egress addresses; set SENTINEL_VPC_ID to run in the clusters' VPC instead",
      problems:
        endpoint === 'private'
          ? [
              'SENTINEL_CLUSTER_ENDPOINT: "private" names API server addresses only reachable inside their VPC, ' +
                'but the functions run outside any VPC (example: SENTINEL_VPC_ID=vpc-bp1opxu1zkhn00gzv**** or SENTINEL_CLUSTER_ENDPOINT=public)',
            ]
          : [],
    };
  }
  const problems = vpcProblems(vpc);
  if (endpoint !== 'private')
    problems.push(
      "SENTINEL_CLUSTER_ENDPOINT: the functions run in a VPC but would ask for the clusters' public endpoints " +
        '(example: SENTINEL_CLUSTER_ENDPOINT=private)',
    );
  const vSwitches = Array.isArray(vpc.vSwitchIds) ? vpc.vSwitchIds.join(',') : '';
  return {
    mode: 'vpc',
    summary:
      `network: VPC ${vpc.vpcId} (vSwitches ${vSwitches}, security group ${vpc.securityGroupId}), ` +
      "the API servers' private endpoints. Their security group must accept TCP 6443 from these vSwitches; " +
      'clusters in another VPC are reachable only through CEN (or a deployment of their own)',
    problems,
  };
}
