import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = join(__dirname, '..', 'fixtures');

export const fixtureText = (name: string): string => readFileSync(join(FIXTURES, 'events', name), 'utf8');
export const fixture = <T extends object = Record<string, unknown>>(name: string): T =>
  JSON.parse(fixtureText(name)) as T;
