/**
 * Output-redaction engine: every tool result (strings, JSON-like values, tables) passes through a
 * {@link Redactor} before it reaches the model. Secrets are always redacted; PII is redacted by
 * default; values under sensitive keys/columns are replaced whole. Counts per type feed the
 * audit record.
 */

import {
  isBigIntObject,
  isBooleanObject,
  isBoxedPrimitive,
  isNumberObject,
  isStringObject,
} from 'node:util/types';
import {
  createKnownSecretDetector,
  createPiiDetectors,
  createSecretDetectors,
  type Detector,
  HINT_AT,
  HINT_DIGIT,
  HINT_IBAN_HEAD,
  HINT_KEYWORD,
  HINT_LETTER,
  HINT_PAREN,
  HINT_PLUS,
  isDigitGroupSeparator,
  type KnownSecretSource,
  mayHaveKeyword,
  ProbeMemo,
  passesAnyOf,
  type RedactionType,
  redactionMarker,
  SHAPE_CHECK_MAX,
  type TextHints,
} from './patterns.js';

export type { RedactionType } from './patterns.js';

/** Options for {@link createRedactor}. */
export interface RedactionOptions {
  /** PII detectors on (default true). Secret detectors are ALWAYS on and cannot be disabled. */
  readonly pii?: boolean;
  /**
   * Key/column-name rules, added to {@link DEFAULT_KEY_RULES} (the defaults cannot be removed):
   * a value whose key (object property or table column name) matches is replaced whole with
   * `[REDACTED:column_rule]`, whatever its type (`null`/`undefined` are left as they are).
   * A string is either an exact name, compared case-insensitively and ignoring `_`, `-`, `.`
   * and whitespace (so `api_key` also matches `apiKey`, `API-KEY`), or a regular expression
   * written `/source/flags` (the `g`/`y` flags are ignored), tested against the key as given.
   * An invalid regular expression makes {@link createRedactor} throw.
   */
  readonly keyRules?: readonly string[];
  /**
   * Exact secret values known to the process (e.g. loaded credentials); every occurrence is
   * redacted as `known_secret`, and so is its URL-encoded form. Values shorter than 8 UTF-16
   * code units (after normalization) are ignored.
   */
  readonly knownSecrets?: readonly string[];
}

/** Number of redactions per {@link RedactionType}, e.g. `{ email: 2, column_rule: 1 }`. */
export interface RedactionCounts {
  readonly [type: string]: number;
}

/**
 * A configured redaction engine. Methods are synchronous, never mutate their input, run in time
 * linear in the input's size with bounded stack, and throw nothing but {@link RedactionError}.
 */
export interface Redactor {
  /**
   * Redact a string; `key` is the property/column name it sits under, if any. Returns the
   * original string (same value, not normalized) when nothing matched, otherwise the
   * normalized text with each finding replaced by `[REDACTED:<type>]`; `counts` holds the
   * number of replacements per type made by this call. Also the way to redact any other
   * emitted string (error details, notes, column names one by one). Throws {@link RedactionError}.
   */
  redactString(value: string, key?: string): { value: string; counts: Record<string, number> };
  /**
   * Deep-redact a JSON-like value (objects, arrays, primitives). Returns a new value:
   * - strings are redacted;
   * - object keys are redacted like strings (a key is never returned with a secret or PII in
   *   it); when redacted keys collide with each other or with an unchanged key, the later ones
   *   get the first free suffix `#2`, `#3`, … in key order (`{"a@x.io":1,"b@x.io":2}` →
   *   `{"[REDACTED:email]":1,"[REDACTED:email]#2":2}`). Key rules test the original key;
   * - numbers and bigints from 10^12 up (13+ digits) are redacted as their decimal text, so a
   *   card number stored as a number is caught; a redacted number becomes the marker string,
   *   an unredacted one keeps its type and value;
   * - other primitives are kept unless a key rule matches; objects with `toJSON` (Date,
   *   Buffer, …) and boxed primitives (`new String(…)`) are redacted as what `JSON.stringify`
   *   would emit.
   * Adds this call's counts into `counts`. Throws {@link RedactionError} (`cyclic_value`,
   * `too_deep` above 512 levels of nesting, `internal`): fail closed.
   */
  redactValue(value: unknown, counts: Record<string, number>, key?: string): unknown;
  /**
   * Redact a table: `rows` are arrays aligned with `columns` so key rules apply per column
   * (cells past the last column have no key). Cells are redacted as by `redactValue`. Returns
   * new row arrays; adds counts into `counts`. Column names are not changed here: redact them
   * with {@link Redactor.redactColumnNames}. Throws {@link RedactionError}.
   */
  redactTable(
    columns: readonly string[],
    rows: readonly (readonly unknown[])[],
    counts: Record<string, number>,
  ): unknown[][];
  /**
   * Redact column names (e.g. a SQL alias holding an e-mail) for display: each name redacted
   * like a string, collisions made unique with `#2`, `#3`, … exactly as for object keys.
   * Returns a new array of the same length; adds counts into `counts`. Key rules keep using the
   * original names (pass those to {@link Redactor.redactTable}). Throws {@link RedactionError}.
   */
  redactColumnNames(columns: readonly string[], counts: Record<string, number>): string[];
  /** Register a further exact secret value at runtime (same rules as `knownSecrets`). */
  addKnownSecret(value: string): void;
}

