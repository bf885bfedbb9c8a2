import type { EndpointOverride } from './index';

/**
 * One environment setting: its name, how to parse it, and a good example for the error message.
 * `parse` returns the value, or a string that says what is wrong with it.
 */
/** What a parser returns when the value is wrong: says what is wrong, never quotes a secret. */
export class Problem {
  constructor(readonly message: string) {}
}
export const bad = (message: string): Problem => new Problem(message);

export interface Setting<T> {
  name: string;
  example: string;
  /** What an unset variable means, as the deployment writes it (`${env('X', '<default>')}`); none: unset. */
  default?: string;
  secret?: boolean;
  read(
    env: Record<string, string | undefined>,
  ): { ok: true; value: T | undefined } | { ok: false; problem: string };
}

export interface SettingSpec<T> {
  name: string;
  /** Other variables read when `name` is unset, e.g. the ones Function Compute sets itself. */
  fallbacks?: string[];
  example: string;
  optional?: boolean;
  default?: string;
  /** Secret-valued: a problem message never quotes the value. */
  secret?: boolean;
  parse: (value: string) => T | Problem;
}

export function setting<T>(spec: SettingSpec<T>): Setting<T> {
  return {
    name: spec.name,
    example: spec.example,
    ...(spec.default !== undefined ? { default: spec.default } : {}),
    ...(spec.secret ? { secret: true } : {}),
    read(env) {
      const names = [spec.name, ...(spec.fallbacks ?? [])];
      const found = names.map((n) => env[n]).find((v) => v !== undefined && v.trim() !== '');
      const raw = found ?? spec.default;
      if (raw === undefined) {
        if (spec.optional) return { ok: true, value: undefined };
        return { ok: false, problem: `${spec.name}: is not set (example: ${spec.name}=${spec.example})` };
      }
      const parsed = spec.parse(raw.trim());
      if (parsed instanceof Problem) {
        const shown = spec.secret ? `a value of ${raw.length} characters` : `"${truncate(raw)}"`;
        return {
          ok: false,
          problem: `${spec.name}: ${parsed.message}; got ${shown} (example: ${spec.name}=${spec.example})`,
        };
      }
      return { ok: true, value: parsed };
    },
  };
}

const truncate = (v: string): string => (v.length > 80 ? `${v.slice(0, 77)}...` : v);

/** A comma-separated list whose every item passes `item`. */
export const list =
  (item: (v: string) => string | Problem) =>
  (value: string): string[] | Problem => {
    const items = value
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean);
    if (items.length === 0) return bad('must list at least one value');
    for (const v of items) {
      const checked = item(v);
      if (checked instanceof Problem) return checked;
    }
    return [...new Set(items)];
  };

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `90s`, `3m`, `1h`, `250ms` → milliseconds. */
export function durationMs(value: string): number | Problem {
  const m = /^(\d+)(ms|s|m|h)$/.exec(value);
  if (!m) return bad('must be a duration such as 90s, 3m or 1h');
  return Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1000);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** https, or plain http to this machine only (an emulator, a local proxy): never credentials in clear text. */
export function isSafeUrl(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname));
}

/** An endpoint override: a full http(s) URL with no path, e.g. `http://127.0.0.1:4566`. */
export function endpointUrl(value: string): EndpointOverride | Problem {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return bad('must be a URL such as http://127.0.0.1:4566');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return bad('must be an http:// or https:// URL');
  if (!isSafeUrl(url))
    return bad('must be an https:// URL (plain http only for loopback: 127.0.0.1, localhost, [::1])');
  if (url.pathname !== '/' || url.search || url.hash || url.username)
    return bad('must have no path, query or credentials');
  return {
    protocol: url.protocol === 'http:' ? 'http' : 'https',
    host: url.host,
    url: `${url.protocol}//${url.host}`,
  };
}
