import { execFile, execFileSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as $Kms from '@alicloud/kms20160120';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudEmulator, TRAIL_LOGSTORE, TRAIL_PROJECT } from '../../sandbox/cloud/emulator';
import { emulatorClients } from '../helpers/emulator';

/**
 * `npm run build` as it runs on a laptop where npm installed no linux-x64 lz4 binary (macOS, arm64): a copy
 * of the checkout whose node_modules lacks lz4-napi and every @antoniomuso prebuilt. The bundles must build,
 * load, and read the trail logstore (PullLogs, deflate through node:zlib) without them.
 */
const root = join(__dirname, '..', '..');
const NATIVE = ['lz4-napi', '@antoniomuso'];
let work: string;
let cloud: CloudEmulator;

/** The checkout's sources, copied; node_modules, linked entry by entry, less the native lz4. */
function checkoutWithoutLz4(): string {
  const dir = mkdtempSync(join(tmpdir(), 'build-no-lz4-'));
  for (const entry of ['functions', 'shared', 'deploy', 'bin', 'types', 'package.json', 'tsconfig.json'])
    cpSync(join(root, entry), join(dir, entry), { recursive: true });
  mkdirSync(join(dir, 'node_modules'));
  for (const entry of readdirSync(join(root, 'node_modules'))) {
    if (NATIVE.includes(entry)) continue;
    symlinkSync(join(root, 'node_modules', entry), join(dir, 'node_modules', entry));
  }
  return dir;
}

beforeAll(async () => {
  work = checkoutWithoutLz4();
  await promisify(execFile)('bash', [join(work, 'deploy/build.sh')], { cwd: work });
  cloud = await CloudEmulator.start();
  // The functions' and the CLI's bundles: 30 s alone, several minutes on the shared 2-core machine.
}, 420_000);

afterAll(async () => {
  await cloud?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the build on a machine without the native lz4 addon', () => {
  it('names no platform-specific package and ships no native binary', () => {
    const script = readFileSync(join(root, 'deploy/build.sh'), 'utf8');
    expect(script).not.toMatch(/@antoniomuso|linux-x64|darwin|\.node\b/);
    const shipped = readdirSync(join(work, 'dist/functions'), { recursive: true }).map(String);
    expect(shipped.filter((f) => f.endsWith('.node') || f.includes('lz4-napi'))).toEqual([]);
  });

  it.each(['rotation-watch', 'reencrypt', 'trail-verify', 'audit', 'webhook'])(
    'the %s bundle loads on its own, far from any node_modules',
    (fn) => {
      const dir = mkdtempSync(join(tmpdir(), `alone-${fn}-`));
      cpSync(join(work, 'dist/functions', fn), dir, { recursive: true });
      const out = execFileSync(
        process.execPath,
        ['-e', "process.stdout.write(typeof require('./index.js').handler)"],
        { cwd: dir },
      ).toString();
      expect(out).toBe('function');
      rmSync(dir, { recursive: true, force: true });
    },
  );

  it('reads the trail logstore (PullLogs) with the SLS SDK as bundled, lz4 absent', async () => {
    const key = cloud.createKey();
    const plugin = emulatorClients(cloud, cloud.managedRole('c-nolz4'));
    for (let i = 0; i < 3; i++)
      await plugin.kms.encrypt(new $Kms.EncryptRequest({ keyId: key.keyId, plaintext: 'aGk=' }));
    await cloud.idle();
    // The reader, bundled as build.sh bundles the functions (lz4-napi aliased away), run where it is absent.
    const entry = join(work, 'read-trail.ts');
    writeFileSync(
      entry,
      `import { resolveLoopbackSubdomains } from '${join(root, 'sandbox/cloud/dns')}';
       import { readShardRange } from './shared/trail/sls-reader';
       resolveLoopbackSubdomains();
       (async () => {
         const [endpoint, id, secret, end] = process.argv.slice(2);
         let n = 0;
         for await (const batch of readShardRange({ endpoint, project: '${TRAIL_PROJECT}', logstore: '${TRAIL_LOGSTORE}',
           shardId: 0, beginCursor: Buffer.from('0').toString('base64'), endCursor: end }, { accessKeyId: id, accessKeySecret: secret }))
           n += batch.filter((l) => l.topic === 'actiontrail_audit_event').length;
         process.stdout.write(String(n));
       })().catch((e) => { process.stderr.write(String(e)); process.exit(1); });`,
    );
    buildSync({
      entryPoints: [entry],
      absWorkingDir: work,
      bundle: true,
      platform: 'node',
      outfile: join(work, 'read-trail.js'),
      external: ['proxy-agent'],
      alias: { 'lz4-napi': './deploy/lz4-absent.js' },
      logLevel: 'silent',
    });
    const records = cloud.trailRecords().length;
    const endCursor = Buffer.from(String(records)).toString('base64');
    // Asynchronously: the emulator answers from this process.
    const { stdout: out } = await promisify(execFile)(
      process.execPath,
      [join(work, 'read-trail.js'), cloud.url, cloud.user.accessKeyId, cloud.user.accessKeySecret, endCursor],
      { cwd: mkdtempSync(join(tmpdir(), 'reader-')) },
    );
    expect(Number(out)).toBe(records);
    expect(records).toBeGreaterThanOrEqual(3);
  }, 60_000);
});
