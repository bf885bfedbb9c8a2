import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CheckpointBinding, checkpointFile, checkpointKeyFile } from '../../bin/checkpoint-file';
import { firstContinuation } from '../../shared/jobs/run';

/**
 * The CLI's --checkpoint file as an attacker who can write to its directory meets it: a link planted at its
 * name or at the name it is written through, a checkpoint planted or edited, one from another run.
 */
const saved = process.env.XDG_CONFIG_HOME;
beforeAll(() => {
  process.env.XDG_CONFIG_HOME = mkdtempSync(join(tmpdir(), 'ckpt-config-'));
});
afterAll(() => {
  if (saved === undefined) delete process.env.XDG_CONFIG_HOME;
  else process.env.XDG_CONFIG_HOME = saved;
});

const BINDING: CheckpointBinding = { cluster: 'https://10.0.0.1:6443', strategy: 'annotate' };
const fresh = () => firstContinuation('v-2', new Date('2026-12-01T00:00:00Z'), 'sweeping');

/** A directory with a checkpoint written by a run that got as far as `counters`. */
async function written(binding = BINDING) {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
  const file = join(dir, 'sweep.json');
  await checkpointFile(file, fresh(), binding).store.progress('sweeping', 1, {
    targetKeyVersionId: 'v-2',
    strategy: binding.strategy,
    namespaceIndex: 1,
    resumeAfter: 'default/s-40',
    counters: { total: 40, rewritten: 40, alreadyCurrent: 0, gone: 0, failed: 0 },
  });
  return { dir, file };
}

describe('the checkpoint file', () => {
  it('resumes from what it wrote, and keeps its key to this user', async () => {
    const { file } = await written();
    const { from } = checkpointFile(file, fresh(), BINDING);
    expect(from.sweep?.counters.rewritten).toBe(40);
    expect(statSync(file).mode & 0o077, 'the checkpoint: this user only').toBe(0);
    expect(statSync(checkpointKeyFile()).mode & 0o777).toBe(0o600);
  });

  it('is never written through a link planted at the name it is written through', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep\n');
    const file = join(dir, 'sweep.json');
    // The old code wrote `<file>.tmp`, then renamed it: a link there sent the write to the victim.
    symlinkSync(victim, `${file}.tmp`);
    const { store } = checkpointFile(file, fresh(), BINDING);
    await store.progress('sweeping', 1);
    expect(readFileSync(victim, 'utf8')).toBe('keep\n');
    expect(lstatSync(file).isFile()).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp') && f !== 'sweep.json.tmp')).toEqual([]);
  });

  it('is never read through a link, one to a checkpoint of its own included', async () => {
    const { dir, file } = await written();
    const link = join(dir, 'link.json');
    symlinkSync(file, link);
    expect(() => checkpointFile(link, fresh(), BINDING)).toThrow(/is a symbolic link/);
  });

  it('refuses a checkpoint that does not verify: planted, or edited to claim more', async () => {
    const { file } = await written();
    const edited = JSON.parse(readFileSync(file, 'utf8'));
    edited.sweep.counters.rewritten = 3;
    edited.phase = 'verifying';
    writeFileSync(file, JSON.stringify(edited));
    expect(() => checkpointFile(file, fresh(), BINDING)).toThrow(/does not verify/);
    const { mac: _m, cluster: _c, strategy: _s, ...plain } = edited;
    writeFileSync(file, JSON.stringify(plain));
    expect(() => checkpointFile(file, fresh(), BINDING)).toThrow(/does not verify/);
  });

  it('belongs to its cluster, key version and strategy', async () => {
    const { file } = await written();
    expect(() => checkpointFile(file, fresh(), { ...BINDING, cluster: 'https://10.9.9.9:6443' })).toThrow(
      /belongs to cluster https:\/\/10\.0\.0\.1:6443, not https:\/\/10\.9\.9\.9:6443/,
    );
    expect(() => checkpointFile(file, fresh(), { ...BINDING, strategy: 'stale-only' })).toThrow(
      /belongs to --strategy annotate, not stale-only/,
    );
    expect(() => checkpointFile(file, firstContinuation('v-3', new Date(), 'sweeping'), BINDING)).toThrow(
      /belongs to key version v-2, not v-3/,
    );
    expect(existsSync(file), 'refused, not removed').toBe(true);
  });

  it('refuses a key file others can read', async () => {
    const { file } = await written();
    const { chmodSync } = await import('node:fs');
    chmodSync(checkpointKeyFile(), 0o644);
    try {
      expect(() => checkpointFile(file, fresh(), BINDING)).toThrow(/no one else can read/);
    } finally {
      chmodSync(checkpointKeyFile(), 0o600);
    }
  });
});
