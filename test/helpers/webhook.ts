import { SIGNATURE_HEADER, signRequest, TIMESTAMP_HEADER } from '../../functions/webhook';

/** An FC 3.0 HTTP trigger event for the webhook, signed as a client would sign it. */
export function signedEvent(
  secret: string,
  method: 'GET' | 'POST',
  path: string,
  options: { body?: string; idempotencyKey?: string; at?: number; query?: Record<string, string> } = {},
) {
  const body = options.body ?? '';
  const timestamp = String(Math.floor((options.at ?? Date.now()) / 1000));
  const key = options.idempotencyKey;
  return {
    version: 'v1',
    rawPath: path,
    body,
    isBase64Encoded: false,
    headers: {
      [TIMESTAMP_HEADER]: timestamp,
      [SIGNATURE_HEADER]: signRequest(secret, {
        method,
        path,
        ...(options.query ? { query: options.query } : {}),
        timestamp,
        body,
        ...(key ? { idempotencyKey: key } : {}),
      }),
      ...(key ? { 'idempotency-key': key } : {}),
    },
    queryParameters: options.query ?? {},
    requestContext: { requestId: 'r', http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.1' } },
  };
}
