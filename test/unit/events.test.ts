import { describe, expect, it } from 'vitest';
import { PoisonError } from '../../shared/errors';
import {
  cloudEventDedupKey,
  cloudEventService,
  eventClusterId,
  eventKeyId,
  httpBodyBytes,
  isManagedSecurityRole,
  jsonResponse,
  parseActionTrailEvent,
  parseHttpTriggerEvent,
  parseLookupEventsBody,
  parseRotationWatchEvent,
  parseSlsTriggerEvent,
  parseTimerEvent,
  parseTrailCloudEvent,
  parseTrailLogRecord,
  parseTrailVerifyEvent,
} from '../../shared/events';
import { encodeJobPayload, jobIdFor, parseJobPayload } from '../../shared/jobs/payload';
import { fixture, fixtureText } from '../helpers/fixtures';

describe('EventBridge CloudEvents carrying ActionTrail events', () => {
  it('parses a KMS CreateKeyVersion API call from a Buffer, as FC hands it over', () => {
    const event = parseTrailCloudEvent(Buffer.from(fixtureText('eventbridge-kms-create-key-version.json')));
    expect(event.type).toBe('kms:ActionTrail:ApiCall');
    expect(cloudEventService(event)).toBe('kms');
    expect(event.data.eventName).toBe('CreateKeyVersion');
    expect(event.data.eventTime).toEqual(new Date('2026-11-29T08:10:00Z'));
    expect(eventKeyId(event.data)).toBe('key-hzz630494463ejqjx0001');
    expect(cloudEventDedupKey(event)).toBe('acs.kms/7adc8c1a-645d-4476-bdef-5d6fb57f****');
  });

  it('accepts the same event as a string and as an object', () => {
    const text = fixtureText('eventbridge-kms-create-key-version.json');
    expect(parseTrailCloudEvent(text)).toEqual(parseTrailCloudEvent(JSON.parse(text)));
  });

  it('parses a console DisableKey with a string eventVersion and a +08:00 time', () => {
    const event = parseTrailCloudEvent(fixture('eventbridge-kms-disable-key.json'));
    expect(event.data.eventName).toBe('DisableKey');
    expect(event.data.eventVersion).toBe(1);
    expect(event.data.eventTime.toISOString()).toBe('2026-11-29T01:00:00.000Z');
  });

  it('parses an automatic rotation service event', () => {
    const event = parseTrailCloudEvent(fixture('eventbridge-kms-service-rotation.json'));
    expect(event.data.eventType).toBe('AliyunServiceEvent');
    expect(isManagedSecurityRole(event.data.userIdentity)).toBe(false);
  });

  it('parses a CS UpdateKMSEncryption call and finds its cluster', () => {
    const event = parseTrailCloudEvent(fixture('eventbridge-cs-update-kms-encryption.json'));
    expect(cloudEventService(event)).toBe('cs');
    expect(eventClusterId(event.data)).toBe('c8d3a1b2e4f5a6b7c8d9e0f1a2b3c4d5e');
    expect(event.data.requestParameters?.disable_encryption).toBe(true);
  });

  it('refuses an envelope whose type does not match its data', () => {
    const event = fixture('eventbridge-kms-create-key-version.json');
    event.type = 'kms:ActionTrail:ConsoleOperation';
    expect(() => parseTrailCloudEvent(event)).toThrow(
      /data\.eventType: is "ApiCall" but the envelope type says ConsoleOperation/,
    );
  });

  it('refuses a cs type on the kms source', () => {
    const event = fixture('eventbridge-kms-create-key-version.json');
    event.type = 'cs:ActionTrail:ApiCall';
    expect(() => parseTrailCloudEvent(event)).toThrow(
      /type: type "cs:ActionTrail:ApiCall" does not belong to source "acs.kms"/,
    );
  });
});

