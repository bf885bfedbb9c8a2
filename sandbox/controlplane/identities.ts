import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bindingOf, type SuiteRole } from '../../shared/cluster/rbac';

/**
 * The identities ACK issues, in the sandbox: a kubeconfig from DescribeClusterUserKubeconfig authenticates with
 * a client certificate whose CN is the uid of the RAM user or role it was issued to (docs/cloud-facts.md#
 * ack-rbac-grants), so kube-apiserver sees `User <uid>` and RBAC decides from the bindings GrantPermissions
 * wrote. Certificates are signed by a client CA of the sandbox's own (`--client-ca-file`), made with the
 * openssl command line: Node can make keys but not X.509 certificates.
 */
const CA = 'client-ca';

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    throw new Error(
      e.code === 'ENOENT'
        ? 'the sandbox needs the openssl command to issue ACK-style client certificates (apt-get install openssl)'
        : `openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? String(err)}`,
    );
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** The client CA every API server trusts (made once per work directory); returns its certificate's path. */
export function ensureClientCa(certDir: string): string {
  const crt = join(certDir, `${CA}.crt`);
  if (!existsSync(crt)) {
    mkdirSync(certDir, { recursive: true });
    openssl(
      [
        'req',
        '-x509',
        ...EC,
        '-keyout',
        `${CA}.key`,
        '-out',
        `${CA}.crt`,
        '-days',
        '30',
        '-subj',
        '/CN=sandbox-ack-client-ca',
      ],
      certDir,
    );
  }
  return crt;
}

const UID = /^\d{1,32}$/;

/** A client certificate and key for `uid`, signed by the client CA (issued once, then reused). */
export function issueClientCertificate(certDir: string, uid: string): { cert: string; key: string } {
  // A uid is digits (RAM user and role ids); anything else must not reach a file name or a subject.
  if (!UID.test(uid)) throw new Error(`not a RAM uid: ${JSON.stringify(uid)}`);
  const dir = join(certDir, 'users');
  mkdirSync(dir, { recursive: true });
  const crt = join(dir, `${uid}.crt`);
  if (!existsSync(crt)) {
    openssl(
      ['req', '-new', ...EC, '-keyout', `${uid}.key`, '-out', `${uid}.csr`, '-subj', `/CN=${uid}`],
      dir,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${uid}.csr`,
        '-CA',
        join('..', `${CA}.crt`),
        '-CAkey',
        join('..', `${CA}.key`),
        '-set_serial',
        `0x${randomBytes(8).toString('hex')}`,
        '-days',
        '3',
        '-out',
        `${uid}.crt`,
      ],
      dir,
    );
  }
  return { cert: readFileSync(crt, 'utf8'), key: readFileSync(join(dir, `${uid}.key`), 'utf8') };
}

/** The kubeconfig ACK would hand `uid`: the cluster's address and CA, the user's client certificate. */
export function certificateKubeconfig(
  server: string,
  caFile: string,
  clusterId: string,
  uid: string,
  credential: { cert: string; key: string },
): string {
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'kubernetes', cluster: { server, 'certificate-authority-data': b64(readFileSync(caFile)) } },
    ],
    users: [
      {
        name: uid,
        user: { 'client-certificate-data': b64(credential.cert), 'client-key-data': b64(credential.key) },
      },
    ],
    contexts: [{ name: `${uid}-${clusterId}`, context: { cluster: 'kubernetes', user: uid } }],
    'current-context': `${uid}-${clusterId}`,
  });
}

/** A binding GrantPermissions asks for in one cluster: a ClusterRole, cluster-wide or in one namespace. */
export interface GrantedBinding {
  clusterRole: string;
  namespace?: string;
}

const GRANTEE_LABEL = 'sandbox.ack-kms-sentinel/grantee';
const RBAC = '/apis/rbac.authorization.k8s.io/v1';
type AdminRequest = (
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ status: number; body: string }>;

/**
 * Makes the bindings of `uid` in a cluster exactly `bindings`, as ACK does after GrantPermissions: the ones it
 * wrote before for that uid go, the new ones are created. (ACK's own binding names are not documented; these
 * are the sandbox's, found again by a label.)
 */
export async function syncGrantedBindings(
  adminRequest: AdminRequest,
  uid: string,
  bindings: GrantedBinding[],
): Promise<void> {
  const selector = `labelSelector=${encodeURIComponent(`${GRANTEE_LABEL}=${uid}`)}`;
  const listed = await Promise.all([
    adminRequest('GET', `${RBAC}/clusterrolebindings?${selector}`),
    adminRequest('GET', `${RBAC}/rolebindings?${selector}`),
  ]);
  for (const res of listed) {
    if (res.status !== 200) throw new Error(`listing the bindings of ${uid}: ${res.status} ${res.body}`);
    const items = (
      JSON.parse(res.body) as { items: Array<{ metadata: { name: string; namespace?: string } }> }
    ).items;
    for (const { metadata } of items) {
      const ns = metadata.namespace ? `/namespaces/${metadata.namespace}` : '';
      const kind = metadata.namespace ? 'rolebindings' : 'clusterrolebindings';
      await adminRequest('DELETE', `${RBAC}${ns}/${kind}/${metadata.name}`);
    }
  }
  for (const b of bindings) {
    const role: SuiteRole = {
      name: b.clusterRole,
      rules: [],
      ...(b.namespace ? { namespace: b.namespace } : {}),
    };
    const name = `${uid}-${b.clusterRole.replace(/:/g, '-')}-${b.namespace ? 'rolebinding' : 'clusterrolebinding'}`;
    const body = bindingOf(role, { kind: 'User', name: uid }, name) as {
      metadata: { labels: Record<string, string> };
    };
    body.metadata.labels = { [GRANTEE_LABEL]: uid };
    const path = `${RBAC}${b.namespace ? `/namespaces/${b.namespace}/rolebindings` : '/clusterrolebindings'}`;
    const res = await adminRequest('POST', path, body);
    if (res.status !== 201) throw new Error(`binding ${uid} to ${b.clusterRole}: ${res.status} ${res.body}`);
  }
}
