import type Cs from '@alicloud/cs20151215';
import type Fc from '@alicloud/fc20230330';
import type Kms from '@alicloud/kms20160120';
import OpenApi, * as $OpenApi from '@alicloud/openapi-client';
import OpenApiCore, { $OpenApiUtil } from '@alicloud/openapi-core';
import type { Config as RpcConfig } from '@alicloud/rpc-client';
import * as $Util from '@alicloud/tea-util';
import * as $dara from '@darabonba/typescript';
import type { EndpointOverride, SentinelConfig } from '../config';
import { normalizeError } from '../errors';
import type { CloudCredentials } from './credentials';
import { DEFAULT_TIMEOUTS, resolveEndpoint, type Timeouts, teaCredentials } from './endpoints';

/**
 * The clients every function uses. With oss.ts (ali-oss) and sls.ts (the SLS SDK), each in a file of its own
 * so that only the bundles that need those packages hold them, this folder is the one place Alibaba Cloud SDK
 * clients are made: credentials, region, the endpoint from the one table (endpoints.ts) or from configuration
 * (the local sandbox), and sane timeouts. Production code reaches the cloud only through these.
 *
 * - KMS: `@alicloud/kms20160120` 1.2.0 (old generation, rpc-client, HMAC-SHA1). Operations it lacks
 *   (`SetDeletionProtection`) and fields its models drop (`DeletionProtection`) go through
 *   `@alicloud/openapi-client`'s generic `callApi` (`kmsRpc`), never a hand-signed request.
 * - ActionTrail: no SDK on our registry (docs/cloud-facts.md#actiontrail-events), so `LookupEvents` also goes through `callApi`.
 * - CS: `@alicloud/cs20151215` 7.x; `csRoa` is its own `callApi`, for `meta_data` the models drop.
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
  body?: Record<string, unknown>,
) => Promise<unknown>;

export interface CloudClients {
  region: string;
  kms: Kms;
  kmsRpc: RpcCaller;
  cs: Cs;
  csRoa: RoaCaller;
  actionTrailRpc: RpcCaller;
  fc: Fc;
}

export interface ClientOptions {
  timeouts?: Timeouts;
  /** Overrides `config.accountId` (inside FC: `context.accountId`). */
  accountId?: string;
}

type Common = ReturnType<typeof commonConfig>;

/** What every client shares: the credentials, the region and the timeouts. */
function commonConfig(region: string, credentials: CloudCredentials, timeouts: Timeouts) {
  return {
    ...teaCredentials(credentials),
    regionId: region,
    connectTimeout: timeouts.connectTimeoutMs,
    readTimeout: timeouts.readTimeoutMs,
  };
}

/** No SDK-level retries: the suite decides what to retry (shared/retry.ts), and FC retries invocations. */
const runtimeOptions = (timeouts: Timeouts) => ({
  connectTimeout: timeouts.connectTimeoutMs,
  readTimeout: timeouts.readTimeoutMs,
  autoretry: false,
});

/** An RPC-style action caller through openapi-client's generic `callApi` (KMS, ActionTrail). */
function rpcCaller(
  common: Common,
  e: EndpointOverride,
  timeouts: Timeouts,
  version: string,
  service: string,
): RpcCaller {
  const client = new OpenApi(new $OpenApi.Config({ ...common, endpoint: e.host, protocol: e.protocol }));
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

/**
 * A ROA-style CS caller through openapi-core's generic client: the functions only make generic calls, so the
 * typed CS client (about 1 MB) is loaded only when asked for.
 */
function csRoaCaller(csConfig: $OpenApiUtil.Config, timeouts: Timeouts): RoaCaller {
  const client = new OpenApiCore(csConfig);
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
 * The typed KMS and CS clients (about 1 MB of code) serve the console user's calls in tools and tests; the
 * functions make generic calls only. Named through a variable, esbuild leaves them out of the function
 * bundles (test/unit/deploy.test.ts checks the bundles), and Node resolves them from node_modules wherever
 * tools and tests run.
 */
const TYPED_KMS = '@alicloud/kms20160120';
const TYPED_CS = '@alicloud/cs20151215';
const requireTyped = (name: string): unknown => require(name);

export function createCloudClients(
  config: Pick<SentinelConfig, 'region' | 'endpoints' | 'accountId'>,
  credentials: CloudCredentials,
  options: ClientOptions = {},
): CloudClients {
  const { region, endpoints } = config;
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  const common = commonConfig(region, credentials, timeouts);
  const kmsEndpoint = resolveEndpoint('kms', region, endpoints);
  const csEndpoint = resolveEndpoint('cs', region, endpoints);
  const csConfig = new $OpenApiUtil.Config({
    ...common,
    endpoint: csEndpoint.host,
    protocol: csEndpoint.protocol,
  });
  const fcEndpoint = resolveEndpoint('fc', region, endpoints, options.accountId ?? config.accountId);
  const trailEndpoint = resolveEndpoint('actiontrail', region, endpoints);
  let kms: Kms | undefined;
  let cs: Cs | undefined;
  let fc: Fc | undefined;
  return {
    region,
    // The typed clients, for the console user's calls in tools and tests; production code makes generic
    // calls. Required on first use, so a function's cold start never evaluates them.
    get kms(): Kms {
      if (!kms) {
        const { Config } = require('@alicloud/rpc-client') as { Config: typeof RpcConfig };
        const KmsClient = (requireTyped(TYPED_KMS) as { default: typeof Kms }).default;
        kms = new KmsClient(
          new Config({ ...common, endpoint: kmsEndpoint.host, protocol: kmsEndpoint.protocol }),
        );
      }
      return kms;
    },
    kmsRpc: rpcCaller(common, kmsEndpoint, timeouts, '2016-01-20', 'kms'),
    get cs(): Cs {
      if (!cs) cs = new (requireTyped(TYPED_CS) as { default: typeof Cs }).default(csConfig);
      return cs;
    },
    csRoa: csRoaCaller(csConfig, timeouts),
    actionTrailRpc: rpcCaller(common, trailEndpoint, timeouts, '2020-07-06', 'actiontrail'),
    // Loaded on first use: a function that never invokes another pays nothing for the FC client.
    get fc(): Fc {
      if (!fc) {
        const FcClient = (require('@alicloud/fc20230330') as { default: typeof Fc }).default;
        fc = new FcClient(
          new $OpenApiUtil.Config({ ...common, endpoint: fcEndpoint.host, protocol: fcEndpoint.protocol }),
        );
      }
      return fc;
    },
  };
}
