import { $OpenApiUtil } from '@alicloud/openapi-core';
import type Sls from '@alicloud/sls20201230';
import type { CloudCredentials } from './credentials';
import { DEFAULT_TIMEOUTS, type Timeouts, teaConfig } from './endpoints';

/**
 * The SLS client (`@alicloud/sls20201230`), required on first use and in a file of its own: only trail-verify
 * reads SLS, so only its bundle holds the SDK (deploy/build.sh ships it beside it), and the CLI loads it as a
 * bundle apart (bin/launch.js `APART`). `endpoint` is a URL: configuration's, or the table's
 * (`resolveEndpoint('sls', …)`); the SDK wants host and protocol apart.
 */
export function slsClient(
  endpoint: URL,
  credentials: CloudCredentials,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
): Sls {
  const SlsClient = (require('@alicloud/sls20201230') as { default: typeof Sls }).default;
  const protocol = endpoint.protocol === 'http:' ? 'http' : 'https';
  return new SlsClient(
    new $OpenApiUtil.Config(teaConfig(undefined, credentials, { host: endpoint.host, protocol }, timeouts)),
  );
}
