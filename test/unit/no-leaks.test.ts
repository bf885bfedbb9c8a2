import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../bin/cli';
import { createHandler as reencryptHandler } from '../../functions/reencrypt';
import { CloudEmulator } from '../../sandbox/cloud/emulator';
import { encodeJobPayload, jobIdFor } from '../../shared/jobs/payload';
import { redactString, registerSecret } from '../../shared/log';

/**
 * A corpus of broken kubeconfigs and configuration files, each holding credentials, fed to every entry point
 * that reads them (the CLI's commands, the reencrypt function with a kubeconfig from CS). Whatever the error,
 * no credential, and no part of one, reaches stdout, stderr or the logs.
 */
const TOKEN = 'tok7f3a9c2e81d4b6a5c0e9f8d7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9';
const KEY_DATA = Buffer.from(
  `-----BEGIN RSA PRIVATE KEY-----\nMIIEkey${'Zq8Xw3Lm9Rt2Vb6Nc1Pj5Hs7Kd4Gf0Ya'.repeat(4)}\n-----END RSA PRIVATE KEY-----\n`,
).toString('base64');
const WEBHOOK_SECRET = 'whsec9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0';
const SECRETS = [TOKEN, KEY_DATA, WEBHOOK_SECRET];

/** No 10-character window of any secret appears in `text`. */
function expectNoSecret(text: string, where: string): void {
  for (const secret of SECRETS) {
    for (let i = 0; i + 10 <= secret.length; i += 5) {
      const window = secret.slice(i, i + 10);
      if (text.includes(window)) expect.fail(`${where} shows part of a credential (at offset ${i})`);
    }
  }
}

const head = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`;
const KUBECONFIGS: Record<string, string> = {
  'unbalanced quote after the token': `${head}users:\n- name: u\n  user:\n    token: "${TOKEN}\n`,
  'bad indentation below the token': `${head}users:\n- name: u\n  user:\n    token: ${TOKEN}\n   bad: [\n`,
  'a tab in the client key line': `${head}users:\n- name: u\n  user:\n\tclient-key-data: ${KEY_DATA}\n`,
  'a duplicated token key': `${head}users:\n- name: u\n  user:\n    token: ${TOKEN}\n    token: ${TOKEN}\n`,
  'a long key line cut by the parser': `${head}users:\n- name: u\n  user: {client-key-data: ${KEY_DATA}, token: ${TOKEN}]\n`,
  'JSON with a trailing comma (broken.json)': JSON.stringify({
    apiVersion: 'v1',
    users: [{ name: 'u', user: { token: TOKEN } }],
  }).replace(/}$/, ',}'),
  'a missing server': `apiVersion: v1\nclusters:\n- name: c\n  cluster: {}\nusers:\n- name: u\n  user: {token: ${TOKEN}}\ncontexts: []\n`,
  'a PEM key instead of a kubeconfig': Buffer.from(KEY_DATA, 'base64').toString('utf8'),
  'an unknown tag': `${head}users:\n- name: u\n  user:\n    token: !<tag:${TOKEN}> x\n`,
};

const CONFIG_FILES: Record<string, string> = {
  'a trailing comma': `{"SENTINEL_REGION": "cn-hangzhou", "SENTINEL_WEBHOOK_SECRET": "${WEBHOOK_SECRET}",}`,
  'a missing quote': `{"SENTINEL_WEBHOOK_SECRET": "${WEBHOOK_SECRET}}`,
  'a too-short secret setting': `{"SENTINEL_WEBHOOK_SECRET": "${WEBHOOK_SECRET.slice(0, 20)}"}`,
  'broken channels': JSON.stringify({
    SENTINEL_NOTIFY_CHANNELS: `[{"type":"webhook","url":"https://h.example/x","secret":"${WEBHOOK_SECRET}"`,
  }),
  'a channel of unknown type': JSON.stringify({
    SENTINEL_NOTIFY_CHANNELS: JSON.stringify([
      { type: 'teams', url: `https://h.example/${TOKEN}`, secret: WEBHOOK_SECRET },
    ]),
  }),
};

let dir: string;
const file = (name: string, text: string): string => {
  const path = join(dir, `${name.replace(/\W+/g, '-')}`);
  writeFileSync(path, text);
  return path;
};

/** Runs the CLI in this process, capturing everything it writes. */
async function cli(args: string[]): Promise<{ code: number; output: string }> {
  let output = '';
  const capture = (chunk: unknown) => {
    output += String(chunk);
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  try {
    const code = await main(args);
    return { code, output };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'no-leaks-'));
});

