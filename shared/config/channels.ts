import { z } from 'zod';
import { bad, isSafeUrl, type Problem } from './settings';

/**
 * Notification channels (`SENTINEL_NOTIFY_CHANNELS`, a JSON array). Destinations come only from here, never
 * from request input. URLs and secrets are secret-valued: robot URLs carry access tokens.
 */
/**
 * `warning`: something a person should act on, not an outage (a job that rewrote Secrets but could not prove
 * they were sealed under the new key version).
 */
export const SEVERITIES = ['critical', 'warning', 'report', 'audit'] as const;
export type Severity = (typeof SEVERITIES)[number];

const channelUrl = z.string().refine((v) => {
  try {
    return isSafeUrl(new URL(v));
  } catch {
    return false;
  }
}, 'must be an https URL (plain http only for loopback)');

/** The Standard Webhooks form of a signing secret: the prefix, then the key's bytes in base64. */
export const WHSEC_PREFIX = 'whsec_';

/**
 * The generic webhook's signing secret: `whsec_<base64>` (the specification asks for 24 to 64 random bytes), or
 * a raw secret of at least 16 characters, whose UTF-8 bytes are the key (shared/notify says how to verify both).
 */
const webhookSecret = z.string().refine((v) => {
  if (!v.startsWith(WHSEC_PREFIX)) return v.length >= 16;
  const encoded = v.slice(WHSEC_PREFIX.length);
  const bytes = Buffer.from(encoded, 'base64').length;
  return /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) && bytes >= 24 && bytes <= 64;
}, 'must be whsec_ and the base64 of 24 to 64 random bytes, or a raw secret of at least 16 characters');

const base = {
  name: z.string().min(1).max(64).optional(),
  url: channelUrl,
  severities: z
    .array(z.enum(SEVERITIES))
    .min(1)
    .default([...SEVERITIES]),
};

export const channelSchema = z.discriminatedUnion(
  'type',
  [
    z.object({
      type: z.literal('webhook'),
      ...base,
      secret: webhookSecret,
    }),
    z.object({
      type: z.literal('dingtalk'),
      ...base,
      secret: z.string().startsWith('SEC', 'must be the robot\'s "SEC..." signing secret').optional(),
    }),
    z.object({ type: z.literal('lark'), ...base, secret: z.string().min(1).optional() }),
    z.object({ type: z.literal('slack'), ...base, secret: z.undefined().optional() }),
  ],
  { message: 'type must be one of webhook, dingtalk, lark, slack' },
);

export type NotifyChannelConfig = z.output<typeof channelSchema>;

export function parseNotifyChannels(value: string): NotifyChannelConfig[] | Problem {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return bad('must be a JSON array of channels');
  }
  const result = z.array(channelSchema).max(20).safeParse(parsed);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  // Never quote the input: it holds robot tokens and signing secrets.
  const [index, ...field] = (issue?.path ?? []).map(String);
  const where =
    index === undefined ? '' : `channel ${index}${field.length ? ` field ${field.join('.')}` : ''}: `;
  return bad(`${where}${issue?.message ?? 'invalid'}`);
}
