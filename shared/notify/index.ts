import { createHmac, randomUUID } from 'node:crypto';
import type { NotifyChannelConfig } from '../config';
import { type Severity, WHSEC_PREFIX } from '../config/channels';
import { type Logger, redact, redactString } from '../log';
import { notifyBackoff, withRetries } from '../retry';
import { chatText } from './markup';

/**
 * Outbound notifications: a generic webhook signed as Standard Webhooks specifies, DingTalk and Lark/Feishu
 * robots (each with its own signing scheme) and Slack incoming webhooks. Destinations come only from configuration. Retries with backoff on 429
 * and 5xx; a receiver that is down is logged, never thrown: it must not break the job that notifies.
 */
export interface Notification {
  severity: Severity;
  /** A short title, e.g. `KMS key key-123 was disabled`. */
  title: string;
  /** One or two sentences a person acts on. */
  text: string;
  /** Structured facts (redacted before sending). */
  details?: Record<string, unknown>;
}

export interface DeliveryResult {
  channel: string;
  ok: boolean;
  status?: number;
  attempts: number;
  error?: string;
}

export interface Notifier {
  notify(n: Notification): Promise<DeliveryResult[]>;
}

export interface NotifierOptions {
  log?: Logger;
  maxAttempts?: number;
  baseDelayMs?: number;
  now?: () => number;
  timeoutMs?: number;
}

/**
 * The generic webhook follows the Standard Webhooks specification, so a receiver verifies it with a maintained
 * library (docs/webhook.md): `webhook-id` names the notification and stays the same across our retries of it
 * (the receiver's idempotency key), `webhook-timestamp` is the attempt's time in seconds, and
 * `webhook-signature` is `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. The key is the secret's bytes:
 * base64-decoded from `whsec_<base64>`, or a raw secret's UTF-8 bytes (`format: 'raw'` to the libraries).
 * (The inbound API's `x-sentinel-signature` is another scheme: functions/webhook.)
 */
export const STANDARD_WEBHOOK_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

const signingKey = (secret: string): Buffer =>
  secret.startsWith(WHSEC_PREFIX)
    ? Buffer.from(secret.slice(WHSEC_PREFIX.length), 'base64')
    : Buffer.from(secret, 'utf8');

function signWebhook(secret: string, messageId: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', signingKey(secret)).update(`${messageId}.${timestamp}.${body}`);
  return `v1,${mac.digest('base64')}`;
}

/** One notification as the channels send it: its id is the same in every attempt of every channel. */
interface Message {
  id: string;
  notification: Notification;
}

