import { randomBytes } from 'node:crypto';
import { CreateLogStoreRequest, CreateProjectRequest } from '@alicloud/sls20201230';
import { defaultReportBucket } from '../shared/config';
import { ensureAttached, ensureRole } from './prepare-ram';
import { absentOn, type Run, WEBHOOK_SECRET_NAME } from './prepare-run';
import { reportBucketOf } from './ram';

/** deploy:prepare's steps after the roles: the bucket, the logstores, the webhook secret, the prerequisites. */
const LOGS_LOGSTORE = 'ack-kms-sentinel-logs';

async function bucket(run: Run): Promise<void> {
  const env = run.options.env;
  const name = reportBucketOf(env);
  const oss = run.c.oss(name);
  const info = await absentOn(() => oss.getBucketInfo(name), ['NoSuchBucket']);
  if (!info)
    return run.change('OSS bucket', name, 'create', () =>
      oss.putBucket(name, { storageClass: 'Standard', acl: 'private' }),
    );
  // A bucket of that name owned by another account would receive the reports (and could forge the done record).
  const owner = info.bucket?.Owner?.ID;
  if (owner !== env.SENTINEL_ACCOUNT_ID)
    return run.same(
      'OSS bucket',
      name,
      'missing',
      `the bucket belongs to another account: set SENTINEL_REPORT_BUCKET to a name of your own (example: SENTINEL_REPORT_BUCKET=${defaultReportBucket(env.SENTINEL_ACCOUNT_ID ?? '<account-id>', run.region)})`,
    );
  run.same('OSS bucket', name);
}

const trailStep = (run: Run) => {
  const {
    SENTINEL_ACCOUNT_ID: account = '<account-id>',
    SENTINEL_TRAIL_PROJECT: project = '<trail-project>',
  } = run.options.env;
  return (
    `create a trail delivering to SLS in ${run.region}: aliyun actiontrail CreateTrail --Name ack-kms-sentinel-${run.region} ` +
    `--SlsProjectArn acs:log:${run.region}:${account}:project/${project} ` +
    `--SlsWriteRoleArn acs:ram::${account}:role/aliyunactiontraildefaultrole --EventRW All --TrailRegion All, ` +
    `then aliyun actiontrail StartLogging --Name ack-kms-sentinel-${run.region} (ActionTrail console → Trails → Create trail → deliver to SLS, region ${run.region})`
  );
};

async function logstores(run: Run): Promise<void> {
  const env = run.options.env;
  const { sls } = run.c;
  const trailProject = env.SENTINEL_TRAIL_PROJECT ?? '';
  const project = env.SENTINEL_LOG_PROJECT?.trim() || trailProject;
  const logstore = env.SENTINEL_LOG_LOGSTORE?.trim() || LOGS_LOGSTORE;
  const projectFound = await absentOn(() => sls.getProject(project), ['ProjectNotExist']);
  if (!projectFound) {
    if (project === trailProject) run.same('SLS project', project, 'missing', trailStep(run));
    else
      await run.change('SLS project', project, 'create', () =>
        sls.createProject(
          new CreateProjectRequest({ projectName: project, description: 'ack-kms-sentinel logs' }),
        ),
      );
  } else run.same('SLS project', project);
  const storeFound =
    projectFound && (await absentOn(() => sls.getLogStore(project, logstore), ['LogStoreNotExist']));
  if (storeFound) run.same('SLS logstore', `${project}/${logstore}`);
  else if (projectFound || project !== trailProject)
    await run.change('SLS logstore', `${project}/${logstore}`, 'create', () =>
      sls.createLogStore(
        project,
        new CreateLogStoreRequest({ logstoreName: logstore, ttl: 30, shardCount: 2 }),
      ),
    );
}

export async function bucketAndLogs(run: Run): Promise<void> {
  await bucket(run);
  await logstores(run);
}

