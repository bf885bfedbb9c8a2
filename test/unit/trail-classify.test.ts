import { describe, expect, it } from 'vitest';
import { type ActionTrailEvent, parseActionTrailEvent } from '../../shared/events';
import { classify, summarize } from '../../shared/trail/classify';
import { fixture } from '../helpers/fixtures';

const base = () => parseActionTrailEvent(fixture('actiontrail-encrypt-managed-role.json'));
const watched = { keys: new Set(['key-hzz630494463ejqjx0001']), clusters: new Set(['c-1']) };
const user = { type: 'ram-user', userName: 'ops' };
const write = (
  eventName: string,
  requestParameters: Record<string, unknown>,
  serviceName = 'Kms',
): ActionTrailEvent => ({
  ...base(),
  eventName,
  serviceName,
  eventRW: 'Write',
  userIdentity: user,
  requestParameters,
});

describe('classifying ActionTrail events', () => {
  it('encryption activity and refusals by the managed role', () => {
    expect(classify(base(), watched)).toMatchObject({
      kind: 'encryption-activity',
      severity: 'info',
      keyId: 'key-hzz630494463ejqjx0001',
    });
    const refused = { ...base(), eventName: 'Decrypt', errorCode: 'Rejected.Disabled' };
    expect(classify(refused, watched)).toMatchObject({
      kind: 'kms-refusal',
      severity: 'critical',
      summary: expect.stringContaining('Rejected.Disabled'),
    });
    expect(classify({ ...base(), userIdentity: user }, watched)).toBeUndefined();
    expect(classify({ ...base(), requestParameters: { KeyId: 'key-other' } }, watched)).toBeUndefined();
  });

  it.each([
    ['DisableKey', { KeyId: 'key-hzz630494463ejqjx0001' }, 'Kms', /disabled/],
    [
      'ScheduleKeyDeletion',
      { KeyId: 'key-hzz630494463ejqjx0001', PendingWindowInDays: '7' },
      'Kms',
      /deletion in 7 days/,
    ],
    [
      'UpdateRotationPolicy',
      { KeyId: 'key-hzz630494463ejqjx0001', EnableAutomaticRotation: 'false' },
      'Kms',
      /rotation was turned off/,
    ],
    [
      'SetDeletionProtection',
      {
        ProtectedResourceArn: 'acs:kms:cn-hangzhou:1:key/key-hzz630494463ejqjx0001',
        EnableDeletionProtection: 'false',
      },
      'Kms',
      /deletion protection/,
    ],
    [
      'UpdateKMSEncryption',
      { ClusterId: 'c-1', disable_encryption: true },
      'CS',
      /Secret encryption at rest was turned off/,
    ],
  ] as const)('%s on something in use is critical', (name, params, service, summary) => {
    expect(classify(write(name, params, service), watched)).toMatchObject({
      kind: 'sensitive-change',
      severity: 'critical',
      summary: expect.stringMatching(summary),
    });
  });

  it('ignores harmless writes and anything not in use', () => {
    expect(
      classify(
        write('UpdateRotationPolicy', {
          KeyId: 'key-hzz630494463ejqjx0001',
          EnableAutomaticRotation: 'true',
        }),
        watched,
      ),
    ).toBeUndefined();
    expect(
      classify(write('UpdateKMSEncryption', { ClusterId: 'c-1', disable_encryption: false }, 'CS'), watched),
    ).toBeUndefined();
    expect(classify(write('DisableKey', { KeyId: 'key-unrelated' }), watched)).toBeUndefined();
    expect(
      classify(
        { ...write('DisableKey', { KeyId: 'key-hzz630494463ejqjx0001' }), errorCode: 'Forbidden.RAM' },
        watched,
      ),
    ).toBeUndefined();
  });

  it("counts only this account's managed role: a same-named role of another account is no evidence", () => {
    const foreign = { ...base(), userIdentity: { ...base().userIdentity, accountId: '9999999999999999' } };
    expect(classify(foreign, watched)).toBeUndefined();
    expect(classify({ ...foreign, errorCode: 'Forbidden.NoPermission' }, watched)).toBeUndefined();
    // With this account known, it decides, whatever the event's recipient says.
    expect(classify(base(), { ...watched, accountId: '1234567890123456' })).toMatchObject({
      kind: 'encryption-activity',
    });
    expect(classify(base(), { ...watched, accountId: '1111111111111111' })).toBeUndefined();
    const { recipientAccountId: _r, ...unknownRecipient } = base();
    expect(classify(unknownRecipient, watched), 'no account to compare with').toBeUndefined();
  });

  it('summarises a batch per key', () => {
    const findings = [base(), base(), { ...base(), eventName: 'Decrypt', errorCode: 'Rejected.Disabled' }]
      .map((e) => classify(e, watched))
      .filter((f) => f !== undefined);
    expect(summarize(5, findings)).toEqual({
      events: 5,
      critical: 1,
      encryptionByKey: {
        'key-hzz630494463ejqjx0001': { ok: 2, refused: 1, last: '2026-11-29T08:12:30.000Z' },
      },
    });
  });
});
