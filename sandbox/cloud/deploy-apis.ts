/**
 * What `npm run deploy:prepare` calls, as the real APIs document them, so it can run against the sandbox:
 * RAM 2015-05-01 (roles, custom policies and their versions, attachments), OSS bucket creation and
 * GetBucketInfo, SLS project and logstore creation, KMS DescribeSecret and ListKmsInstances, and ActionTrail
 * DescribeTrails. Kept beside the emulator's state, in memory.
 */
import { ApiError } from './api';
import { type Answer, type DeployCall, deployState, json, need } from './deploy-state';
import { ramAction } from './ram';

export type { DeployState } from './deploy-state';
export { deployState } from './deploy-state';

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
  // GetBucketInfo is the emulator's own (its owner map serves the suite's check of the bucket owner too).
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
