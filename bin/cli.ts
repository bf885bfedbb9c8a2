import { Command, CommanderError, Option } from 'commander';
import { version } from '../package.json';
import { DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE } from '../shared/reencrypt/defaults';
import type { AuditFlags } from './audit-command';
import type { CallFlags } from './call-command';
import type { commands } from './commands';
import type { DisableFlags } from './disable-command';
import type { EnableFlags } from './enable-command';
import { EXIT } from './exit-codes';
import type { GrantFlags } from './grant-command';
import type { InvokeFlags } from './invoke-command';
import type { ReencryptFlags } from './reencrypt-command';
import type { ServeFlags } from './serve-command';
import type { StatusFlags } from './status-command';

// Each command loads its modules when it runs: `--help` and usage errors load nothing but commander. The CLI's
// build makes `./commands` a bundle of its own (dist/commands.js, bin/build-cli.js), which this one loads only
// then. The `.js` names resolve to the TypeScript sources (tsc, esbuild, vitest).
type Commands = typeof commands;
const load = async <K extends keyof Commands>(name: K): Promise<Awaited<ReturnType<Commands[K]>>> =>
  (await import('./commands.js')).commands[name]() as Promise<Awaited<ReturnType<Commands[K]>>>;

/**
 * `ack-kms-sentinel`: the suite's jobs from a laptop or CI, against any cluster you have a kubeconfig for.
 * Exit codes (`EXIT`, the same for every command): 0 done, 1 failed or needs a person, 2 usage or configuration,
 * 3 interrupted or time budget spent (run again to resume), 4 done but unproven.
 */
const collect = (value: string, previous: string[]) => [
  ...previous,
  ...value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean),
];

type Exit = (code: number) => void;