/**
 * Key/column rules always in force. Exact names (case- and separator-insensitive, see
 * {@link RedactionOptions.keyRules}) plus one suffix rule for compound names such as
 * `db_password`, `userPassword`, `encrypted_password`, `password_hash`, `stripe_secret_key`,
 * `github_access_token`, `webhook_secret`. Sources: credential and sensitive-data field names
 * used by SDK/CLI configuration files and database schemas (cf. OWASP ASVS 4.0 V8.3, sensitive
 * private data), and the credential-bearing HTTP headers (RFC 9110 §11.6.2 Authorization,
 * §11.7.2 Proxy-Authorization; RFC 6265 Cookie/Set-Cookie).
 */
export const DEFAULT_KEY_RULES: readonly string[] = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'client_secret',
  'secret_key',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'auth_token',
  'session_token',
  'api_key',
  'x_api_key',
  'api_secret',
  'access_key',
  'secret_access_key',
  'private_key',
  'ssn',
  'social_security_number',
  'credit_card',
  'credit_card_number',
  'card_number',
  'cc_number',
  'cvv',
  'cvc',
  'authorization',
  'proxy_authorization',
  'cookie',
  'set_cookie',
  '/(?:pass(?:word|wd|phrase)|secret|api[_-]?key|private[_-]?key|secret[_-]?key|access[_-]?key|(?:access|refresh|auth|session)[_-]?token|client[_-]?secret)(?:[_-]?(?:hash|digest|salt))?$/i',
];

/** Stable reason of a {@link RedactionError}. */
export type RedactionFailure =
  /** the value contains itself (an object or array reachable from itself) */
  | 'cyclic_value'
  /** objects/arrays nested deeper than 512 levels */
  | 'too_deep'
  /** anything else: the engine failed (e.g. a `toJSON` threw, a result too long for a string) */
  | 'internal';

/**
 * The only exception a {@link Redactor} method throws: redaction could not produce a safe
 * result, so nothing of the input may be returned (fail closed). The pipeline refuses the call
 * and still writes its audit record. `message` is fixed text chosen by `code`, never input
 * data; `cause` (the engine's own error, for `internal`) belongs in the redacted server log only.
 */
export class RedactionError extends Error {
  override readonly name = 'RedactionError';
  readonly code: RedactionFailure;

  constructor(code: RedactionFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Runs `fn`, turning any failure that is not already a {@link RedactionError} into one. */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RedactionError) throw err;
    throw new RedactionError('internal', 'Redaction failed', { cause: err });
  }
}

/** Add every count in `from` to `into` (in place). */
export function mergeCounts(
  into: Record<string, number>,
  from: Readonly<Record<string, number>>,
): void {
  for (const type of Object.keys(from)) {
    const n = from[type];
    if (n === undefined || n === 0) continue;
    into[type] = (Object.hasOwn(into, type) ? (into[type] ?? 0) : 0) + n;
  }
}

/**
 * Invisible characters removed before matching: every Unicode format character (General
 * Category Cf — includes U+00AD soft hyphen, U+200B–U+200F zero-width and direction marks,
 * U+202A–U+202E and U+2066–U+2069 bidi controls, U+2060–U+2064, U+FEFF, U+061C, U+180E, tag
 * characters) plus the invisible fillers U+034F, U+115F, U+1160, U+3164 and U+FFA0.
 */
const INVISIBLE = /\p{Cf}|\u034F|[\u115F\u1160\u3164\uFFA0]/gu;
/**
 * A code unit outside ASCII, U+00C0–U+00FF and Latin Extended-A (U+0100–U+017F) except its
 * six characters with compatibility decompositions (U+0132, U+0133, U+013F, U+0140, U+0149,
 * U+017F). Text without one is its own NFKC form and has no format character: the letters in
 * those ranges are precomposed starters that neither decompose under NFKC nor compose with a
 * neighbour in this set (Unicode Character Database, UnicodeData.txt decomposition field).
 */
const MAY_CHANGE_UNDER_NFKC = /[^\0-\x7f\u00c0-\u0131\u0134-\u013e\u0141-\u0148\u014a-\u017e]/;

/**
 * Text as the detectors see it: invisible characters stripped, then Unicode NFKC (UAX #15),
 * which folds fullwidth/compatibility forms (`４１１１`, `＠`) to ASCII. Text that cannot change
 * (ASCII, and the Latin-1 and Latin Extended-A letters of most European names) is returned as is.
 */
export function normalizeForMatching(text: string): string {
  if (!MAY_CHANGE_UNDER_NFKC.test(text)) return text;
  return normalizeAlways(text);
}

function normalizeAlways(text: string): string {
  return stripInvisible(stripInvisible(text).normalize('NFKC'));
}