describe('no credential in an error, whatever the broken input', () => {
  it.each(Object.entries(KUBECONFIGS))('reencrypt and audit --kubeconfig with %s', async (_name, text) => {
    const path = file(_name, text);
    const re = await cli(['reencrypt', '--kubeconfig', path, '--key-version', 'v1', '--json']);
    expect(re.code).toBe(2);
    expect(re.output).toMatch(/kubeconfig/);
    expectNoSecret(re.output, 'reencrypt');
    const audit = await cli(['audit', '--kubeconfig', path, '--out', join(dir, 'out')]);
    expect(audit.code).not.toBe(0);
    expectNoSecret(audit.output, 'audit');
  });

  it('a YAML error names the line and column only', async () => {
    const path = file('position', KUBECONFIGS['unbalanced quote after the token'] ?? '');
    const { output } = await cli(['reencrypt', '--kubeconfig', path, '--key-version', 'v1']);
    expect(output).toMatch(/not valid YAML: .* at line \d+, column \d+/);
  });

  it.each(Object.entries(CONFIG_FILES))('invoke --config with %s', async (name, text) => {
    const config = file(`config-${name}`, text);
    const event = file('timer.json', '{"triggerTime":"2026-11-29T08:00:00Z","triggerName":"poll"}');
    const { code, output } = await cli(['invoke', 'audit', '--event', event, '--config', config]);
    expect(code).toBe(2);
    expectNoSecret(output, 'invoke');
  });

  it('URL-encoded credentials in an SDK error (a quoted string-to-sign) are masked', () => {
    const sts = 'CAIS+token/with=special!chars0123456789';
    registerSecret(sts);
    const quoted = `SignatureDoesNotMatch: server string to sign is:GET&%2F&AccessKeyId%3DSTS.x%26SecurityToken%3D${encodeURIComponent(encodeURIComponent(sts))}%26Timestamp`;
    const shown = redactString(quoted);
    expect(shown).not.toContain(encodeURIComponent(encodeURIComponent(sts)));
    expect(shown).not.toContain('token%252Fwith');
    const unregistered = redactString('AccessKeyId%3Dx%26SecurityToken%3DCAISabcdefabcdef%26Timestamp%3D1');
    expect(unregistered).not.toContain('CAISabcdef');
    expect(unregistered).toContain('Timestamp%3D1');
  });
});

describe('the reencrypt function with a broken kubeconfig from CS', () => {
  let cloud: CloudEmulator;
  beforeAll(async () => {
    cloud = await CloudEmulator.start();
  });
  afterAll(async () => {
    await cloud.stop();
  });

  it.each(Object.entries(KUBECONFIGS))(
    '%s: the job fails without a credential in its result or logs',
    async (name, text) => {
      const key = cloud.createKey();
      const clusterId = `c-leak-${Object.keys(KUBECONFIGS).indexOf(name)}`;
      cloud.addCluster({ clusterId, kubeconfig: text, encryptionKeyId: key.keyId });
      const lines: string[] = [];
      const handler = reencryptHandler({
        env: {
          SENTINEL_REGION: cloud.state.region,
          SENTINEL_ACCOUNT_ID: cloud.state.accountId,
          SENTINEL_REENCRYPT_ADOPTION_DELAY: '0s',
          SENTINEL_LOG_LEVEL: 'debug',
          ...Object.fromEntries(
            ['KMS', 'CS', 'ACTIONTRAIL', 'FC'].map((s) => [`SENTINEL_ENDPOINT_${s}`, cloud.url]),
          ),
        },
        sink: (line) => lines.push(line),
      });
      const payload = encodeJobPayload({
        version: 1,
        jobId: jobIdFor(clusterId, key.keyId, key.primaryKeyVersion),
        clusterId,
        keyId: key.keyId,
        keyVersionId: key.primaryKeyVersion,
        requestedAt: new Date(),
        reason: 'test',
      });
      let result: unknown;
      try {
        result = await handler(Buffer.from(payload), {
          requestId: 'leak',
          credentials: { accessKeyId: cloud.user.accessKeyId, accessKeySecret: cloud.user.accessKeySecret },
          accountId: cloud.state.accountId,
        });
      } catch (err) {
        result = { thrown: (err as Error).message };
      }
      const everything = `${JSON.stringify(result)}\n${lines.join('\n')}`;
      expect(everything).toMatch(/kubeconfig/);
      expectNoSecret(everything, 'the reencrypt function');
    },
  );
});
