import type Fc from '@alicloud/fc20230330';
import OpenApi, * as $OpenApi from '@alicloud/openapi-client';
import OpenApiCore, { $OpenApiUtil } from '@alicloud/openapi-core';
import * as $Util from '@alicloud/tea-util';
import * as $dara from '@darabonba/typescript';
import type { SentinelConfig } from '../config';
import { normalizeError } from '../errors';
import type { CloudCredentials } from './credentials';
import {
  type ClientOptions,
  DEFAULT_TIMEOUTS,
  serviceConfig,
  type TeaConfig,
  type Timeouts,
} from './endpoints';

/**
 * The clients every function uses. With oss.ts (ali-oss) and sls.ts (the SLS SDK), each in a file of its own
 * so that only the bundles that need those packages hold them, this folder is the one place Alibaba Cloud SDK
 * clients are made: credentials, region, the endpoint from the one table (endpoints.ts) or from configuration
 * (the local sandbox), and sane timeouts. Production code reaches the cloud only through these.
 *
 * - KMS: RPC actions through `@alicloud/openapi-client`'s generic `callApi` (`kmsRpc`), never a hand-signed
 *   request: the typed `@alicloud/kms20160120` 1.2.0 lacks operations (`SetDeletionProtection`) and drops
 *   fields (`DeletionProtection`). The typed KMS and CS clients (about 1 MB) serve only the sandbox and the
 *   tests (sandbox/cloud/console-clients.ts), never a function's bundle.
 * - ActionTrail: no SDK on our registry (docs/cloud-facts.md#actiontrail-events), so `LookupEvents` also goes through `callApi`.
 * - CS: ROA actions through openapi-core's generic `callApi` (`csRoa`), for `meta_data` the typed models drop.
 * - FC: `@alicloud/fc20230330`, the FC 3.0 OpenAPI SDK (ACS3 signatures), which the official `fc3` component
 *   itself invokes with (`invokeFunction` with `x-fc-invocation-type` and `x-fc-async-task-id`); it replaces
 *   `@alicloud/fc2`, an FC 2.0 client whose requests FC 3.0 was never shown to accept (docs/decisions.md).
 */
export type RpcCaller = (action: string, query?: Record<string, string>) => Promise<Record<string, unknown>>;
export type RoaCaller = (
  action: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  pathname: string,
  query?: Record<string, string>,
  /** A JSON body: the call is a write whose answer has no body (as the typed SDK's `bodyType: none`). */
  body?: Record<string, unknown> | unknown[],
) => Promise<unknown>;

export interface CloudClients {
  region: string;
  kmsRpc: RpcCaller;
  csRoa: RoaCaller;
  actionTrailRpc: RpcCaller;
  fc: Fc;
}

/** No SDK-level retries: the suite decides what to retry (shared/retry.ts), and FC retries invocations. */
const runtimeOptions = (timeouts: Timeouts) => ({
  connectTimeout: timeouts.connectTimeoutMs,
  readTimeout: timeouts.readTimeoutMs,
  autoretry: false,
});

/** An RPC-style action caller through openapi-client's generic `callApi` (KMS, ActionTrail). */
function rpcCaller(config: TeaConfig, timeouts: Timeouts, version: string, service: string): RpcCaller {
  const client = new OpenApi(new $OpenApi.Config(config));
  return async (action, query = {}) => {
    const params = new $OpenApi.Params({
      action,
      version,
      protocol: 'HTTPS',
      pathname: '/',
      method: 'POST',
      authType: 'AK',
      style: 'RPC',
      reqBodyType: 'formData',
      bodyType: 'json',
    });
    try {
      const request = new $OpenApi.OpenApiRequest({ query });
      const res = await client.callApi(params, request, new $Util.RuntimeOptions(runtimeOptions(timeouts)));
      return (res.body ?? {}) as Record<string, unknown>;
    } catch (err) {
      throw normalizeError(err, { service, operation: action });
    }
  };
}

/** A ROA-style CS caller through openapi-core's generic client. */
function csRoaCaller(config: TeaConfig, timeouts: Timeouts): RoaCaller {
  const client = new OpenApiCore(new $OpenApiUtil.Config(config));
  return async (action, method, pathname, query = {}, body = undefined) => {
    const params = new $OpenApiUtil.Params({
      action,
      version: '2015-12-15',
      protocol: 'HTTPS',
      pathname,
      method,
      authType: 'AK',
      style: 'ROA',
      reqBodyType: 'json',
      bodyType: body ? 'none' : 'json',
    });
    try {
      const request = new $OpenApiUtil.OpenApiRequest({ query, ...(body ? { body } : {}) });
      const res = await client.callApi(params, request, new $dara.RuntimeOptions(runtimeOptions(timeouts)));
      return res.body;
    } catch (err) {
      throw normalizeError(err, { service: 'cs', operation: action });
    }
  };
}

/**
 * RAM (global, `ram.aliyuncs.com`): only `GetRole`, for a role's id, the uid ACK grants to. Apart from
 * CloudClients: no function calls RAM; the `grant` command does.
 */
export function createRamRpc(
  config: Pick<SentinelConfig, 'region' | 'endpoints'>,
  credentials: CloudCredentials,
  options: ClientOptions = {},
): RpcCaller {
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  return rpcCaller(serviceConfig('ram', config, credentials, options), timeouts, '2015-05-01', 'ram');
}

export function createCloudClients(
  config: Pick<SentinelConfig, 'region' | 'endpoints' | 'accountId'>,
  credentials: CloudCredentials,
  options: ClientOptions = {},
): CloudClients {
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  const configFor = (service: 'kms' | 'cs' | 'actiontrail' | 'fc') =>
    serviceConfig(service, config, credentials, options);
  let fc: Fc | undefined;
  return {
    region: config.region,
    kmsRpc: rpcCaller(configFor('kms'), timeouts, '2016-01-20', 'kms'),
    csRoa: csRoaCaller(configFor('cs'), timeouts),
    actionTrailRpc: rpcCaller(configFor('actiontrail'), timeouts, '2020-07-06', 'actiontrail'),
    // Loaded on first use: a function that never invokes another pays nothing for the FC client.
    get fc(): Fc {
      if (!fc) {
        const FcClient = (require('@alicloud/fc20230330') as { default: typeof Fc }).default;
        fc = new FcClient(new $OpenApiUtil.Config(configFor('fc')));
      }
      return fc;
    },
  };
}
