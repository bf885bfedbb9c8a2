import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli';
import { sandboxInfo } from '../helpers/sandbox';

/** `ack-kms-sentinel invoke`: a real handler, a realistic context, the sandbox cloud as the endpoints. */

function invoke(args: string[], stdin?: string) {
  const { cloud } = sandboxInfo();
  return runCli(
    ['invoke', ...args],
    {
      ALIBABA_CLOUD_ACCESS_KEY_ID: cloud.user.accessKeyId,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: cloud.user.accessKeySecret,
      SENTINEL_LOG_LEVEL: 'warn',
    },
    stdin,
  );
}

describe('ack-kms-sentinel invoke', () => {
  const configFile = () => {
    const { cloud, stateNamespace } = sandboxInfo();
    const file = join(mkdtempSync(join(tmpdir(), 'invoke-')), 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        SENTINEL_REGION: cloud.region,
        SENTINEL_ACCOUNT_ID: cloud.accountId,
        SENTINEL_CLUSTER_IDS: cloud.clusterId,
        SENTINEL_STATE_NAMESPACE: stateNamespace,
        SENTINEL_ENDPOINT_KMS: cloud.endpoint,
        SENTINEL_ENDPOINT_CS: cloud.endpoint,
        SENTINEL_ENDPOINT_ACTIONTRAIL: cloud.endpoint,
        SENTINEL_ENDPOINT_FC: cloud.endpoint,
      }),
    );
    return file;
  };

  it('runs rotation-watch on a timer event from stdin and prints its result', async () => {
    const event = JSON.stringify({
      triggerTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      triggerName: 'poll',
    });
    const result = await invoke(['rotation-watch', '--event', '-', '--config', configFile()], event);
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as {
      trigger: string;
      jobs: Array<{ clusterId: string; keyId: string }>;
    };
    expect(out.trigger).toBe('timer');
    expect(out.jobs.map((j) => [j.clusterId, j.keyId])).toEqual([
      [sandboxInfo().cloud.clusterId, sandboxInfo().cloud.kmsKeyId],
    ]);
  });

  it('exits 2 with the parse error for a malformed event, never a stack trace', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'invoke-')), 'event.json');
    writeFileSync(file, '{"triggerTime": "not a time", "triggerName": "poll"}');
    const result = await invoke(['rotation-watch', '--event', file, '--config', configFile()]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('triggerTime: must be an ISO 8601 date-time');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    const unknown = await invoke(['audit-everything', '--event', file]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown function "audit-everything"');
  });
});
