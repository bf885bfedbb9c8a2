export * from './actiontrail';
export * from './eventbridge';
export * from './http-trigger';
export * from './job';
export { decodeEventInput, parseEvent, parseWith } from './parse';
export * from './rotation-watch';
export * from './sls-trigger';
export * from './timer';
