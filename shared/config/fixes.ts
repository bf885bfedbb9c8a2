/**
 * The audit's opt-in fixes by name: the vocabulary of `SENTINEL_AUDIT_REMEDIATE` and `audit --fix`, so it lives
 * with the configuration that parses it. shared/audit/remediate.ts implements each one (its `CHECK_OF` is a
 * record over `Fix`: a name without a fix does not compile).
 */
export const FIXES = ['deletion-protection', 'rotation-policy'] as const;
export type Fix = (typeof FIXES)[number];

/** `--fix a,b` / `SENTINEL_AUDIT_REMEDIATE`: the fixes named, or an error naming the unknown one. */
export function parseFixes(value: string): Fix[] | string {
  const names = value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  const unknown = names.find((n) => !(FIXES as readonly string[]).includes(n));
  if (unknown) return `"${unknown}" is not a fix (one of ${FIXES.join(', ')})`;
  return [...new Set(names)] as Fix[];
}
