import { PoisonError } from '../shared/errors';
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

/** How the CLI shows a long job: a progress bar on a terminal, JSON lines otherwise. */
export interface Output {
  start(info: StartInfo): void;
  progress(p: SweepProgress, expectedTotal?: number): void;
  note(message: string): void;
  finish(report: SweepReport, verification?: VerificationResult): void;
}

const write = (stream: NodeJS.WriteStream, line: string) => stream.write(`${line}\n`);

/** Non-terminal output: one JSON object per line on stdout; with --json the last line is the report. */
export function jsonLinesOutput(stdout: NodeJS.WriteStream, asJson: boolean): Output {
  return {
    start: (info) => write(stdout, JSON.stringify({ event: 'start', ...info })),
    progress: (p) =>
      write(
        stdout,
        JSON.stringify({
          event: 'progress',
          ...p.counters,
          pages: p.pages,
          concurrency: p.concurrency,
          ratePerSecond: Math.round(p.ratePerSecond),
        }),
      ),
    note: (message) => write(stdout, JSON.stringify({ event: 'note', message })),
    finish: (report, verification) => {
      const final = { ...report, ...(verification ? { verification } : {}) };
      write(stdout, asJson ? JSON.stringify(final) : JSON.stringify({ event: 'report', ...final }));
    },
  };
}

/** Terminal output: a live bar on stderr, a readable summary on stdout (or the report as JSON with --json). */
export function terminalOutput(
  stdout: NodeJS.WriteStream,
  stderr: NodeJS.WriteStream,
  asJson: boolean,
): Output {
  let drawn = false;
  const clear = () => {
    if (drawn) stderr.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    start(info) {
      write(
        stderr,
        `${info.dryRun ? 'Dry run: counting' : 'Re-encrypting'} Secrets for key version ${info.keyVersion} (${info.strategy}${info.resumed ? ', resuming from checkpoint' : ''})`,
      );
    },
    progress(p, expectedTotal) {
      clear();
      stderr.write(progressLine(p, expectedTotal));
      drawn = true;
    },
    note(message) {
      clear();
      write(stderr, message);
    },
    finish(report, verification) {
      clear();
      if (asJson) {
        write(stdout, JSON.stringify({ ...report, ...(verification ? { verification } : {}) }));
        return;
      }
      const rows = summaryRows(report, verification);
      const width = Math.max(...rows.map(([k]) => k.length));
      for (const [k, v] of rows) write(stdout, `${k.padEnd(width)}  ${v}`);
      for (const f of report.failures.slice(0, 20))
        write(stdout, `  failed ${f.namespace}/${f.name}: ${f.code}: ${f.reason}`);
      if (report.failures.length > 20 || report.failuresNotListed) {
        write(stdout, `  … and ${report.failed - 20} more (use --json for the full list)`);
      }
    },
  };
}

/** The live line: a bar and a percentage when the total is known, the counters, the rate and an eta. */
function progressLine(p: SweepProgress, expectedTotal?: number): string {
  const width = 30;
  const done = p.counters.total;
  const ratio = expectedTotal ? Math.min(1, done / Math.max(1, expectedTotal)) : 0;
  const bar = expectedTotal
    ? `[${'#'.repeat(Math.round(ratio * width)).padEnd(width, '.')}] ${Math.round(ratio * 100)}% `
    : '';
  const eta =
    expectedTotal && p.ratePerSecond > 0
      ? ` eta ${Math.ceil((expectedTotal - done) / p.ratePerSecond)}s`
      : '';
  return `${bar}${done}${expectedTotal ? `/${expectedTotal}` : ''} visited · ${p.counters.rewritten} rewritten · ${p.counters.alreadyCurrent} current · ${p.counters.failed} failed · ${Math.round(p.ratePerSecond)}/s · ${p.concurrency} in flight max${eta}`;
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
