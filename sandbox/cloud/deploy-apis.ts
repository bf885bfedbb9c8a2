import { ApiError, type RawRequest } from './api';
import type { CloudEmulator } from './emulator';

/**
 * What `npm run deploy:prepare` calls, as the real APIs document them, so it can run against the sandbox:
 * RAM 2015-05-01 (roles, custom policies and their versions, attachments), OSS bucket creation and
 * GetBucketInfo, SLS project and logstore creation, KMS DescribeSecret and ListKmsInstances, and ActionTrail
 * DescribeTrails. Kept beside the emulator's state, in memory.
 */
interface Policy {
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
  bucketOwners: Map<string, string>;
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
      bucketOwners: new Map(),
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

const json = (body: unknown, requestId: string): Answer => ({
  status: 200,
  headers: { 'content-type': 'application/json;charset=utf-8', 'x-acs-request-id': requestId },
  body: JSON.stringify(body),
});

const need = (params: Record<string, string>, name: string): string => {
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

/** The answer to one of these calls, or undefined when the call is another's. */
export function deployApi(call: DeployCall): Answer | undefined {
  if (call.service === 'ram') return json({ RequestId: call.requestId, ...ramAction(call) }, call.requestId);
  if (call.service === 'kms' && call.action === 'DescribeSecret') return describeSecret(call);
  if (call.service === 'kms' && call.action === 'ListKmsInstances') return kmsInstances(call);
  if (call.service === 'actiontrail' && call.action === 'DescribeTrails') return describeTrails(call);
  if (call.service === 'oss') return ossBucket(call);
  if (call.service === 'sls') return slsResource(call);
  return undefined;
}

function ramAction(call: DeployCall): Record<string, unknown> {
  const s = deployState(call.emulator);
  const p = call.params;
  const now = new Date(call.emulator.now()).toISOString();
  const write = (what: string) => s.writes.push(`ram:${call.action}:${what}`);
  switch (call.action) {
    case 'GetRole': {
      const name = need(p, 'RoleName');
      const role = s.roles.get(name);
      if (!role) throw new ApiError(404, 'EntityNotExist.Role', `The role not exists: ${name}.`);
      return { Role: roleOf(call, name, role) };
    }
    case 'CreateRole': {
      const name = need(p, 'RoleName');
      if (s.roles.has(name))
        throw new ApiError(409, 'EntityAlreadyExists.Role', `The role already exists: ${name}.`);
      const role = {
        document: need(p, 'AssumeRolePolicyDocument'),
        description: p.Description ?? '',
        created: now,
      };
      s.roles.set(name, role);
      write(name);
      return { Role: roleOf(call, name, role) };
    }
    case 'UpdateRole': {
      const name = need(p, 'RoleName');
      const role = s.roles.get(name);
      if (!role) throw new ApiError(404, 'EntityNotExist.Role', `The role not exists: ${name}.`);
      if (p.NewAssumeRolePolicyDocument) role.document = p.NewAssumeRolePolicyDocument;
      write(name);
      return { Role: roleOf(call, name, role) };
    }
    default:
      return ramPolicyAction(call, s, now, write);
  }
}

const roleOf = (
  call: DeployCall,
  name: string,
  role: { document: string; description: string; created: string },
) => ({
  RoleName: name,
  RoleId: `3${Buffer.from(name).toString('hex').slice(0, 17)}`,
  Arn: `acs:ram::${call.emulator.state.accountId}:role/${name.toLowerCase()}`,
  AssumeRolePolicyDocument: role.document,
  Description: role.description,
  CreateDate: role.created,
});

function ramPolicyAction(
  call: DeployCall,
  s: DeployState,
  now: string,
  write: (what: string) => void,
): Record<string, unknown> {
  const p = call.params;
  const policy = () => {
    const found = s.policies.get(need(p, 'PolicyName'));
    if (!found) throw new ApiError(404, 'EntityNotExist.Policy', `The policy not exists: ${p.PolicyName}.`);
    return found;
  };
  const custom = () => {
    if (p.PolicyType && p.PolicyType !== 'Custom')
      throw new ApiError(404, 'EntityNotExist.Policy', `The policy not exists: ${p.PolicyName}.`);
  };
  // The system policies the sandbox knows (RAM's own, attached by name).
  const system = p.PolicyType === 'System' && /^Aliyun[A-Za-z]+Policy$/.test(p.PolicyName ?? '');
  switch (call.action) {
    case 'GetPolicy': {
      custom();
      const found = policy();
      const current = found.versions.find((v) => v.isDefault);
      return {
        Policy: { PolicyName: found.name, PolicyType: 'Custom', DefaultVersion: current?.id },
        DefaultPolicyVersion: {
          VersionId: current?.id,
          IsDefaultVersion: true,
          PolicyDocument: current?.document,
        },
      };
    }
    case 'CreatePolicy': {
      const name = need(p, 'PolicyName');
      if (s.policies.has(name))
        throw new ApiError(409, 'EntityAlreadyExists.Policy', `The policy already exists: ${name}.`);
      s.policies.set(name, {
        name,
        versions: [{ id: 'v1', document: need(p, 'PolicyDocument'), isDefault: true, created: now }],
      });
      write(name);
      return { Policy: { PolicyName: name, PolicyType: 'Custom', DefaultVersion: 'v1' } };
    }
    case 'CreatePolicyVersion': {
      const found = policy();
      if (found.versions.length >= 5) {
        if (p.RotateStrategy !== 'DeleteOldestNonDefaultVersionWhenLimitExceeded')
          throw new ApiError(
            409,
            'LimitExceeded.Policy.Version',
            'The policy versions exceed the limit of 5.',
          );
        const oldest = found.versions.findIndex((v) => !v.isDefault);
        found.versions.splice(oldest, 1);
      }
      const id = `v${Math.max(...found.versions.map((v) => Number(v.id.slice(1)))) + 1}`;
      const makeDefault = p.SetAsDefault === 'true';
      if (makeDefault) for (const v of found.versions) v.isDefault = false;
      found.versions.push({ id, document: need(p, 'PolicyDocument'), isDefault: makeDefault, created: now });
      write(found.name);
      return { PolicyVersion: { VersionId: id, IsDefaultVersion: makeDefault } };
    }
    case 'ListPoliciesForRole': {
      const role = need(p, 'RoleName');
      if (!s.roles.has(role)) throw new ApiError(404, 'EntityNotExist.Role', `The role not exists: ${role}.`);
      const names = [...(s.attached.get(role) ?? [])];
      return {
        Policies: {
          Policy: names.map((n) => ({
            PolicyName: n,
            PolicyType: n.startsWith('Aliyun') ? 'System' : 'Custom',
          })),
        },
      };
    }
    case 'AttachPolicyToRole': {
      const role = need(p, 'RoleName');
      if (!s.roles.has(role)) throw new ApiError(404, 'EntityNotExist.Role', `The role not exists: ${role}.`);
      if (!system) custom();
      const found = system ? { name: p.PolicyName ?? '' } : policy();
      const set = s.attached.get(role) ?? new Set<string>();
      if (set.has(found.name))
        throw new ApiError(
          409,
          'EntityAlreadyExists.Role.Policy',
          'The policy is already attached to the role.',
        );
      set.add(found.name);
      s.attached.set(role, set);
      write(`${found.name}->${role}`);
      return {};
    }
    default:
      throw new ApiError(404, 'InvalidAction.NotFound', `Specified api is not found: ${call.action}`);
  }
}

function describeSecret(call: DeployCall): Answer {
  const name = need(call.params, 'SecretName');
  const secret = call.emulator.state.secrets.find((x) => x.secretName === name);
  if (!secret) throw new ApiError(404, 'Forbidden.ResourceNotFound', 'The resource is not found.');
  return json(
    {
      RequestId: call.requestId,
      SecretName: name,
      Arn: `acs:kms:${call.emulator.state.region}:${call.emulator.state.accountId}:secret/${name}`,
      SecretType: 'Generic',
      CreateTime: secret.versions[0]?.createTime,
    },
    call.requestId,
  );
}

function kmsInstances(call: DeployCall): Answer {
  const ids = deployState(call.emulator).kmsInstances;
  return json(
    {
      RequestId: call.requestId,
      KmsInstances: { KmsInstance: ids.map((id) => ({ KmsInstanceId: id, KmsInstanceArn: id })) },
      TotalCount: ids.length,
      PageNumber: 1,
      PageSize: 20,
    },
    call.requestId,
  );
}

/** The sandbox's one trail, delivering to its SLS project in the emulator's region. */
function describeTrails(call: DeployCall): Answer {
  const { region, accountId } = call.emulator.state;
  return json(
    {
      RequestId: call.requestId,
      TrailList: [
        {
          Name: 'sandbox-trail',
          HomeRegion: region,
          Status: 'Enable',
          EventRW: 'All',
          TrailRegion: 'All',
          SlsProjectArn: `acs:log:${region}:${accountId}:project/actiontrail-sandbox`,
        },
      ],
    },
    call.requestId,
  );
}

const xml = (v: string) => v.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** OSS PutBucket (`PUT /`) and GetBucketInfo (`GET /?bucketInfo`); objects are the emulator's. */
function ossBucket(call: DeployCall): Answer | undefined {
  const { raw, emulator, requestId } = call;
  const bucket = raw.hostPrefix ?? '';
  if (raw.path !== '/') return undefined;
  const s = deployState(emulator);
  const headers = { 'content-type': 'application/xml', 'x-oss-request-id': requestId };
  if (raw.method === 'PUT') {
    if (emulator.state.buckets[bucket])
      throw new ApiError(409, 'BucketAlreadyExists', 'The requested bucket name is not available.');
    if (!/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket))
      throw new ApiError(400, 'InvalidBucketName', 'The specified bucket is not valid.');
    emulator.createBucket(bucket);
    s.writes.push(`oss:PutBucket:${bucket}`);
    return { status: 200, headers, body: '' };
  }
  if (raw.method === 'GET' && 'bucketInfo' in raw.query) {
    if (!emulator.state.buckets[bucket])
      throw new ApiError(404, 'NoSuchBucket', 'The specified bucket does not exist.');
    const owner = s.bucketOwners.get(bucket) ?? emulator.state.accountId;
    return {
      status: 200,
      headers,
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<BucketInfo><Bucket><Name>${xml(bucket)}</Name><Location>oss-${emulator.state.region}</Location><StorageClass>Standard</StorageClass><AccessControlList><Grant>private</Grant></AccessControlList><Owner><ID>${owner}</ID><DisplayName>${owner}</DisplayName></Owner></Bucket></BucketInfo>`,
    };
  }
  return undefined;
}

/** SLS GetProject, CreateProject, GetLogStore, CreateLogStore; the trail's own project is always there. */
function slsResource(call: DeployCall): Answer | undefined {
  const { raw, emulator, requestId } = call;
  const s = deployState(emulator);
  const projects = s.slsProjects;
  if (!projects.has('actiontrail-sandbox'))
    projects.set('actiontrail-sandbox', new Set(['actiontrail_sandbox']));
  const ok = (body: unknown): Answer => ({
    status: 200,
    headers: { 'content-type': 'application/json', 'x-log-requestid': requestId },
    body: body === undefined ? '' : JSON.stringify(body),
  });
  const project = raw.hostPrefix;
  if (raw.path === '/' && raw.method === 'POST' && !project) {
    const body = JSON.parse(raw.body.toString('utf8') || '{}') as {
      projectName?: string;
      description?: string;
    };
    const name = body.projectName ?? '';
    if (projects.has(name)) throw new ApiError(400, 'ProjectAlreadyExist', `Project ${name} already exist`);
    projects.set(name, new Set());
    s.writes.push(`sls:CreateProject:${name}`);
    return ok(undefined);
  }
  if (!project) return undefined;
  const stores = projects.get(project);
  if (!stores) throw new ApiError(404, 'ProjectNotExist', `The Project does not exist : ${project}`);
  if (raw.path === '/' && raw.method === 'GET')
    return ok({ projectName: project, region: emulator.state.region, status: 'Normal', description: '' });
  if (raw.path === '/logstores' && raw.method === 'POST') {
    const body = JSON.parse(raw.body.toString('utf8') || '{}') as {
      logstoreName?: string;
      ttl?: number;
      shardCount?: number;
    };
    const name = body.logstoreName ?? '';
    if (!name || !body.ttl || !body.shardCount)
      throw new ApiError(400, 'ParameterInvalid', 'logstoreName, ttl and shardCount are required');
    if (stores.has(name)) throw new ApiError(400, 'LogStoreAlreadyExist', `logstore ${name} already exists`);
    stores.add(name);
    s.writes.push(`sls:CreateLogStore:${project}/${name}`);
    return ok(undefined);
  }
  const m = /^\/logstores\/([^/]+)$/.exec(raw.path);
  if (m && raw.method === 'GET') {
    const name = decodeURIComponent(m[1] ?? '');
    if (!stores.has(name)) throw new ApiError(404, 'LogStoreNotExist', `logstore ${name} does not exist`);
    return ok({ logstoreName: name, ttl: 30, shardCount: 2 });
  }
  return undefined;
}
