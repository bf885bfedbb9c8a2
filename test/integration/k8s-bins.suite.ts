import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binDir, ensureBinaries, K8S_VERSION } from '../../sandbox/k8s-bins';

/** The binaries the global setup built (or found cached) are the pinned ones, built the documented way. */
describe('the Kubernetes binaries from the Go module proxy', () => {
  it('are the pinned version, and etcd is the one Kubernetes pins', () => {
    const bins = ensureBinaries();
    expect(execFileSync(bins.kubeApiserver, ['--version']).toString().trim()).toBe(
      `Kubernetes v${K8S_VERSION}`,
    );
    expect(execFileSync(bins.kubectl, ['version', '--client']).toString()).toContain(
      `Client Version: v${K8S_VERSION}`,
    );
    const pinnedEtcd = readFileSync(join(binDir(), '..', 'ETCD_VERSION'), 'utf8').trim();
    expect(execFileSync(bins.etcd, ['--version']).toString()).toContain(
      `etcd Version: ${pinnedEtcd.replace(/^v/, '')}`,
    );
  });

  it('replace every staging module that the served k8s.io/kubernetes go.mod lists', () => {
    const wrapper = readFileSync(join(binDir(), '..', 'mod', 'go.mod'), 'utf8');
    const gomodcache = execFileSync('go', ['env', 'GOMODCACHE']).toString().trim();
    const served = readFileSync(
      join(gomodcache, 'cache', 'download', 'k8s.io', 'kubernetes', '@v', `v${K8S_VERSION}.mod`),
      'utf8',
    );
    const staging = [...served.matchAll(/^\s*(k8s\.io\/\S+) => \.\/staging\//gm)].map((m) => m[1]);
    expect(staging.length).toBeGreaterThan(30);
    const minor = `v0.${K8S_VERSION.slice(2)}`;
    for (const module of staging) expect(wrapper).toContain(`${module} => ${module} ${minor}`);
  });

  it('are not rebuilt when the cache holds the pinned version', () => {
    const result = spawnSync('bash', [join(__dirname, '../../sandbox/k8s-bins/build.sh')], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(`k8s-bins: v${K8S_VERSION} cached in`);
  });
});