/** {@link INVISIBLE} without the `g` flag: whether a text holds one invisible character. */
const HAS_INVISIBLE = new RegExp(INVISIBLE.source, 'u');
/**
 * Texts up to this length (UTF-16 code units) lose their invisible characters by one regex
 * replace; longer ones by {@link stripInvisibleByTable}. A global replace keeps every match
 * until it builds the result, so on a long text dense with invisible characters (`\u200b４…`,
 * one match per two code units) its cost grew faster than the text (issue 14: 5.5–10× the time
 * for 4× the size); the table loop is linear.
 */
const STRIP_BY_REGEX_MAX = 4096;

/** `text` without {@link INVISIBLE} characters; `text` itself when it has none. */
function stripInvisible(text: string): string {
  if (!HAS_INVISIBLE.test(text)) return text;
  if (text.length <= STRIP_BY_REGEX_MAX) return text.replace(INVISIBLE, '');
  return stripInvisibleByTable(text);
}

/**
 * Per BMP code unit, 1 when it is an {@link INVISIBLE} character (a lone surrogate is not);
 * built on first use from {@link INVISIBLE} itself, so the two cannot disagree.
 */
let invisibleBmp: Uint8Array | undefined;
function invisibleTable(): Uint8Array {
  if (invisibleBmp !== undefined) return invisibleBmp;
  const table = new Uint8Array(0x10000);
  // every BMP code point except the surrogates, in one string, searched once
  const units = new Uint16Array(0x10000 - 0x800);
  for (let c = 0, k = 0; c < 0x10000; c++) if (c < 0xd800 || c > 0xdfff) units[k++] = c;
  const all = unitsToString(units, units.length);
  const re = new RegExp(INVISIBLE.source, 'gu');
  for (let m = re.exec(all); m !== null; m = re.exec(all)) {
    const c = all.charCodeAt(m.index);
    table[c] = 1;
  }
  invisibleBmp = table;
  return table;
}

const INVISIBLE_ONE = new RegExp(`^(?:${INVISIBLE.source})$`, 'u');
/** Code units per `String.fromCharCode` call when a buffer becomes a string (argument limit). */
const FROM_CHAR_CODE_CHUNK = 8192;

/**
 * {@link stripInvisible} of a long text in one pass over its code units into a buffer, whatever
 * the number of invisible characters: BMP code units by table, surrogate pairs (the tag
 * characters U+E0000–U+E007F and other astral format characters) by {@link INVISIBLE_ONE}.
 */
function stripInvisibleByTable(text: string): string {
  const table = invisibleTable();
  const n = text.length;
  const out = new Uint16Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        if (!INVISIBLE_ONE.test(text.slice(i, i + 2))) {
          out[k++] = c;
          out[k++] = d;
        }
        i++;
        continue;
      }
    }
    if (table[c] !== 1) out[k++] = c;
  }
  return unitsToString(out, k);
}

/**
 * The first `length` code units of `units` as a string; lone surrogates are kept as they are
 * (a `TextDecoder` would replace them with U+FFFD).
 */
function unitsToString(units: Uint16Array, length: number): string {
  const parts: string[] = [];
  for (let from = 0; from < length; from += FROM_CHAR_CODE_CHUNK) {
    const chunk = units.subarray(from, Math.min(length, from + FROM_CHAR_CODE_CHUNK));
    parts.push(String.fromCharCode.apply(null, chunk as unknown as number[]));
  }
  return parts.join('');
}

/** Shortest text any detector can match (`a@b.co`), in UTF-16 code units. */
const MIN_DETECTABLE_LENGTH = 6;
/** Findings per text checked for overlap by list; beyond this a per-code-unit bitmap is used. */
const SPAN_LIST_LIMIT = 16;
const MARKERS = new Map<RedactionType, string>();
/** `[REDACTED:<type>]`, built once per type. */
function markerFor(type: RedactionType): string {
  let marker = MARKERS.get(type);
  if (marker === undefined) {
    marker = redactionMarker(type);
    MARKERS.set(type, marker);
  }
  return marker;
}
const MIN_KNOWN_SECRET_LENGTH = 8;
const MAX_DEPTH = 512;
const KEY_CACHE_LIMIT = 4096;
/** ASCII set (see {@link TextHints.ascii}) of `chars`. */
function asciiSet(chars: string): Uint32Array {
  const set = new Uint32Array(4);
  for (let i = 0; i < chars.length; i++) {
    const c = chars.charCodeAt(i);
    set[c >> 5] = (set[c >> 5] as number) | (1 << (c & 31));
  }
  return set;
}
const intersects = (a: Uint32Array, b: Uint32Array): boolean =>
  ((a[0] as number) & (b[0] as number)) !== 0 ||
  ((a[1] as number) & (b[1] as number)) !== 0 ||
  ((a[2] as number) & (b[2] as number)) !== 0 ||
  ((a[3] as number) & (b[3] as number)) !== 0;
const LETTERS = asciiSet('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz');
const AT = 0x40;
const PLUS = 0x2b;
const PAREN = 0x28;
const has = (set: Uint32Array, c: number): boolean =>
  (((set[c >> 5] as number) >>> (c & 31)) & 1) === 1;