describe('ActionTrail events from the three places they arrive', () => {
  it('parses a managed-role Encrypt event', () => {
    const event = parseActionTrailEvent(fixture('actiontrail-encrypt-managed-role.json'));
    expect(event.eventName).toBe('Encrypt');
    expect(isManagedSecurityRole(event.userIdentity)).toBe(true);
    expect(eventKeyId(event)).toBe('key-hzz630494463ejqjx0001');
  });

  it('parses an SLS trail logstore record, whose event is a JSON string', () => {
    const record = fixture<Record<string, string>>('sls-trail-record.json');
    const event = parseTrailLogRecord(record, 7);
    expect(event.eventId).toBe('8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b0005');
    expect(() => parseTrailLogRecord({ __topic__: 'actiontrail_audit_event' }, 7)).toThrow(
      /logs\.7\.event: missing/,
    );
    expect(() => parseTrailLogRecord({ event: '{"eventId":' }, 2)).toThrow(/logs\.2\.event: not JSON/);
    const wrong = JSON.parse(record.event ?? '{}');
    wrong.userIdentity = 'root';
    expect(() => parseTrailLogRecord({ event: JSON.stringify(wrong) }, 3)).toThrow(
      /logs\.3\.event\.userIdentity/,
    );
  });

  it('parses a LookupEvents page with its next token and a refused call', () => {
    const page = parseLookupEventsBody(fixture('lookup-events-response.json'));
    expect(page.nextToken).toBe('eyJuZXh0IjoyfQ');
    expect(page.events.map((e) => e.eventName)).toEqual(['Encrypt', 'Decrypt']);
    expect(page.events[1]?.errorCode).toBe('Rejected.Disabled');
    expect(parseLookupEventsBody({ RequestId: 'r', NextToken: '' }).nextToken).toBeUndefined();
    expect(() => parseLookupEventsBody({ Events: [{ eventId: 'x' }] })).toThrow(/Events\.0\.eventName/);
  });

  it('finds key and cluster ids in their other places', () => {
    const base = parseActionTrailEvent(fixture('actiontrail-encrypt-managed-role.json'));
    expect(
      eventKeyId({ ...base, requestParameters: { ProtectedResourceArn: 'acs:kms:cn-hangzhou:1:key/key-9' } }),
    ).toBe('key-9');
    expect(
      eventKeyId({ ...base, requestParameters: {}, referencedResources: { 'ACS::KMS::Key': ['key-7'] } }),
    ).toBe('key-7');
    expect(eventKeyId({ ...base, requestParameters: undefined })).toBeUndefined();
    expect(eventClusterId({ ...base, requestParameters: { cluster_id: 'c-1' } })).toBe('c-1');
    expect(eventClusterId(base)).toBeUndefined();
  });
});

describe('the managed-role matcher', () => {
  const cases: Array<[string, { type: string; userName?: string }, boolean]> = [
    ['the documented form', { type: 'assumed-role', userName: 'aliyuncsmanagedsecurityrole:c123' }, true],
    [
      'console casing of the role',
      { type: 'assumed-role', userName: 'AliyunCSManagedSecurityRole:c123' },
      true,
    ],
    ['upper-case type', { type: 'Assumed-Role', userName: 'ALIYUNCSMANAGEDSECURITYROLE:x' }, true],
    [
      'empty session name still names the role',
      { type: 'assumed-role', userName: 'aliyuncsmanagedsecurityrole:' },
      true,
    ],
    [
      'the role name without a session',
      { type: 'assumed-role', userName: 'aliyuncsmanagedsecurityrole' },
      false,
    ],
    ['a look-alike role', { type: 'assumed-role', userName: 'aliyuncsmanagedsecurityrole2:c123' }, false],
    [
      'a prefix inside another name',
      { type: 'assumed-role', userName: 'myaliyuncsmanagedsecurityrole:c1' },
      false,
    ],
    [
      'a RAM user named like the role',
      { type: 'ram-user', userName: 'aliyuncsmanagedsecurityrole:c123' },
      false,
    ],
    ['root', { type: 'root-account', userName: 'root' }, false],
    ['no user name', { type: 'assumed-role' }, false],
    [
      'the ACS role of ACS clusters',
      { type: 'assumed-role', userName: 'aliyunccmanagedsecurityrole:c1' },
      false,
    ],
  ];
  it.each(cases)('%s', (_label, identity, expected) => {
    expect(isManagedSecurityRole(identity)).toBe(expected);
  });
  it('is false for a missing identity', () => {
    expect(isManagedSecurityRole(undefined)).toBe(false);
  });
});

