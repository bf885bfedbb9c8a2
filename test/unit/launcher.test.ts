import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';

// The launcher is plain CommonJS (it must start before anything is built).
const { APART, BUNDLES, chooseEntry } = require('../../bin/launch.js') as {
  APART: Record<string, string>;
  BUNDLES: string[];
  chooseEntry: (root: string, canBuild: boolean) => 'bundle' | 'rebuild' | 'missing';
};
interface Metafile {
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
}
const { buildCli } = require('../../bin/build-cli.js') as {
  buildCli: (root: string, outdir: string) => Promise<{ metafile: Metafile }>;
};

/** A checkout with one source file and, optionally, the bundles, with the given modification times (s). */
function checkout(sourceAt: number, bundleAt?: number, bundles = BUNDLES): string {
  const root = mkdtempSync(join(tmpdir(), 'launch-'));
  mkdirSync(join(root, 'shared', 'log'), { recursive: true });
  const source = join(root, 'shared', 'log', 'index.ts');
  writeFileSync(source, 'export {};\n');
  utimesSync(source, sourceAt, sourceAt);
  if (bundleAt !== undefined) {
    mkdirSync(join(root, 'dist'));
    for (const b of bundles) {
      writeFileSync(join(root, 'dist', b), '');
      utimesSync(join(root, 'dist', b), bundleAt, bundleAt);
    }
  }
  return root;
}

describe('the CLI launcher', () => {
  it('runs the bundle when no source is newer, so a start parses one file', () => {
    expect(chooseEntry(checkout(1_000, 2_000), true)).toBe('bundle');
  });

  it('rebuilds when a source changed since the bundle, or the bundle is missing: a checkout never runs stale code', () => {
    expect(chooseEntry(checkout(3_000, 2_000), true)).toBe('rebuild');
    expect(chooseEntry(checkout(3_000), true)).toBe('rebuild');
    // The bundles are made together: one missing is a build to make again.
    expect(chooseEntry(checkout(1_000, 2_000, ['cli.js']), true)).toBe('rebuild');
  });

  it('without esbuild (no dev dependencies) uses the bundle as it is, and says when there is none', () => {
    expect(chooseEntry(checkout(3_000, 2_000), false)).toBe('bundle');
    expect(chooseEntry(checkout(3_000), false)).toBe('missing');
    expect(chooseEntry(checkout(1_000, 2_000, ['cli.js']), false)).toBe('missing');
  });
});

/** How many bytes of a test bundle's comment sameCrc32 may change (4 free bits each: 'p'..DEL stays ASCII). */
const FREE_BYTES = 12;

/**
 * `target` with bits of its trailing comment flipped so that its CRC-32 equals `like`'s (same length). For
 * messages of one length, CRC-32 is affine in the bits, so this is a linear system over GF(2).
 */
function sameCrc32(like: Buffer, target: Buffer): Buffer {
  const start = target.lastIndexOf('p'.repeat(FREE_BYTES));
  const zeros = crc32(Buffer.alloc(target.length));
  const effect = (byte: number, bit: number): number => {
    const d = Buffer.alloc(target.length);
    d[start + byte] = 1 << bit;
    return (crc32(d) ^ zeros) >>> 0;
  };
  // Gaussian elimination keeping, for each pivot row, which free bits make it up.
  const rows: Array<{ value: number; bits: Array<[number, number]> }> = [];
  for (let byte = 0; byte < FREE_BYTES; byte++)
    for (let bit = 0; bit < 4; bit++) {
      let row = { value: effect(byte, bit), bits: [[byte, bit]] as Array<[number, number]> };
      for (const r of rows)
        if ((row.value ^ r.value) >>> 0 < row.value)
          row = { value: (row.value ^ r.value) >>> 0, bits: [...row.bits, ...r.bits] };
      if (!row.value) continue;
      rows.push(row);
      rows.sort((a, b) => b.value - a.value);
    }
  let want = (crc32(like) ^ crc32(target)) >>> 0;
  const flips: Array<[number, number]> = [];
  for (const r of rows)
    if ((want ^ r.value) >>> 0 < want) {
      want = (want ^ r.value) >>> 0;
      flips.push(...r.bits);
    }
  if (want !== 0) throw new Error('no solution with these free bits');
  const out = Buffer.from(target);
  for (const [byte, bit] of flips) out[start + byte] = (out[start + byte] ?? 0) ^ (1 << bit);
  return out;
}

