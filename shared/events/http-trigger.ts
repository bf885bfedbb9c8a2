import { z } from 'zod';
import { type DecodeOptions, parseEvent } from './parse';

/**
 * The FC 3.0 HTTP trigger event for built-in runtimes (docs/cloud-facts.md#fc-events). Multi-valued headers
 * and query parameters arrive joined with commas; a binary body arrives base64-encoded.
 */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export const httpTriggerEventSchema = z.object({
  version: z.literal('v1', { message: 'must be "v1" (FC 3.0 HTTP trigger event)' }),
  rawPath: z.string().startsWith('/', 'must start with "/"'),
  body: z.string().default(''),
  isBase64Encoded: z.boolean().default(false),
  headers: z.record(z.string(), z.string()).default({}),
  queryParameters: z.record(z.string(), z.string()).default({}),
  requestContext: z.object({
    accountId: z.string().optional(),
    domainName: z.string().optional(),
    domainPrefix: z.string().optional(),
    http: z.object({
      method: z.enum(HTTP_METHODS, { message: `must be one of ${HTTP_METHODS.join(', ')}` }),
      path: z.string().startsWith('/', 'must start with "/"'),
      protocol: z.string().optional(),
      sourceIp: z.string().optional(),
      userAgent: z.string().optional(),
    }),
    // `s local invoke`'s HTTP event template sends an empty one.
    requestId: z.string().default(''),
    time: z.string().optional(),
    timeEpoch: z.string().regex(/^\d+$/, 'must be milliseconds since the epoch').optional(),
  }),
});

export type HttpTriggerEvent = z.output<typeof httpTriggerEventSchema>;
export const HTTP_TRIGGER_FORMAT = 'HTTP trigger event';

export function parseHttpTriggerEvent(
  input: unknown,
  options: Partial<DecodeOptions> = {},
): HttpTriggerEvent {
  const event = parseEvent(httpTriggerEventSchema, input, { format: HTTP_TRIGGER_FORMAT, ...options });
  // Header names are case-insensitive; FC passes them as the client sent them.
  event.headers = Object.fromEntries(Object.entries(event.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return event;
}

/** The body as bytes, decoding base64 when FC encoded it. */
export const httpBodyBytes = (event: HttpTriggerEvent): Buffer =>
  Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');

/** The response an FC 3.0 HTTP-triggered handler returns. */
export interface HttpTriggerResponse {
  statusCode: number;
  headers?: Record<string, string>;
  isBase64Encoded?: boolean;
  body: string;
}

export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpTriggerResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    isBase64Encoded: false,
    body: JSON.stringify(body),
  };
}