/** `quiet`: commander writes no error of its own (with --json, `failed` writes it as one object). */
export function buildProgram(run: Exit, quiet = false): Command {
  const program = new Command('ack-kms-sentinel')
    .description(
      'Keep Kubernetes Secret encryption with Alibaba Cloud KMS effective and provable on ACK clusters',
    )
    .version(version, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput(
      quiet
        ? { writeErr: () => undefined, outputError: () => undefined }
        : { writeErr: (text) => process.stderr.write(text) },
    );
  addReencrypt(program, run);
  addInvoke(program, run);
  addServe(program, run);
  addAudit(program, run);
  addEnable(program, run);
  addDisable(program, run);
  addGrant(program, run);
  addStatus(program, run);
  addCall(program, run);
  return program;
}

function addReencrypt(program: Command, run: Exit): void {
  program
    .command('reencrypt')
    .description('Write every Secret again so the API server stores it under the current KMS key version')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('--namespace <ns>', 'only these namespaces (repeatable, or comma-separated)', collect, [])
    .option('--exclude-namespace <ns>', 'skip these namespaces (repeatable, or comma-separated)', collect, [])
    .option('--selector <labels>', 'only Secrets matching this label selector, e.g. owner=helm')
    .option('--concurrency <n>', 'writes in flight at most', String(DEFAULT_CONCURRENCY))
    .option('--page-size <n>', 'Secrets per list page', String(DEFAULT_PAGE_SIZE))
    .addOption(new Option('--strategy <name>', 'annotate (default) or stale-only').default('annotate'))
    .option('--key-version <id>', 'the KMS key version the Secrets are rewritten for (required for annotate)')
    .option('--dry-run', 'count what would be written and estimate the KMS calls; write nothing')
    .option(
      '--read-secret-sizes',
      "with --dry-run: read every Secret whole for the estimate's sizes (Secret data reaches this machine; metadata only without it)",
    )
    .option('--json', 'end stdout with the final report as one JSON object')
    .option('--no-progress', 'no progress line on stderr (drawn only when stderr is a terminal anyway)')
    .option(
      '--checkpoint <file>',
      'resume from this file if it exists; keep it up to date; removed when done',
    )
    .option(
      '--time-budget <duration>',
      'stop taking new work after this long (e.g. 10m) and save the checkpoint',
    )
    .option(
      '--verify-etcd <url>',
      'verify from etcd afterwards (self-managed control planes and the sandbox)',
    )
    .option(
      '--cluster-id <id>',
      "the ACK cluster id: read its key's primary version and prove the re-encryption from the API servers' /metrics (needs Alibaba Cloud credentials)",
    )
    .option('--config <file>', 'a JSON file of SENTINEL_* settings (the environment wins)')
    .option('--force', 'sweep even when the API servers prove a rewrite would not re-seal (the marks say so)')
    .option(
      '--polite',
      "follow the sweep's own latency and back off before the API server's other clients feel it (slower: a third to a half of full speed in BENCHMARKS.md)",
    )
    .option(
      '--etcd-quota <size>',
      "etcd's --quota-backend-bytes, for the space guard (e.g. 8Gi; default 2Gi, etcd's own)",
    )
    .option(
      '--etcd-quota-share <fraction>',
      'pause for a compaction once etcd grows past this share of its quota',
      '0.8',
    )
    .option('--no-etcd-guard', "do not watch etcd's size (the guard needs /metrics)")
    .option(
      '--api-servers <n>',
      "how many API servers serve the cluster, when the kubeconfig's identity cannot list their leases (SENTINEL_API_SERVERS); without either nothing is proven",
    )
    .action(async (flags: ReencryptFlags) => {
      const { cliOutput } = await load('output');
      const { reencryptCommand } = await load('reencrypt');
      const out = cliOutput(process.stdout, process.stderr, {
        json: flags.json === true,
        progress: flags.progress !== false,
      });
      run(await reencryptCommand(flags, out));
    });
}

function addInvoke(program: Command, run: Exit): void {
  program
    .command('invoke')
    .description(
      'Run a function handler locally with a realistic Function Compute context, like `s local invoke`',
    )
    .argument('<function>', 'rotation-watch, reencrypt, trail-verify, audit or webhook')
    .requiredOption('--event <file|->', 'the event, from a file or - for stdin (as FC hands it: bytes)')
    .option('--config <file>', 'a JSON file of SENTINEL_* settings (the environment wins)')
    .option('--timeout <seconds>', 'the function timeout the handler budgets against', '60')
    .action(async (name: string, flags: InvokeFlags) => {
      const { invokeCommand } = await load('invoke');
      run(await invokeCommand(name, flags));
    });
}

function addServe(program: Command, run: Exit): void {
  program
    .command('serve')
    .description(
      'Serve the webhook API locally: each request becomes an FC 3.0 HTTP trigger event, like `s local start`',
    )
    .option('--port <n>', 'port to listen on', '9000')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--config <file>', 'a JSON file of SENTINEL_* settings (the environment wins)')
    .action(async (flags: ServeFlags) => {
      const { serveCommand } = await load('serve');
      run(await serveCommand(flags));
    });
}

function addAudit(program: Command, run: Exit): void {
  program
    .command('audit')
    .description(
      'Check Secret encryption, the KMS key, ActionTrail evidence and re-encryption coverage; write JSON and HTML reports',
    )
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('--cluster-id <id>', 'the ACK cluster id, for the cloud checks (needs Alibaba Cloud credentials)')
    .option('--out <dir>', 'where to write audit.json and audit.html (needed unless --json)')
    .option('--json', 'the report as one JSON object on stdout (with or without --out)')
    .option('--config <file>', 'a JSON file of SENTINEL_* settings (the environment wins)')
    .option(
      '--fix <fixes>',
      'opt-in: turn on deletion protection and/or set automatic rotation on the key if the audit finds them off (deletion-protection,rotation-policy; needs --cluster-id)',
    )
    .option('--rotation-interval-days <n>', 'the interval --fix rotation-policy sets (default 365)')
    .action(async (flags: AuditFlags) => {
      const { auditCommand } = await load('audit');
      run(await auditCommand(flags));
    });
}

function addGrant(program: Command, run: Exit): void {
  program
    .command('grant')
    .description(
      "Bind the functions' RAM roles to the suite's ClusterRoles (deploy/rbac.yaml) in each cluster through CS GrantPermissions, keeping every other grant",
    )
    .option('--cluster-id <id>', 'the ACK cluster id (repeatable, or comma-separated)', collect, [])
    .option('--all', 'every cluster the configuration targets (SENTINEL_CLUSTER_IDS, or discovery)')
    .option('--dry-run', 'read the grants and say what would change; change nothing')
    .option(
      '--kubeconfig <file>',
      "with one --cluster-id: a kubeconfig allowed to write RBAC and flow control there (the deployer's), to apply deploy/rbac.yaml and deploy/apf.yaml too",
    )
    .option(
      '--role-prefix <prefix>',
      "the functions' RAM roles are <prefix><function> (default ack-kms-sentinel-<region>-)",
    )
    .option('--json', 'print the result as one JSON object')
    .option('--config <file>', 'a JSON file of SENTINEL_* settings (the environment wins)')
    .action(async (flags: GrantFlags) => {
      const { grantCommand } = await load('grant');
      run(await grantCommand(flags));
    });
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.done;
  const asJson = argv.includes('--json');
  // With --json an error is one JSON object on stdout: commander's own message is written by `failed` instead.
  const program = buildProgram((c) => {
    code = c;
  }, asJson);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every other commander error is a usage error.
      if (err.exitCode === 0) return EXIT.done;
      return asJson
        ? failed({ code: EXIT.usage, message: err.message.replace(/^error: /, '') }, true)
        : EXIT.usage;
    }
    let described: { code: number; message: string };
    try {
      described = (await load('reencrypt')).describeError(err);
    } catch (loadErr) {
      // The commands themselves cannot be loaded (dist/commands.js missing or broken): say so, not what failed next.
      described = {
        code: EXIT.usage,
        message: `the commands cannot be loaded (${(loadErr as Error).message}); run \`npm run build:cli\``,
      };
    }
    // For bug reports: the stack, only when asked (it can name internal paths, never data).
    if (process.env.ACK_KMS_SENTINEL_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return failed(described, asJson);
  }
}