/**
 * Whether code unit `c` (≥ 0x80) is outside the set described at {@link MAY_CHANGE_UNDER_NFKC},
 * i.e. text containing it may change under normalization.
 */
const mayChange = (c: number): boolean =>
  c < 0xc0 || c > 0x17e || c === 0x132 || c === 0x133 || c === 0x13f || c === 0x140 || c === 0x149;

/**
 * Texts longer than this (UTF-16 code units) get their hints from native searches
 * ({@link fillHintsNative}), shorter ones from one loop in {@link fillHints}: per code unit the
 * loop costs more than a native search, per call less.
 */
const SHORT_TEXT = 512;
const LETTER = /[A-Za-z]/;

/** Digit runs {@link digitRunHints} reads before it gives up (see there). */
const DIGIT_RUN_JUMPS = 64;
/** Code units of one run {@link digitRunHints} reads before it gives up (see there). */
const DIGIT_RUN_READ = 256;
/** an ASCII digit, global: `test` jumps `lastIndex` past the next one natively */
const NEXT_DIGIT = /[0-9]/g;

const isAsciiLetter = (c: number): boolean => (c | 0x20) >= 97 && (c | 0x20) <= 122;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * Sets `hints.maxDigits` and the {@link HINT_IBAN_HEAD} bit of `hints.flags` for a long text,
 * with the same meaning as {@link fillHints}'s loop: jumps from digit run to digit run with a
 * native search and reads only the runs (a run: digits and {@link isDigitGroupSeparator}s from a
 * digit on), so prose with a few numbers costs a few searches, not a loop over every code unit.
 * It gives up, keeping the bounds that always hold (the text's length; an IBAN head whenever the
 * text has a letter), once a run reaches `digitCap` digits (the most any detector gate asks
 * for), after {@link DIGIT_RUN_JUMPS} runs, or on a run longer than {@link DIGIT_RUN_READ} code
 * units: at most a fixed amount of work per text, whatever its shape.
 */
function digitRunHints(text: string, hints: TextHints, digitCap: number, hasLetter: boolean): void {
  const n = text.length;
  let maxDigits = 0;
  let ibanHead = false;
  NEXT_DIGIT.lastIndex = 0;
  for (let jumps = 0; NEXT_DIGIT.test(text); jumps++) {
    let i = NEXT_DIGIT.lastIndex - 1;
    // i: the first digit of a run (the code unit before it is neither a digit nor a separator
    // continuing a run): two letters, then two digits, head an IBAN
    if (
      isAsciiLetter(text.charCodeAt(i - 1)) &&
      isAsciiLetter(text.charCodeAt(i - 2)) &&
      isDigit(text.charCodeAt(i + 1))
    ) {
      ibanHead = true;
    }
    const stop = Math.min(n, i + DIGIT_RUN_READ);
    let run = 0;
    for (; i < stop; i++) {
      const c = text.charCodeAt(i);
      if (isDigit(c)) run++;
      else if (!isDigitGroupSeparator(c)) break;
    }
    if (run > maxDigits) maxDigits = run;
    if (maxDigits >= digitCap || jumps === DIGIT_RUN_JUMPS || (i === stop && stop < n)) {
      hints.maxDigits = n;
      if (hasLetter) hints.flags |= HINT_IBAN_HEAD;
      return;
    }
    NEXT_DIGIT.lastIndex = i;
  }
  hints.maxDigits = maxDigits;
  if (ibanHead) hints.flags |= HINT_IBAN_HEAD;
}

/**
 * {@link fillHints} for long texts, by native searches: the ASCII set is all ones; the digit
 * bound and the IBAN head come from {@link digitRunHints}.
 */
function fillHintsNative(text: string, hints: TextHints, digitCap: number): void {
  hints.ascii.fill(0xffffffff);
  const hasLetter = LETTER.test(text);
  hints.flags =
    (text.includes('@') ? HINT_AT : 0) |
    (text.includes('+') ? HINT_PLUS : 0) |
    (text.includes('(') ? HINT_PAREN : 0) |
    (hasLetter ? HINT_LETTER : 0) |
    (mayHaveKeyword(text, hints.ascii) ? HINT_KEYWORD : 0);
  digitRunHints(text, hints, digitCap, hasLetter);
  if (hints.maxDigits > 0) hints.flags |= HINT_DIGIT;
}

/**
 * Fills `hints` with pre-filter facts about `text` (see {@link TextHints}); for short texts in
 * one pass over its code units, without allocating (long ones: {@link fillHintsNative}); the
 * keyword bit then comes from {@link mayHaveKeyword}. Returns `false`, with `hints` unusable, as
 * soon as it meets a code unit that may change under {@link normalizeForMatching} unless
 * `normalized` is true (the caller then normalizes and calls again with `true`): one loop both
 * proves the text is already normalized and gathers the hints, so a table cell is read once.
 * `digitCap`: the most digits any detector gate asks for (see {@link digitRunHints}).
 */
