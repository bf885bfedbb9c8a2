import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Each function bundle's size and its cold `require` time (a fresh node process per run, median of 5). */
export interface BundleRow {
  fn: string;
  bytes: number;
  gzipBytes: number;
  coldRequireMs: number;
}

export function measureBundles(dist = join(__dirname, '..', 'dist', 'functions')): BundleRow[] {
  return readdirSync(dist).map((fn) => {
    const file = join(dist, fn, 'index.js');
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const out = execFileSync(process.execPath, [
        '-e',
        `const t=process.hrtime.bigint();const m=require(${JSON.stringify(file)});if(typeof m.handler!=='function')process.exit(3);console.log(Number(process.hrtime.bigint()-t)/1e6)`,
      ]);
      times.push(Number(out.toString().trim()));
    }
    times.sort((a, b) => a - b);
    return {
      fn,
      bytes: statSync(file).size,
      gzipBytes: gzipSync(readFileSync(file)).length,
      coldRequireMs: Math.round(times[2] ?? 0),
    };
  });
}