/** Why the command failed: a line on stderr, and with --json one object on stdout; its exit code. */
function failed(described: { code: number; message: string }, asJson: boolean): number {
  // Control characters stripped here too: a message can quote what a cluster or a flag held.
  const message = [...described.message]
    .filter((c) => {
      const n = c.charCodeAt(0);
      return n === 9 || n === 10 || (n >= 0x20 && n !== 0x7f && (n < 0x80 || n > 0x9f));
    })
    .join('');
  process.stderr.write(`ack-kms-sentinel: ${message}\n`);
  if (asJson) {
    const kind = Object.entries(EXIT).find(([, v]) => v === described.code)?.[0] ?? 'failed';
    process.stdout.write(`${JSON.stringify({ error: { exitCode: described.code, kind, message } })}\n`);
  }
  return described.code;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

function addEnable(program: Command, run: Exit): void {
  program
    .command('enable')
    .description(
      'Turn Secret encryption on for an ACK cluster: pre-flight checks, UpdateKMSEncryption, the wait, the evidence, a sweep of the existing Secrets, verification',
    )
    .requiredOption('--cluster-id <id>', 'the ACK cluster id')
    .requiredOption('--key-id <key>', 'the KMS key (id or alias) in the cluster region')
    .option('--dry-run', 'run the pre-flight checks only')
    .option('--protect-key', "turn on the key's deletion protection if it is off")
    .option(
      '--kubeconfig <path>',
      'reach the cluster with this kubeconfig (default: DescribeClusterUserKubeconfig)',
    )
    .option(
      '--verify-etcd <url>',
      'count plaintext Secrets in etcd afterwards (the sandbox, self-managed control planes)',
    )
    .option('--json', 'end stdout with the report as one JSON object')
    .option('--config <file>', 'a JSON file of SENTINEL_* settings (the environment wins)')
    .action(async (flags: EnableFlags) => {
      const { enableCommand } = await load('enable');
      run(await enableCommand(flags));
    });
}

function addDisable(program: Command, run: Exit): void {
  program
    .command('disable')
    .description(
      'Turn Secret encryption off (new Secrets are stored in plaintext; existing ones stay sealed under the key): needs --confirm-disable',
    )
    .requiredOption('--cluster-id <id>', 'the ACK cluster id')
    .option('--confirm-disable', 'yes: store Secrets written from now on in plaintext')
    .option('--json', 'end stdout with the report as one JSON object')
    .option('--config <file>', 'a JSON file of SENTINEL_* settings (the environment wins)')
    .action(async (flags: DisableFlags) => {
      const { disableCommand } = await load('disable');
      run(await disableCommand(flags));
    });
}

function addStatus(program: Command, run: Exit): void {
  program
    .command('status')
    .description(
      "Where each cluster stands: encryption and its key, the key's version and rotation, the API servers' verdict, the last job, coverage",
    )
    .option('--cluster-id <id>', 'these clusters (repeatable, or comma-separated)', collect, [])
    .option(
      '--all',
      "every cluster of the deployment's settings (SENTINEL_CLUSTER_IDS, or all in the region)",
    )
    .option(
      '--kubeconfig <path>',
      'reach the one cluster with this kubeconfig (default: DescribeClusterUserKubeconfig)',
    )
    .option('--json', 'the status as one JSON object on stdout')
    .option('--config <file>', 'a JSON file of SENTINEL_* settings (the environment wins)')
    .action(async (flags: StatusFlags) => {
      const { statusCommand } = await load('status');
      run(await statusCommand(flags));
    });
}

function addCall(program: Command, run: Exit): void {
  program
    .command('call')
    .description("Sign a request to the webhook API (its v2 scheme) and send it; print the answer's body")
    .argument('<method>', 'GET or POST')
    .argument('<path>', 'e.g. /v1/audits, /v1/clusters/<id>/status, /v1/clusters/<id>/reencrypt?dryRun=true')
    .option('--body <json|@file|->', 'the request body: JSON text, @file, or - for stdin')
    .option(
      '--idempotency-key <key>',
      'the Idempotency-Key header (signed): a retry with it is the same request',
    )
    .option('--url <url>', 'the webhook address (default: $SENTINEL_WEBHOOK_URL)')
    .option(
      '--secret <secret>',
      'the signing secret, or kms-secret://<name> (default: $SENTINEL_WEBHOOK_SECRET; prefer the variable: arguments show in ps)',
    )
    .option(
      '--config <file>',
      'a JSON file of SENTINEL_* settings, for a kms-secret:// (the environment wins)',
    )
    .option('--timeout <seconds>', 'give up after this long', '60')
    .action(async (method: string, path: string, flags: CallFlags) => {
      const { callCommand } = await load('call');
      run(await callCommand(method, path, flags));
    });
}
