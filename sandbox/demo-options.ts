import { parseArgs } from 'node:util';
import { MAX_API_SERVERS } from './controlplane/controlplane';
import { BALANCER_MODES, type BalancerMode } from './controlplane/load-balancer';

/** What `npm run demo` was asked to do (docs/sandbox.md, "The demo's flags"). */
export interface DemoOptions {
  json: boolean;
  /** `--enable`: the vendor procedure on a cluster without encryption (sandbox/demo-enable.ts). */
  enable: boolean;
  /** How many Secrets to seed (1 to 5000; 300 by default). */
  secrets: number;
  constantKeyId: boolean;
  /** How many kube-apiservers, behind a load balancer when more than one. */
  apiServers: number;
  /** How many of them to restart after the rotation, one by one (`--restart-control-plane`: all). */
  restarts: number;
  loadBalancer: BalancerMode;
  leaseAccess: boolean;
}

const whole = (flag: string, raw: string, min: number, max: number): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`--${flag} must be a whole number from ${min} to ${max} (got ${raw})`);
  return n;
};

export function demoOptions(argv: string[]): DemoOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      enable: { type: 'boolean', default: false },
      secrets: { type: 'string', default: '300' },
      'constant-key-id': { type: 'boolean', default: false },
      'restart-control-plane': { type: 'boolean', default: false },
      'api-servers': { type: 'string', default: '1' },
      'restart-api-servers': { type: 'string' },
      lb: { type: 'string', default: 'round-robin' },
      'no-lease-access': { type: 'boolean', default: false },
    },
  });
  const apiServers = whole('api-servers', values['api-servers'], 1, MAX_API_SERVERS);
  const some = values['restart-api-servers'];
  if (some !== undefined && values['restart-control-plane'])
    throw new Error('--restart-control-plane restarts every API server: give it or --restart-api-servers');
  if (!BALANCER_MODES.includes(values.lb as BalancerMode))
    throw new Error(`--lb must be one of ${BALANCER_MODES.join(', ')}, not "${values.lb}"`);
  return {
    json: values.json,
    enable: values.enable,
    secrets: whole('secrets', values.secrets, 1, 5000),
    constantKeyId: values['constant-key-id'],
    apiServers,
    restarts: values['restart-control-plane']
      ? apiServers
      : some === undefined
        ? 0
        : whole('restart-api-servers', some, 0, apiServers),
    loadBalancer: values.lb as BalancerMode,
    leaseAccess: !values['no-lease-access'],
  };
}
