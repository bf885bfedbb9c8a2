/**
 * The CLI's exit codes, the same for every command (docs/cli.md, "Exit codes"), so automation can tell a
 * failure from a run to resume and from one that did its work but could not prove it. Kept apart from the
 * commands: the command line's own bundle (dist/cli.js) needs them for usage errors.
 */
export const EXIT = {
  /** Done: everything asked for happened (and, where the command proves things, was proven). */
  done: 0,
  /** Failed: something did not happen or needs a person (failed Secrets, a failed check, a refused call). */
  failed: 1,
  /** A usage or configuration error: running again unchanged cannot help. */
  usage: 2,
  /** Interrupted (Ctrl-C, SIGTERM) or the time budget spent: run the same command again to resume. */
  resumable: 3,
  /** The work was done but the API servers' evidence cannot prove it took effect. */
  unproven: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
