import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildProgram } from '../../bin/cli';
import { jsonLine, printable, progressLine, terminalOutput, withoutControls } from '../../bin/output';
import { clearRegisteredSecrets, registerSecret } from '../../shared/log';
import type { SweepReport } from '../../shared/reencrypt';

/** What the CLI prints: redacted, free of control sequences (a Secret's `type` is its writer's choice). */
const HOSTILE_TYPE = 'kubernetes.io/tls\x1b]0;owned\x07\x1b[2J\x9b31m\x07\x08\x7f';

const capture = () => {
  let text = '';
  return {
    stream: {
      write: (chunk: string) => {
        text += chunk;
        return true;
      },
    } as unknown as NodeJS.WritableStream,
    text: () => text,
  };
};

const report = (over: Partial<SweepReport> = {}): SweepReport => ({
  complete: true,
  targetKeyVersionId: 'v1',
  strategy: 'annotate',
  dryRun: true,
  total: 3,
  rewritten: 0,
  alreadyCurrent: 0,
  gone: 0,
  failed: 1,
  failures: [{ namespace: 'ns', name: 's', code: 'Invalid', reason: 'bad \x1b[8mhidden\x1b[0m value' }],
  failuresNotListed: 0,
  durationMs: 10,
  ratePerSecond: 300,
  pages: 1,
  retries: 0,
  throttled: 0,
  relists: 0,
  concurrency: { max: 4, final: 4 },
  estimate: {
    secrets: 3,
    toRewrite: 3,
    sizesRead: false,
    cannotKnow: ['sizes'],
    pages: 1,
    kmsCalls: { kmsV2: 1, kmsV1: 3, why: 'one seed' },
    expectedDurationMs: 100,
    rate: { perSecond: 30, basis: 'bench' },
    blastRadius: {
      watchEvents: 3,
      topNamespaces: [{ namespace: 'ns', secrets: 3 }],
      byType: { [HOSTILE_TYPE]: 3 },
    },
    recommendation: { strategy: 'annotate', why: 'default' },
  },
  ...over,
});

afterEach(() => clearRegisteredSecrets());

describe('the CLI prints nothing a terminal would act on, and no credential', () => {
  it('strips C0, C1, DEL and escape sequences from human text, keeping tab and newline', () => {
    expect(withoutControls(`a\tb\n${HOSTILE_TYPE}`)).toBe('a\tb\nkubernetes.io/tls31m');
    expect(withoutControls('\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\')).toBe('link');
  });

  it('a summary on a terminal shows a hostile Secret type and reason without their sequences', () => {
    const out = capture();
    const err = capture();
    terminalOutput(out.stream, err.stream, false).finish(report());
    const text = out.text();
    expect(text).toContain('kubernetes.io/tls31m 3');
    expect(text).toContain('bad hidden value');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may reach the terminal
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  });

  it('JSON output escapes C1 and DEL too (JSON.stringify leaves them raw)', () => {
    const line = jsonLine({ type: HOSTILE_TYPE });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may reach the terminal
    expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    expect(JSON.parse(line)).toEqual({ type: HOSTILE_TYPE });
  });

  it('passes everything through the redaction guard', () => {
    registerSecret('s3cr3t-webhook-value');
    expect(printable('signed with s3cr3t-webhook-value')).not.toContain('s3cr3t');
    expect(jsonLine({ message: 'token s3cr3t-webhook-value', password: 'hunter2' })).not.toMatch(
      /s3cr3t|hunter2/,
    );
  });

  it('fits the progress line to the width, dropping the least useful parts first', () => {
    const p = {
      counters: { total: 123_456, rewritten: 120_000, alreadyCurrent: 3_000, gone: 6, failed: 450 },
      pages: 247,
      concurrency: 64,
      inFlight: 64,
      elapsedMs: 1000,
      ratePerSecond: 812.4,
    };
    for (const width of [20, 40, 79, 119, 200]) {
      const line = progressLine(p, width, 1_000_000);
      expect(line.length, line).toBeLessThanOrEqual(width);
    }
    expect(progressLine(p, 200, 1_000_000)).toContain('64 in flight max');
    expect(progressLine(p, 79, 1_000_000)).toMatch(
      /^\[#+\.+\] 12% 123456\/1000000 visited · 120000 rewritten/,
    );
  });
});

describe('docs/cli.md and the CLI agree', () => {
  const doc = readFileSync(join(__dirname, '../../docs/cli.md'), 'utf8');
  const program = buildProgram(() => undefined);
  const commands = program.commands.map((c) => c.name());
  const flags = new Set([
    '--help',
    ...program.options.map((o) => o.long),
    ...program.commands.flatMap((c) => c.options.map((o) => o.long)),
  ]);

  it('every flag the docs name exists, and every flag of the CLI is documented', () => {
    const documented = new Set(doc.match(/(?<![\w-])--[a-z][a-z-]*[a-z]/g));
    // Flags of other tools the page quotes (npm's).
    for (const other of ['--global', '--no-allow-scripts-pin']) documented.delete(other);
    expect(
      [...documented].filter((f) => !flags.has(f)),
      'documented, not in the CLI',
    ).toEqual([]);
    expect(
      [...flags].filter((f) => f && !documented.has(f)),
      'in the CLI, not documented',
    ).toEqual([]);
  });

  it('every command is documented', () => {
    for (const c of commands) expect(doc, c).toMatch(new RegExp(`(ack-kms-sentinel |\`)${c} `));
  });
});
