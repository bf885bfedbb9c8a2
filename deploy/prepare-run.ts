import type { PrepareClients } from './prepare-clients';
import type { OptionalPolicy } from './ram';

/** The record of one deploy:prepare run, and the helpers every step shares (deploy/prepare.ts). */
export interface PrepareOptions {
  dryRun: boolean;
  /** The deployment's variables (those s.yaml reads). */
  env: Record<string, string | undefined>;
  /** Optional policies to create and attach (cli-encryption-admin is created only: a person attaches it). */
  optional?: OptionalPolicy[];
}

/**
 * `missing`: deploy would fail without it and this command cannot make it (the step says how); `manual`: no API
 * here can check it, so the step is named every time.
 */
export type Outcome =
  | 'created'
  | 'updated'
  | 'unchanged'
  | 'would create'
  | 'would update'
  | 'ok'
  | 'missing'
  | 'manual';

export interface Step {
  resource: string;
  name: string;
  outcome: Outcome;
  /** For `missing`: the exact console or CLI step that makes it. */
  todo?: string;
}

export interface PrepareReport {
  dryRun: boolean;
  steps: Step[];
  /** True when nothing is missing that deploy needs. */
  ready: boolean;
}

export const WEBHOOK_SECRET_NAME = 'ack-kms-sentinel-webhook';
export const FC_TRUST = JSON.stringify({
  Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: ['fc.aliyuncs.com'] } }],
  Version: '1',
});

/** The error code of an SDK error (RAM, SLS, OSS and KMS all name it `code`). */
export const codeOf = (err: unknown): string => String((err as { code?: unknown }).code ?? '');

export async function absentOn<T>(call: () => Promise<T>, codes: string[]): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    if (codes.includes(codeOf(err))) return undefined;
    throw err;
  }
}

/** Canonical JSON: a policy RAM hands back may differ in spacing and key order, not in meaning. */
export const canonical = (doc: string | undefined): string => {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v as Record<string, unknown>)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, sort(x)]),
          )
        : v;
  try {
    return JSON.stringify(sort(JSON.parse(doc ?? '')));
  } catch {
    return doc ?? '';
  }
};

export class Run {
  readonly steps: Step[] = [];
  constructor(
    readonly options: PrepareOptions,
    readonly c: PrepareClients,
  ) {}
  get region(): string {
    return this.options.env.SENTINEL_REGION ?? '';
  }
  /** Records a step; does the write only when not a dry run. */
  async change(resource: string, name: string, kind: 'create' | 'update', write: () => Promise<unknown>) {
    if (!this.options.dryRun) await write();
    const outcome: Outcome = this.options.dryRun
      ? kind === 'create'
        ? 'would create'
        : 'would update'
      : kind === 'create'
        ? 'created'
        : 'updated';
    this.steps.push({ resource, name, outcome });
  }
  same(resource: string, name: string, outcome: Outcome = 'unchanged', todo?: string) {
    this.steps.push({ resource, name, outcome, ...(todo ? { todo } : {}) });
  }
}
