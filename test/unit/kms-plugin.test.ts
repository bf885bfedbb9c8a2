import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consoleClients } from '../../sandbox/cloud/console-clients';
import { AlibabaKmsKeyProvider } from '../../sandbox/kms-plugin/alibaba-provider';
import {
  composeKeyId,
  InProcessKeyProvider,
  KEY_VERSION_ANNOTATION,
  type KeyProvider,
  splitKeyId,
} from '../../sandbox/kms-plugin/key-provider';
import { KmsV2Plugin } from '../../sandbox/kms-plugin/plugin';
import {
  decodeStoredValue,
  EncryptedObject,
  readSecretEvidence,
  summarize,
} from '../../shared/etcd/evidence';
import { Recorder, replyJson } from '../helpers/recorder';

type Call = (method: string, req: unknown) => Promise<Record<string, unknown>>;

function client(socketPath: string): { call: Call; close: () => void } {
  const def = protoLoader.loadSync(join(__dirname, '../../sandbox/kms-plugin/kmsv2.proto'), {
    keepCase: true,
    defaults: true,
  });
  const proto = grpc.loadPackageDefinition(def) as unknown as {
    v2: { KeyManagementService: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client };
  };
  const c = new proto.v2.KeyManagementService(
    `unix://${socketPath}`,
    grpc.credentials.createInsecure(),
  ) as grpc.Client &
    Record<
      string,
      (req: unknown, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void
    >;
  return {
    call: (method, req) =>
      new Promise((resolve, reject) => c[method]?.(req, (err, res) => (err ? reject(err) : resolve(res)))),
    close: () => c.close(),
  };
}

describe('the KMS v2 plugin over its unix socket', () => {
  const provider = new InProcessKeyProvider('key-test');
  const errors: string[] = [];
  let plugin: KmsV2Plugin;
  let rpc: ReturnType<typeof client>;

  beforeAll(async () => {
    plugin = new KmsV2Plugin(provider, mkdtempSync(join(tmpdir(), 'kms-plugin-')), (m) => errors.push(m));
    await plugin.start();
    rpc = client(plugin.socketPath);
  });
  afterAll(async () => {
    rpc.close();
    await plugin.stop();
  });

  it('answers Status the way the API server requires, and records when', async () => {
    const before = new Date(Date.now() - 1);
    const status = await rpc.call('Status', {});
    expect(status).toEqual({ version: 'v2', healthz: 'ok', key_id: `key-test/${provider.primaryVersionId}` });
    expect(plugin.lastStatusKeyId).toBe(status.key_id);
    // The demo waits on this: a Status answered since the rotation is a key id in the API server's /metrics.
    expect(plugin.statusCallsSince(before)).toBe(1);
    expect(plugin.statusCallsSince(new Date(Date.now() + 1000))).toBe(0);
  });

  it('encrypts under the key id Status reports and decrypts back', async () => {
    const seed = Buffer.alloc(32, 7);
    const enc = await rpc.call('Encrypt', { plaintext: seed, uid: 'u1' });
    expect(enc.key_id).toBe((await rpc.call('Status', {})).key_id);
    expect((enc.ciphertext as Buffer).length).toBeLessThanOrEqual(1024);
    expect(Object.keys(enc.annotations as object)).toEqual([KEY_VERSION_ANNOTATION]);
    const dec = await rpc.call('Decrypt', {
      ciphertext: enc.ciphertext,
      key_id: enc.key_id,
      annotations: enc.annotations,
      uid: 'u2',
    });
    expect(dec.plaintext).toEqual(seed);
  });

  it('signals adoption when an Encrypt is answered with a new key id; old ciphertexts still decrypt', async () => {
    const before = await rpc.call('Encrypt', { plaintext: Buffer.from('old') });
    const next = provider.rotate();
    const adopted = plugin.waitForAdoption(next, 5_000);
    expect((await rpc.call('Status', {})).key_id).toBe(next);
    const after = await rpc.call('Encrypt', { plaintext: Buffer.from('new') });
    expect(after.key_id).toBe(next);
    await adopted;
    expect(plugin.adoptedKeyId).toBe(next);
    const old = await rpc.call('Decrypt', {
      ciphertext: before.ciphertext,
      key_id: before.key_id,
      annotations: before.annotations,
    });
    expect((old.plaintext as Buffer).toString()).toBe('old');
    await plugin.waitForAdoption(next, 10); // already adopted: resolves at once
    await expect(plugin.waitForAdoption('key-test/never', 50)).rejects.toThrow(
      /did not adopt key-test\/never within 50 ms/,
    );
  });

  it('refuses what the API server would refuse, with a clear error', async () => {
    const bad: KeyProvider = {
      currentKeyId: async () => 'k'.repeat(1025),
      encrypt: async () => ({
        ciphertext: Buffer.alloc(8),
        keyId: 'k/1',
        annotations: { Not_A_DNS_Name: Buffer.from('x') },
      }),
      decrypt: async () => {
        throw new Error('cannot decrypt: token: abcdefghijklmnop');
      },
    };
    const p = new KmsV2Plugin(bad, mkdtempSync(join(tmpdir(), 'kms-bad-')), (m) => errors.push(m));
    await p.start();
    const c = client(p.socketPath);
    try {
      await expect(c.call('Status', {})).rejects.toThrow(
        /key id of 1025 bytes; the API server accepts 1..1024/,
      );
      await expect(c.call('Encrypt', { plaintext: Buffer.alloc(32) })).rejects.toThrow(
        /annotation key "Not_A_DNS_Name" is not a fully-qualified DNS name/,
      );
      await expect(c.call('Decrypt', { ciphertext: Buffer.alloc(1), key_id: 'k/1' })).rejects.toThrow(
        /cannot decrypt/,
      );
      expect(p.stats).toMatchObject({ status: 1, encrypt: 1, decrypt: 1, errors: 3 });
      expect(errors.join('\n')).not.toContain('abcdefghijklmnop');
    } finally {
      c.close();
      await p.stop();
    }
  });
});

describe('key ids', () => {
  it('compose and split', () => {
    expect(splitKeyId(composeKeyId('key-1', 'v-2'))).toEqual({ keyId: 'key-1', keyVersionId: 'v-2' });
    expect(splitKeyId('acs:kms:cn-hangzhou:1:key/key-1/v9')).toEqual({
      keyId: 'acs:kms:cn-hangzhou:1:key/key-1',
      keyVersionId: 'v9',
    });
    expect(() => splitKeyId('nokey')).toThrow(/not a <keyId>\/<keyVersionId>/);
  });
});

describe('the Alibaba Cloud KMS provider, through the official SDK', () => {
  let kms: Recorder;
  afterEach(async () => {
    await kms.stop();
  });

  it('reports the primary version and encrypts/decrypts through KMS', async () => {
    kms = await new Recorder().start();
    const endpoint = { protocol: 'http' as const, host: kms.host, url: kms.url };
    const clients = consoleClients(
      { region: 'cn-hangzhou', endpoints: { kms: endpoint } },
      { accessKeyId: 'AK', accessKeySecret: 'SK-0123456789' },
    );
    let now = 0;
    const provider = new AlibabaKmsKeyProvider(clients.kms, 'key-1', {
      now: () => now,
      describeCacheMs: 1_000,
    });
    kms.reply(
      replyJson(200, {
        RequestId: 'r',
        KeyMetadata: { KeyId: 'key-1', KeyState: 'Enabled', PrimaryKeyVersion: 'v1' },
      }),
      replyJson(200, {
        RequestId: 'r',
        KeyId: 'key-1',
        KeyVersionId: 'v1',
        CiphertextBlob: 'Y2lwaGVydGV4dC1ibG9i',
      }),
      replyJson(200, {
        RequestId: 'r',
        KeyId: 'key-1',
        KeyVersionId: 'v1',
        Plaintext: Buffer.from('seed').toString('base64'),
      }),
      replyJson(200, {
        RequestId: 'r',
        KeyMetadata: { KeyId: 'key-1', KeyState: 'Disabled', PrimaryKeyVersion: 'v2' },
      }),
    );
    expect(await provider.currentKeyId()).toBe('key-1/v1');
    expect(await provider.currentKeyId()).toBe('key-1/v1'); // cached: no second DescribeKey
    const enc = await provider.encrypt(Buffer.from('seed'));
    expect(enc).toMatchObject({
      keyId: 'key-1/v1',
      annotations: { [KEY_VERSION_ANNOTATION]: Buffer.from('v1') },
    });
    expect(kms.last().query).toMatchObject({
      Action: 'Encrypt',
      KeyId: 'key-1',
      Plaintext: Buffer.from('seed').toString('base64'),
    });
    expect((await provider.decrypt(enc.ciphertext)).toString()).toBe('seed');
    expect(kms.last().query).toMatchObject({ Action: 'Decrypt', CiphertextBlob: 'Y2lwaGVydGV4dC1ibG9i' });
    now = 2_000;
    await expect(provider.currentKeyId()).rejects.toThrow(/KMS key key-1 is Disabled/);
    expect(kms.requests.map((r) => r.query.Action)).toEqual([
      'DescribeKey',
      'Encrypt',
      'Decrypt',
      'DescribeKey',
    ]);
  });

  it('turns KMS refusals into classified errors', async () => {
    kms = await new Recorder().start();
    const endpoint = { protocol: 'http' as const, host: kms.host, url: kms.url };
    const clients = consoleClients(
      { region: 'cn-hangzhou', endpoints: { kms: endpoint } },
      { accessKeyId: 'AK', accessKeySecret: 'SK-0123456789' },
    );
    kms.always(replyJson(409, { Code: 'Rejected.Disabled', Message: 'disabled', RequestId: 'r' }));
    const provider = new AlibabaKmsKeyProvider(clients.kms, 'key-1');
    await expect(provider.encrypt(Buffer.from('x'))).rejects.toMatchObject({
      kind: 'permanent',
      code: 'Rejected.Disabled',
    });
    await expect(provider.decrypt(Buffer.from('x'))).rejects.toMatchObject({ code: 'Rejected.Disabled' });
  });
});

describe('etcd value decoding', () => {
  it('reads the provider and key id of a KMS v2 value, and recognises plaintext', () => {
    const body = EncryptedObject.encode({
      encryptedData: Buffer.alloc(40, 1),
      keyID: 'key-1/v2',
      encryptedDEKSource: Buffer.alloc(60, 2),
      encryptedDEKSourceType: 1,
    }).finish();
    const value = Buffer.concat([Buffer.from('k8s:enc:kms:v2:ack-kms-sentinel:'), body]);
    expect(decodeStoredValue(value)).toEqual({
      storage: 'kms-v2',
      providerName: 'ack-kms-sentinel',
      keyId: 'key-1/v2',
      sealedByVersion: 'v2',
      seedDigest: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    // The ACK plugin: a constant key id, the sealing version only in its annotation.
    const ack = EncryptedObject.encode({
      encryptedData: Buffer.alloc(40, 1),
      keyID: 'key-1',
      encryptedDEKSource: Buffer.alloc(60, 2),
      annotations: { 'x-acs-kms-key-version-id.ack.alibabacloud.com': Buffer.from('v7') },
      encryptedDEKSourceType: 1,
    }).finish();
    expect(decodeStoredValue(Buffer.concat([Buffer.from('k8s:enc:kms:v2:ack:'), ack]))).toMatchObject({
      keyId: 'key-1',
      sealedByVersion: 'v7',
    });
    expect(decodeStoredValue(Buffer.from('k8s\u0000\n\u000fv1\u0012\u0006Secret', 'latin1'))).toEqual({
      storage: 'identity',
    });
    expect(decodeStoredValue(Buffer.from('k8s:enc:aescbc:v1:key1:xxxx'))).toEqual({ storage: 'other' });
    expect(decodeStoredValue(Buffer.from('k8s:enc:kms:v2:broken'))).toEqual({ storage: 'other' });
  });

  it('summarises per key id', () => {
    expect(
      summarize([
        { namespace: 'a', name: '1', storage: 'kms-v2', keyId: 'k/1', sealedByVersion: '1', modRevision: 1 },
        { namespace: 'a', name: '2', storage: 'kms-v2', keyId: 'k/2', sealedByVersion: '2', modRevision: 2 },
        { namespace: 'b', name: '3', storage: 'kms-v2', keyId: 'k', modRevision: 3 },
        { namespace: 'b', name: '4', storage: 'identity', modRevision: 4 },
      ]),
    ).toEqual({
      total: 4,
      plaintext: 1,
      byKeyId: { 'k/1': 1, 'k/2': 1, k: 1, identity: 1 },
      bySealingVersion: { '1': 1, '2': 1, unknown: 1 },
    });
  });
});

describe('etcd evidence reads', () => {
  it('retry a page etcd failed to answer (503), and not a request it refused (400)', async () => {
    const answers = [503, 200, 400];
    let requests = 0;
    const srv = createServer((req, res) => {
      requests++;
      req.resume();
      const code = answers.shift() ?? 500;
      res.writeHead(code, { 'content-type': 'application/json' });
      const plaintext = Buffer.from('k8s\u0000\n\u000fv1\u0012\u0006Secret', 'latin1').toString('base64');
      const kv = {
        key: Buffer.from('/registry/secrets/app/db').toString('base64'),
        value: plaintext,
        mod_revision: '7',
      };
      res.end(JSON.stringify(code === 200 ? { kvs: [kv], more: false } : { error: `answered ${code}` }));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const etcd = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      expect(await readSecretEvidence(etcd)).toEqual([
        { namespace: 'app', name: 'db', storage: 'identity', modRevision: 7 },
      ]);
      expect(requests).toBe(2);
      await expect(readSecretEvidence(etcd)).rejects.toThrow(/etcd range failed: HTTP 400/);
      expect(requests).toBe(3);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
