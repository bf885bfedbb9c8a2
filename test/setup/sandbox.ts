import type { TestProject } from 'vitest/node';
import { type SandboxInfo, startSandbox } from '../../sandbox';

declare module 'vitest' {
  export interface ProvidedContext {
    sandbox: SandboxInfo;
  }
}

/** Starts the sandbox once for the integration project (building the Kubernetes binaries if missing). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const sandbox = await startSandbox();
  process.stderr.write(
    `sandbox: control plane ready in ${Date.now() - started} ms (${sandbox.info.apiServer})\n`,
  );
  project.provide('sandbox', sandbox.info);
  return async () => {
    await sandbox.stop();
  };
}
