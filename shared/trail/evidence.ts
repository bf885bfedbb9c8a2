import { setTimeout as sleep } from 'node:timers/promises';
import type { CloudClients } from '../cloud/clients';
import type { SentinelError } from '../errors';
import { type ActionTrailEvent, isOwnManagedRoleCall, parseLookupEventsBody } from '../events/actiontrail';
import { ACTIONTRAIL_BACKOFF, withRetries } from '../retry';

/**
 * Evidence in ActionTrail that the control plane uses a key (version): an `Encrypt` (or `GenerateDataKey`)
 * of the key by the ACK managed role, from LookupEvents. LookupEvents allows 2 calls per second: calls are
 * spaced, and only a few pages are read.
 */
export interface EvidenceQuery {
  keyId: string;
  /** Only events that name this version in `responseElements.KeyVersionId`, when ActionTrail records it. */
  keyVersionId?: string;
  since: Date;
  until?: Date;
  eventNames?: string[];
  maxPages?: number;
  /** This account: managed-role calls of other accounts are no evidence (else each event's recipient). */
  accountId?: string;
  /** Also return the calls KMS refused (they carry `errorCode`). */
  includeRefused?: boolean;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
export const LOOKUP_SPACING_MS = 550;

/** LookupEvents with its 2-calls-per-second limit respected: a throttled call waits and tries again. */
async function lookup(
  clients: Pick<CloudClients, 'actionTrailRpc'>,
  query: Record<string, string>,
): Promise<Record<string, unknown>> {
  return withRetries(
    () => clients.actionTrailRpc('LookupEvents', query),
    ACTIONTRAIL_BACKOFF,
    (err) => (err as SentinelError).kind === 'retryable',
  );
}

export async function findManagedRoleEvents(
  clients: Pick<CloudClients, 'actionTrailRpc'>,
  q: EvidenceQuery,
): Promise<ActionTrailEvent[]> {
  const found: ActionTrailEvent[] = [];
  // One window for every page: a NextToken belongs to the query it came from.
  const window = { StartTime: iso(q.since), EndTime: iso(q.until ?? new Date()) };
  let calls = 0;
  for (const eventName of q.eventNames ?? ['Encrypt']) {
    let nextToken: string | undefined;
    for (let page = 0; page < (q.maxPages ?? 3); page++) {
      if (calls++ > 0) await sleep(LOOKUP_SPACING_MS);
      const body = parseLookupEventsBody(
        await lookup(clients, {
          'LookupAttribute.1.Key': 'EventName',
          'LookupAttribute.1.Value': eventName,
          'LookupAttribute.2.Key': 'ResourceName',
          'LookupAttribute.2.Value': q.keyId,
          ...window,
          MaxResults: '50',
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
      );
      for (const e of body.events) {
        if (!isOwnManagedRoleCall(e, q.accountId) || (e.errorCode && !q.includeRefused)) continue;
        const version = e.responseElements?.KeyVersionId;
        if (q.keyVersionId && typeof version === 'string' && version !== q.keyVersionId) continue;
        found.push(e);
      }
      nextToken = body.nextToken;
      if (!nextToken) break;
    }
  }
  return found;
}
