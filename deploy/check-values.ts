import { loadConfig, SETTING_TABLE } from '../shared/config';
import { ConfigError } from '../shared/errors';
import type { FunctionProps, Resolved } from './check';

/**
 * The values a deployment would start with, judged by the functions' own configuration loader on each
 * function's resolved environment: what breaks a function at start breaks the check first, every problem at
 * once, each naming the variable and a good example.
 */
export interface ValueOptions {
  /** Literal secret values deploy into the functions' configuration (readable with fc:GetFunction). */
  allowLiteralSecrets?: boolean;
}

const KMS_SECRET = 'kms-secret://';

/** The loader's problems for one environment (one line per variable). */
function loaderProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.message
      .split('\n')
      .slice(1)
      .map((line) => line.replace(/^\s*- /, ''));
  }
}

/** A problem every function shares is said once; one that only some have names them. */
function byFunction(found: Map<string, string[]>, all: number): string[] {
  return [...found].map(([problem, fns]) =>
    fns.length === all ? problem : `${problem} [${fns.join(', ')}]`,
  );
}

function literalSecrets(props: FunctionProps): string[] {
  const env = props.environmentVariables ?? {};
  return SETTING_TABLE.filter((s) => s.secret)
    .filter((s) => {
      const v = env[s.name]?.trim();
      return v !== undefined && v !== '' && v !== s.default && !v.startsWith(KMS_SECRET);
    })
    .map(
      (s) =>
        `${s.name}: a literal secret would be stored in the function configuration, readable by whoever may read the function; ` +
        `put it in KMS Secrets Manager (npm run deploy:prepare) and set the name ` +
        `(example: ${s.name}=${s.example.split(' or ').pop()}), or deploy it as it is with --allow-literal-secrets ` +
        '(DEPLOY_ALLOW_LITERAL_SECRETS=true under s deploy)',
    );
}

export function valueProblems(r: Resolved, options: ValueOptions = {}): string[] {
  const found = new Map<string, string[]>();
  const add = (problem: string, fn: string) => found.set(problem, [...(found.get(problem) ?? []), fn]);
  for (const { name, props } of r.functions) {
    const env = props.environmentVariables ?? {};
    for (const p of loaderProblems(env)) add(p, name);
    if (name === 'webhook' && !env.SENTINEL_WEBHOOK_SECRET?.trim())
      add(
        'SENTINEL_WEBHOOK_SECRET: is not set; the webhook refuses every request without it ' +
          '(example: SENTINEL_WEBHOOK_SECRET=kms-secret://ack-kms-sentinel-webhook)',
        name,
      );
    if (!options.allowLiteralSecrets) for (const p of literalSecrets(props)) add(p, name);
  }
  return byFunction(found, r.functions.length);
}
