/**
 * The integration suites that share the one sandbox of this project (`test/setup/sandbox.ts`: etcd,
 * kube-apiserver, the KMS v2 plugin, the cloud emulator). They rotate its key and read its etcd, so they run
 * one after another, in this order, in one file. Being one file lets Vitest run them beside the unit tests
 * and the files that start their own sandbox: a project that disables file parallelism would instead wait
 * for everything else to finish. One suite alone: `npx vitest run test/integration/shared-sandbox.test.ts -t
 * "<describe name>"`.
 */
import './k8s-bins.suite';
import './controlplane.suite';
import './rbac.suite';
import './cloud-sandbox.suite';
import './fault-proxy.suite';
import './reencrypt-faults.suite';
import './reencrypt-scale.suite';
import './audit.suite';
import './cli-invoke.suite';
