/**
 * Resource allowlists for connectors: exact identifiers (a Jira project key, a Slack channel id)
 * and prefixes (an S3 key prefix, a Confluence space path), with the case rule of the system the
 * identifiers belong to. An empty allowlist allows nothing (fail closed).
 *
 * The trailing-separator rule: a prefix must end with its separator, so `reports/` never matches
 * `reports-secret/…`; a configured `reports` is refused at startup rather than silently widened.
 */
import { StartupError } from '../errors.js';

/**
 * How identifiers compare.
 * - `sensitive` (default): code unit for code unit (S3 keys, Slack ids).
 * - `insensitive`: after `toLowerCase()` without locale (Unicode default case mapping, so no
 *   Turkish dotless-i surprises), for systems that declare their identifiers case-insensitive
 *   (e.g. Jira project keys, which Jira stores upper-case and resolves in any case).
 *
 * Values are compared as given: normalize them first (e.g. NFC) where the system does.
 */
export type CaseRule = 'sensitive' | 'insensitive';

/** Options of {@link createAllowlist}. */
export interface AllowlistOptions {
  /** Identifiers allowed exactly. */
  readonly exact?: readonly string[] | undefined;
  /** Prefixes allowed with everything below them; each must end with `separator`. */
  readonly prefixes?: readonly string[] | undefined;
  /** The separator the prefixes end with. Default `/`. */
  readonly separator?: string | undefined;
  /** Default `sensitive`. */
  readonly caseRule?: CaseRule | undefined;
  /** What the entries are, for startup messages (e.g. `jira.projects`). */
  readonly what?: string | undefined;
}

/** The result of {@link Allowlist.match}: the configured entry that allowed the value. */
export type AllowlistMatch =
  | {
      readonly ok: true;
      readonly kind: 'exact' | 'prefix';
      readonly entry: string;
    }
  | { readonly ok: false };

/** A frozen allowlist. */
export interface Allowlist {
  readonly caseRule: CaseRule;
  /** The configured exact identifiers, as configured. */
  readonly exact: readonly string[];
  /** The configured prefixes, as configured. */
  readonly prefixes: readonly string[];
  /** Whether `value` is allowed. */
  allows(value: string): boolean;
  /** Which entry allows `value`, if any (exact entries first, then the longest prefix). */
  match(value: string): AllowlistMatch;
}

/**
 * Builds an allowlist.
 *
 * @throws StartupError for an empty entry, a prefix that does not end with `separator` or is
 *   only the separator (which would allow everything), or an empty separator.
 */
export function createAllowlist(options: AllowlistOptions): Allowlist {
  const what = options.what ?? 'allowlist';
  const separator = options.separator ?? '/';
  const caseRule = options.caseRule ?? 'sensitive';
  if (separator === '') throw new StartupError(`${what}: the separator must not be empty`);
  const fold = caseRule === 'insensitive' ? (s: string) => s.toLowerCase() : (s: string) => s;
  const exact = [...(options.exact ?? [])];
  const prefixes = [...(options.prefixes ?? [])];
  for (const e of exact) if (e === '') throw new StartupError(`${what}: an entry is empty`);
  for (const p of prefixes) {
    if (!p.endsWith(separator))
      throw new StartupError(
        `${what}: the prefix ${JSON.stringify(p)} must end with ${JSON.stringify(separator)} (so it cannot match a longer sibling name)`,
      );
    if (p === separator)
      throw new StartupError(
        `${what}: a prefix of only ${JSON.stringify(separator)} would allow everything`,
      );
  }
  const exactFolded = new Map(exact.map((e) => [fold(e), e]));
  const prefixesFolded = prefixes
    .map((p) => ({ folded: fold(p), entry: p }))
    .sort((a, b) => b.folded.length - a.folded.length);

  function match(value: string): AllowlistMatch {
    if (typeof value !== 'string' || value === '') return { ok: false };
    const v = fold(value);
    const hit = exactFolded.get(v);
    if (hit !== undefined) return { ok: true, kind: 'exact', entry: hit };
    const p = prefixesFolded.find((x) => v.startsWith(x.folded));
    return p ? { ok: true, kind: 'prefix', entry: p.entry } : { ok: false };
  }

  return Object.freeze({
    caseRule,
    exact: Object.freeze(exact),
    prefixes: Object.freeze(prefixes),
    allows: (value: string) => match(value).ok,
    match,
  });
}