/** The KMS instance a KMS 3.0 secret lives in: SENTINEL_KMS_INSTANCE_ID, or the region's only one. */
async function kmsInstance(run: Run): Promise<string | undefined> {
  const named = run.options.env.SENTINEL_KMS_INSTANCE_ID?.trim();
  const listed = (await run.c.kms('ListKmsInstances', { PageSize: '100' })) as {
    KmsInstances?: { KmsInstance?: Array<{ KmsInstanceId?: string }> };
  };
  const ids = (listed.KmsInstances?.KmsInstance ?? []).map((i) => i.KmsInstanceId ?? '').filter(Boolean);
  const chosen = named && ids.includes(named) ? named : !named && ids.length === 1 ? ids[0] : undefined;
  if (chosen) run.same('KMS instance', chosen, 'ok');
  else
    run.same(
      'KMS instance',
      named ?? '(none)',
      'missing',
      ids.length > 1 && !named
        ? `several KMS instances: name one (example: SENTINEL_KMS_INSTANCE_ID=${ids[0]})`
        : `a KMS 3.0 secret lives in a KMS instance: KMS console → Instances → Purchase (software key management) in ${run.region}, then set SENTINEL_KMS_INSTANCE_ID`,
    );
  return chosen;
}

/**
 * The webhook's signing secret: created once (from SENTINEL_WEBHOOK_SECRET when it holds a literal of 32+
 * characters, else 32 random bytes), never printed, never overwritten by a second run.
 */
async function webhookSecret(run: Run): Promise<void> {
  const env = run.options.env;
  const setting = env.SENTINEL_WEBHOOK_SECRET?.trim() ?? '';
  const name = setting.startsWith('kms-secret://')
    ? setting.slice('kms-secret://'.length)
    : WEBHOOK_SECRET_NAME;
  const found = await absentOn(
    () => run.c.kms('DescribeSecret', { SecretName: name }),
    ['Forbidden.ResourceNotFound'],
  );
  if (found) return run.same('KMS secret', name);
  const instance = await kmsInstance(run);
  if (!instance) return run.same('KMS secret', name, 'missing', 'needs the KMS instance above');
  const literal =
    setting && !setting.startsWith('kms-secret://') && setting.length >= 32 ? setting : undefined;
  await run.change('KMS secret', name, 'create', () =>
    run.c.kms('CreateSecret', {
      SecretName: name,
      SecretData: literal ?? randomBytes(32).toString('hex'),
      VersionId: 'v1',
      DKMSInstanceId: instance,
      Description: 'ack-kms-sentinel: the webhook signing secret',
    }),
  );
}

async function trail(run: Run): Promise<void> {
  const env = run.options.env;
  const arn = `acs:log:${run.region}:${env.SENTINEL_ACCOUNT_ID}:project/${env.SENTINEL_TRAIL_PROJECT}`;
  const body = (await run.c.actionTrail('DescribeTrails', {})) as {
    TrailList?: Array<{ Name?: string; SlsProjectArn?: string; Status?: string }>;
  };
  const t = (body.TrailList ?? []).find((x) => x.SlsProjectArn === arn && x.Status === 'Enable');
  if (t) run.same('ActionTrail trail', t.Name ?? arn, 'ok');
  else run.same('ActionTrail trail', arn, 'missing', trailStep(run));
}

/**
 * The role SLS triggers assume to invoke a function: the system one, created and given its system policy. An
 * existing one's trust policy is left as it is: other SLS jobs of the account may rely on it.
 */
async function logEtlRole(run: Run): Promise<void> {
  const name = 'aliyunlogetlrole';
  const exists = await ensureRole(run, name, {
    trust: JSON.stringify({
      Statement: [
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: ['log.aliyuncs.com'] } },
      ],
      Version: '1',
    }),
    description: 'SLS triggers invoke Function Compute with it',
    updateTrust: false,
  });
  await ensureAttached(run, name, { name: 'AliyunLogETLRolePolicy', type: 'System' }, exists);
}

export async function secretsAndChecks(run: Run): Promise<void> {
  await webhookSecret(run);
  await trail(run);
  await logEtlRole(run);
  run.same(
    'EventBridge',
    run.region,
    'manual',
    'EventBridge must be activated once per account (EventBridge console → Activate), or the eventbridge triggers fail at s deploy',
  );
}
