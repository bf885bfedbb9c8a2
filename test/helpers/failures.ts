import { normalizeError, type SentinelError } from '../../shared/errors';

/** Awaits a call that must fail; returns what it threw. */
export async function thrown(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

/** Awaits a call that must fail; returns the failure as the taxonomy classifies it. */
export const failure = async (p: Promise<unknown>): Promise<SentinelError> => normalizeError(await thrown(p));
