export * from './actiontrail';
export * from './eventbridge';
export {
  CLUSTER_ID,
  CLUSTER_ID_CHARS,
  clusterIdField,
  JOB_ID,
  KEY_ID,
  keyIdField,
  keyVersionIdField,
} from './fields';
export * from './http-trigger';
export { decodeEventInput, parseEvent, parseWith } from './parse';
export * from './rotation-watch';
export * from './sls-trigger';
export * from './timer';
