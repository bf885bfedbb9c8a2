import Credential from '@alicloud/credentials';
import { ConfigError } from '../errors';
import { registerSecret } from '../log';

/** Alibaba Cloud credentials: an AccessKey pair, or STS keys with a security token. */
export interface CloudCredentials {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

/** The part of the FC `context` that carries the function role's STS credentials (docs/cloud-facts.md#fc-events). */
export interface FcContextCredentials {
  credentials?: { accessKeyId?: string; accessKeySecret?: string; securityToken?: string };
}

const remember = (c: CloudCredentials): CloudCredentials => {
  registerSecret(c.accessKeySecret);
  registerSecret(c.securityToken);
  return c;
};

/** Inside Function Compute: the function role's STS credentials from `context.credentials`. */
export function credentialsFromContext(context: FcContextCredentials): CloudCredentials {
  const c = context.credentials;
  if (!c?.accessKeyId || !c.accessKeySecret) {
    throw new ConfigError(
      'context.credentials: missing; give the function a RAM role (s.yaml `role`) so Function Compute passes STS credentials',
      { path: 'context.credentials' },
    );
  }
  return remember({
    accessKeyId: c.accessKeyId,
    accessKeySecret: c.accessKeySecret,
    ...(c.securityToken ? { securityToken: c.securityToken } : {}),
  });
}

/**
 * From a laptop or CI: the `@alicloud/credentials` default chain (ALIBABA_CLOUD_ACCESS_KEY_ID /
 * ALIBABA_CLOUD_ACCESS_KEY_SECRET / ALIBABA_CLOUD_SECURITY_TOKEN, the `~/.alibabacloud` profile, an ECS or
 * OIDC role).
 */
export async function credentialsFromDefaultChain(): Promise<CloudCredentials> {
  let model: { accessKeyId?: string; accessKeySecret?: string; securityToken?: string };
  try {
    model = await new Credential().getCredential();
  } catch (err) {
    throw new ConfigError(
      `No Alibaba Cloud credentials found: ${(err as Error).message}. Set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (example: ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5t...)`,
      { path: 'ALIBABA_CLOUD_ACCESS_KEY_ID' },
    );
  }
  if (!model.accessKeyId || !model.accessKeySecret) {
    throw new ConfigError(
      'No Alibaba Cloud credentials found: the default credential chain returned an empty AccessKey',
      {
        path: 'ALIBABA_CLOUD_ACCESS_KEY_ID',
      },
    );
  }
  return remember({
    accessKeyId: model.accessKeyId,
    accessKeySecret: model.accessKeySecret,
    ...(model.securityToken ? { securityToken: model.securityToken } : {}),
  });
}
