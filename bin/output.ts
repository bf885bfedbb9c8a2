import { PoisonError } from '../shared/errors';
import { redact, redactString } from '../shared/log';
import type { SweepProgress, SweepReport, VerificationResult } from '../shared/reencrypt';
import type { Estimate } from '../shared/reencrypt/estimate';

/** A usage or flag error (bad input, which running again cannot fix): exit code 2. */
export class UsageError extends PoisonError {
  constructor(message: string) {
    super(message, { code: 'Usage' });
    this.name = 'UsageError';
  }
}

export interface StartInfo {
  strategy: string;
  keyVersion: string;
  dryRun: boolean;
  resumed: boolean;
}

/** How the CLI shows a long job: a progress line on a terminal's stderr, JSON lines or a summary on stdout. */
export interface Output {
  start(info: StartInfo): void;
  progress(p: SweepProgress, expectedTotal?: number): void;
  note(message: string): void;
  finish(report: SweepReport, verification?: VerificationResult): void;
}

/**
 * Escape sequences (CSI, OSC up to BEL or ST, two-byte escapes) and every other C0 control but tab and newline,
 * DEL and C1: what a cluster's data can carry (a Secret's `type` is whatever its writer chose) must not move the
 * cursor, retitle the window, or hide text from the person reading.
 */
const CONTROLS = new RegExp(
  [
    '\\x1b\\[[0-?]*[ -/]*[@-~]', // CSI: colours, cursor moves, erasing
    '\\x1b\\][^\\x07\\x1b]*(?:\\x07|\\x1b\\\\)?', // OSC: window titles, hyperlinks, clipboard
    '\\x1b[@-_]?', // any other escape
    '[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]', // C0 but tab and newline, DEL, C1
  ].join('|'),
  'g',
);

/** Text without control characters or escape sequences. */
export const withoutControls = (text: string): string => text.replace(CONTROLS, '');

/** Human text as the CLI prints it: through the redaction guard, then without control characters. */
export const printable = (text: string): string => withoutControls(redactString(text));

/** One line of human text on `stream`. */
export function say(stream: NodeJS.WritableStream, text: string): void {
  stream.write(`${printable(text)}\n`);
}

// JSON.stringify escapes C0 but leaves DEL, C1 and the JavaScript line separators as they are.
// JSON.stringify escapes C0 but leaves DEL, C1 and the JavaScript line separators as they are.
const JSON_UNSAFE = /[\x7f-\x9f\u2028\u2029]/g;