describe('trigger events', () => {
  it('parses the SLS trigger event and defaults parameter', () => {
    const event = parseSlsTriggerEvent(fixture('sls-trigger.json'));
    expect(event.source.shardId).toBe(0);
    expect(event.source.beginCursor).toBe('MTUwNTM5MDI3NTY1ODcwNzU2Ng==');
    const { parameter: _omit, ...rest } = fixture('sls-trigger.json');
    expect(parseSlsTriggerEvent(rest).parameter).toEqual({});
  });

  it('parses the timer event', () => {
    const event = parseTimerEvent(Buffer.from(fixtureText('timer.json')));
    expect(event.triggerTime).toEqual(new Date('2026-11-29T08:00:00Z'));
    expect(event.payload).toBe('poll');
  });

  it('parses the FC 3.0 HTTP trigger event with lower-cased header names', () => {
    const event = parseHttpTriggerEvent(fixture('http-trigger.json'));
    expect(event.requestContext.http.method).toBe('POST');
    expect(event.headers['idempotency-key']).toBe('b8f9c0d1-2e3f-4a5b-9c6d-7e8f9a0b1c2d');
    expect(httpBodyBytes(event).toString()).toBe('{"reason":"chatops"}');
    const b64 = parseHttpTriggerEvent({
      ...fixture('http-trigger.json'),
      body: 'aGk=',
      isBase64Encoded: true,
    });
    expect(httpBodyBytes(b64).toString()).toBe('hi');
  });

  it('builds the response shape FC expects', () => {
    expect(jsonResponse(404, { error: 'NotFound' })).toEqual({
      statusCode: 404,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      isBase64Encoded: false,
      body: '{"error":"NotFound"}',
    });
  });
});

describe('the re-encryption job payload', () => {
  it('round-trips through its encoding', () => {
    const job = parseJobPayload(fixture('job-payload.json'));
    expect(job.checkpoint?.sweep?.counters.rewritten).toBe(990);
    expect(job.checkpoint?.startedAt).toEqual(new Date('2026-11-29T08:15:02Z'));
    expect(parseJobPayload(encodeJobPayload(job))).toEqual(job);
    const { checkpoint: _c, ...fresh } = job;
    expect(parseJobPayload(encodeJobPayload(fresh)).checkpoint).toBeUndefined();
  });

  it('derives the same job id for the same rotation, and a different one otherwise', () => {
    const a = jobIdFor('c1', 'key-1', 'v2');
    expect(jobIdFor('c1', 'key-1', 'v2')).toBe(a);
    expect(jobIdFor('c1', 'key-1', 'v3')).not.toBe(a);
    expect(jobIdFor('c2', 'key-1', 'v2')).not.toBe(a);
    expect(a).toMatch(/^rj-c1-[0-9a-f]{16}$/);
  });

  it('refuses a job id that does not belong to its rotation', () => {
    const job = fixture('job-payload.json');
    job.keyVersionId = 'another-version';
    expect(() => parseJobPayload(job)).toThrow(/jobId: does not match cluster, key and key version/);
  });

  it('refuses a payload of an unknown version as poison', () => {
    const err = (() => {
      try {
        parseJobPayload({ ...fixture('job-payload.json'), version: 2 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(PoisonError);
    expect((err as PoisonError).path).toBe('version');
    expect((err as PoisonError).retryable).toBe(false);
  });
});

describe('typed events per handler', () => {
  it('a poison event carries what the parser said as its cause', () => {
    const notJson = (() => {
      try {
        parseTimerEvent('{');
      } catch (err) {
        return err as PoisonError;
      }
    })();
    expect(notJson).toBeInstanceOf(PoisonError);
    expect(notJson?.cause).toBeInstanceOf(SyntaxError);
    const wrong = (() => {
      try {
        parseTimerEvent({ triggerName: 'x' });
      } catch (err) {
        return err as PoisonError;
      }
    })();
    expect((wrong?.cause as { issues?: unknown[] })?.issues?.length).toBeGreaterThan(0);
  });

  it('rotation-watch and trail-verify tell their sources apart in one place', () => {
    expect(parseRotationWatchEvent(fixture('timer.json')).kind).toBe('timer');
    expect(parseRotationWatchEvent(fixture('eventbridge-kms-disable-key.json')).kind).toBe('trail');
    expect(parseRotationWatchEvent({ kind: 'start-job', clusterId: 'c-1' })).toEqual({
      kind: 'start-job',
      clusterId: 'c-1',
    });
    expect(() => parseRotationWatchEvent({ kind: 'start-job', clusterId: 'c 1' })).toThrow(/clusterId/);
    expect(() => parseRotationWatchEvent({ kind: 'delete-everything' })).toThrow(PoisonError);
    expect(parseTrailVerifyEvent(fixture('sls-trigger.json')).kind).toBe('sls-trigger');
    expect(parseTrailVerifyEvent(fixture('eventbridge-cs-update-kms-encryption.json')).kind).toBe(
      'cloud-event',
    );
  });
});
