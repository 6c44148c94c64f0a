/**
 * The key, prefix and bucket walls of the S3 connector: pure functions, no I/O.
 *
 * Every object key and listing prefix a client sends is NFC-normalized first (Unicode UAX #15),
 * then checked here, then matched against the configured allowlist; the normalized form is what
 * the server sends to S3. Sources of the rules:
 *
 * - AWS S3 User Guide, "Naming Amazon S3 objects": a key is a sequence of Unicode characters
 *   whose UTF-8 encoding is at most 1,024 bytes; S3 treats `/`, `.` and `..` literally (there are
 *   no directories), so `reports/../secret` is a different key than `secret` to S3 but not to
 *   the file systems, sync tools and URL normalizers that later consume these keys. Characters
 *   the guide lists as "might require special handling" (control characters) are refused.
 * - AWS S3 User Guide, "General purpose bucket naming rules" for {@link isValidBucketName}.
 * - Unicode UAX #9 (bidirectional algorithm) for the bidi controls that can make a key display
 *   as something else (CVE-2021-42574, "Trojan Source").
 * - IAM User Guide, "IAM JSON policy elements: Resource" and "Condition operators" (`*` and `?`
 *   are wildcards in resource ARNs and `StringLike`; `${…}` is a policy variable) for
 *   {@link configuredPrefixProblem}: a configured prefix is embedded in the session policy.
 * - Percent-encoding: RFC 3986 §2.1 and §2.4 (decode once, and only when building a URI), which
 *   many consumers ignore by decoding keys once or repeatedly (CWE-174, double decoding); the
 *   WHATWG URL Standard §1.3 "percent-decode" (a `%` not followed by two hex digits stays a
 *   literal `%`); RFC 3629 §3 and §10 (overlong UTF-8 such as `%c0%ae` is invalid, but old
 *   decoders read it as `.`: CVE-2000-0884). See {@link percentDecodedForms}.
 */

/** Maximum key length in UTF-8 bytes (S3 User Guide, "Naming Amazon S3 objects"). */
export const MAX_KEY_BYTES = 1024;

/** A checked value or the reason it was refused (a safe message that never echoes the input). */
export type Checked<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string };

/**
 * Unicode bidirectional formatting characters (UAX #9 §2): embeddings and overrides
 * U+202A–U+202E, isolates U+2066–U+2069, and the implicit marks LRM U+200E, RLM U+200F and
 * ALM U+061C.
 */
const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/u;
/** C0 controls, DEL and C1 controls (Unicode general category Cc). */
const CONTROL = /\p{Cc}/u;

function refuse(reason: string): { readonly ok: false; readonly reason: string } {
  return { ok: false, reason };
}

/**
 * The first character-level problem of a (normalized) key or prefix, if any: control
 * characters, bidi controls, or a backslash (a path separator for the Windows tools and URL
 * normalizers that may later consume the key).
 */
function characterProblem(s: string): string | undefined {
  if (CONTROL.test(s)) return 'contains a control character';
  if (BIDI_CONTROL.test(s)) return 'contains a bidirectional control character';
  if (s.includes('\\')) return 'contains a backslash';
  return undefined;
}

/**
 * The first segment-level problem of `s` split at `/`: a leading `/`, an empty segment (`//`),
 * a `.` or `..` segment. `allowTrailingSlash`: a final empty segment (`reports/`) is fine.
 */
function segmentProblem(s: string, allowTrailingSlash: boolean): string | undefined {
  if (s.startsWith('/')) return 'starts with /';
  const segments = s.split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (seg === '') {
      if (last && allowTrailingSlash) continue;
      return last
        ? 'ends with / (that names a folder, not an object)'
        : 'has an empty segment (//)';
    }
    if (seg === '..') return 'has a .. segment';
    if (seg === '.') return 'has a . segment';
  }
  return undefined;
}

/** A run of well-formed percent-encoded octets (`%` and two hex digits, any case). */
const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;

/**
 * Every form a consumer can see by percent-decoding `s` once, twice, … until nothing changes
 * (in order; `s` itself not included; empty when `s` has no `%`). A round decodes each run of
 * well-formed `%XX` octets as UTF-8 with the built-in `decodeURIComponent` and leaves a `%` not
 * followed by two hex digits as a literal `%` (WHATWG URL Standard §1.3, as lenient decoders
 * do), so `100%.txt` decodes to itself while `%%32e` decodes to `%2e` and then `.`. `+` is not
 * decoded (it is a space only in form encoding, never a separator).
 *
 * Terminates without a round limit: a round that changes the string makes it strictly shorter
 * (each `%XX` becomes at most one UTF-16 code unit), so a key of at most 1,024 bytes takes at
 * most a few hundred rounds, each linear.
 *
 * @returns the decoded forms, or `undefined` when a round yields octets that are not
 *   well-formed UTF-8 (RFC 3629: overlong forms like `%c0%ae`, lone continuation bytes,
 *   encoded surrogates), which lenient legacy decoders may read as `.`, `/` or `\`.
 */