/** A value as one line of JSON: through the redaction guard, every control character escaped. */
export const jsonLine = (value: unknown): string =>
  (JSON.stringify(redact(value)) ?? 'null').replace(
    JSON_UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

/** One JSON value on a line of its own. */
export function printJson(stream: NodeJS.WritableStream, value: unknown): void {
  stream.write(`${jsonLine(value)}\n`);
}

/** Colour only for a terminal, and never with NO_COLOR set (no-color.org). */
export function palette(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env) {
  const on = stream.isTTY === true && !env.NO_COLOR;
  const paint = (code: number) => (text: string) => (on ? `\x1b[${code}m${text}\x1b[39m` : text);
  return { green: paint(32), yellow: paint(33), red: paint(31) };
}
export type Palette = ReturnType<typeof palette>;

const write = (stream: NodeJS.WritableStream, line: string) => stream.write(`${line}\n`);

/** Where the CLI's output goes and how it looks, decided once from the streams, the flags and the environment. */
export interface OutputOptions {
  /** `--json`: the final report as one JSON object on stdout. */
  json: boolean;
  /** `--no-progress` turns the progress line off; it is drawn only when stderr is a terminal anyway. */
  progress: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * The sweep's output: a summary on stdout when it is a terminal, JSON lines otherwise; a progress line on
 * stderr only when stderr is a terminal (so `2>log` holds plain lines) and `--no-progress` is not given.
 */
export function cliOutput(
  stdout: NodeJS.WriteStream,
  stderr: NodeJS.WriteStream,
  options: OutputOptions,
): Output {
  const lines = stdout.isTTY
    ? terminalOutput(stdout, stderr, options.json, palette(stdout, options.env))
    : jsonLinesOutput(stdout, options.json);
  if (!options.progress || !stderr.isTTY) return lines;
  const bar = progressBar(stderr);
  return {
    start: (info) => lines.start(info),
    progress(p, expectedTotal) {
      lines.progress(p, expectedTotal);
      bar.draw(p, expectedTotal);
    },
    note(message) {
      bar.clear();
      lines.note(message);
    },
    finish(report, verification) {
      bar.clear();
      lines.finish(report, verification);
    },
  };
}

/** The live line on a terminal's stderr, redrawn in place and never wider than the terminal. */
function progressBar(stderr: NodeJS.WriteStream) {
  let drawn = false;
  return {
    draw(p: SweepProgress, expectedTotal?: number) {
      // One column short of the width: a line that fills the last column wraps on some terminals.
      const width = Math.max(20, (stderr.columns || 80) - 1);
      stderr.write(`${drawn ? '\r\x1b[2K' : ''}${progressLine(p, width, expectedTotal)}`);
      drawn = true;
    },
    clear() {
      if (drawn) stderr.write('\r\x1b[2K');
      drawn = false;
    },
  };
}

/** Non-terminal output: one JSON object per line on stdout; with --json the last line is the report. */
export function jsonLinesOutput(stdout: NodeJS.WritableStream, asJson: boolean): Output {
  return {
    start: (info) => printJson(stdout, { event: 'start', ...info }),
    progress: (p) =>
      printJson(stdout, {
        event: 'progress',
        ...p.counters,
        pages: p.pages,
        concurrency: p.concurrency,
        ratePerSecond: Math.round(p.ratePerSecond),
      }),
    note: (message) => printJson(stdout, { event: 'note', message }),
    finish: (report, verification) => {
      const final = { ...report, ...(verification ? { verification } : {}) };
      printJson(stdout, asJson ? final : { event: 'report', ...final });
    },
  };
}

/** Terminal output: a readable summary on stdout (or the report as JSON with --json), notes on stderr. */
export function terminalOutput(
  stdout: NodeJS.WritableStream,
  stderr: NodeJS.WritableStream,
  asJson: boolean,
  colour: Palette = palette({}),
): Output {
  return {
    start(info) {
      say(
        stderr,
        `${info.dryRun ? 'Dry run: counting' : 'Re-encrypting'} Secrets for key version ${info.keyVersion} (${info.strategy}${info.resumed ? ', resuming from checkpoint' : ''})`,
      );
    },
    progress() {
      // The progress line is stderr's (`cliOutput`), drawn only where stderr is a terminal.
    },
    note(message) {
      say(stderr, message);
    },
    finish(report, verification) {
      if (asJson) {
        printJson(stdout, { ...report, ...(verification ? { verification } : {}) });
        return;
      }
      const rows = summaryRows(report, verification);
      const width = Math.max(...rows.map(([k]) => k.length));
      for (const [k, v] of rows) {
        const value = printable(String(v));
        const shown =
          k === 'status' || k === 'verification'
            ? (/^(complete|OK)/.test(value) && !/fail/i.test(value) ? colour.green : colour.red)(value)
            : value;
        write(stdout, `${k.padEnd(width)}  ${shown}`);
      }
      for (const f of report.failures.slice(0, 20))
        say(stdout, `  failed ${f.namespace}/${f.name}: ${f.code}: ${f.reason}`);
      if (report.failures.length > 20 || report.failuresNotListed) {
        write(stdout, `  … and ${report.failed - 20} more (use --json for the full list)`);
      }
    },
  };
}

/**
 * The live line, fitted to `width`: a bar and a percentage when the total is known, the counters, then the
 * rate, the concurrency and an eta as long as they fit (the least useful dropped first).
 */
export function progressLine(p: SweepProgress, width: number, expectedTotal?: number): string {
  const done = p.counters.total;
  const ratio = expectedTotal ? Math.min(1, done / Math.max(1, expectedTotal)) : 0;
  const barWidth = Math.min(30, Math.max(10, Math.floor(width / 4)));
  const bar = expectedTotal
    ? `[${'#'.repeat(Math.round(ratio * barWidth)).padEnd(barWidth, '.')}] ${Math.round(ratio * 100)}% `
    : '';
  const parts = [
    `${bar}${done}${expectedTotal ? `/${expectedTotal}` : ''} visited`,
    `${p.counters.rewritten} rewritten`,
    `${p.counters.failed} failed`,
    `${p.counters.alreadyCurrent} current`,
    `${Math.round(p.ratePerSecond)}/s`,
    ...(expectedTotal && p.ratePerSecond > 0
      ? [`eta ${Math.ceil((expectedTotal - done) / p.ratePerSecond)}s`]
      : []),
    `${p.concurrency} in flight max`,
  ];
  let line = parts.join(' · ');
  while (line.length > width && parts.length > 2) {
    parts.pop();
    line = parts.join(' · ');
  }
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}

/** The finished sweep as summary rows (name, value). */
function summaryRows(
  report: SweepReport,
  verification?: VerificationResult,
): Array<[string, string | number]> {
  const rows: Array<[string, string | number]> = [
    [
      'status',
      report.complete
        ? report.failed
          ? 'complete, with failures'
          : 'complete'
        : 'incomplete (resume from the checkpoint)',
    ],
    ['key version', report.targetKeyVersionId],
    ['strategy', report.strategy + (report.dryRun ? ' (dry run)' : '')],
    ['Secrets visited', report.total],
    [
      report.dryRun ? 'would rewrite' : 'rewritten',
      report.dryRun ? (report.wouldRewrite ?? 0) : report.rewritten,
    ],
    ['already current', report.alreadyCurrent],
    ['gone', report.gone],
    ['failed', report.failed],
    ['duration', `${(report.durationMs / 1000).toFixed(1)} s (${report.ratePerSecond}/s)`],
    [
      'pages · retries · throttled · relists',
      `${report.pages} · ${report.retries} · ${report.throttled} · ${report.relists}`,
    ],
  ];
  if (report.estimatedKmsCalls) {
    rows.push([
      'estimated KMS calls',
      `KMS v2: ~${report.estimatedKmsCalls.kmsV2} Encrypt per API server; KMS v1: ${report.estimatedKmsCalls.kmsV1}`,
    ]);
  }
  if (report.estimate) rows.push(...estimateRows(report.estimate));
  if (verification)
    rows.push(['verification', `${verification.verified ? 'OK' : 'FAILED'}: ${verification.summary}`]);
  return rows;
}

/** The dry run's estimate as summary rows. */
function estimateRows(e: Estimate): Array<[string, string]> {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const namespaces = e.blastRadius.topNamespaces.map((n) => `${n.namespace} (${n.secrets})`).join(', ');
  const types = Object.entries(e.blastRadius.byType)
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
  return [
    [
      'estimate: to rewrite',
      `${e.toRewrite} of ${e.secrets} Secrets${e.bytes === undefined ? ' (sizes not read)' : `, ${mib(e.bytesToRewrite ?? 0)} of ${mib(e.bytes)}`}`,
    ],
    [
      'estimate: duration',
      `~${Math.ceil(e.expectedDurationMs / 1000)} s at ${e.rate.perSecond}/s (${e.rate.basis})`,
    ],
    ['estimate: KMS calls', `${e.kmsCalls.kmsV2} (KMS v2; ${e.kmsCalls.kmsV1} under KMS v1)`],
    [
      'estimate: blast radius',
      `${e.blastRadius.watchEvents} watch events per Secret watcher; most in ${namespaces || '–'}; ${types}`,
    ],
    ['estimate: recommendation', `${e.recommendation.strategy}: ${e.recommendation.why}`],
    ...e.cannotKnow.map((c): [string, string] => ['estimate: cannot know', c]),
  ];
}
