import { describe, expect, it } from 'vitest';
import {
  CLOCK_MARGIN_MS,
  judgeSealing,
  keyIdHash,
  MetricsUnreadable,
  parseApiServerMetrics,
  readSealingEvidence,
  sampleApiServers,
} from '../../shared/cluster/sealing';

/** `/metrics` as kube-apiserver v1.36 writes it (lines captured from the sandbox, other metrics left out). */
const CMK = 'key-sandbox-0001';
/** An API server's identity (its lease's name) and the hash its metrics label it with. */
const API_A_ID = 'kube-apiserver-a_3f0c7d2e';
const API_A = keyIdHash(API_A_ID);
const API_B = 'sha256:0b1f5e0c2d0c4f3e0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f';
const t = (iso: string) => Date.parse(iso) / 1000;
function metrics(o: {
  api?: string;
  start: string;
  status: Array<[keyId: string, last: string]>;
  writes?: Array<[keyId: string, n: number]>;
  /** Encrypt calls the API server made to the plugin, by gRPC status code (each one that succeeded sealed a seed). */
  encrypts?: Array<[code: string, n: number]>;
  /** When the API server last wrote with each key id's seed. */
  lastWrites?: Array<[keyId: string, last: string]>;
}) {
  const api = o.api ?? API_A;
  return [
    `# HELP ${'apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds'} [ALPHA] The last time in seconds when a keyID was returned by the Status RPC call.`,
    ...o.status.map(
      ([k, last]) =>
        `apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds{apiserver_id_hash="${api}",key_id_hash="${keyIdHash(k)}",provider_name="ack-kms-sentinel"} ${t(last)}`,
    ),
    ...(o.writes ?? []).map(
      ([k, n]) =>
        `apiserver_envelope_encryption_key_id_hash_total{apiserver_id_hash="${api}",key_id_hash="${keyIdHash(k)}",provider_name="ack-kms-sentinel",transformation_type="to_storage"} ${n}`,
    ),
    `apiserver_envelope_encryption_key_id_hash_total{apiserver_id_hash="${api}",key_id_hash="${keyIdHash(o.status[0]?.[0] ?? '')}",provider_name="ack-kms-sentinel",transformation_type="from_storage"} 999`,
    ...(o.encrypts ?? []).flatMap(([code, n]) => [
      `apiserver_envelope_encryption_kms_operations_latency_seconds_bucket{grpc_status_code="${code}",method_name="/v2.KeyManagementService/Encrypt",provider_name="ack-kms-sentinel",le="+Inf"} ${n}`,
      `apiserver_envelope_encryption_kms_operations_latency_seconds_count{grpc_status_code="${code}",method_name="/v2.KeyManagementService/Encrypt",provider_name="ack-kms-sentinel"} ${n}`,
    ]),
    ...(o.lastWrites ?? []).flatMap(([k, last]) => [
      `apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds{apiserver_id_hash="${api}",key_id_hash="${keyIdHash(k)}",provider_name="ack-kms-sentinel",transformation_type="to_storage"} ${t(last)}`,
      // Reads (from_storage) with an old seed are expected: Secrets not rewritten yet.
      `apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds{apiserver_id_hash="${api}",key_id_hash="${keyIdHash(`${CMK}/v1`)}",provider_name="ack-kms-sentinel",transformation_type="from_storage"} ${t('2026-12-01T10:09:00Z')}`,
    ]),
    // Status and Decrypt calls are not seeds.
    `apiserver_envelope_encryption_kms_operations_latency_seconds_count{grpc_status_code="OK",method_name="/v2.KeyManagementService/Status",provider_name="ack-kms-sentinel"} 77`,
    `apiserver_envelope_encryption_kms_operations_latency_seconds_count{grpc_status_code="OK",method_name="/v2.KeyManagementService/Decrypt",provider_name="ack-kms-sentinel"} 5`,
    '# TYPE process_start_time_seconds gauge',
    `process_start_time_seconds ${t(o.start)}`,
    '',
  ].join('\n');
}
const ROTATED = new Date('2026-12-01T10:00:00Z');
/** The judged key: versioned plugins in these tests report `<cmk>/v1`, then `<cmk>/v2`. */
const KEY = { keyId: CMK, primaryKeyVersion: 'v2' };

/**
 * An API server started at 09:00 whose plugin reported v1 (last at `oldLast`) and then v2 after the rotation,
 * judged with `more` of its metrics.
 */
