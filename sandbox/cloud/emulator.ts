import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deflateSync } from 'node:zlib';
import type { ActionTrailEvent, UserIdentity } from '../../shared/events/actiontrail';
import type { GrantedBinding } from '../controlplane/identities';
import { ApiError, type CallContext, type Credential, type RawRequest } from './api';
import { csAction, csRoute } from './cs';
import { type AsyncTask, FunctionService, type FunctionSpec } from './fc';
import { createKeyState, isKmsWrite, kmsAction, rotateDueKeys } from './kms';
import { ramAction } from './ram-roles';
import { signatureOf } from './signatures';
import { decodeCursor, encodeCursor, encodeLogGroups, trailRecord } from './sls';
import {
  type ClusterState,
  type EmulatorState,
  emptyState,
  type KeyState,
  loadState,
  saveState,
} from './state';

/**
 * A local Alibaba Cloud for the sandbox, like LocalStack for AWS: KMS, ACK (CS), ActionTrail, SLS (the trail
 * logstore and its trigger), EventBridge and Function Compute, over HTTP on one loopback port, for the official
 * SDKs configured only by endpoint. Every request's signature is checked against the emulator's credentials;
 * every KMS call (and CS write) is recorded as an ActionTrail event with the caller's identity, appended to the
 * trail logstore and, when it is a write, delivered as an EventBridge CloudEvent.
 */
export interface EmulatorOptions {
  accountId?: string;
  region?: string;
  /** Load state from (and `save()` to) this directory. */
  stateDir?: string;
  port?: number;
}

/** A cluster's control plane as ACK reaches it: issue a uid's kubeconfig, write a uid's bindings. */
export interface ClusterAccess {
  kubeconfigFor(uid: string): string;
  applyGrants(uid: string, bindings: GrantedBinding[]): Promise<void>;
}

export interface EventSubscriber {
  /** EventBridge-style filter on the CloudEvent. */
  filter: (event: CloudEventOut) => boolean;
  handler: (event: Buffer) => Promise<unknown>;
}

export interface CloudEventOut {
  id: string;
  source: string;
  specversion: '1.0';
  type: string;
  subject?: string;
  time: string;
  datacontenttype: string;
  aliyunaccountid: string;
  aliyunpublishtime: string;
  aliyuneventbusname: string;
  aliyunregionid: string;
  data: Record<string, unknown>;
}

export interface TrailTriggerSubscriber {
  handler: (event: Buffer) => Promise<unknown>;
  /** Records already handed over; the next trigger event starts here. */
  delivered: number;
}

const RPC_SERVICES: Record<string, 'kms' | 'actiontrail' | 'ram'> = {
  '2016-01-20': 'kms',
  '2020-07-06': 'actiontrail',
  '2015-05-01': 'ram',
};
const LOOKUP_LIMIT_PER_SECOND = 2;
export const TRAIL_PROJECT = 'actiontrail-sandbox';
export const TRAIL_LOGSTORE = 'actiontrail_sandbox';

export class CloudEmulator {
  readonly state: EmulatorState;
  readonly credentials = new Map<string, Credential>();
  readonly functions: FunctionService;
  readonly subscribers: EventSubscriber[] = [];
  readonly trailTriggers: TrailTriggerSubscriber[] = [];
  /** Deliver every EventBridge event twice (EventBridge delivers at least once). */
  duplicateDeliveries = false;
  readonly published: CloudEventOut[] = [];
  private readonly lookupCalls: number[] = [];
  private readonly deliveries = new Set<Promise<unknown>>();
  private server?: Server;
  private url_ = '';
  private callCount = 0;
  private callsByService: Record<string, number> = {};
  readonly user: Credential;

  private constructor(
    state: EmulatorState,
    private readonly options: EmulatorOptions,
  ) {
    this.state = state;
    this.user = this.addCredential({
      accessKeyId: `LTAI5t${randomBytes(9).toString('hex')}`,
      accessKeySecret: randomBytes(20).toString('base64url'),
      identity: {
        type: 'ram-user',
        userName: 'sandbox-operator',
        principalId: '203745939128000',
        accountId: state.accountId,
      },
    });
    this.functions = new FunctionService({
      accountId: state.accountId,
      region: state.region,
      // Each function runs as its own RAM role, named as the function (s.yaml's `role`), as FC assumes it.
      functionCredential: (fn) => this.assumeRole(fn, 'fc'),
    });
  }