describe('the bundle through V8 code cache', () => {
  const launch = join(__dirname, '../../bin/launch.js');
  /** Loads `bundle` in a fresh process, as the bin does for `command`, and returns what the bundle exported. */
  const load = (bundle: string, command = 'reencrypt'): string =>
    execFileSync(
      process.execPath,
      [
        '-e',
        `process.stdout.write(String(require(${JSON.stringify(launch)}).loadBundle(process.argv[1], process.argv[2]).value))`,
        bundle,
        command,
      ],
      { encoding: 'utf8' },
    );
  const bundleWith = (dir: string, value: string, at: number): string => {
    const bundle = join(dir, 'cli.js');
    // The comment's bytes are free for sameCrc32 to choose.
    const free = 'p'.repeat(FREE_BYTES);
    writeFileSync(
      bundle,
      `exports.value = ${JSON.stringify(value)} + require('node:path').sep; // ${free}\n`,
    );
    utimesSync(bundle, at, at);
    return bundle;
  };
  const stampOf = (cache: string) => JSON.parse(readFileSync(cache, 'utf8').split('\n')[0] ?? '');

  it('writes the cache beside the bundle on the first start, reuses it after, and the bundle behaves the same', () => {
    const dir = mkdtempSync(join(tmpdir(), 'v8cache-'));
    const bundle = bundleWith(dir, 'first', 1_000);
    expect(load(bundle)).toBe('first/');
    const cache = `${bundle}.reencrypt.v8cache`;
    expect(stampOf(cache)).toEqual({
      bundle: createHash('sha256').update(readFileSync(bundle)).digest('hex'),
      node: process.version,
      command: 'reencrypt',
      ok: true,
    });
    const written = statSync(cache).mtimeMs;
    expect(load(bundle)).toBe('first/');
    expect(statSync(cache).mtimeMs).toBe(written);
  });

  it('never runs what another bundle of the same length and time compiled to (V8 checks only the length)', () => {
    // npm gives every file of a package the same mtime: only the content tells two builds apart.
    const dir = mkdtempSync(join(tmpdir(), 'v8cache-'));
    expect(load(bundleWith(dir, 'aaaa', 1_000))).toBe('aaaa/');
    expect(load(bundleWith(dir, 'bbbb', 1_000))).toBe('bbbb/');
  });

  it('never runs what another bundle of the same length and CRC-32 compiled to: the cache is keyed by a content hash', () => {
    // A CRC-32 is no fingerprint: bytes in a comment make any bundle match another's length and CRC-32.
    const dir = mkdtempSync(join(tmpdir(), 'v8cache-'));
    const first = bundleWith(dir, 'aaaa', 1_000);
    const original = readFileSync(first);
    expect(load(first)).toBe('aaaa/');
    const forged = sameCrc32(original, Buffer.from(readFileSync(first, 'utf8').replace('aaaa', 'bbbb')));
    expect(forged.length).toBe(original.length);
    expect(crc32(forged)).toBe(crc32(original));
    writeFileSync(first, forged);
    utimesSync(first, 1_000, 1_000);
    expect(load(first), 'the new bundle runs, not the cached code of the old one').toBe('bbbb/');
    expect(stampOf(`${first}.reencrypt.v8cache`).bundle).toBe(
      createHash('sha256').update(forged).digest('hex'),
    );
  });

  it('keeps one cache per command, each with only what that command compiled', () => {
    const dir = mkdtempSync(join(tmpdir(), 'v8cache-'));
    const bundle = bundleWith(dir, 'ok', 1_000);
    load(bundle, ''); // --help, usage errors
    load(bundle, 'reencrypt');
    expect(readdirSync(dir).sort()).toEqual(['cli.js', 'cli.js.reencrypt.v8cache', 'cli.js.v8cache']);
    expect(stampOf(`${bundle}.v8cache`).command).toBe('');
    expect(stampOf(`${bundle}.reencrypt.v8cache`).command).toBe('reencrypt');
    const written = statSync(`${bundle}.v8cache`).mtimeMs;
    expect(load(bundle, '')).toBe('ok/');
    expect(statSync(`${bundle}.v8cache`).mtimeMs).toBe(written);
    // A word that is no command name (the bin passes only known ones) names no file: it shares the default.
    load(bundle, '../../x');
    expect(readdirSync(dir).sort()).toEqual(['cli.js', 'cli.js.reencrypt.v8cache', 'cli.js.v8cache']);
  });

  it("replaces a failed run's cache once a run of the command succeeds (a usage error compiles little)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'v8cache-'));
    const bundle = join(dir, 'cli.js');
    writeFileSync(bundle, "exports.value = 'ok'; if (process.env.FAIL) process.exitCode = 2;\n");
    const cache = `${bundle}.reencrypt.v8cache`;
    const run = (fail: boolean) =>
      spawnSync(
        process.execPath,
        ['-e', `require(${JSON.stringify(launch)}).loadBundle(process.argv[1], 'reencrypt')`, bundle],
        { env: { ...process.env, ...(fail ? { FAIL: '1' } : {}) } },
      ).status;
    expect(run(true)).toBe(2);
    expect(stampOf(cache).ok).toBe(false);
    const failed = statSync(cache).mtimeMs;
    expect(run(true)).toBe(2); // another failure keeps it
    expect(statSync(cache).mtimeMs).toBe(failed);
    expect(run(false)).toBe(0);
    expect(stampOf(cache).ok).toBe(true);
    const succeeded = statSync(cache).mtimeMs;
    expect(run(true)).toBe(2); // and a failure after a success leaves the success's cache
    expect(run(false)).toBe(0);
    expect(statSync(cache).mtimeMs).toBe(succeeded);
  });

  it('starts normally from a damaged cache (and replaces it), or where it cannot write one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'v8cache-'));
    const bundle = bundleWith(dir, 'ok', 1_000);
    load(bundle);
    const cache = `${bundle}.reencrypt.v8cache`;
    const [stamp] = readFileSync(cache, 'utf8').split('\n');
    writeFileSync(cache, `${stamp}\nnot a code cache`);
    expect(load(bundle)).toBe('ok/');
    expect(statSync(cache).size).toBeGreaterThan(100);
    writeFileSync(cache, 'not even a stamp');
    expect(load(bundle)).toBe('ok/');
    expect(stampOf(cache).command).toBe('reencrypt');
    // Where the cache cannot be written (here its name is taken by a directory), the start is a normal one.
    rmSync(cache);
    mkdirSync(cache);
    expect(load(bundle)).toBe('ok/');
    expect(readdirSync(dir).sort()).toEqual(['cli.js', 'cli.js.reencrypt.v8cache']);
  });
});

