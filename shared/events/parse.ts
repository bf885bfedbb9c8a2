import type { z } from 'zod';
import { PoisonError } from '../errors';

/** Keys that could reach an object's prototype if some later code copied the parsed value naively. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The largest event any trigger of ours hands over; FC's own async limit is 128 KiB, sync 32 MiB. */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

export interface DecodeOptions {
  maxBytes?: number;
  /** The format being parsed, for messages: `EventBridge event`, `SLS trigger event`, ... */
  format: string;
}

const fail = (format: string, detail: string, path?: string, cause?: unknown): PoisonError =>
  new PoisonError(`Failed to parse ${format}: ${path ? `${path}: ` : ''}${detail}`, {
    code: 'InvalidEvent',
    ...(path ? { path } : {}),
    ...(cause === undefined ? {} : { cause }),
  });

function checkKeys(value: unknown, format: string, path: string[], depth: number): void {
  if (depth > 64) throw fail(format, 'nested too deeply (more than 64 levels)', path.join('.'));
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      checkKeys(v, format, [...path, String(i)], depth + 1);
    });
    return;
  }
  for (const key of Object.getOwnPropertyNames(value)) {
    if (FORBIDDEN_KEYS.has(key)) {
      throw fail(format, `the key "${key}" is not allowed`, [...path, key].join('.'));
    }
    checkKeys((value as Record<string, unknown>)[key], format, [...path, key], depth + 1);
  }
}

/**
 * FC hands a Node.js handler its event as a Buffer; local invocation and tests pass strings or objects.
 * Returns the JSON value, or throws a PoisonError: invalid UTF-8, not JSON, too large, forbidden keys.
 */
export function decodeEventInput(input: unknown, options: DecodeOptions): unknown {
  const { format } = options;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_EVENT_BYTES;
  let text: string | undefined;
  if (Buffer.isBuffer(input) || input instanceof Uint8Array) {
    if (input.byteLength > maxBytes)
      throw fail(format, `the event is ${input.byteLength} bytes; at most ${maxBytes} are accepted`);
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      throw fail(format, 'the event is not valid UTF-8');
    }
  } else if (typeof input === 'string') {
    if (Buffer.byteLength(input) > maxBytes) {
      throw fail(format, `the event is ${Buffer.byteLength(input)} bytes; at most ${maxBytes} are accepted`);
    }
    text = input;
  }
  let value: unknown = input;
  if (text !== undefined) {
    if (text.trim() === '') throw fail(format, 'the event is empty');
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw fail(format, `the event is not JSON (${(err as Error).message})`, undefined, err);
    }
  }
  if (value === undefined || value === null) throw fail(format, 'the event is empty');
  checkKeys(value, format, [], 0);
  return value;
}

/** Validates `value` against `schema`; the PoisonError names the first wrong field's path. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  format: string,
  prefix: string[] = [],
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = [...prefix, ...(issue?.path ?? []).map(String)].join('.');
  const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more problems)` : '';
  throw fail(format, `${issue?.message ?? 'invalid'}${more}`, path || undefined, result.error);
}

/** Decode and validate in one step: what every handler does with its raw event. */
export function parseEvent<S extends z.ZodType>(
  schema: S,
  input: unknown,
  options: DecodeOptions,
): z.output<S> {
  return parseWith(schema, decodeEventInput(input, options), options.format);
}