interface Request {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * Builds the HTTP request a channel's service expects, for an attempt at `nowMs`. Chat messages carry their
 * text through `chatText` (markup.ts); the generic webhook is JSON for programs and carries the values as they are.
 */
function buildRequest(channel: NotifyChannelConfig, message: Message, nowMs: number): Request {
  // Everything a receiver gets passes the redaction guard: titles and texts quote error messages too.
  const raw = message.notification;
  const n = { ...raw, title: redactString(raw.title), text: redactString(raw.text) };
  const details = raw.details ? (redact(raw.details) as Record<string, unknown>) : undefined;
  const json = { 'content-type': 'application/json' };
  const line = `[${n.severity}] ${n.title}`;
  switch (channel.type) {
    case 'webhook': {
      const body = JSON.stringify({
        severity: n.severity,
        title: n.title,
        text: n.text,
        details: details ?? {},
        sentAt: new Date(nowMs).toISOString(),
      });
      const t = Math.floor(nowMs / 1000);
      const headers = {
        ...json,
        [STANDARD_WEBHOOK_HEADERS.id]: message.id,
        [STANDARD_WEBHOOK_HEADERS.timestamp]: String(t),
        [STANDARD_WEBHOOK_HEADERS.signature]: signWebhook(channel.secret, message.id, t, body),
      };
      return { url: channel.url, headers, body };
    }
    case 'dingtalk': {
      // DingTalk custom robot "加签": timestamp (ms) and sign = urlencode(base64(HMAC-SHA256(secret, "<ts>\n<secret>"))).
      const url = new URL(channel.url);
      if (channel.secret) {
        const ts = String(nowMs);
        const sign = createHmac('sha256', channel.secret).update(`${ts}\n${channel.secret}`).digest('base64');
        url.searchParams.set('timestamp', ts);
        url.searchParams.set('sign', sign);
      }
      const md = (s: string) => chatText('dingtalk', s);
      const title = `[${n.severity}] ${md(n.title)}`;
      const facts = details ? `\n\n\`${md(JSON.stringify(details))}\`` : '';
      const body = JSON.stringify({
        msgtype: 'markdown',
        markdown: { title, text: `### ${title}\n\n${md(n.text)}${facts}` },
      });
      return { url: url.toString(), headers: json, body };
    }
    case 'lark': {
      // Lark/Feishu custom bot: sign = base64(HMAC-SHA256(key = "<ts>\n<secret>", message = "")), ts in seconds.
      const ts = Math.floor(nowMs / 1000);
      const signed = channel.secret
        ? {
            timestamp: String(ts),
            sign: createHmac('sha256', `${ts}\n${channel.secret}`).update('').digest('base64'),
          }
        : {};
      const text = chatText('lark', `${line}\n${n.text}`);
      const body = JSON.stringify({ ...signed, msg_type: 'text', content: { text } });
      return { url: channel.url, headers: json, body };
    }
    case 'slack': {
      const body = JSON.stringify({ text: `*${chatText('slack', line)}*\n${chatText('slack', n.text)}` });
      return { url: channel.url, headers: json, body };
    }
  }
}

interface Attempt {
  ok: boolean;
  status?: number;
  error?: string;
  /** 429, 5xx, a timeout or a broken connection: worth another attempt. */
  retryable?: boolean;
}

/** One POST of a notification; a redirect is a failure (never followed), as is any answer but 2xx. */
async function deliverOnce(
  req: { url: string; headers: Record<string, string>; body: string },
  timeoutMs: number,
): Promise<Attempt> {
  try {
    const res = await fetch(req.url, {
      method: 'POST',
      headers: req.headers,
      body: req.body,
      // A redirect would re-send the signed POST to a host the configuration never named.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const status = res.status;
    await res.arrayBuffer();
    if (res.ok) return { ok: true, status };
    const error =
      status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`;
    return { ok: false, status, error, retryable: status === 429 || status >= 500 };
  } catch (err) {
    return {
      ok: false,
      error: (err as Error).name === 'TimeoutError' ? 'timeout' : 'connection failed',
      retryable: true,
    };
  }
}

/** Channels, or how to read them (from KMS Secrets Manager) when the first notification is sent. */
export type ChannelSource = NotifyChannelConfig[] | (() => Promise<NotifyChannelConfig[]>);

export function createNotifier(source: ChannelSource, options: NotifierOptions = {}): Notifier {
  const maxAttempts = options.maxAttempts ?? 4;
  const baseDelayMs = options.baseDelayMs ?? 500;
  const now = options.now ?? Date.now;
  return {
    async notify(n) {
      let channels: NotifyChannelConfig[];
      try {
        channels = typeof source === 'function' ? await source() : source;
      } catch (err) {
        options.log?.error('notification channels could not be read', { error: (err as Error).message });
        return [];
      }
      const message: Message = { id: `msg_${randomUUID().replaceAll('-', '')}`, notification: n };
      // A channel's default name is its place in the configuration, whatever the severity.
      const targets = channels
        .map((channel, index) => ({ channel, index }))
        .filter(({ channel }) => channel.severities.includes(n.severity));
      return Promise.all(
        targets.map(async ({ channel, index }): Promise<DeliveryResult> => {
          const name = channel.name ?? `${channel.type}#${index}`;
          let last: Attempt = { ok: false };
          let attempts = 0;
          try {
            last = await withRetries(
              async () => {
                attempts++;
                last = await deliverOnce(buildRequest(channel, message, now()), options.timeoutMs ?? 10_000);
                if (!last.ok && last.retryable) throw last;
                return last;
              },
              notifyBackoff(maxAttempts, baseDelayMs),
              (err) => err === last,
            );
          } catch {
            // `last` is the final failed attempt.
          }
          const { status, error } = last;
          if (last.ok) return { channel: name, ok: true, status: status ?? 200, attempts };
          // Never the URL: robot URLs carry access tokens.
          options.log?.warn('notification not delivered', {
            channel: name,
            status,
            error,
            severity: n.severity,
          });
          return {
            channel: name,
            ok: false,
            attempts,
            ...(status ? { status } : {}),
            ...(error ? { error } : {}),
          };
        }),
      );
    },
  };
}
