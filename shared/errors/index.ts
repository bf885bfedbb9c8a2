export { type NormalizeContext, normalizeError } from './normalize';
export * from './taxonomy';
