import { afterEach, describe, expect, it } from 'vitest';
import { PoisonError } from '../../shared/errors';
import { clearRegisteredSecrets, createLogger, REDACTED, redact, registerSecret } from '../../shared/log';
import { memoryLogger } from '../helpers/memory-logger';

// Each of these must never reach a log line.
const SECRET_VALUE = 'cGFzc3dvcmQtZm9yLXByb2QtZGI='; // base64 of a database password
const STRING_DATA = 'plain-text-api-key-7f9a';
const ACCESS_KEY_SECRET = 'Xk3mV9pQ2rT8sW1yZ5aB7cD0eF4gH6';
const STS_TOKEN = 'CAIS8gF1q6Ft5B2yfSjIr5bQEtXXXXsts-token-body';
const BEARER = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLWJ5dGVz';
const CLIENT_KEY = 'LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB';
const KUBE_TOKEN = 'kubeconfig-user-token-a1b2c3d4e5';
const PEM =
  '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5\n-----END EC PRIVATE KEY-----';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
- cluster: {server: https://10.0.0.1:6443, certificate-authority-data: Q0EtREFUQQ==}
  name: c1
users:
- name: admin
  user:
    client-certificate-data: Q0VSVC1EQVRBLUNMSUVOVA==
    client-key-data: ${CLIENT_KEY}
- name: robot
  user:
    token: ${KUBE_TOKEN}
`;

const ALL = [
  SECRET_VALUE,
  STRING_DATA,
  ACCESS_KEY_SECRET,
  STS_TOKEN,
  BEARER,
  CLIENT_KEY,
  KUBE_TOKEN,
  'MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5',
];

afterEach(() => clearRegisteredSecrets());

describe('structured logs', () => {
  it('writes one JSON object per line with the request and job ids', () => {
    const log = memoryLogger({ bindings: { requestId: 'req-1', function: 'reencrypt' } });
    log.child({ jobId: 'rj-c1-0123456789abcdef' }).info('sweep started', { page: 1 });
    log.debug('debug line');
    expect(log.lines).toHaveLength(2);
    const line = JSON.parse(log.lines[0] ?? '');
    expect(line).toMatchObject({
      level: 'info',
      msg: 'sweep started',
      requestId: 'req-1',
      jobId: 'rj-c1-0123456789abcdef',
      page: 1,
    });
    expect(new Date(line.time).getTime()).not.toBeNaN();
  });

  it('drops lines below the level', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', sink: (l) => lines.push(l) });
    log.info('hidden');
    log.warn('shown');
    log.error('shown too');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['shown', 'shown too']);
  });
});

describe('the redaction guard', () => {
  it('masks a credential under its name whatever it holds; `secret` and `plaintext` only when they hold a string', () => {
    expect(
      redact({
        plaintext: 0,
        secret: { kind: 'Secret' },
        password: 123456,
        token: true,
        securityToken: 'sts',
      }),
    ).toEqual({
      plaintext: 0,
      secret: { kind: 'Secret' },
      password: '[REDACTED]',
      token: '[REDACTED]',
      securityToken: '[REDACTED]',
    });
    expect(redact({ plaintext: 'aGVsbG8=' })).toEqual({ plaintext: '[REDACTED]' });
  });

  it('keeps every kind of secret out of the log', () => {
    registerSecret(ACCESS_KEY_SECRET);
    const log = memoryLogger({ bindings: { requestId: 'r', jobId: 'j' } });
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'prod', annotations: { owner: 'team-a' } },
      type: 'Opaque',
      data: { password: SECRET_VALUE },
      stringData: { apiKey: STRING_DATA },
    };
    log.info('a Secret object', { secret });
    log.info('a list of Secrets', { items: [secret, { ...secret, kind: undefined }] });
    log.info('raw secret data map', { data: { 'tls.key': SECRET_VALUE } });
    log.info('decoded bytes', { value: Buffer.from(STRING_DATA) });
    log.info('credentials', {
      credentials: { accessKeyId: 'STS.abc', accessKeySecret: ACCESS_KEY_SECRET, securityToken: STS_TOKEN },
    });
    log.info('fc2 config', {
      accessKeyID: 'LTAI',
      access_key_secret: ACCESS_KEY_SECRET,
      'x-acs-security-token': STS_TOKEN,
    });
    log.info('headers', { headers: { Authorization: `Bearer ${BEARER}`, 'x-fc-security-token': STS_TOKEN } });
    log.info('a kubeconfig by name', { kubeconfig: KUBECONFIG });
    log.info('a kubeconfig hiding in a CS response', {
      body: { config: KUBECONFIG, expiration: '2026-12-01T00:00:00Z' },
    });
    log.info(`a message that embeds a token: Bearer ${BEARER}`);
    log.info('a key in a string', { note: `here: ${PEM}` });
    log.info('a registered secret inside another string', { url: `https://x?sig=${ACCESS_KEY_SECRET}&a=1` });
    log.info('a query string', { query: `AccessKeySecret=${ACCESS_KEY_SECRET}&SecurityToken=${STS_TOKEN}` });
    log.error('an error', { err: new Error(`request failed with token: ${KUBE_TOKEN}`) });
    log.warn('a poison error', { err: new PoisonError('Failed to parse x: data.k: bad') });
    let deep: Record<string, unknown> = { password: STRING_DATA };
    for (let i = 0; i < 20; i++) deep = { level: deep };
    log.info('deep', { deep });

    const output = log.lines.join('\n');
    // Booleans, so a failure never prints the output (and the secret) it guards.
    for (const s of ALL) expect(output.includes(s), `leaked ${s.slice(0, 6)}…`).toBe(false);

    const first = JSON.parse(log.lines[0] ?? '');
    expect(first.secret.data).toBe(REDACTED);
    expect(first.secret.stringData).toBe(REDACTED);
    expect(first.secret.metadata).toEqual({
      name: 'db',
      namespace: 'prod',
      annotations: { owner: 'team-a' },
    });
    const creds = JSON.parse(log.lines[4] ?? '').credentials;
    expect(creds).toEqual({ accessKeyId: 'STS.abc', accessKeySecret: REDACTED, securityToken: REDACTED });
    expect(JSON.parse(log.lines[3] ?? '').value).toBe(`[${STRING_DATA.length} bytes]`);
    const cs = JSON.parse(log.lines[8] ?? '').body;
    expect(cs.expiration).toBe('2026-12-01T00:00:00Z');
    expect(cs.config).toContain('client-key-data: [REDACTED]');
    expect(JSON.parse(log.lines[14] ?? '').err).toEqual({
      name: 'PoisonError',
      message: 'Failed to parse x: data.k: bad',
      code: 'InvalidInput',
      kind: 'poison',
    });
  });

  it('keeps ordinary data, and handles cycles without mutating its input', () => {
    const obj: Record<string, unknown> = {
      name: 'payments',
      count: 3,
      when: new Date('2026-11-29T00:00:00Z'),
      big: 10n,
    };
    obj.self = obj;
    const out = redact(obj) as Record<string, unknown>;
    expect(out).toEqual({
      name: 'payments',
      count: 3,
      when: '2026-11-29T00:00:00.000Z',
      big: '10',
      self: '[Circular]',
    });
    expect(obj.self).toBe(obj);
    expect(redact(new Map([['token', 'abc123456']]))).toEqual({ token: REDACTED });
    // A CloudEvent's `data` is an object of mixed values, not a Secret's data: kept.
    expect(redact({ data: { eventName: 'Encrypt', eventVersion: 1 } })).toEqual({
      data: { eventName: 'Encrypt', eventVersion: 1 },
    });
  });
});