function fillHints(text: string, hints: TextHints, normalized: boolean, digitCap: number): boolean {
  const ascii = hints.ascii;
  if (text.length > SHORT_TEXT) {
    if (!normalized && MAY_CHANGE_UNDER_NFKC.test(text)) return false;
    fillHintsNative(text, hints, digitCap);
    return true;
  }
  let w0 = 0;
  let w1 = 0;
  let w2 = 0;
  let w3 = 0;
  let runDigits = 0;
  let maxDigits = 0;
  let letterRun = 0;
  let ibanHalf = false;
  let ibanHead = false;
  let anyDigit = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 128) {
      const bit = 1 << (c & 31);
      if (c < 64) {
        if (c < 32) w0 |= bit;
        else w1 |= bit;
        if (c >= 48 && c <= 57) {
          anyDigit = true;
          runDigits++;
          if (runDigits > maxDigits) maxDigits = runDigits;
          if (ibanHalf) ibanHead = true;
          ibanHalf = letterRun >= 2;
          letterRun = 0;
          continue;
        }
        if (!(c === 32 || c === 46 || c === 45 || c === 40 || c === 41 || c === 43)) runDigits = 0;
        letterRun = 0;
        ibanHalf = false;
        continue;
      }
      if (c < 96) w2 |= bit;
      else w3 |= bit;
      runDigits = 0;
      ibanHalf = false;
      const lower = c | 0x20;
      if (lower >= 97 && lower <= 122) letterRun++;
      else letterRun = 0;
      continue;
    }
    if (!normalized && mayChange(c)) return false;
    // the dashes U+2010–U+2015 (only in normalized text) continue a digit run; other code
    // units here (e.g. Latin-1 letters) end it
    if (c < 0x2010 || c > 0x2015) runDigits = 0;
    letterRun = 0;
    ibanHalf = false;
  }
  ascii[0] = w0;
  ascii[1] = w1;
  ascii[2] = w2;
  ascii[3] = w3;
  hints.maxDigits = maxDigits;
  hints.flags =
    (anyDigit ? HINT_DIGIT : 0) |
    (has(ascii, AT) ? HINT_AT : 0) |
    (has(ascii, PLUS) ? HINT_PLUS : 0) |
    (has(ascii, PAREN) ? HINT_PAREN : 0) |
    (intersects(ascii, LETTERS) ? HINT_LETTER : 0) |
    (ibanHead ? HINT_IBAN_HEAD : 0) |
    (mayHaveKeyword(text, ascii) ? HINT_KEYWORD : 0);
  return true;
}

/** Every `HINT_*` bit (see {@link TextHints.flags}); gates use no others. */
const HINT_BITS = 127;

/**
 * The length, digit and flag gates of a redactor's detectors as a lookup: returns
 * `candidates(length, maxDigits, flags)`, the indices (ascending, so in priority order) of the
 * detectors whose gates a text with that length (UTF-16 code units), {@link TextHints.maxDigits}
 * and {@link TextHints.flags} passes: `length >= minLength`, `maxDigits >= digits` and every
 * required flag set. Lists are built on first use and kept; lengths from the largest
 * `minLength` on and digit counts from the largest `digits` on pass the same gates, so at most
 * (largest minLength + 1) × (largest digits + 1) × 128 lists exist (78,720 for the built-in
 * detectors; a few dozen in practice). A cell then visits only the detectors it can feed instead
 * of testing every gate of every detector. Throws `Error` when a gate asks for a flag outside
 * {@link HINT_BITS} (a programming error).
 */
function candidateTable(
  minLength: Int32Array,
  digits: Int32Array,
  flags: Int32Array,
): (length: number, maxDigits: number, hintFlags: number) => Int32Array {
  const lengthCap = Math.max(0, ...minLength);
  const digitCap = Math.max(0, ...digits);
  for (const f of flags) {
    if ((f & ~HINT_BITS) !== 0) throw new Error(`Detector gate flag ${f} outside HINT_BITS`);
  }
  const lists = new Map<number, Int32Array>();
  return (length, maxDigits, hintFlags) => {
    const len = Math.min(length, lengthCap);
    const dig = Math.min(maxDigits, digitCap);
    const present = hintFlags & HINT_BITS;
    const key = (len * (digitCap + 1) + dig) * (HINT_BITS + 1) + present;
    let list = lists.get(key);
    if (list === undefined) {
      const picked: number[] = [];
      for (let k = 0; k < minLength.length; k++) {
        if (
          len >= (minLength[k] as number) &&
          dig >= (digits[k] as number) &&
          ((flags[k] as number) & ~present) === 0
        ) {
          picked.push(k);
        }
      }
      list = Int32Array.from(picked);
      lists.set(key, list);
    }
    return list;
  };
}

const COLUMN_RULE: RedactionType = 'column_rule';
const COLUMN_RULE_MARKER = redactionMarker(COLUMN_RULE);

/** Exact-name canonical form: NFKC, lower case, no `_ - .`, whitespace or format characters. */
function canonicalKey(key: string): string {
  return key
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s_.\-\p{Cf}]/gu, '');
}

