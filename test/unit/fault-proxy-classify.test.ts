import { describe, expect, it } from 'vitest';
import { classify } from '../../sandbox/controlplane/fault-proxy';

const at = (path: string) => new URL(path, 'https://127.0.0.1:6443');

describe('the fault proxy recognises request kinds', () => {
  it.each([
    ['GET', '/api/v1/secrets?limit=500', { verb: 'list', resource: 'secrets', hasContinue: false }],
    [
      'GET',
      '/api/v1/secrets?limit=500&continue=abc',
      { verb: 'list', resource: 'secrets', hasContinue: true },
    ],
    [
      'GET',
      '/api/v1/namespaces/ns1/secrets/s1',
      { verb: 'get', resource: 'secrets', namespace: 'ns1', name: 's1', hasContinue: false },
    ],
    [
      'PATCH',
      '/api/v1/namespaces/ns1/secrets/s1',
      { verb: 'patch', resource: 'secrets', namespace: 'ns1', name: 's1', hasContinue: false },
    ],
    [
      'PUT',
      '/api/v1/namespaces/st/configmaps/job',
      { verb: 'update', resource: 'configmaps', namespace: 'st', name: 'job', hasContinue: false },
    ],
    [
      'POST',
      '/api/v1/namespaces/st/configmaps',
      { verb: 'create', resource: 'configmaps', namespace: 'st', hasContinue: false },
    ],
    [
      'DELETE',
      '/api/v1/namespaces/ns1/secrets/s1',
      { verb: 'delete', resource: 'secrets', namespace: 'ns1', name: 's1', hasContinue: false },
    ],
    [
      'GET',
      '/api/v1/namespaces/ns1/secrets?watch=true',
      { verb: 'watch', resource: 'secrets', namespace: 'ns1', hasContinue: false },
    ],
    [
      'GET',
      '/apis/rbac.authorization.k8s.io/v1/clusterroles',
      { verb: 'list', resource: 'clusterroles', hasContinue: false },
    ],
    ['GET', '/api/v1/namespaces', { verb: 'list', resource: 'namespaces', hasContinue: false }],
    ['GET', '/healthz', { verb: 'other', hasContinue: false }],
  ] as const)('%s %s', (method, path, kind) => {
    expect(classify(method, at(path))).toEqual(kind);
  });
});