function judgeRotation(
  more: Omit<Parameters<typeof metrics>[0], 'start' | 'status'> & { oldLast?: string } = {},
) {
  const { oldLast = '2026-12-01T09:59:30Z', ...rest } = more;
  const sample = parseApiServerMetrics(
    metrics({
      start: '2026-12-01T09:00:00Z',
      status: [
        [`${CMK}/v1`, oldLast],
        [`${CMK}/v2`, '2026-12-01T10:00:40Z'],
      ],
      ...rest,
    }),
  );
  return judgeSealing(sample ? [sample] : [], ROTATED, KEY, 'leases');
}

describe('the API servers’ sealing evidence', () => {
  it('parses what kube-apiserver publishes: its identity, start and Status key ids', () => {
    const sample = parseApiServerMetrics(
      metrics({
        start: '2026-12-01T09:00:00Z',
        status: [
          [`${CMK}/v1`, '2026-12-01T09:59:30Z'],
          [`${CMK}/v2`, '2026-12-01T10:00:40Z'],
        ],
        writes: [[`${CMK}/v2`, 42]],
      }),
    );
    expect(sample).toEqual({
      apiServerIdHash: API_A,
      startedAt: new Date('2026-12-01T09:00:00Z'),
      statusKeyIds: [
        { keyIdHash: keyIdHash(`${CMK}/v1`), last: new Date('2026-12-01T09:59:30Z') },
        { keyIdHash: keyIdHash(`${CMK}/v2`), last: new Date('2026-12-01T10:00:40Z') },
      ],
    });
    expect(parseApiServerMetrics('process_start_time_seconds 1.7e9\n'), 'no KMS v2 metrics').toBeUndefined();
  });

  it('(a) a plugin that reports a new key id after the rotation: effective', () => {
    const e = judgeRotation();
    expect(e).toMatchObject({
      verdict: 'effective',
      constantKeyId: false,
      apiServers: [{ state: 'new-key-id' }],
    });
    expect(e.token).toMatch(/^[0-9a-f]{12}$/);
  });

  it('a new key id whose seed the plugin has not sealed (its Encrypt failed) is no adoption yet: not effective, and says why', () => {
    // kube-apiserver records Status's key id, then asks the plugin to seal a new seed; when that Encrypt fails
    // it keeps writing with the old seed until a later Status call tries again.
    const judged = (encrypts: Array<[string, number]>) => judgeRotation({ encrypts });
    // One seed at start (v1), and the one for v2 refused.
    const pending = judged([
      ['OK', 1],
      ['Internal', 1],
    ]);
    expect(pending).toMatchObject({ verdict: 'not-effective', apiServers: [{ state: 'seed-pending' }] });
    expect(pending.reason).toContain('have not sealed a seed for it');
    expect(pending.token).toBeUndefined();
    // The next Status call's retry sealed it: two seeds for two key ids.
    expect(
      judged([
        ['OK', 2],
        ['Internal', 1],
      ]),
    ).toMatchObject({ verdict: 'effective', apiServers: [{ state: 'new-key-id' }] });
    // An API server that does not publish its KMS calls is judged on Status alone, as before.
    expect(judged([]).verdict).toBe('effective');
  });

  it('a write with the old seed after Status last reported the new key id: the change failed, whatever the Encrypt count', () => {
    // An Encrypt that succeeded but answered another key id leaves the old seed in place (and counts as OK).
    const judged = (oldWrite: string) =>
      judgeRotation({
        encrypts: [['OK', 2]],
        lastWrites: [
          [`${CMK}/v1`, oldWrite],
          [`${CMK}/v2`, '2026-12-01T10:00:50Z'],
        ],
      }).apiServers[0]?.state;
    expect(judged('2026-12-01T10:02:00Z')).toBe('seed-pending');
    // Written before the new key id was reported: the old seed's last write before the switch.
    expect(judged('2026-12-01T10:00:10Z')).toBe('new-key-id');
  });

  it('counts the seeds sealed by the provider that encrypts writes, from its successful Encrypt calls only', () => {
    const sample = parseApiServerMetrics(
      metrics({
        start: '2026-12-01T09:00:00Z',
        status: [[`${CMK}/v1`, '2026-12-01T09:59:30Z']],
        encrypts: [
          ['OK', 3],
          ['DeadlineExceeded', 2],
        ],
      }),
    );
    expect(sample?.seedsSealed).toBe(3);
    expect(
      parseApiServerMetrics(
        metrics({ start: '2026-12-01T09:00:00Z', status: [[CMK, '2026-12-01T09:59:30Z']] }),
      ),
    ).not.toHaveProperty('seedsSealed');
  });

  it("(a) also when the old key id's last Status was a skipped poll tick before the rotation (up to 80 s)", () => {
    // kube-apiserver polls Status every 60 s, but a tick finding a health probe's answer younger than 20 s
    // skips the call: the old key id can have been reported last 79 s before the rotation.
    const judged = (oldLast: string) => judgeRotation({ oldLast }).apiServers[0]?.state;
    expect(judged('2026-12-01T09:58:41Z')).toBe('new-key-id');
    // A key id last reported long before the rotation is another, older change: no evidence for this one.
    expect(judged('2026-12-01T09:57:00Z')).toBe('stale-seed');
  });

  it('(c) the ACK plugin: the CMK id as key id, no restart since the rotation: not effective, and says why', () => {
    const sample = parseApiServerMetrics(
      metrics({ start: '2026-12-01T09:00:00Z', status: [[CMK, '2026-12-01T10:05:00Z']] }),
    );
    const e = judgeSealing(sample ? [sample] : [], ROTATED, KEY, 'leases');
    expect(e).toMatchObject({
      verdict: 'not-effective',
      constantKeyId: true,
      apiServers: [{ state: 'stale-seed' }],
    });
    expect(e.reason).toContain('CMK id');
    expect(e.token).toBeUndefined();
  });

  it('(b) every API server started after the rotation: effective; one that did not is enough to say no', () => {
    const a = parseApiServerMetrics(
      metrics({ start: '2026-12-01T10:03:00Z', status: [[CMK, '2026-12-01T10:05:00Z']] }),
    );
    const b = parseApiServerMetrics(
      metrics({ api: API_B, start: '2026-12-01T08:00:00Z', status: [[CMK, '2026-12-01T10:05:00Z']] }),
    );
    if (!a || !b) throw new Error('unparsed');
    expect(judgeSealing([a], ROTATED, KEY, 'leases')).toMatchObject({
      verdict: 'effective',
      apiServers: [{ state: 'restarted' }],
    });
    expect(judgeSealing([a, b], ROTATED, KEY, 'leases')).toMatchObject({
      verdict: 'not-effective',
      apiServers: [{ state: 'restarted' }, { state: 'stale-seed' }],
    });
    expect(judgeSealing([a], ROTATED, KEY, 'leases').token, 'a restart names new evidence').not.toBe(
      judgeSealing([{ ...a, startedAt: new Date('2026-12-01T10:30:00Z') }], ROTATED, KEY, 'leases').token,
    );
  });

  it('a key id change long before this rotation is not this rotation’s adoption', () => {
    const sample = parseApiServerMetrics(
      metrics({
        start: '2026-12-01T06:00:00Z',
        status: [
          [`${CMK}/v0`, '2026-12-01T07:00:00Z'],
          [`${CMK}/v1`, '2026-12-01T10:05:00Z'],
        ],
      }),
    );
    expect(judgeSealing(sample ? [sample] : [], ROTATED, KEY, 'leases').verdict).toBe('not-effective');
  });

  it('with two KMS providers (a key migration), judges only the one that encrypts writes', () => {
    const statusLine = (provider: string, keyId: string, last: string) =>
      `apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds{apiserver_id_hash="${API_A}",key_id_hash="${keyIdHash(keyId)}",provider_name="${provider}"} ${t(last)}`;
    const text = [
      // The reading provider's key ids change every minute in this story; the writing one's never did.
      statusLine('old', 'other-key/1', '2026-12-01T09:59:50Z'),
      statusLine('old', 'other-key/2', '2026-12-01T10:05:00Z'),
      statusLine('ack', CMK, '2026-12-01T10:05:00Z'),
      `apiserver_envelope_encryption_key_id_hash_total{apiserver_id_hash="${API_A}",key_id_hash="${keyIdHash(CMK)}",provider_name="ack",transformation_type="to_storage"} 12`,
      `process_start_time_seconds ${t('2026-12-01T09:00:00Z')}`,
    ].join('\n');
    const sample = parseApiServerMetrics(text);
    expect(sample?.statusKeyIds).toEqual([
      { keyIdHash: keyIdHash(CMK), last: new Date('2026-12-01T10:05:00Z') },
    ]);
    expect(judgeSealing(sample ? [sample] : [], ROTATED, KEY, 'leases').verdict).toBe('not-effective');
    // Without writes yet, two providers cannot be told apart: nothing is proven.
    expect(parseApiServerMetrics(text.replace(/.*to_storage.*\n/, ''))).toBeUndefined();
  });

  it('a never-rotated key (its LastRotationDate is its creation) is sealed under its only version; a missing or unreadable date proves nothing', async () => {
    const body = metrics({ start: '2026-12-01T09:00:00Z', status: [[CMK, '2026-12-01T10:05:00Z']] });
    const source = {
      getRaw: async () => ({ status: 200, body }),
      apiServerIdentities: async () => [API_A_ID],
    };
    const judged = async (lastRotationDate?: string) =>
      (
        await readSealingEvidence(source, {
          keyId: CMK,
          primaryKeyVersion: 'v1',
          ...(lastRotationDate ? { lastRotationDate } : {}),
        })
      ).verdict;
    expect(await judged('2026-11-01T00:00:00Z')).toBe('effective');
    expect(await judged()).toBe('unproven');
    expect(await judged('yesterday')).toBe('unproven');
  });

  it('samples on new connections until no new API server answers; refuses what it cannot read', async () => {
    const bodies = [API_A, API_B, API_A, API_B, API_A, API_A, API_B, API_A, API_B].map((api) =>
      metrics({ api, start: '2026-12-01T09:00:00Z', status: [[CMK, '2026-12-01T10:05:00Z']] }),
    );
    let calls = 0;
    const samples = await sampleApiServers(async () => ({ status: 200, body: bodies[calls++] ?? '' }), {
      quietAfter: 4,
    });
    expect(samples.map((s) => s.apiServerIdHash).sort()).toEqual([API_B, API_A].sort());
    expect(calls).toBe(6);
    await expect(sampleApiServers(async () => ({ status: 403, body: 'forbidden' }))).rejects.toBeInstanceOf(
      MetricsUnreadable,
    );
    // Knowing the API servers (their identity leases): sampled until each has answered; one that never does
    // leaves nothing proven.
    calls = 0;
    const known = await sampleApiServers(async () => ({ status: 200, body: bodies[calls++] ?? '' }), {
      expected: [API_A, API_B],
    });
    expect(known.map((s) => s.apiServerIdHash).sort()).toEqual([API_A, API_B].sort());
    expect(calls, 'stops as soon as both answered').toBe(2);
    const onlyA = metrics({ start: '2026-12-01T09:00:00Z', status: [[CMK, '2026-12-01T10:05:00Z']] });
    await expect(
      sampleApiServers(async () => ({ status: 200, body: onlyA }), { expected: [API_A, API_B] }),
    ).rejects.toThrow(/1 of 2 API server\(s\) never answered \/metrics in 8 tries/);
    // A failing API server is not "nothing to prove": it is thrown, and the invocation retried.
    const failing = sampleApiServers(async () => ({ status: 503, body: 'unavailable' }));
    await expect(failing).rejects.toThrow(/HTTP 503/);
    await expect(failing).rejects.not.toBeInstanceOf(MetricsUnreadable);
    // Retryable in the taxonomy: the webhook answers 503 (try again), not 502 (the upstream refused).
    await expect(failing).rejects.toMatchObject({
      kind: 'retryable',
      statusCode: 503,
      code: 'MetricsUnavailable',
    });
    await expect(sampleApiServers(async () => ({ status: 200, body: '# nothing\n' }))).rejects.toThrow(
      /no KMS v2 envelope metrics/,
    );
  });
});