function compileKeyRules(rules: readonly string[]): (key: string) => boolean {
  const names = new Set<string>();
  const patterns: RegExp[] = [];
  for (const rule of rules) {
    const slash = rule.lastIndexOf('/');
    if (rule.startsWith('/') && slash > 0) {
      const flags = rule.slice(slash + 1).replace(/[gy]/g, '');
      try {
        patterns.push(new RegExp(rule.slice(1, slash), flags));
      } catch (err) {
        throw new TypeError(`Invalid redaction key rule ${JSON.stringify(rule)}`, { cause: err });
      }
    } else {
      const name = canonicalKey(rule);
      if (name.length > 0) names.add(name);
    }
  }
  const cache = new Map<string, boolean>();
  return (key) => {
    const cached = cache.get(key);
    if (cached !== undefined) return cached;
    const normalized = normalizeForMatching(key);
    const hit =
      names.has(canonicalKey(key)) ||
      patterns.some((re) => re.test(key) || (normalized !== key && re.test(normalized)));
    if (cache.size >= KEY_CACHE_LIMIT) cache.clear();
    cache.set(key, hit);
    return hit;
  };
}

class KnownSecrets implements KnownSecretSource {
  #sorted: string[] = [];
  readonly #all = new Set<string>();

  add(value: string): void {
    const normalized = normalizeForMatching(value);
    if (normalized.length < MIN_KNOWN_SECRET_LENGTH) return;
    let added = false;
    for (const form of [normalized, encodeURIComponent(normalized)]) {
      if (!this.#all.has(form)) {
        this.#all.add(form);
        added = true;
      }
    }
    if (added) this.#sorted = [...this.#all].sort((a, b) => b.length - a.length);
  }

  values(): readonly string[] {
    return this.#sorted;
  }
}

/**
 * Create a redactor. Detectors and key rules are compiled once here; the redactor is then
 * safe to call on every result cell. See {@link RedactionOptions}.
 *
 * Detection order (priority when findings overlap): known_secret, private_key, jwt,
 * connection_string_password, aws_access_key_id, aws_secret_access_key, github_token,
 * slack_token/slack_webhook_url, stripe_key, anthropic_api_key, openai_api_key,
 * google_api_key, bearer_token/basic_auth, generic_api_key, password_assignment, then (PII)
 * email, card_number, iban, us_ssn, uk_nino, phone.
 */
export function createRedactor(options: RedactionOptions = {}): Redactor {
  return buildRedactor(options, false);
}

/**
 * A {@link createRedactor} redactor without any of its shortcuts, for differential tests only
 * (not exported from the package): every text is normalized the plain way (strip invisible
 * characters by regex, NFKC, strip again) and every detector runs on it, whatever its length,
 * digits or characters. Its output defines what the shortcuts (the ASCII/Latin fast path of
 * normalization, the table loop for long texts, hints and gates) must reproduce exactly.
 */
export function createReferenceRedactor(options: RedactionOptions = {}): Redactor {
  return buildRedactor(options, true);
}

/** Plain normalization of the reference redactor (see {@link createReferenceRedactor}). */
function referenceNormalize(text: string): string {
  return text.replace(INVISIBLE, '').normalize('NFKC').replace(INVISIBLE, '');
}

