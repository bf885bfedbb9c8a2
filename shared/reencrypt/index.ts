export { DEFAULT_RETRY_POLICY, type Decision, decide, type RetryPolicy } from '../retry';
export * from './annotations';
export {
  type Census,
  doneFor,
  keyVersionCensus,
  type SecretRef,
  type SecretStore,
} from './secrets-api';
export * from './sweep';
export type { SweepVerifier, VerificationResult } from './verify';