export function percentDecodedForms(s: string): string[] | undefined {
  const forms: string[] = [];
  let current = s;
  while (current.includes('%')) {
    let next: string;
    try {
      next = current.replace(PERCENT_RUN, (run) => decodeURIComponent(run));
    } catch {
      return undefined;
    }
    if (next === current) break;
    forms.push(next);
    current = next;
  }
  return forms;
}

/** The first character- or segment-level problem of one form of a key-like string, if any. */
function formProblem(form: string, allowTrailingSlash: boolean): string | undefined {
  return (
    characterProblem(form) ??
    segmentProblem(form, allowTrailingSlash) ??
    segmentProblem(form.normalize('NFKC'), allowTrailingSlash)
  );
}

/**
 * Normalizes and checks a key-like string (an object key, or a listing prefix when
 * `allowTrailingSlash`). The segment rules are applied to the NFKC form too, so compatibility
 * look-alikes (`．．`, fullwidth `／`) that a later consumer may fold into `..` or `/` are refused.
 * Every percent-decoded form ({@link percentDecodedForms}) must pass the same character and
 * segment rules (and their NFKC forms), so a consumer that URL-decodes the key, once or
 * repeatedly, never sees a traversal, an empty segment, a backslash or a control character.
 */
function checkKeyLike(raw: string, what: string, allowTrailingSlash: boolean): Checked<string> {
  if (!raw.isWellFormed()) return refuse(`the ${what} is not valid Unicode (a lone surrogate)`);
  const value = raw.normalize('NFC');
  if (value === '') return refuse(`the ${what} is empty`);
  if (Buffer.byteLength(value, 'utf8') > MAX_KEY_BYTES)
    return refuse(`the ${what} is longer than ${MAX_KEY_BYTES} bytes (UTF-8)`);
  const problem = formProblem(value, allowTrailingSlash);
  if (problem) return refuse(`the ${what} ${problem}`);
  const decoded = percentDecodedForms(value);
  if (decoded === undefined)
    return refuse(
      `the ${what} percent-decodes to invalid UTF-8 (e.g. an overlong form such as %c0%ae)`,
    );
  for (const form of decoded) {
    const hidden = formProblem(form, allowTrailingSlash);
    if (hidden) return refuse(`the ${what}, once percent-decoded, ${hidden}`);
  }
  return { ok: true, value };
}

/**
 * Checks an object key: NFC-normalized; 1–1024 UTF-8 bytes; no control characters, bidi
 * controls or backslash; no leading `/`, no trailing `/`, no empty, `.` or `..` segment.
 *
 * @returns the normalized key, or a reason that does not echo the key.
 */
export function checkObjectKey(raw: string): Checked<string> {
  return checkKeyLike(raw, 'key', false);
}

/**
 * Checks a listing prefix: the rules of {@link checkObjectKey}, except that it may end with `/`
 * (`reports/`) or in the middle of a segment (`reports/2024-`).
 */
export function checkListPrefix(raw: string): Checked<string> {
  return checkKeyLike(raw, 'prefix', true);
}

/**
 * Why a configured allowlist prefix is unacceptable, or `undefined` when it is fine. A prefix is
 * a listing prefix ({@link checkListPrefix}) that is already NFC, ends with `/` (so `reports/`
 * never matches `reports-private/`), and has no IAM wildcard or policy-variable characters
 * (`*`, `?`, `$`), because it is embedded verbatim in the session policy.
 */
export function configuredPrefixProblem(prefix: string): string | undefined {
  if (prefix.normalize('NFC') !== prefix) return 'must be NFC-normalized';
  const checked = checkListPrefix(prefix);
  if (!checked.ok) return checked.reason;
  if (!prefix.endsWith('/')) return 'must end with / (e.g. reports/)';
  if (/[*?$]/.test(prefix))
    return 'must not contain *, ? or $ (IAM wildcards and policy variables)';
  return undefined;
}

/**
 * S3 general purpose bucket naming rules (S3 User Guide, "General purpose bucket naming
 * rules"): 3–63 characters of lower-case letters, digits, `.` and `-`; starts and ends with a
 * letter or digit; no `..`; not an IPv4 address; none of the reserved prefixes (`xn--`,
 * `sthree-`, `amzn-s3-demo-`) and suffixes (`-s3alias`, `--ol-s3`, `.mrap`, `--x-s3`,
 * `--table-s3`). ARNs, access point aliases and account-qualified names are never valid.
 */