function buildRedactor(options: RedactionOptions, reference: boolean): Redactor {
  const known = new KnownSecrets();
  for (const s of options.knownSecrets ?? []) known.add(s);
  const detectors: readonly Detector[] = [
    createKnownSecretDetector(known),
    ...createSecretDetectors(),
    ...(options.pii === false ? [] : createPiiDetectors()),
  ];
  // the cheap gate facts of every detector as flat arrays, so the per-text loop reads numbers
  // instead of properties of differently shaped detector objects
  const gateMinLength = Int32Array.from(detectors, (d) => d.minLength);
  const gateDigits = Int32Array.from(detectors, (d) => d.gate.digits);
  /** the most digits any gate asks for: a longer digit run proves nothing more */
  const digitCap = Math.max(1, ...gateDigits);
  const gateFlags = Int32Array.from(detectors, (d) => d.gate.flags);
  const candidates = candidateTable(gateMinLength, gateDigits, gateFlags);
  const everyDetector = Int32Array.from(detectors, (_, k) => k);
  const keyMatches = compileKeyRules([...DEFAULT_KEY_RULES, ...(options.keyRules ?? [])]);
  const cleanNames = new Set<string>();

  const add = (counts: Record<string, number>, type: RedactionType): void => {
    counts[type] = (Object.hasOwn(counts, type) ? (counts[type] ?? 0) : 0) + 1;
  };

  // Per-call state of redactText, kept here so a call allocates nothing it does not return
  // (redactText is synchronous and never re-entered).
  const hints: TextHints = { flags: 0, maxDigits: 0, ascii: new Uint32Array(4) };
  const probes = new ProbeMemo();
  // findings of the current text, as parallel arrays (slots reused across calls, so a finding
  // allocates nothing): the first `spanCount` entries
  let spanStart = new Int32Array(SPAN_LIST_LIMIT);
  let spanEnd = new Int32Array(SPAN_LIST_LIMIT);
  const spanType: RedactionType[] = [];
  let spanCount = 0;
  let covered: Uint8Array | undefined;
  let coveredCount = 0;
  let textLength = 0;
  /** Records a finding unless it overlaps an earlier one (earlier detectors have priority). */
  const sink = (start: number, end: number, type: RedactionType): void => {
    if (start < 0 || end > textLength || end <= start) return;
    if (covered === undefined && spanCount >= SPAN_LIST_LIMIT) {
      covered = new Uint8Array(textLength);
      for (let k = 0; k < spanCount; k++) covered.fill(1, spanStart[k], spanEnd[k]);
    }
    if (covered === undefined) {
      for (let k = 0; k < spanCount; k++) {
        if (start < (spanEnd[k] as number) && (spanStart[k] as number) < end) return;
      }
    } else {
      for (let i = start; i < end; i++) if (covered[i] === 1) return;
      covered.fill(1, start, end);
    }
    coveredCount += end - start;
    if (spanCount === spanStart.length) {
      const grownStart = new Int32Array(spanCount * 2);
      const grownEnd = new Int32Array(spanCount * 2);
      grownStart.set(spanStart);
      grownEnd.set(spanEnd);
      spanStart = grownStart;
      spanEnd = grownEnd;
    }
    spanStart[spanCount] = start;
    spanEnd[spanCount] = end;
    spanType[spanCount] = type;
    spanCount++;
  };

  /**
   * Redact `raw`, adding to `counts`; returns `raw` itself when nothing matched. Linear in
   * `raw.length` (see patterns.ts); stops early once findings cover the whole text.
   */
  const redactText = (raw: string, counts: Record<string, number>): string => {
    let text = raw;
    if (reference) {
      text = referenceNormalize(raw);
    } else if (!fillHints(raw, hints, false, digitCap)) {
      text = normalizeAlways(raw);
      fillHints(text, hints, true, digitCap);
    }
    const n = text.length;
    if (n < MIN_DETECTABLE_LENGTH && !reference) return raw;
    spanCount = 0;
    covered = undefined;
    coveredCount = 0;
    textLength = n;
    probes.reset();
    // the detectors whose length, digit and flag gates this text passes, in priority order
    const visit = reference ? everyDetector : candidates(n, hints.maxDigits, hints.flags);
    for (let j = 0; j < visit.length; j++) {
      const k = visit[j] as number;
      const d = detectors[k] as Detector;
      if (
        !reference &&
        ((d.gate.anyOf !== null &&
          !passesAnyOf(text, d.gate, n > SHORT_TEXT ? null : hints.ascii, probes)) ||
          (n <= SHAPE_CHECK_MAX && d.shape !== null && !d.shape(text)))
      ) {
        continue;
      }
      if (d.applies !== null && !d.applies(text)) continue;
      d.scan(text, sink);
      if (coveredCount === n) break;
    }
    covered = undefined;
    if (spanCount === 0) return raw;
    if (spanCount === 1) {
      spanCount = 0;
      const type = spanType[0] as RedactionType;
      const start = spanStart[0] as number;
      const end = spanEnd[0] as number;
      add(counts, type);
      const marker = markerFor(type);
      if (start === 0 && end === n) return marker;
      return text.slice(0, start) + marker + text.slice(end);
    }
    // findings in text order (they never overlap, so start order is text order)
    const order = Array.from({ length: spanCount }, (_, k) => k);
    order.sort((a, b) => (spanStart[a] as number) - (spanStart[b] as number));
    const parts: string[] = [];
    let pos = 0;
    for (const k of order) {
      const type = spanType[k] as RedactionType;
      parts.push(text.slice(pos, spanStart[k]), markerFor(type));
      add(counts, type);
      pos = spanEnd[k] as number;
    }
    parts.push(text.slice(pos));
    spanCount = 0;
    if (spanStart.length > SPAN_LIST_LIMIT) {
      spanStart = new Int32Array(SPAN_LIST_LIMIT);
      spanEnd = new Int32Array(SPAN_LIST_LIMIT);
      spanType.length = SPAN_LIST_LIMIT;
    }
    return parts.join('');
  };

  /**
   * `name` (an object key or column name) as detectors see it: redacted like any string, with a
   * bounded cache of names known to be clean (cleared when a known secret is added).
   */
  const redactName = (name: string, counts: Record<string, number>): string => {
    if (cleanNames.has(name)) return name;
    const out = redactText(name, counts);
    if (out === name) {
      if (cleanNames.size >= KEY_CACHE_LIMIT) cleanNames.clear();
      cleanNames.add(name);
    }
    return out;
  };

  /**
   * Redacted names, unique: a name whose redaction collides with another output name (an
   * unchanged one, or an earlier redacted one) gets the first free suffix `#2`, `#3`, … in
   * input order. Returns `undefined` when no name changed (the common case, no allocation).
   */
  const redactNames = (
    names: readonly string[],
    counts: Record<string, number>,
  ): string[] | undefined => {
    let renamed: (string | undefined)[] | undefined;
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const out = redactName(name, counts);
      if (out !== name) {
        renamed ??= [];
        renamed[i] = out;
      }
    }
    if (renamed === undefined) return undefined;
    const taken = new Set<string>();
    for (let i = 0; i < names.length; i++)
      if (renamed[i] === undefined) taken.add(names[i] as string);
    const nextSuffix = new Map<string, number>();
    return names.map((name, i) => {
      const base = renamed[i];
      if (base === undefined) return name;
      let unique = base;
      if (taken.has(unique)) {
        let n = nextSuffix.get(base) ?? 2;
        while (taken.has(`${base}#${n}`)) n++;
        nextSuffix.set(base, n + 1);
        unique = `${base}#${n}`;
      }
      taken.add(unique);
      return unique;
    });
  };

  /** A number or bigint rendered as decimal text and redacted; the original value when clean. */
  const redactNumber = (value: number | bigint, counts: Record<string, number>): unknown => {
    // below 10^12 no detector can match a plain decimal numeral (cards need 13+ digits);
    // from 10^21 on, numbers render in exponent notation and have lost their digits anyway
    if (typeof value === 'number' && !(Math.abs(value) >= 1e12 && Math.abs(value) < 1e21)) {
      return value;
    }
    if (typeof value === 'bigint' && value < 10n ** 12n && value > -(10n ** 12n)) return value;
    const text = String(value);
    const out = redactText(text, counts);
    return out === text ? value : out;
  };

  /** The primitive JSON.stringify writes for a boxed primitive (SerializeJSONProperty, step 4). */
  const unbox = (value: object): unknown => {
    if (isStringObject(value)) return String(value);
    if (isNumberObject(value)) return Number(value);
    if (isBooleanObject(value)) return Boolean.prototype.valueOf.call(value);
    if (isBigIntObject(value)) return BigInt.prototype.valueOf.call(value);
    return {}; // a Symbol object: JSON writes `{}`
  };

  const redactValue = (
    value: unknown,
    counts: Record<string, number>,
    key: string | undefined,
    /** whether a key rule matches `key`; `undefined`: not checked yet */
    keyHit: boolean | undefined,
    ancestors: Set<object> | undefined,
  ): unknown => {
    if (value === null || value === undefined) return value;
    if (keyHit ?? (key !== undefined && keyMatches(key))) {
      add(counts, COLUMN_RULE);
      return COLUMN_RULE_MARKER;
    }
    switch (typeof value) {
      case 'string':
        return redactText(value, counts);
      case 'number':
      case 'bigint':
        return redactNumber(value, counts);
      case 'object':
        break;
      default:
        return value;
    }
    const seen = ancestors ?? new Set<object>();
    if (seen.has(value)) throw new RedactionError('cyclic_value', 'Cannot redact a cyclic value');
    if (seen.size >= MAX_DEPTH) {
      throw new RedactionError(
        'too_deep',
        `Cannot redact a value nested deeper than ${MAX_DEPTH} levels`,
      );
    }
    seen.add(value);
    try {
      if (Array.isArray(value)) {
        return value.map((item: unknown) => redactValue(item, counts, undefined, false, seen));
      }
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') {
        return redactValue(toJSON.call(value, key ?? ''), counts, undefined, false, seen);
      }
      // A boxed primitive (`new String('4111…')`) serializes as its primitive (ECMA-262
      // SerializeJSONProperty, step 4), not as its index keys: redact that primitive. The check
      // reads the internal slot, so a changed prototype or Symbol.toStringTag cannot hide it.
      if (isBoxedPrimitive(value)) {
        return redactValue(unbox(value), counts, undefined, false, seen);
      }
      const keys = Object.keys(value);
      const names = redactNames(keys, counts) ?? keys;
      const out: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        const v = redactValue((value as Record<string, unknown>)[k], counts, k, undefined, seen);
        const name = names[i] as string;
        if (name === '__proto__') {
          Object.defineProperty(out, name, {
            value: v,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        } else {
          out[name] = v;
        }
      }
      return out;
    } finally {
      seen.delete(value);
    }
  };

  return {
    redactString(value, key) {
      return guard(() => {
        const counts: Record<string, number> = {};
        if (key !== undefined && keyMatches(key)) {
          add(counts, COLUMN_RULE);
          return { value: COLUMN_RULE_MARKER, counts };
        }
        return { value: redactText(value, counts), counts };
      });
    },
    redactValue(value, counts, key) {
      return guard(() => redactValue(value, counts, key, undefined, undefined));
    },
    redactTable(columns, rows, counts) {
      return guard(() => {
        const hits = columns.map((c) => keyMatches(c));
        // a string cell under a column no key rule matches (most cells) goes straight to
        // redactText, which is what redactValue would do with it
        return rows.map((row) =>
          row.map((cell, i) =>
            typeof cell === 'string' && hits[i] === false
              ? redactText(cell, counts)
              : redactValue(cell, counts, columns[i], hits[i] ?? false, undefined),
          ),
        );
      });
    },
    redactColumnNames(columns, counts) {
      return guard(() => redactNames(columns, counts) ?? [...columns]);
    },
    addKnownSecret(value) {
      guard(() => known.add(value));
      cleanNames.clear();
    },
  };
}
