import { createLogger, type Logger, type LoggerOptions } from '../../shared/log';

/** A logger that keeps its lines in memory, to read what a test's code logged. */
export function memoryLogger(options: Omit<LoggerOptions, 'sink'> = {}): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', ...options, sink: (l) => lines.push(l) });
  return Object.assign(logger, { lines });
}
