export * from './actiontrail';
export * from './eventbridge';
export * from './http-trigger';
export * from './job';
export { DEFAULT_MAX_EVENT_BYTES, decodeEventInput, parseEvent, parseWith } from './parse';
export * from './sls-trigger';
export * from './timer';
