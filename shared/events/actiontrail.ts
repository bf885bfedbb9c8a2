import { z } from 'zod';
import { PoisonError } from '../errors';
import { isoInstant, jsonObject, looseInt, nonEmpty } from './fields';
import { parseWith } from './parse';

/**
 * An ActionTrail management event (docs/cloud-facts.md#actiontrail-events). The same object arrives as the
 * EventBridge CloudEvent's `data`, as the JSON string in an SLS trail logstore's `event` field, and as an
 * element of LookupEvents' `Events`.
 */
export const userIdentitySchema = z.object({
  type: nonEmpty,
  userName: z.string().optional(),
  principalId: z.string().optional(),
  accountId: z.string().optional(),
  accessKeyId: z.string().optional(),
});

export const actionTrailEventSchema = z.object({
  eventId: nonEmpty,
  eventName: nonEmpty,
  eventTime: isoInstant,
  eventType: nonEmpty,
  eventVersion: looseInt.optional(),
  eventRW: z.enum(['Read', 'Write']).optional(),
  eventSource: z.string().optional(),
  serviceName: nonEmpty,
  acsRegion: z.string().optional(),
  apiVersion: z.string().optional(),
  requestId: z.string().optional(),
  sourceIpAddress: z.string().optional(),
  userAgent: z.string().optional(),
  userIdentity: userIdentitySchema,
  requestParameters: jsonObject.optional(),
  responseElements: jsonObject.nullish(),
  referencedResources: z.record(z.string(), z.array(z.string())).optional(),
  additionalEventData: jsonObject.optional(),
  eventAttributes: jsonObject.optional(),
  errorCode: z.string().optional(),
  errorMessage: z.string().optional(),
  isGlobal: z.boolean().optional(),
  recipientAccountId: z.string().optional(),
});

export type ActionTrailEvent = z.output<typeof actionTrailEventSchema>;
export type UserIdentity = z.output<typeof userIdentitySchema>;

export const ACTIONTRAIL_FORMAT = 'ActionTrail event';

export function parseActionTrailEvent(value: unknown, prefix: string[] = []): ActionTrailEvent {
  return parseWith(actionTrailEventSchema, value, ACTIONTRAIL_FORMAT, prefix);
}

/** The ACK control plane's KMS plugin calls KMS as this RAM role (the vendor document; docs/cloud-facts.md#actiontrail-events). */
export const MANAGED_SECURITY_ROLE = 'aliyuncsmanagedsecurityrole';

/**
 * A KMS call counts as the ACK control plane's when it was made by an assumed role whose user name is
 * `aliyuncsmanagedsecurityrole:<RoleSessionName>`. ActionTrail's `userName` for an assumed role is
 * `roleName:roleSessionName`; role names appear lower-case in ARNs and mixed-case in the console
 * (`AliyunCSManagedSecurityRole`), so the match ignores case.
 */
export function isManagedSecurityRole(
  identity: Pick<UserIdentity, 'type' | 'userName'> | undefined,
): boolean {
  if (!identity || typeof identity.type !== 'string' || typeof identity.userName !== 'string') return false;
  if (identity.type.toLowerCase() !== 'assumed-role') return false;
  return identity.userName.toLowerCase().startsWith(`${MANAGED_SECURITY_ROLE}:`);
}

/**
 * A call by this account's ACK managed role: the role name alone is not evidence, since any account can
 * create a role named `aliyuncsmanagedsecurityrole` and, where a key policy lets it, call our key. The
 * identity's account must be ours: `accountId` when known, else the account whose trail recorded the event.
 */
export function isOwnManagedRoleCall(e: ActionTrailEvent, accountId?: string): boolean {
  const owner = accountId ?? e.recipientAccountId;
  return isManagedSecurityRole(e.userIdentity) && owner !== undefined && e.userIdentity.accountId === owner;
}

/**
 * The KMS key an event is about, as the caller named it: `requestParameters.KeyId` (a key id, a key ARN, an
 * alias or an alias ARN: KMS takes all four), the key named in `ProtectedResourceArn`, or a referenced key.
 * A key ARN (`acs:kms:<region>:<account>:key/<id>`) is reduced to its id here; an alias needs KMS to resolve
 * it (`isKeyAlias`).
 */
export function eventKeyId(event: ActionTrailEvent): string | undefined {
  const params = event.requestParameters ?? {};
  const named = params.KeyId ?? params.keyId ?? params.ProtectedResourceArn;
  const ref =
    typeof named === 'string' && named.length > 0 ? named : event.referencedResources?.['ACS::KMS::Key']?.[0];
  if (ref === undefined) return undefined;
  return KEY_ARN.exec(ref)?.[1] ?? ref;
}

const KEY_ARN = /^acs:kms:[^:]*:[^:]*:key\/(.+)$/;
const ALIAS = /^(?:acs:kms:[^:]*:[^:]*:)?alias\/.+$/;

/** `alias/<name>` or `acs:kms:<region>:<account>:alias/<name>`. */
export const isKeyAlias = (ref: string): boolean => ALIAS.test(ref);

/** The ACK cluster an event is about (CS events carry it as `ClusterId` or as a referenced resource). */
export function eventClusterId(event: ActionTrailEvent): string | undefined {
  const params = event.requestParameters ?? {};
  const id = params.ClusterId ?? params.clusterId ?? params.cluster_id;
  if (typeof id === 'string' && id.length > 0) return id;
  return event.referencedResources?.['ACS::CS::Cluster']?.[0];
}

/** The SLS trail logstore's record: topic `actiontrail_audit_event`, the event as a JSON string in `event`. */
export const SLS_TRAIL_TOPICS = ['actiontrail_audit_event', 'actiontrail_event'] as const;

export function parseTrailLogRecord(record: Record<string, string | undefined>, index = 0): ActionTrailEvent {
  const prefix = [`logs`, String(index)];
  const raw = record.event;
  if (typeof raw !== 'string' || raw.length === 0) {
    throw new PoisonError(
      `Failed to parse SLS trail record: ${prefix.join('.')}.event: missing the "event" field`,
      {
        code: 'InvalidEvent',
        path: `${prefix.join('.')}.event`,
      },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new PoisonError(
      `Failed to parse SLS trail record: ${prefix.join('.')}.event: not JSON (${(err as Error).message})`,
      { code: 'InvalidEvent', path: `${prefix.join('.')}.event` },
    );
  }
  return parseActionTrailEvent(value, [...prefix, 'event']);
}

/** LookupEvents' response body: `{RequestId, NextToken, Events: [...]}` (docs/cloud-facts.md#actiontrail-events). */
export const lookupEventsBodySchema = z.object({
  RequestId: z.string().optional(),
  NextToken: z.string().optional(),
  StartTime: z.string().optional(),
  EndTime: z.string().optional(),
  Events: z.array(z.unknown()).default([]),
});

export interface LookupEventsPage {
  requestId?: string;
  nextToken?: string;
  events: ActionTrailEvent[];
}

export function parseLookupEventsBody(body: unknown): LookupEventsPage {
  const parsed = parseWith(lookupEventsBodySchema, body, 'LookupEvents response');
  return {
    requestId: parsed.RequestId,
    nextToken: parsed.NextToken || undefined,
    events: parsed.Events.map((e, i) => parseActionTrailEvent(e, ['Events', String(i)])),
  };
}
