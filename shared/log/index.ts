import { redact } from './redact';

export { clearRegisteredSecrets, REDACTED, redact, redactString, registerSecret } from './redact';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;
export type LogSink = (line: string) => void;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose every line also carries `bindings` (e.g. `{ jobId }`). */
  child(bindings: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Fields on every line: `requestId`, `jobId`, `function`, ... */
  bindings?: LogFields;
  /** Where lines go; stdout by default (Function Compute forwards stdout to SLS). */
  sink?: LogSink;
  now?: () => Date;
}

const stdoutSink: LogSink = (line) => {
  process.stdout.write(`${line}\n`);
};

/**
 * Structured JSON logs, one object per line: `{time, level, msg, requestId, jobId, ...}`. Every line passes
 * through the redaction guard, bindings included, so no caller can log a Secret's data or a credential.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = LEVELS[options.level ?? 'info'];
  const sink = options.sink ?? stdoutSink;
  const now = options.now ?? (() => new Date());
  const bindings = options.bindings ?? {};

  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVELS[level] < threshold) return;
    const entry = redact({ ...bindings, ...fields, msg }) as Record<string, unknown>;
    const { msg: safeMsg, ...rest } = entry;
    sink(JSON.stringify({ time: now().toISOString(), level, msg: safeMsg, ...rest }));
  };

  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    child: (more) => createLogger({ ...options, bindings: { ...bindings, ...more } }),
  };
}
