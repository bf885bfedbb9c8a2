import { ApiError, type RawRequest } from './api';
import type { CloudEmulator } from './emulator';

/** The state and call shape of the deploy:prepare APIs the emulator answers (deploy-apis.ts, ram.ts), in memory. */
export interface Policy {
  name: string;
  versions: Array<{ id: string; document: string; isDefault: boolean; created: string }>;
}

export interface DeployState {
  roles: Map<string, { document: string; description: string; created: string }>;
  policies: Map<string, Policy>;
  /** role → custom policy names attached */
  attached: Map<string, Set<string>>;
  slsProjects: Map<string, Set<string>>;
  kmsInstances: string[];
  /** Who owns each bucket: the emulator's account unless a test plants another. */
  /** Every write, for tests that check a second run changes nothing. */
  writes: string[];
}

const states = new WeakMap<CloudEmulator, DeployState>();

export function deployState(emulator: CloudEmulator): DeployState {
  let s = states.get(emulator);
  if (!s) {
    s = {
      roles: new Map(),
      policies: new Map(),
      attached: new Map(),
      slsProjects: new Map(),
      kmsInstances: [`kst-${emulator.state.region.replace(/-/g, '')}sandbox`],
      writes: [],
    };
    states.set(emulator, s);
  }
  return s;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export const json = (body: unknown, requestId: string): Answer => ({
  status: 200,
  headers: { 'content-type': 'application/json;charset=utf-8', 'x-acs-request-id': requestId },
  body: JSON.stringify(body),
});

export const need = (params: Record<string, string>, name: string): string => {
  const v = params[name];
  if (!v)
    throw new ApiError(
      400,
      'MissingParameter',
      `The input parameter "${name}" that is mandatory is not supplied.`,
    );
  return v;
};

export interface DeployCall {
  emulator: CloudEmulator;
  service: string;
  action: string;
  raw: RawRequest;
  params: Record<string, string>;
  requestId: string;
}