describe("the CLI's bundles", () => {
  const launch = join(__dirname, '../../bin/launch.js');

  it('loads a bundle beside it once, through its own code cache', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bundles-'));
    writeFileSync(
      join(dir, 'commands.js'),
      "globalThis.loads = (globalThis.loads ?? 0) + 1; exports.value = String(globalThis.loads) + require('zod').z;\n",
    );
    // A package apart (bin/launch.js APART): its bundle, not node_modules, answers `require('zod')`.
    writeFileSync(join(dir, 'zod.js'), "exports.z = 'z';\n");
    writeFileSync(
      join(dir, 'cli.js'),
      "exports.value = require('./commands.js').value + require('./commands.js').value + require('node:path').sep;\n",
    );
    const run = () =>
      execFileSync(
        process.execPath,
        [
          '-e',
          `process.stdout.write(require(${JSON.stringify(launch)}).loadBundle(process.argv[1], 'reencrypt').value)`,
          join(dir, 'cli.js'),
        ],
        { encoding: 'utf8' },
      );
    expect(run()).toBe('1z1z/');
    expect(readdirSync(dir).sort()).toEqual([
      'cli.js',
      'cli.js.reencrypt.v8cache',
      'commands.js',
      'commands.js.reencrypt.v8cache',
      'zod.js',
      'zod.js.reencrypt.v8cache',
    ]);
    expect(run()).toBe('1z1z/');
  });

  describe('as built', () => {
    let out = '';
    let metafile: Metafile;
    beforeAll(async () => {
      out = mkdtempSync(join(tmpdir(), 'cli-build-'));
      ({ metafile } = await buildCli(join(__dirname, '../..'), out));
    }, 60_000);
    /** Runs the built CLI through the launcher, as the bin does (asynchronously: a test server may answer it). */
    const main = (dir: string, args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            '-e',
            `const [bundle, command, ...args] = process.argv.slice(1); require(${JSON.stringify(launch)}).loadBundle(bundle, command).main(args).then((c) => { process.exitCode = c; })`,
            join(dir, 'cli.js'),
            args.find((a) => !a.startsWith('-')) ?? '',
            ...args,
          ],
          { encoding: 'utf8' },
          (err, stdout, stderr) =>
            resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });

    it('keeps apart what a sweep does not call: the typed Kubernetes API, the cloud SDKs, zod', () => {
      const outputs = metafile.outputs as Record<string, { inputs: Record<string, unknown> }>;
      const inputsOf = (file: string) =>
        Object.keys(Object.entries(outputs).find(([k]) => k.endsWith(`/${file}`))?.[1].inputs ?? {});
      const commands = inputsOf('commands.js');
      expect(commands.length).toBeGreaterThan(100);
      for (const [id, file] of Object.entries(APART)) {
        expect(inputsOf(file).some((i) => i.includes(`node_modules/${id}/`))).toBe(true);
        if (id !== '@kubernetes/client-node')
          expect(commands.filter((i) => i.includes(`node_modules/${id}/`))).toEqual([]);
      }
      // Of client-node, the commands' bundle holds KubeConfig (all a sweep loads), which reaches only the two
      // generated modules it uses, not the ~700 the package's gen/index.js re-exports.
      expect(commands.filter((i) => /client-node\/dist\/gen\/(models|apis|types)\//.test(i))).toEqual([]);
      const inputs = metafile.inputs as Record<
        string,
        { imports: Array<{ path: string; original?: string }> }
      >;
      const config = Object.entries(inputs).find(([k]) =>
        k.endsWith('@kubernetes/client-node/dist/config.js'),
      );
      const gen = config?.[1].imports.find((i) => i.original === './gen/index.js')?.path ?? '';
      expect(gen).toMatch(/^kubeconfig-alone:/);
      expect(inputs[gen]?.imports.map((i) => i.path.split('/').slice(-2).join('/'))).toEqual([
        'gen/configuration.js',
        'gen/servers.js',
      ]);
    });

    it('runs a sweep on dist/cli.js and dist/commands.js alone; a package apart loads when a command needs it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cli-run-'));
      cpSync(out, dir, { recursive: true });
      // An API server with no Secrets (and no leases: the dry run's count of API servers is then unknown).
      const server = createServer((req, res) => {
        res.writeHead(req.url?.includes('/secrets') ? 200 : 404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            kind: 'PartialObjectMetadataList',
            metadata: { resourceVersion: '1' },
            items: [],
          }),
        );
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${(server.address() as AddressInfo).port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
      );
      try {
        const sweep = await main(dir, [
          'reencrypt',
          '--kubeconfig',
          kubeconfig,
          '--key-version',
          'v1',
          '--json',
        ]);
        expect(sweep.stderr).toBe('');
        expect(sweep.status).toBe(0);
        const caches = () => readdirSync(dir).filter((f) => f.endsWith('.v8cache'));
        expect(caches().sort()).toEqual(['cli.js.reencrypt.v8cache', 'commands.js.reencrypt.v8cache']);
        const dryRun = await main(dir, [
          'reencrypt',
          '--kubeconfig',
          kubeconfig,
          '--key-version',
          'v1',
          '--dry-run',
        ]);
        expect(dryRun.status).toBe(0);
        expect(caches()).toContain('client-node.js.reencrypt.v8cache');
      } finally {
        server.close();
      }
    }, 120_000); // two cold starts, one compiling the typed API (3.5 MB), on a loaded machine

    it('answers --help from dist/cli.js alone; a command needs dist/commands.js', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cli-only-'));
      cpSync(join(out, 'cli.js'), join(dir, 'cli.js'));
      expect(statSync(join(dir, 'cli.js')).size).toBeLessThan(200 * 1024);
      const help = await main(dir, ['--help']);
      expect(help.status).toBe(0);
      expect(help.stdout).toContain('Usage: ack-kms-sentinel');
      expect((await main(dir, ['reencrypt', '--help'])).stdout).toContain('--key-version');
      const run = await main(dir, ['reencrypt', '--kubeconfig', '/nonexistent', '--key-version', 'v1']);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(
        /^ack-kms-sentinel: the commands cannot be loaded \(.*commands\.js.*\); run `npm run build:cli`$/m,
      );
    });
  });
});

