import { credentialsFromDefaultChain } from '../shared/cloud/credentials';
import type { FcContext } from '../shared/runtime/handler';

/**
 * The FC context `invoke` and `serve` hand a handler: its fields, and credentials from the default chain when
 * it finds some. When it finds none, reading `credentials` throws the chain's own error (what to set): a request
 * refused before it reaches the cloud (a bad signature, a malformed event, a body over the limit) needs none,
 * so trying the signed API or an event file locally needs no AccessKey.
 */
export async function localContext(
  base: Omit<FcContext, 'requestId' | 'credentials'>,
): Promise<Omit<FcContext, 'requestId'>> {
  const found = await credentialsFromDefaultChain().then(
    (credentials) => ({ credentials }),
    (error: unknown) => ({ error }),
  );
  if ('credentials' in found) return { ...base, credentials: found.credentials };
  // Not enumerable: a copy made by spreading loses it (and reads as "no credentials"), never throws.
  return Object.defineProperty({ ...base }, 'credentials', {
    get: () => {
      throw found.error;
    },
  });
}

/** `context` for one request: its accessors (the credentials above) kept, not called. */
export const forRequest = (context: Omit<FcContext, 'requestId'>, requestId: string): FcContext =>
  Object.defineProperties({ requestId }, Object.getOwnPropertyDescriptors(context));