export function isValidBucketName(name: string): boolean {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) return false;
  if (name.includes('..')) return false;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return false;
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return false;
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name)) return false;
  return true;
}

/** One allowlist entry: a bucket and the key prefixes inside it (each ending with `/`). */
export interface BucketRule {
  readonly name: string;
  readonly prefixes: readonly string[];
  /** The AWS account id expected to own the bucket (sent as `ExpectedBucketOwner`). */
  readonly expectedOwner?: string | undefined;
}

/** An authorized object: the allowlist entry and the normalized key. */
export interface ObjectTarget {
  readonly ok: true;
  readonly bucket: BucketRule;
  readonly key: string;
}

/** An authorized listing: the allowlist entry and the normalized prefix. */
export interface ListingTarget {
  readonly ok: true;
  readonly bucket: BucketRule;
  readonly prefix: string;
}

/** A refusal of {@link authorizeObject}/{@link authorizeListing}: a safe message. */
export interface TargetRefusal {
  readonly ok: false;
  readonly reason: string;
}

const NOT_ALLOWED_BUCKET =
  'the bucket is not in the allowlist (s3_list_buckets lists the allowed buckets)';

/** The allowlist entry named exactly `bucket` (case-sensitive, no ARNs), if any. */
export function findBucket(buckets: readonly BucketRule[], bucket: string): BucketRule | undefined {
  return buckets.find((b) => b.name === bucket);
}

/** Whether `value` lies inside one of `rule`'s prefixes (the prefixes end with `/`). */
function insidePrefixes(rule: BucketRule, value: string): boolean {
  return rule.prefixes.some((p) => value.startsWith(p));
}

/**
 * Authorizes an object key in a bucket: the bucket must be allowlisted by exact name and the
 * key, after {@link checkObjectKey}, must start with one of its prefixes (trailing `/`
 * included).
 */
export function authorizeObject(
  buckets: readonly BucketRule[],
  bucket: string,
  rawKey: string,
): ObjectTarget | TargetRefusal {
  const rule = findBucket(buckets, bucket);
  if (!rule) return { ok: false, reason: NOT_ALLOWED_BUCKET };
  const key = checkObjectKey(rawKey);
  if (!key.ok) return key;
  if (!insidePrefixes(rule, key.value))
    return {
      ok: false,
      reason: `the key is outside the allowed prefixes of the bucket (${rule.prefixes.join(', ')})`,
    };
  return { ok: true, bucket: rule, key: key.value };
}

/**
 * Authorizes a listing: the bucket must be allowlisted; the prefix, after
 * {@link checkListPrefix}, must start with one of its prefixes. Without a prefix, a bucket with
 * exactly one allowed prefix lists that prefix; otherwise the prefix is required.
 */
export function authorizeListing(
  buckets: readonly BucketRule[],
  bucket: string,
  rawPrefix: string | undefined,
): ListingTarget | TargetRefusal {
  const rule = findBucket(buckets, bucket);
  if (!rule) return { ok: false, reason: NOT_ALLOWED_BUCKET };
  if (rawPrefix === undefined) {
    if (rule.prefixes.length === 1) return { ok: true, bucket: rule, prefix: rule.prefixes[0]! };
    return {
      ok: false,
      reason: `give a prefix: the bucket allows several (${rule.prefixes.join(', ')})`,
    };
  }
  const prefix = checkListPrefix(rawPrefix);
  if (!prefix.ok) return prefix;
  if (!insidePrefixes(rule, prefix.value))
    return {
      ok: false,
      reason: `the prefix is outside the allowed prefixes of the bucket (${rule.prefixes.join(', ')})`,
    };
  return { ok: true, bucket: rule, prefix: prefix.value };
}

/**
 * Makes text safe to show a human in an approval prompt or log line: control characters (except
 * newline and tab), bidi controls, zero-width characters and lone surrogates become `\u{…}`
 * escapes, so the text cannot hide or reorder what the human reads.
 */
export function escapeForDisplay(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const hidden =
      (CONTROL.test(ch) && ch !== '\n' && ch !== '\t') ||
      BIDI_CONTROL.test(ch) ||
      (cp >= 0x200b && cp <= 0x200d) ||
      cp === 0x2060 ||
      cp === 0xfeff ||
      (cp >= 0xd800 && cp <= 0xdfff);
    out += hidden ? `\\u{${cp.toString(16).toUpperCase().padStart(4, '0')}}` : ch;
  }
  return out;
}
