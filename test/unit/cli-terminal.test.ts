import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../bin/exit-codes';
import { CLI } from '../helpers/cli';
import { StubApiServer } from '../helpers/stub-apiserver';

/**
 * The CLI in a real terminal of 80 columns: a tmux pane (its size fixed) running the command under util-linux
 * `script`, which records every byte the command writes to the terminal. The progress line is drawn only on
 * a terminal's stderr, never wider than the terminal (a wider one wraps, and each repaint leaves a line
 * behind), cleared at the end; NO_COLOR and --no-progress are honoured; stderr to a file holds no escapes.
 */
const dir = mkdtempSync(join(tmpdir(), 'cli-terminal-'));
const socket = `ack-kms-sentinel-test-${process.pid}`;
let stub: StubApiServer;
let kubeconfig = '';
let n = 0;

beforeAll(async () => {
  stub = await new StubApiServer(60).start();
  kubeconfig = stub.kubeconfig(dir);
});
afterAll(async () => {
  try {
    execFileSync('tmux', ['-L', socket, 'kill-server'], { stdio: 'ignore' });
  } catch {
    // no server left
  }
  await stub.stop();
});

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `args` (with shell redirections `redirect`) in an 80×24 terminal; its bytes, its screen, its exit code. */
async function inTerminal(args: string[], redirect = '', env: Record<string, string> = {}) {
  const run = join(dir, `run-${++n}`);
  const command = [
    'env',
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    process.execPath,
    CLI,
    ...args.map(quote),
  ].join(' ');
  writeFileSync(`${run}.sh`, `${command} ${redirect}\n`);
  const pane = `script -q -e -c ${quote(`sh ${run}.sh`)} ${run}.raw; echo $? > ${run}.rc; sleep 600`;
  execFileSync(
    'tmux',
    ['-L', socket, '-f', '/dev/null', 'new-session', '-d', '-s', `t${n}`, '-x', '80', '-y', '24', pane],
    {
      env: { ...process.env, TERM: 'xterm-256color' },
    },
  );
  // Waiting for the command to end, not asserting how long it takes: the test's own timeout bounds it.
  while (!existsSync(`${run}.rc`) || readFileSync(`${run}.rc`, 'utf8') === '') await sleep(100);
  const screen = execFileSync('tmux', ['-L', socket, 'capture-pane', '-p', '-t', `t${n}`], {
    encoding: 'utf8',
  });
  execFileSync('tmux', ['-L', socket, 'kill-session', '-t', `t${n}`]);
  const raw = readFileSync(`${run}.raw`, 'utf8');
  // `script` frames the output with a header line and a footer line of its own.
  const output = raw.slice(
    raw.indexOf('\n') + 1,
    raw.lastIndexOf('\nScript done') >= 0 ? raw.lastIndexOf('\nScript done') : undefined,
  );
  return { output, screen, code: Number(readFileSync(`${run}.rc`, 'utf8').trim()), run };
}

const sweepArgs = (version: string, ...more: string[]) => [
  'reencrypt',
  '--kubeconfig',
  kubeconfig,
  '--key-version',
  version,
  '--page-size',
  '5',
  ...more,
];

/** The lines the progress line drew: every repaint starts with a carriage return and an erase. */
const drawn = (output: string) =>
  output
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's erase sequence is what is split on
    .split(/\r\x1b\[2K|\r?\n/)
    .filter((segment) => segment.includes(' visited · '));

// Each test starts CLI processes (npx too), which on a busy two-core machine can take many seconds each.
describe('the CLI on a terminal of 80 columns', { timeout: 120_000 }, () => {
  it('draws the progress line on stderr only, within 79 columns, and clears it', async () => {
    const { output, screen, code } = await inTerminal(sweepArgs('v-tty-1'), `> ${join(dir, 'out.jsonl')}`);
    expect(code).toBe(EXIT.done);
    const lines = drawn(output);
    expect(lines.length, 'one repaint per page of 5 at least').toBeGreaterThanOrEqual(12);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(79);
    expect(lines.at(-1)).toMatch(/^\[#+\] 100% 60\/60 visited · 60 rewritten · 0 failed/);
    // Nothing left behind by the repaints: a line wider than the pane would have wrapped onto one of its own.
    expect(screen).not.toContain('visited');
    // stdout went to the file, as JSON lines: the report last.
    const last = readFileSync(join(dir, 'out.jsonl'), 'utf8').trim().split('\n').at(-1) ?? '';
    expect(JSON.parse(last)).toMatchObject({ event: 'report', rewritten: 60 });
  });

  it('colours the summary on a terminal, not with NO_COLOR; --no-progress draws no line', async () => {
    const coloured = await inTerminal(sweepArgs('v-tty-2'));
    expect(coloured.code).toBe(EXIT.done);
    expect(coloured.output).toContain('\x1b[32mcomplete\x1b[39m');
    const plain = await inTerminal(sweepArgs('v-tty-3', '--no-progress'), '', { NO_COLOR: '1' });
    expect(plain.code).toBe(EXIT.done);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for colour sequences is the point
    expect(plain.output).not.toMatch(/\x1b\[\d+m/);
    expect(plain.output).toMatch(/^status\s+complete\r?$/m);
    expect(drawn(plain.output)).toEqual([]);
  });

  it('writes no escape sequence to stderr redirected to a file (2>log), the terminal being stdout', async () => {
    const log = join(dir, 'err.log');
    const { code, output } = await inTerminal(sweepArgs('v-tty-4'), `2> ${log}`);
    expect(code).toBe(EXIT.done);
    expect(output).toMatch(/^Secrets visited\s+60\r?$/m);
    const written = readFileSync(log, 'utf8');
    expect(written).toContain('Re-encrypting Secrets for key version v-tty-4');
    expect(written).not.toContain('\x1b');
    expect(written).not.toContain('\r');
  });
});