/** The ACK plugin's case: the CMK id as key id, an API server started at `start` (and reloaded at `reload`). */
const constantId = (start: string, o: { api?: string; reload?: string } = {}) =>
  metrics({ start, status: [[CMK, '2026-12-01T10:05:00Z']], ...(o.api ? { api: o.api } : {}) }) +
  (o.reload
    ? `apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash="${o.api ?? API_A}",status="success"} ${t(o.reload)}\n`
    : '');

describe('the proof policy: never more than the API servers showed', () => {
  const AFTER = '2026-12-01T10:03:00Z';
  const judge = async (bodies: string[], o: { leases?: string[]; apiServers?: number } = {}) => {
    let call = 0;
    return readSealingEvidence(
      {
        getRaw: async () => ({ status: 200, body: bodies[call++ % bodies.length] ?? '' }),
        apiServerIdentities: async () => o.leases,
      },
      { keyId: CMK, primaryKeyVersion: 'v2', lastRotationDate: ROTATED.toISOString() },
      o.apiServers ? { apiServers: o.apiServers } : {},
    );
  };

  it('a set of API servers only sampled never proves: the leases or a stated count must say how many there are', async () => {
    const both = [constantId(AFTER), constantId(AFTER, { api: API_B })];
    const sampled = await judge(both);
    expect(sampled.verdict).toBe('unproven');
    expect(sampled.reason).toMatch(/how many serve the cluster is not known.*SENTINEL_API_SERVERS/);
    expect(sampled.apiServers).toHaveLength(2);
    expect((await judge(both, { apiServers: 2 })).verdict).toBe('effective');
    // A problem is found all the same without a known set.
    expect(
      (await judge([constantId(AFTER), constantId('2026-12-01T08:00:00Z', { api: API_B })])).verdict,
    ).toBe('not-effective');
  });

  it('a load balancer that keeps the suite on one of two API servers: unproven, whether the set comes from the leases or a count', async () => {
    const stuck = [constantId(AFTER)];
    const leased = await judge(stuck, { leases: [API_A_ID, 'kube-apiserver-b_9a1'] });
    expect(leased.verdict).toBe('unproven');
    expect(leased.reason).toMatch(/1 of 2 API server\(s\) never answered/);
    expect((await judge(stuck, { apiServers: 2 })).verdict).toBe('unproven');
    expect((await judge(stuck, { leases: [API_A_ID] })).verdict).toBe('effective');
  });

  it('refuses a /metrics answer that carries more than one apiserver_id_hash', async () => {
    const merged = `${constantId(AFTER)}${constantId(AFTER, { api: API_B })}`;
    expect(() => parseApiServerMetrics(merged)).toThrow(MetricsUnreadable);
    const e = await judge([merged], { apiServers: 1 });
    expect(e.verdict).toBe('unproven');
    expect(e.reason).toMatch(/carried 2 apiserver_id_hash values/);
  });

  it('a restart counts only at least the clock margin after LastRotationDate', async () => {
    const at = (ms: number) => new Date(ROTATED.getTime() + ms).toISOString();
    expect((await judge([constantId(at(1_000))], { apiServers: 1 })).verdict).toBe('not-effective');
    expect((await judge([constantId(at(CLOCK_MARGIN_MS))], { apiServers: 1 })).verdict).toBe('effective');
  });

  it('a successful automatic reload of the encryption configuration after the rotation is a new seed', async () => {
    const reloaded = await judge([constantId('2026-12-01T08:00:00Z', { reload: AFTER })], { apiServers: 1 });
    expect(reloaded).toMatchObject({ verdict: 'effective', apiServers: [{ state: 'reloaded' }] });
    const before = await judge([constantId('2026-12-01T08:00:00Z', { reload: '2026-12-01T09:00:00Z' })], {
      apiServers: 1,
    });
    expect(before).toMatchObject({ verdict: 'not-effective', apiServers: [{ state: 'stale-seed' }] });
  });

  it('a server sealing under a key id that is not the judged key is not proof, however new its seed', async () => {
    const other = metrics({ start: AFTER, status: [['key-other-cmk', '2026-12-01T10:05:00Z']] });
    const e = await judge([other], { apiServers: 1 });
    expect(e).toMatchObject({ verdict: 'unproven', apiServers: [{ state: 'other-key' }] });
    expect(e.reason).toMatch(/neither the CMK id/);
    // A plugin that names the version is bound by the judged version.
    const named = metrics({ start: AFTER, status: [[`${CMK}/v2`, '2026-12-01T10:05:00Z']] });
    expect((await judge([named], { apiServers: 1 })).verdict).toBe('effective');
  });

  it('Kubernetes 1.28 (no apiserver_id_hash), KMS v1 and filtered metrics each say why and what to do', async () => {
    const unlabelled = constantId(AFTER).replaceAll(/apiserver_id_hash="[^"]*",?/g, '');
    expect((await judge([unlabelled], { apiServers: 1 })).reason).toMatch(/1\.28 or older.*upgrade/);
    const v1 =
      '# TYPE apiserver_storage_transformation_operations_total counter\n' +
      'apiserver_storage_transformation_operations_total{status="OK",transformation_type="to_storage",transformer_prefix="k8s:enc:kms:v1:ack:"} 12\n' +
      `process_start_time_seconds ${t(AFTER)}\n`;
    expect((await judge([v1], { apiServers: 1 })).reason).toMatch(/KMS v1.*migrate/);
    const filtered = `process_start_time_seconds ${t(AFTER)}\n`;
    expect((await judge([filtered], { apiServers: 1 })).reason).toMatch(/filtered/);
  });

  it('reads label values with escaped quotes and commas', () => {
    const body = constantId(AFTER).replace('provider_name="ack-kms-sentinel"', 'provider_name="a\\"b,c"');
    expect(parseApiServerMetrics(body)?.apiServerIdHash).toBe(API_A);
  });
});