describe('the bin', () => {
  it('names a code cache only after a command the CLI has (the list beside the bin stays in step with it)', () => {
    const bin = readFileSync(join(__dirname, '../../bin/ack-kms-sentinel.js'), 'utf8');
    const cli = readFileSync(join(__dirname, '../../bin/cli.ts'), 'utf8');
    const listed = JSON.parse(
      (/const COMMANDS = (\[[^\]]*\]);/.exec(bin)?.[1] ?? '[]').replace(/'/g, '"'),
    ) as string[];
    const commands = [...cli.matchAll(/\.command\('([a-z-]+)'\)/g)].map((m) => m[1]);
    expect(listed.sort()).toEqual(commands.sort());
  });

  it('is what `npx ack-kms-sentinel` in the checkout runs, found in node_modules/.bin with nothing installed', () => {
    const root = join(__dirname, '../..');
    // npm ci links the bin workspace's command into node_modules/.bin. The root package names no bin of its own:
    // npm 11's npx would take one for a package to install into its cache, loading the whole tree first.
    expect(realpathSync(join(root, 'node_modules', '.bin', 'ack-kms-sentinel'))).toBe(
      realpathSync(join(root, 'bin', 'ack-kms-sentinel.js')),
    );
    const cache = mkdtempSync(join(tmpdir(), 'npx-cache-'));
    try {
      const help = execFileSync('npx', ['--offline', 'ack-kms-sentinel', '--help'], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, npm_config_cache: cache, npm_config_update_notifier: 'false' },
      });
      expect(help).toContain('Usage: ack-kms-sentinel');
      // npx installed nothing into its cache to run it (its self-install path would leave _npx/<hash> there).
      expect(readdirSync(cache)).not.toContain('_npx');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