  static async start(options: EmulatorOptions = {}): Promise<CloudEmulator> {
    const accountId = options.accountId ?? '1234567890123456';
    const region = options.region ?? 'cn-hangzhou';
    const state = (options.stateDir && loadState(options.stateDir)) || emptyState(accountId, region);
    const emulator = new CloudEmulator(state, options);
    // A client that aborts mid-body must not become an unhandled rejection in the host process.
    const server = createServer((req, res) =>
      emulator.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(400);
        res.end();
      }),
    );
    // Node closes an idle keep-alive connection after 5 s, and a client that sends on it just then gets
    // ECONNRESET ("socket hang up"; seen in a loaded CI run). The cloud's gateways keep idle connections
    // open far longer than the SDKs' idle pools.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
    emulator.server = server;
    emulator.url_ = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return emulator;
  }

  get url(): string {
    return this.url_;
  }

  /** Every request the emulator answered since it started (or since `resetCalls`), in all and by service. */
  get calls(): { total: number; byService: Record<string, number> } {
    return { total: this.callCount, byService: { ...this.callsByService } };
  }

  resetCalls(): void {
    this.callCount = 0;
    this.callsByService = {};
  }

  get host(): string {
    return this.url_.replace(/^http:\/\//, '');
  }

  async stop(): Promise<void> {
    await this.idle();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    if (this.options.stateDir) this.save();
  }

  save(dir = this.options.stateDir): void {
    if (!dir) throw new Error('no state directory');
    saveState(dir, this.state);
  }

  // ---- the sandbox clock -------------------------------------------------------------------------------

  now(): number {
    return Date.now() + this.state.clockOffsetMs;
  }

  /** Moves the sandbox clock forward; keys whose automatic rotation falls due rotate, as KMS would. */
  advanceClock(ms: number): void {
    this.state.clockOffsetMs += ms;
    this.rotateDue();
  }

  private rotateDue(): void {
    for (const key of rotateDueKeys(this.state.keys, this.now())) {
      this.record({
        serviceName: 'Kms',
        eventName: 'RotateKey',
        eventType: 'AliyunServiceEvent',
        eventRW: 'Write',
        identity: { type: 'system', userName: 'kms.aliyuncs.com' },
        requestParameters: { KeyId: key.keyId },
        responseElements: { KeyVersionId: key.primaryKeyVersion },
        referencedResources: { 'ACS::KMS::Key': [key.keyId] },
      });
    }
  }

  // ---- identities --------------------------------------------------------------------------------------

  addCredential(
    c: Omit<Credential, 'identity'> & { identity: Omit<UserIdentity, 'accessKeyId'> },
  ): Credential {
    const credential: Credential = { ...c, identity: { ...c.identity, accessKeyId: c.accessKeyId } };
    this.credentials.set(c.accessKeyId, credential);
    return credential;
  }

  /**
   * STS credentials for `roleName` with `sessionName`, as AssumeRole would hand out; a role of another
   * account (`accountId`) when a key policy lets that account call our keys.
   */
  assumeRole(roleName: string, sessionName: string, accountId = this.state.accountId): Credential {
    const existing = [...this.credentials.values()].find(
      (c) => c.identity.userName === `${roleName}:${sessionName}` && c.identity.accountId === accountId,
    );
    if (existing) return existing;
    return this.addCredential({
      accessKeyId: `STS.${randomBytes(12).toString('hex')}`,
      accessKeySecret: randomBytes(20).toString('base64url'),
      securityToken: `CAIS${randomBytes(48).toString('base64url')}`,
      identity: {
        type: 'assumed-role',
        userName: `${roleName}:${sessionName}`,
        principalId: `${this.roleIdOf(roleName)}:${sessionName}`,
        accountId,
      },
    });
  }

  /** A RAM role's id (made when the role is first named): the uid ACK grants to (`ramRoles`). */
  roleIdOf(roleName: string): string {
    this.state.ramRoles ??= [];
    const known = this.state.ramRoles.find((r) => r.roleName === roleName);
    if (known) return known.roleId;
    // RAM role ids are 19 digits starting with 3; stable per account and name, so saved state still matches.
    const digits = BigInt(
      `0x${createHash('sha256').update(`${this.state.accountId}/${roleName}`).digest('hex')}`,
    );
    const roleId = `3${(digits % 10n ** 18n).toString().padStart(18, '0')}`;
    this.state.ramRoles.push({ roleName, roleId, createDate: new Date(this.now()).toISOString() });
    return roleId;
  }

  /** Where the sandbox wired a cluster's control plane: the kubeconfig ACK issues a uid, and ACK's bindings. */
  readonly clusterAccess = new Map<string, ClusterAccess>();

  /** The STS credentials the control plane's KMS plugin of `clusterId` calls KMS with. */
  managedRole(clusterId: string): Credential {
    return this.assumeRole('aliyuncsmanagedsecurityrole', clusterId);
  }

  // ---- seeding -----------------------------------------------------------------------------------------

  createKey(keyId?: string): KeyState {
    const key = createKeyState(this.state.accountId, this.state.region, this.now(), keyId);
    this.state.keys.push(key);
    return key;
  }

  addCluster(cluster: Partial<ClusterState> & Pick<ClusterState, 'clusterId' | 'kubeconfig'>): ClusterState {
    const full: ClusterState = {
      name: cluster.clusterId,
      regionId: this.state.region,
      clusterType: 'ManagedKubernetes',
      profile: 'Edge',
      clusterSpec: 'ack.pro.small',
      state: 'running',
      currentVersion: '1.36.3-aliyun.1',
      created: new Date(this.now()).toISOString(),
      tags: [],
      disableEncryption: !cluster.encryptionKeyId,
      ...cluster,
    };
    this.state.clusters = this.state.clusters.filter((c) => c.clusterId !== full.clusterId).concat(full);
    return full;
  }

  /**
   * What turns a cluster's Secret encryption on or off behind UpdateKMSEncryption (the sandbox wires its
   * control plane here); without one, the change is only recorded.
   */
  encryptionSwitch?: (clusterId: string, enabled: boolean) => Promise<void>;

  /** UpdateKMSEncryption accepted: the cluster is `updating` until its control plane runs the new configuration. */
  applyEncryptionChange(cluster: ClusterState): void {
    const change = this.encryptionSwitch;
    if (!change) return;
    cluster.state = 'updating';
    this.track(
      change(cluster.clusterId, !cluster.disableEncryption).then(
        () => {
          cluster.state = 'running';
        },
        () => {
          cluster.state = 'failed';
        },
      ),
    );
  }

  registerFunction(spec: FunctionSpec): void {
    this.functions.register(spec);
  }

  // ---- EventBridge and the SLS trigger -----------------------------------------------------------------

  subscribe(subscriber: EventSubscriber): void {
    this.subscribers.push(subscriber);
  }

  /** An SLS trigger on the trail logstore; returns how to remove it. */
  subscribeTrail(handler: (event: Buffer) => Promise<unknown>, fromStart = false): () => void {
    const trigger = { handler, delivered: fromStart ? 0 : this.trailRecords().length };
    this.trailTriggers.push(trigger);
    return () => {
      const i = this.trailTriggers.indexOf(trigger);
      if (i >= 0) this.trailTriggers.splice(i, 1);
    };
  }

  /** Delivers an event again to its subscribers (EventBridge retries and duplicates). */
  redeliver(eventId: string): void {
    const event = this.published.find((e) => e.id === eventId);
    if (event) this.deliver(event);
  }

  /** Resolves when no event delivery, trail trigger or async invocation is in progress. */
  async idle(): Promise<void> {
    for (let i = 0; i < 50 && (this.deliveries.size > 0 || this.functionsBusy()); i++) {
      await Promise.allSettled([...this.deliveries]);
      await this.functions.idle();
    }
  }

  private functionsBusy(): boolean {
    return [...this.functions.tasks.values()].some((t) => t.status === 'Running' || t.status === 'Retrying');
  }

  private deliver(event: CloudEventOut): void {
    const body = Buffer.from(JSON.stringify(event));
    for (const s of this.subscribers) {
      if (!s.filter(event)) continue;
      const copies = this.duplicateDeliveries ? 2 : 1;
      for (let i = 0; i < copies; i++) this.track(s.handler(body));
    }
  }

  private track(p: Promise<unknown>): void {
    const settled = p.catch(() => undefined);
    this.deliveries.add(settled);
    settled.finally(() => this.deliveries.delete(settled));
  }

  trailRecords() {
    return this.state.trailLogstore[0] ?? [];
  }

  private triggerTrail(): void {
    const total = this.trailRecords().length;
    for (const t of this.trailTriggers) {
      if (t.delivered >= total) continue;
      const event = {
        source: {
          endpoint: this.url,
          projectName: TRAIL_PROJECT,
          logstoreName: TRAIL_LOGSTORE,
          shardId: 0,
          beginCursor: encodeCursor(t.delivered),
          endCursor: encodeCursor(total),
        },
        parameter: {},
        jobName: 'sandbox-trail-trigger',
        taskId: randomUUID(),
        cursorTime: Math.floor(this.now() / 1000),
      };
      t.delivered = total;
      this.track(t.handler(Buffer.from(JSON.stringify(event))));
    }
  }

  // ---- ActionTrail -------------------------------------------------------------------------------------

  private record(e: {
    serviceName: 'Kms' | 'CS';
    eventName: string;
    eventType?: 'ApiCall' | 'AliyunServiceEvent';
    eventRW: 'Read' | 'Write';
    identity: UserIdentity;
    requestParameters: Record<string, unknown>;
    responseElements?: Record<string, unknown>;
    referencedResources?: Record<string, string[]>;
    error?: ApiError;
    requestId?: string;
    sourceIp?: string;
    userAgent?: string;
  }): ActionTrailEvent {
    const event: ActionTrailEvent = {
      eventId: randomUUID(),
      eventVersion: 1,
      eventSource:
        e.serviceName === 'Kms'
          ? `kms.${this.state.region}.aliyuncs.com`
          : `cs.${this.state.region}.aliyuncs.com`,
      eventName: e.eventName,
      eventTime: new Date(Math.floor(this.now() / 1000) * 1000),
      eventType: e.eventType ?? 'ApiCall',
      eventRW: e.eventRW,
      serviceName: e.serviceName,
      apiVersion: e.serviceName === 'Kms' ? '2016-01-20' : '2015-12-15',
      acsRegion: this.state.region,
      requestId: e.requestId ?? randomUUID().toUpperCase(),
      sourceIpAddress: e.sourceIp ?? '127.0.0.1',
      userAgent: e.userAgent ?? '',
      userIdentity: e.identity,
      requestParameters: e.requestParameters,
      ...(e.responseElements ? { responseElements: e.responseElements } : {}),
      ...(e.referencedResources ? { referencedResources: e.referencedResources } : {}),
      ...(e.error ? { errorCode: e.error.code, errorMessage: e.error.message } : {}),
      isGlobal: false,
      recipientAccountId: this.state.accountId,
    };
    this.state.events.push(event);
    if (!this.state.trailLogstore[0]) this.state.trailLogstore[0] = [];
    this.state.trailLogstore[0].push(
      trailRecord(event as unknown as Record<string, unknown> & { eventTime: Date }),
    );
    queueMicrotask(() => this.triggerTrail());
    // EventBridge receives only write-type ActionTrail events (docs/cloud-facts.md#kms-rotation-events).
    if (e.eventRW === 'Write') {
      const service = e.serviceName === 'Kms' ? 'kms' : 'cs';
      const cloudEvent: CloudEventOut = {
        id: randomUUID(),
        source: `acs.${service}`,
        specversion: '1.0',
        type: `${service}:ActionTrail:${event.eventType}`,
        subject: `acs.${service}:${this.state.region}:${this.state.accountId}:${service === 'kms' ? `key/${String(e.requestParameters.KeyId ?? '')}` : `cluster/${String(e.requestParameters.ClusterId ?? '')}`}`,
        time: event.eventTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        datacontenttype: 'application/json;charset=utf-8',
        aliyunaccountid: this.state.accountId,
        aliyunpublishtime: new Date(this.now()).toISOString(),
        aliyuneventbusname: 'default',
        aliyunregionid: this.state.region,
        data: { ...event, eventTime: event.eventTime.toISOString().replace(/\.\d{3}Z$/, 'Z') },
      };
      this.published.push(cloudEvent);
      this.deliver(cloudEvent);
    }
    return event;
  }

  private lookupEvents(ctx: CallContext): Record<string, unknown> {
    const now = this.now();
    while (this.lookupCalls.length && now - (this.lookupCalls[0] ?? 0) >= 1000) this.lookupCalls.shift();
    if (this.lookupCalls.length >= LOOKUP_LIMIT_PER_SECOND) {
      throw new ApiError(429, 'Throttling.User', 'Request was denied due to user flow control.');
    }
    this.lookupCalls.push(now);
    const p = ctx.params;
    const max = p.MaxResults ? Number(p.MaxResults) : 20;
    if (!Number.isInteger(max) || max < 1 || max > 50)
      throw new ApiError(400, 'InvalidParameter', 'MaxResults must be between 1 and 50.');
    if ((p.StartTime === undefined) !== (p.EndTime === undefined)) {
      throw new ApiError(400, 'InvalidParameter', 'StartTime and EndTime must be given together.');
    }
    const end = p.EndTime ? Date.parse(p.EndTime) : this.now();
    const start = p.StartTime ? Date.parse(p.StartTime) : end - 7 * 86_400_000;
    if (Number.isNaN(start) || Number.isNaN(end))
      throw new ApiError(400, 'InvalidParameter', 'StartTime and EndTime must be ISO 8601 times.');
    const attributes: Array<[string, string]> = [];
    for (let i = 1; p[`LookupAttribute.${i}.Key`] !== undefined; i++) {
      attributes.push([p[`LookupAttribute.${i}.Key`] ?? '', p[`LookupAttribute.${i}.Value`] ?? '']);
    }
    if (attributes.length > 2)
      throw new ApiError(400, 'InvalidParameter', 'At most two lookup attributes are allowed.');
    const matches = (e: ActionTrailEvent) =>
      attributes.every(([k, v]) => {
        switch (k) {
          case 'ServiceName':
            return e.serviceName === v;
          case 'EventName':
            return e.eventName === v;
          case 'EventId':
            return e.eventId === v;
          case 'EventRW':
            return e.eventRW === v;
          case 'User':
            return e.userIdentity.userName === v;
          case 'ResourceName':
            return (
              Object.values(e.referencedResources ?? {}).some((ids) => ids.includes(v)) ||
              e.requestParameters?.KeyId === v
            );
          case 'EventAccessKeyId':
            return e.userIdentity.accessKeyId === v;
          default:
            throw new ApiError(400, 'InvalidParameter', `Unsupported lookup attribute key ${k}.`);
        }
      });
    const selected = this.state.events
      .filter((e) => e.eventTime.getTime() >= start && e.eventTime.getTime() <= end && matches(e))
      .sort((a, b) => (p.Direction === 'FORWARD' ? 1 : -1) * (a.eventTime.getTime() - b.eventTime.getTime()));
    const offset = p.NextToken ? Number(Buffer.from(p.NextToken, 'base64').toString()) : 0;
    if (!Number.isInteger(offset) || offset < 0)
      throw new ApiError(400, 'InvalidParameter', 'NextToken is invalid.');
    const pageEvents = selected.slice(offset, offset + max);
    const next = offset + max < selected.length ? Buffer.from(String(offset + max)).toString('base64') : '';
    return {
      StartTime: new Date(start).toISOString(),
      EndTime: new Date(end).toISOString(),
      NextToken: next,
      Events: pageEvents.map((e) => ({
        ...e,
        eventTime: e.eventTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      })),
    };
  }

  // ---- HTTP --------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    // A request through the SDK's HTTP proxy setting carries an absolute URL (SLS: http://<project>.<host>/...).
    // (`<project>.127.0.0.1` is not a valid URL host, so the URL is parsed on a neutral base.)
    const target = req.url ?? '/';
    const url = new URL(
      target.startsWith('/') ? target : `/${target.replace(/^https?:\/\/[^/]+\/?/, '')}`,
      'http://localhost',
    );
    const hostHeader = req.headers.host ?? '';
    const hostPrefix = hostHeader.endsWith(`.${this.host}`)
      ? hostHeader.slice(0, -this.host.length - 1)
      : /^([^.]+)\.(.+\.aliyuncs\.com)$/.exec(hostHeader)?.[1];
    const raw: RawRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
      ...(hostPrefix ? { hostPrefix } : {}),
      sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
    };
    const requestId = randomUUID().toUpperCase();
    const service = this.serviceOf(raw);
    this.callCount++;
    const counted = service ?? 'unknown';
    this.callsByService[counted] = (this.callsByService[counted] ?? 0) + 1;
    try {
      this.rotateDue();
      if (!service)
        throw new ApiError(
          404,
          'InvalidAction.NotFound',
          'Specified api is not found, please check your url and method.',
        );
      const credential = this.authenticate(raw, service);
      await this.dispatch(service, raw, credential, requestId, res);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', (err as Error).message);
      this.sendError(service, e, requestId, res);
    }
  }

  private serviceOf(
    raw: RawRequest,
  ): 'kms' | 'actiontrail' | 'ram' | 'cs' | 'fc' | 'sls' | 'oss' | undefined {
    if (raw.path.startsWith('/2023-03-30/')) return 'fc';
    if (String(raw.headers.authorization ?? '').startsWith('OSS ')) return 'oss';
    if (raw.hostPrefix && raw.path.startsWith('/logstores')) return 'sls';
    const version = (raw.headers['x-acs-version'] as string | undefined) ?? raw.query.Version;
    if (version === '2015-12-15') return 'cs';
    return version ? RPC_SERVICES[version] : undefined;
  }

  private authenticate(raw: RawRequest, service: string): Credential {
    const check = signatureOf({ ...raw, ...(raw.hostPrefix ? { bucket: raw.hostPrefix } : {}) });
    if (!check) throw new ApiError(400, 'MissingSignature', 'The request is not signed.');
    const credential = this.credentials.get(check.accessKeyId);
    if (!credential)
      throw new ApiError(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.');
    if (!check.verify(credential.accessKeySecret)) {
      throw service === 'fc'
        ? new ApiError(
            403,
            'SignatureNotMatch',
            'The request signature we calculated does not match the signature you provided.',
          )
        : service === 'sls'
          ? new ApiError(401, 'SignatureNotMatch', 'signature is not matched')
          : new ApiError(
              400,
              'SignatureDoesNotMatch',
              'Specified signature is not matched with our calculation.',
            );
    }
    if (credential.securityToken) {
      const sent = (raw.headers['x-acs-security-token'] ??
        raw.headers['x-fc-security-token'] ??
        raw.headers['x-oss-security-token'] ?? // ali-oss
        raw.query.SecurityToken) as string | undefined;
      if (sent !== credential.securityToken)
        throw new ApiError(
          400,
          'InvalidSecurityToken.Mismatch',
          'Specified SecurityToken mismatch with the AccessKey.',
        );
    }
    return credential;
  }

  private async dispatch(
    service: string,
    raw: RawRequest,
    credential: Credential,
    requestId: string,
    res: ServerResponse,
  ): Promise<void> {
    const params = { ...raw.query, ...formBody(raw) };
    if (service === 'ram') {
      const action = (raw.headers['x-acs-action'] as string | undefined) ?? raw.query.Action ?? '';
      return sendJson(res, 200, { RequestId: requestId, ...ramAction(this, action, params) });
    }
    if (service === 'kms' || service === 'actiontrail') {
      const action = (raw.headers['x-acs-action'] as string | undefined) ?? raw.query.Action ?? '';
      const ctx: CallContext = { emulator: this, credential, requestId, action, params, req: raw };
      if (service === 'actiontrail') {
        if (action !== 'LookupEvents')
          throw new ApiError(
            404,
            'InvalidAction.NotFound',
            'Specified api is not found, please check your url and method.',
          );
        return sendJson(res, 200, { RequestId: requestId, ...this.lookupEvents(ctx) });
      }
      const known = action !== '' && !['Version', 'Format'].includes(action);
      try {
        const result = kmsAction(ctx);
        this.recordKms(ctx, result);
        return sendJson(res, 200, { RequestId: requestId, ...result });
      } catch (err) {
        if (known && err instanceof ApiError && err.code !== 'InvalidAction.NotFound')
          this.recordKms(ctx, undefined, err);
        throw err;
      }
    }
    if (service === 'cs') {
      const route = csRoute(raw.method, raw.path);
      if (!route)
        throw new ApiError(
          404,
          'InvalidAction.NotFound',
          'Specified api is not found, please check your url and method.',
        );
      const ctx: CallContext = {
        emulator: this,
        credential,
        requestId,
        action: route.action,
        params,
        req: raw,
      };
      const result = await csAction(ctx, route);
      if (route.write) {
        const requestBody = JSON.parse(raw.body.toString('utf8') || '{}') as unknown;
        this.record({
          serviceName: 'CS',
          eventName: route.action,
          eventRW: 'Write',
          identity: credential.identity,
          requestParameters: {
            ClusterId: route.clusterId,
            ...(route.uid ? { Uid: route.uid } : {}),
            ...(Array.isArray(requestBody) ? { Permissions: requestBody } : (requestBody as object)),
          },
          referencedResources: { 'ACS::CS::Cluster': [route.clusterId ?? ''] },
          requestId,
        });
      }
      if (result === undefined) {
        res.writeHead(200, { 'x-acs-request-id': requestId });
        res.end();
        return;
      }
      return sendJson(res, 200, result, { 'x-acs-request-id': requestId });
    }
    if (service === 'fc') return this.dispatchFc(raw, res);
    if (service === 'oss') return this.dispatchOss(raw, res, requestId);
    return this.dispatchSls(raw, res, requestId);
  }

  private recordKms(ctx: CallContext, result: Record<string, unknown> | undefined, error?: ApiError): void {
    // ActionTrail keeps no plaintext, ciphertext or key material.
    const {
      Plaintext: _p,
      CiphertextBlob: _c,
      SecretData: _d,
      Signature: _s,
      SecurityToken: _t,
      SignatureNonce: _n,
      AccessKeyId: _a,
      ...requestParameters
    } = ctx.params;
    const keyId = requestParameters.KeyId ?? (result?.KeyId as string | undefined);
    this.record({
      serviceName: 'Kms',
      eventName: ctx.action,
      eventRW: isKmsWrite(ctx.action) ? 'Write' : 'Read',
      identity: ctx.credential.identity,
      requestParameters: { ...requestParameters, ...(keyId ? { KeyId: keyId } : {}) },
      ...(result?.KeyVersionId
        ? { responseElements: { KeyId: result.KeyId, KeyVersionId: result.KeyVersionId } }
        : {}),
      ...(keyId ? { referencedResources: { 'ACS::KMS::Key': [keyId] } } : {}),
      ...(error ? { error } : {}),
      requestId: ctx.requestId,
      sourceIp: ctx.req.sourceIp,
      userAgent: String(ctx.req.headers['user-agent'] ?? ''),
    });
  }

  /**
   * FC 3.0 as `@alicloud/fc20230330` calls it: ACS3-signed, `x-acs-action` naming the operation, version
   * 2023-03-30. Anything else (an FC 2.0 `FC ak:sig` signature, a missing or wrong action) is refused.
   */
  private async dispatchFc(raw: RawRequest, res: ServerResponse): Promise<void> {
    const action = String(raw.headers['x-acs-action'] ?? '');
    const expect = (wanted: string) => {
      if (!String(raw.headers.authorization ?? '').startsWith('ACS3-HMAC-SHA256 '))
        throw new ApiError(400, 'InvalidArgument', 'FC 3.0 requests are signed with ACS3-HMAC-SHA256');
      if (action !== wanted || raw.headers['x-acs-version'] !== '2023-03-30')
        throw new ApiError(400, 'InvalidArgument', `expected x-acs-action ${wanted}, version 2023-03-30`);
    };
    let m = /^\/2023-03-30\/functions\/([^/]+)\/invocations$/.exec(raw.path);
    if (m && raw.method === 'POST') {
      expect('InvokeFunction');
      const headers = Object.fromEntries(
        Object.entries(raw.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]),
      );
      const outcome = await this.functions.invoke(decodeURIComponent(m[1] ?? ''), raw.body, headers);
      res.writeHead(outcome.status, outcome.headers);
      res.end(outcome.body);
      return;
    }
    m = /^\/2023-03-30\/functions\/([^/]+)\/async-tasks$/.exec(raw.path);
    if (m && raw.method === 'GET') {
      expect('ListAsyncTasks');
      const q = raw.query;
      const limit = Number(q.limit ?? '20');
      if (!Number.isInteger(limit) || limit < 1 || limit > 100)
        throw new ApiError(400, 'InvalidArgument', 'limit must be between 1 and 100');
      const tasks = this.functions.list(decodeURIComponent(m[1] ?? ''), {
        prefix: q.prefix ?? '',
        ...(q.status ? { status: q.status } : {}),
      });
      if (q.sortOrderByTime !== 'asc') tasks.reverse();
      return sendJson(res, 200, { tasks: tasks.slice(0, limit).map((t) => this.asyncTask(t)) });
    }
    m = /^\/2023-03-30\/functions\/([^/]+)\/async-tasks\/([^/]+)$/.exec(raw.path);
    if (m && raw.method === 'GET') {
      expect('GetAsyncTask');
      const task = this.functions.task(decodeURIComponent(m[1] ?? ''), decodeURIComponent(m[2] ?? ''));
      return sendJson(res, 200, this.asyncTask(task));
    }
    throw new ApiError(404, 'PathNotSupported', `path ${raw.path} is not supported`);
  }

  /** FC 3.0's AsyncTask (the SDK's model: `taskErrorMessage`, `taskPayload`). */
  private asyncTask(task: AsyncTask) {
    return {
      functionArn: `acs:fc:${this.state.region}:${this.state.accountId}:functions/${task.functionName}`,
      taskId: task.taskId,
      requestId: task.requestId,
      status: task.status,
      alreadyRetriedTimes: task.alreadyRetriedTimes,
      startedTime: task.startedTime,
      ...(task.endTime ? { endTime: task.endTime, durationMs: task.endTime - task.startedTime } : {}),
      ...(task.returnPayload ? { returnPayload: task.returnPayload } : {}),
      ...(task.errorMessage ? { taskErrorMessage: task.errorMessage } : {}),
    };
  }

  /** OSS: PutObject and GetObject on the buckets the sandbox created (`createBucket`). */
  private dispatchOss(raw: RawRequest, res: ServerResponse, requestId: string): undefined {
    const bucket = raw.hostPrefix ?? '';
    if (!this.state.buckets[bucket])
      throw new ApiError(404, 'NoSuchBucket', 'The specified bucket does not exist.');
    const key = decodeURIComponent(raw.path.replace(/^\//, ''));
    const objects = this.state.buckets[bucket] as Record<string, { body: string; contentType: string }>;
    if (raw.method === 'PUT') {
      objects[key] = {
        body: raw.body.toString('base64'),
        contentType: String(raw.headers['content-type'] ?? 'application/octet-stream'),
      };
      res.writeHead(200, { 'x-oss-request-id': requestId, etag: `"${requestId}"` });
      res.end();
      return undefined;
    }
    if (raw.method === 'GET') {
      const object = objects[key];
      if (!object) throw new ApiError(404, 'NoSuchKey', 'The specified key does not exist.');
      res.writeHead(200, { 'x-oss-request-id': requestId, 'content-type': object.contentType });
      res.end(Buffer.from(object.body, 'base64'));
      return undefined;
    }
    throw new ApiError(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }

  createBucket(name: string): void {
    this.state.buckets[name] ??= {};
  }

  private dispatchSls(raw: RawRequest, res: ServerResponse, requestId: string): undefined {
    if (raw.hostPrefix !== TRAIL_PROJECT)
      throw new ApiError(404, 'ProjectNotExist', `The Project does not exist : ${raw.hostPrefix}`);
    const m = /^\/logstores\/([^/]+)\/shards(?:\/(\d+))?$/.exec(raw.path);
    if (!m || m[1] !== TRAIL_LOGSTORE) throw new ApiError(404, 'LogStoreNotExist', 'logstore does not exist');
    const records = this.trailRecords();
    if (m[2] === undefined) {
      return sendJson(res, 200, [
        {
          shardID: 0,
          status: 'readwrite',
          inclusiveBeginKey: '00000000000000000000000000000000',
          exclusiveEndKey: 'ffffffffffffffffffffffffffffffff',
          createTime: 1735689600,
        },
      ]);
    }
    if (m[2] !== '0') throw new ApiError(400, 'ShardNotExist', `shard ${m[2]} does not exist`);
    if (raw.query.type === 'cursor') {
      const from = raw.query.from ?? '';
      let position: number;
      if (from === 'begin') position = 0;
      else if (from === 'end') position = records.length;
      else if (/^\d+$/.test(from)) position = records.findIndex((r) => r.time >= Number(from));
      else throw new ApiError(400, 'ParameterInvalid', 'from must be begin, end or a unix time');
      return sendJson(res, 200, { cursor: encodeCursor(position < 0 ? records.length : position) });
    }
    if (raw.query.type !== 'log' && raw.query.type !== 'logs')
      throw new ApiError(400, 'ParameterInvalid', 'type must be cursor or log');
    const begin = decodeCursor(raw.query.cursor ?? '');
    const end = raw.query.end_cursor ? decodeCursor(raw.query.end_cursor) : records.length;
    const count = Number(raw.query.count ?? '1000');
    if (begin === undefined || end === undefined || begin > records.length || end > records.length) {
      throw new ApiError(400, 'InvalidCursor', 'cursor is invalid');
    }
    if (!Number.isInteger(count) || count < 1 || count > 1000)
      throw new ApiError(400, 'ParameterInvalid', 'count must be between 1 and 1000');
    const slice = records.slice(begin, Math.min(end, begin + count));
    const body = encodeLogGroups(slice);
    const encoding = String(raw.headers['accept-encoding'] ?? '');
    const headers: Record<string, string> = {
      'content-type': 'application/x-protobuf',
      'x-log-requestid': requestId,
      'x-log-cursor': encodeCursor(begin + slice.length),
      'x-log-count': String(slice.length),
      'x-log-bodyrawsize': String(body.length),
    };
    let payload = body;
    if (encoding.includes('lz4')) {
      headers['x-log-compresstype'] = 'lz4';
      payload = lz4Block(body);
    } else if (encoding.includes('deflate')) {
      headers['x-log-compresstype'] = 'deflate';
      payload = deflateSync(body);
    }
    res.writeHead(200, headers);
    res.end(payload);
  }

  private sendError(
    service: string | undefined,
    e: ApiError,
    requestId: string,
    res: ServerResponse,
  ): undefined {
    const headers = { ...e.headers, 'x-acs-request-id': requestId };
    if (service === 'fc')
      // FC 3.0's error body, as @alicloud/fc20230330 reads it.
      return sendJson(
        res,
        e.status,
        { Code: e.code, Message: e.message, RequestId: requestId },
        { ...headers, 'x-fc-request-id': requestId },
      );
    if (service === 'sls')
      return sendJson(
        res,
        e.status,
        { errorCode: e.code, errorMessage: e.message },
        { ...headers, 'x-log-requestid': requestId },
      );
    if (service === 'cs')
      return sendJson(res, e.status, { code: e.code, message: e.message, requestId }, headers);
    if (service === 'oss') {
      // OSS answers errors in XML, which is what ali-oss parses into err.code.
      const xml = (v: string) => v.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
      res.writeHead(e.status, {
        ...e.headers,
        'content-type': 'application/xml',
        'x-oss-request-id': requestId,
      });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xml(e.code)}</Code><Message>${xml(e.message)}</Message><RequestId>${requestId}</RequestId><HostId>oss.emulator</HostId></Error>`,
      );
      return undefined;
    }
    return sendJson(
      res,
      e.status,
      { Code: e.code, Message: e.message, RequestId: requestId, HostId: `${service ?? 'unknown'}.emulator` },
      headers,
    );
  }
}

function formBody(raw: RawRequest): Record<string, string> {
  const type = String(raw.headers['content-type'] ?? '');
  if (!type.includes('application/x-www-form-urlencoded') || raw.body.length === 0) return {};
  return Object.fromEntries(new URLSearchParams(raw.body.toString('utf8')));
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): undefined {
  res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
  return undefined;
}

let lz4: { compressSync(data: Buffer): Buffer } | undefined;
/** SLS's lz4 is a raw LZ4 block with no size prefix: lz4-napi's output minus its 4-byte length. */
function lz4Block(raw: Buffer): Buffer {
  // lz4-napi ships with @alicloud/sls20201230 (its decompressor); loaded lazily, sandbox only.
  lz4 ??= require('lz4-napi') as { compressSync(data: Buffer): Buffer };
  return lz4.compressSync(raw).subarray(4);
}
