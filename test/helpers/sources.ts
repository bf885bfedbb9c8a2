import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every `.ts` file under a directory, recursively; with `js`, every `.js` file too. */
export function tsSources(dir: string, options: { js?: boolean } = {}): string[] {
  const wanted = options.js ? /\.(ts|js)$/ : /\.ts$/;
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? tsSources(p, options) : wanted.test(p) ? [p] : [];
  });
}
