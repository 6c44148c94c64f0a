/**
 * Detectors for the output-redaction engine: secrets (always on) and PII (default on).
 *
 * Every detector works on text that the redactor has already normalized (invisible format
 * characters stripped, NFKC applied) and reports half-open UTF-16 index ranges `[start, end)`
 * of what must be replaced. The redactor resolves overlaps by detector priority (the order of
 * {@link createSecretDetectors} then {@link createPiiDetectors}), so detectors never see each
 * other's replacement markers.
 *
 * Look-behinds that pin a start are written after the first character when it is a digit
 * (`\d(?<![…]\d)` rather than `(?<![…])\d`): the same language, but V8 then skips ahead to the
 * next digit instead of testing the look-behind at every position (about twice as fast).
 *
 * Linear time, bounded stack (issue 14): no regular expression here has an unbounded
 * quantifier (`*`, `+`, `{n,}`) nor nested quantifiers over overlapping character classes, so
 * none can backtrack more than a fixed number of steps per start position, and V8's backtrack
 * stack (which throws `RangeError: Maximum call stack size exceeded` when it overflows) stays
 * below a fixed size. Every repetition carries an explicit bound: at most
 * {@link MAX_TOKEN_REGEX_RUN} code units for token bodies, which the detector then extends by
 * hand, one code unit at a time, over the token's character class ({@link extendRun}), so a
 * 5.5 MB token is still redacted whole; e-mail local parts and JWT segments are scanned by hand
 * from an anchor (`@`, `eyJ`). Start positions are pinned with look-behinds so a long run of
 * candidate characters is tried once, not once per character; a rejected candidate is retried
 * one code unit later, which the look-behinds turn into a constant-time failure. Validators
 * (Luhn, mod-97, JSON decode) only run on candidates. Cost is therefore O(n) per detector and
 * the redactor's is O(n · detectors) with small constants (`bench/redaction.bench.ts` prints it).
 */

import { Buffer } from 'node:buffer';

/**
 * Stable snake_case identifier of what was redacted; appears in the replacement marker
 * `[REDACTED:<type>]` and as the key in audit counts.
 *
 * Secret ids: `known_secret`, `private_key`, `jwt`, `connection_string_password`, `bearer_token`,
 * `basic_auth`, `aws_access_key_id`, `aws_secret_access_key`, `github_token`, `slack_token`,
 * `slack_webhook_url`, `stripe_key`, `anthropic_api_key`, `openai_api_key`, `google_api_key`,
 * `generic_api_key`, `password_assignment`.
 * PII ids: `email`, `card_number`, `iban`, `us_ssn`, `uk_nino`, `phone`.
 * Key/column rules: `column_rule`.
 */
export type RedactionType = string;

/** Whether a detector finds secrets (always on) or personal data (switchable with `pii`). */
export type DetectorCategory = 'secret' | 'pii';

/** {@link TextHints.flags} bit: the text contains an ASCII digit 0-9 */
export const HINT_DIGIT = 1;
/** {@link TextHints.flags} bit: the text contains `@` */
export const HINT_AT = 2;
/** {@link TextHints.flags} bit: the text contains `+` */
export const HINT_PLUS = 4;
/** {@link TextHints.flags} bit: the text contains `(` */
export const HINT_PAREN = 8;
/** {@link TextHints.flags} bit: the text contains an ASCII letter */
export const HINT_LETTER = 16;
/**
 * {@link TextHints.flags} bit: the text contains (case-insensitively) pass, pwd, secret, token,
 * key, auth or bearer, and one of `:`, `=`, `<`, space or tab, without which no keyword-anchored
 * detector can match
 */
export const HINT_KEYWORD = 32;
/**
 * {@link TextHints.flags} bit: two ASCII letters are immediately followed by two ASCII digits
 * somewhere in the text (`GB82`), the head every IBAN starts with (ISO 13616-1 §5.1); for long
 * texts set whenever the text has both a letter and a digit
 */
export const HINT_IBAN_HEAD = 64;

/**
 * Code units that may sit between the digits of one digit-gated finding: space, `.`, `-`, `(`,
 * `)`, `+` and the dashes U+2010–U+2015 (phone, card, SSN and NINO separators, a decimal point,
 * a sign). {@link TextHints.maxDigits} counts digits per run of digits and these.
 */
export function isDigitGroupSeparator(c: number): boolean {
  return (
    c === 32 ||
    c === 46 ||
    c === 45 ||
    c === 40 ||
    c === 41 ||
    c === 43 ||
    (c >= 0x2010 && c <= 0x2015)
  );
}

/**
 * Cheap facts about the normalized text, computed once per string and shared by detectors as
 * pre-filters. Every fact is a necessary condition only: a bit is set (a bound is large) when
 * unsure, never clear when the fact holds.
 */
export interface TextHints {
  /** `HINT_*` bits */
  flags: number;
  /**
   * upper bound on the number of ASCII digits in one run of digits and digit-group separators
   * ({@link isDigitGroupSeparator}); every digit-gated detector's finding (cards, SSNs, NINOs,
   * phone numbers, an IBAN's check digits, a decimal card) lies inside one such run, so a
   * detector needing `n` digits cannot match when this is below `n` (for long texts the bound
   * is the text's length)
   */
  maxDigits: number;
  /**
   * ASCII characters that may occur in the text, as a 128-bit set: bit `c & 31` of word
   * `c >> 5` for code unit `c` (all bits set for long texts)
   */
  readonly ascii: Uint32Array;
}

/**
 * A detector's pre-conditions as data, checked by the redactor before any call: a text that
 * fails one cannot contain a finding of this detector.
 */
export interface DetectorGate {
  /** fewest ASCII digits a finding needs in one digit run (see {@link TextHints.maxDigits}; 0: none) */
  readonly digits: number;
  /** `HINT_*` bits that must all be set */
  readonly flags: number;
  /** the text must contain at least one of these ASCII strings (case-sensitive), when given */
  readonly anyOf: readonly string[] | null;
  /** per `anyOf` entry, its characters as a {@link TextHints.ascii} set (4 words each) */
  readonly anyOfChars: Uint32Array | null;
  /** per `anyOf` entry, its least common character in ordinary text (searched first) */
  readonly anyOfProbes: readonly string[] | null;
}

/**
 * ASCII characters roughly from most to least common in ordinary text (English letter
 * frequencies, then digits, capitals and punctuation); characters not listed count as rarest.
 */
const COMMONNESS = ' etaoinshrdlcumwfgypbv.,k\n-0123456789TSACMBPIDHRWLEFNGOKUVYJ/:';

/** The character of `needle` least common in ordinary text. */
function probeOf(needle: string): string {
  let best = needle[0] ?? '';
  let rank = -1;
  for (const c of needle) {
    const r = COMMONNESS.indexOf(c);
    const score = r === -1 ? COMMONNESS.length : r;
    if (score > rank) {
      rank = score;
      best = c;
    }
  }
  return best;
}

/** Builds a {@link DetectorGate}; omitted parts impose nothing. */
function gate(g: { digits?: number; flags?: number; anyOf?: readonly string[] }): DetectorGate {
  const anyOf = g.anyOf ?? null;
  let anyOfChars: Uint32Array | null = null;
  if (anyOf !== null) {
    const chars = new Uint32Array(anyOf.length * 4);
    anyOf.forEach((needle, n) => {
      for (let i = 0; i < needle.length; i++) {
        const c = needle.charCodeAt(i) & 127;
        const w = n * 4 + (c >> 5);
        chars[w] = (chars[w] as number) | (1 << (c & 31));
      }
    });
    anyOfChars = chars;
  }
  const anyOfProbes = anyOf === null ? null : anyOf.map(probeOf);
  return { digits: g.digits ?? 0, flags: g.flags ?? 0, anyOf, anyOfChars, anyOfProbes };
}

/**
 * Per-text memo of {@link passesAnyOf}'s searches for probe characters on long texts: several
 * gates share a probe (`_` for five GitHub prefixes and Stripe's), and a probe that is absent
 * costs a search of the whole text. Call {@link ProbeMemo.reset} before each new text.
 */
export class ProbeMemo {
  /** per ASCII code unit: 0 not searched yet in this text, 1 absent, 2 present */
  readonly #state = new Uint8Array(128);
  #dirty = false;

  /** Forget every result (a new text follows). */
  reset(): void {
    if (this.#dirty) {
      this.#state.fill(0);
      this.#dirty = false;
    }
  }

  /** Whether `text` contains the ASCII character `probe` (one search per text and character). */
  has(text: string, probe: string): boolean {
    const c = probe.charCodeAt(0) & 127;
    const known = this.#state[c];
    if (known !== 0) return known === 2;
    const present = text.includes(probe);
    this.#state[c] = present ? 2 : 1;
    this.#dirty = true;
    return present;
  }
}

/**
 * Whether `text` contains one of the gate's `anyOf` strings: entries with a character the text
 * lacks (per `ascii`, or, when `ascii` is `null`, per a search for the entry's rarest
 * character, remembered in `probes` for the rest of this text) are skipped without searching
 * for the whole entry.
 */
export function passesAnyOf(
  text: string,
  g: DetectorGate,
  ascii: Uint32Array | null,
  probes: ProbeMemo,
): boolean {
  const { anyOf, anyOfChars, anyOfProbes } = g;
  if (anyOf === null || anyOfChars === null || anyOfProbes === null) return true;
  for (let n = 0; n < anyOf.length; n++) {
    const k = n * 4;
    if (ascii === null) {
      if (probes.has(text, anyOfProbes[n] as string) && text.includes(anyOf[n] as string)) {
        return true;
      }
      continue;
    }
    if (
      ((anyOfChars[k] as number) & ~(ascii[0] as number)) !== 0 ||
      ((anyOfChars[k + 1] as number) & ~(ascii[1] as number)) !== 0 ||
      ((anyOfChars[k + 2] as number) & ~(ascii[2] as number)) !== 0 ||
      ((anyOfChars[k + 3] as number) & ~(ascii[3] as number)) !== 0
    ) {
      continue;
    }
    if (text.includes(anyOf[n] as string)) return true;
  }
  return false;
}

/** Receives one finding: UTF-16 indices `[start, end)` into the normalized text and its type. */
export type SpanSink = (start: number, end: number, type: RedactionType) => void;

/**
 * One detector. `minLength` (UTF-16 code units), `gate` and `applies` are the cheap pre-checks,
 * in that order; `scan` reports every finding to the sink.
 */
export interface Detector {
  /** human-readable detector name (diagnostics only) */
  readonly name: string;
  /** every type id this detector can report */
  readonly types: readonly RedactionType[];
  readonly category: DetectorCategory;
  /** texts shorter than this (UTF-16 code units) cannot contain a finding */
  readonly minLength: number;
  /** pre-conditions as data */
  readonly gate: DetectorGate;
  /** further pre-check after the gate, if any; `false` skips `scan` */
  readonly applies: ((text: string) => boolean) | null;
  /**
   * Shape pre-check for short texts (at most {@link SHAPE_CHECK_MAX} code units), if any: a
   * necessary condition of a finding read by hand in one pass, so a cell that passes the gates
   * but cannot hold this detector's shape (e.g. a phone number for the SSN detector) skips the
   * regex. `false` skips `scan`. A shortcut: the reference redactor of the differential test
   * never calls it.
   */
  readonly shape: ((text: string) => boolean) | null;
  /** report findings */
  scan(text: string, sink: SpanSink): void;
}

/** The replacement for a redacted item of `type`: `[REDACTED:<type>]`. */
export function redactionMarker(type: RedactionType): string {
  return `[REDACTED:${type}]`;
}

const MARKER_PREFIX = '[REDACTED:';

/** Longest value (UTF-16 code units) read after `password=`-style keys. */
const MAX_ASSIGNED_VALUE = 1024;

/**
 * Upper bound (UTF-16 code units) on what one token-body repetition in a regular expression may
 * match. Longer tokens are matched up to this bound and then extended by hand over the token's
 * character class ({@link extendRun}), so the regex engine's backtrack stack never grows with
 * the input (a 5.5 MB `xoxb-…` once overflowed it).
 */
export const MAX_TOKEN_REGEX_RUN = 256;

/**
 * Lookup table of an ASCII character class: `table[c] === 1` for each code unit `c < 128` that
 * the regex class `[spec]` accepts (e.g. `'A-Za-z0-9_-'`).
 */
function asciiClass(spec: string): Uint8Array {
  const re = new RegExp(`^[${spec}]$`);
  const table = new Uint8Array(128);
  for (let c = 0; c < 128; c++) table[c] = re.test(String.fromCharCode(c)) ? 1 : 0;
  return table;
}

/** First index at or after `from` whose code unit is not in the ASCII class `table`. */
function extendRun(text: string, from: number, table: Uint8Array): number {
  let i = from;
  for (let c = text.charCodeAt(i); c < 128 && table[c] === 1; c = text.charCodeAt(++i));
  return i;
}

/** First index at or before `from` (counting down) whose preceding code unit is not in `table`. */
function extendRunBack(text: string, from: number, table: Uint8Array): number {
  let i = from;
  for (let c = text.charCodeAt(i - 1); c < 128 && table[c] === 1; c = text.charCodeAt(--i - 1));
  return i;
}

// ---------------------------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------------------------

/**
 * Luhn (mod-10) checksum of a string of ASCII digits, as specified for payment card numbers by
 * ISO/IEC 7812-1 Annex B. Returns false for empty input or any non-digit character.
 */
export function isLuhnValid(digits: string): boolean {
  if (digits.length === 0) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    const d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      const x = d * 2;
      sum += x > 9 ? x - 9 : x;
    } else {
      sum += d;
    }
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * Whether a 13–19 digit string is in the number range and length of a major card network.
 * Ranges are those published by the networks under the ISO/IEC 7812 issuer identification
 * scheme: Visa 4 (13/16/19), Mastercard 51–55 and 2221–2720 (16), American Express 34/37 (15),
 * Diners Club 300–305/36/38/39 (14–19), JCB 3528–3589 (16–19), Discover 6011/644–649/65
 * (16–19), UnionPay 62 (16–19), Maestro 50/56–58/63/67 (13–19). False for anything but 13–19
 * ASCII digits.
 */
export function isCardNetworkNumber(digits: string): boolean {
  if (!/^\d{13,19}$/.test(digits)) return false;
  return isCardNetworkPrefix(Number(digits.slice(0, 4)), digits.length);
}

/**
 * {@link isCardNetworkNumber} of a digit string given by its length `len` and its first four
 * digits as a number `p4` (e.g. 4111 for `4111111111111111`); `len` must be 13–19.
 */
function isCardNetworkPrefix(p4: number, len: number): boolean {
  if (len < 13 || len > 19) return false;
  const p2 = Math.floor(p4 / 100);
  const p3 = Math.floor(p4 / 10);
  if (p2 >= 40 && p2 <= 49) return len === 13 || len === 16 || len === 19;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return len === 16;
  if (p2 === 34 || p2 === 37) return len === 15;
  if ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) return len >= 14;
  if (p4 >= 3528 && p4 <= 3589) return len >= 16;
  if (p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65 || p2 === 62) return len >= 16;
  return p2 === 50 || (p2 >= 56 && p2 <= 58) || p2 === 63 || p2 === 67;
}

/**
 * IBAN length per country code, from the SWIFT IBAN Registry (ISO 13616-1 registration
 * authority), release 2024. Unknown country codes are rejected.
 */
const IBAN_LENGTHS: ReadonlyMap<string, number> = new Map(
  [
    'AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 ',
    'DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 ',
    'HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 ',
    'MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 ',
    'RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 ',
    'VA22 VG24 XK20 YE30',
  ]
    .join('')
    .split(' ')
    .map((e): [string, number] => [e.slice(0, 2), Number(e.slice(2))]),
);

/**
 * ISO 13616 IBAN validation: registered country code, the registry length for that country,
 * and the ISO 7064 MOD 97-10 check (move the first four characters to the end, map A=10 …
 * Z=35, the number mod 97 must be 1). Spaces are ignored; letters are case-insensitive.
 */
export function isValidIban(iban: string): boolean {
  return isValidIbanRange(iban, 0, iban.length);
}

/**
 * {@link IBAN_LENGTHS} as a table indexed by the two upper-case code units of the country code
 * (`c0 * 128 + c1`, both < 128); 0 for an unregistered code.
 */
const IBAN_LENGTH_BY_CODE = new Uint8Array(128 * 128);
for (const [cc, len] of IBAN_LENGTHS) {
  IBAN_LENGTH_BY_CODE[cc.charCodeAt(0) * 128 + cc.charCodeAt(1)] = len;
}
/** Registry length of the IBAN country code `c0 c1` (any case); 0 when not registered. */
function ibanLength(c0: number, c1: number): number {
  const u0 = upperAscii(c0);
  const u1 = upperAscii(c1);
  return u0 < 128 && u1 < 128 ? (IBAN_LENGTH_BY_CODE[u0 * 128 + u1] as number) : 0;
}
/** Longest registry IBAN length plus one: a longer candidate is rejected before buffering. */
const IBAN_BUFFER = new Uint8Array(Math.max(...IBAN_LENGTHS.values()) + 1);

/** {@link isValidIban} of `text.slice(from, to)`, without building the slice. */
function isValidIbanRange(text: string, from: number, to: number): boolean {
  // shape check in one pass (letters, check digits, alphanumerics; spaces skipped), copying
  // the upper-cased characters into a small reused buffer …
  const buf = IBAN_BUFFER;
  let length = 0;
  for (let i = from; i < to; i++) {
    const c = upperAscii(text.charCodeAt(i));
    if (c === 32) continue;
    const digit = c >= 48 && c <= 57;
    const letter = c >= 65 && c <= 90;
    if (length < 2 ? !letter : length < 4 ? !digit : !digit && !letter) return false;
    if (length === buf.length) return false;
    buf[length++] = c;
  }
  if (length < 2) return false;
  const expected = ibanLength(buf[0] as number, buf[1] as number);
  if (expected === 0 || length !== expected) return false;
  // … then MOD 97-10 over characters 5… followed by 1–4, without building the rearranged string;
  // digits contribute one decimal digit, letters two (A=10 … Z=35). The remainder is reduced
  // once at least 6 decimal digits were appended since the last reduction (< 97 · 10^7 + 10^7,
  // inside int32), not per character: integer division is the costly step.
  let rem = 0;
  let pending = 0;
  for (let k = 4; k < length + 4; k++) {
    const c = buf[k < length ? k : k - length] as number;
    if (c <= 57) {
      rem = rem * 10 + (c - 48);
      pending += 1;
    } else {
      rem = rem * 100 + (c - 55);
      pending += 2;
    }
    if (pending >= 6) {
      rem %= 97;
      pending = 0;
    }
  }
  return rem % 97 === 1;
}

/** ASCII lower-case letter code units to upper case; others unchanged. */
function upperAscii(c: number): number {
  return c >= 97 && c <= 122 ? c - 32 : c;
}

/**
 * Whether a base64url segment (RFC 4648 §5) decodes to a JSON object with a string `alg`
 * member, i.e. a JOSE header as required for a JWT by RFC 7519 §5 / RFC 7515 §4.1.1.
 */
export function isJoseHeader(segment: string): boolean {
  // `{"alg":""}` is 10 bytes, 14 base64url characters; cheap shape checks before JSON.parse
  // keep a text of many header-like candidates from costing an exception each
  if (segment.length < 14 || segment.length > 8192) return false;
  const json = Buffer.from(segment, 'base64url').toString('utf8');
  // (a key may be spelled with escapes, `"\u0061lg"`, so those go to the parser too)
  if (!(json.includes('"alg"') || json.includes('\\u')) || !json.trimEnd().endsWith('}')) {
    return false;
  }
  try {
    const parsed: unknown = JSON.parse(json);
    return (
      typeof parsed === 'object' &&
      parsed !== null &&
      !Array.isArray(parsed) &&
      typeof (parsed as { alg?: unknown }).alg === 'string'
    );
  } catch {
    return false;
  }
}

/**
 * Whether `AAA-GG-SSSS` digits form an SSN the Social Security Administration can issue: area
 * not 000, 666 or 900–999; group not 00; serial not 0000 (SSA, "Social Security Number
 * Randomization", 2011). Input is the 9 digits without separators.
 */
export function isPlausibleUsSsn(digits: string): boolean {
  if (!/^\d{9}$/.test(digits)) return false;
  const area = digits.slice(0, 3);
  return (
    area !== '000' &&
    area !== '666' &&
    digits[0] !== '9' &&
    digits.slice(3, 5) !== '00' &&
    digits.slice(5) !== '0000'
  );
}

/**
 * {@link isPlausibleUsSsn} of a match `AAA-GG-SSSS` (the regex fixed the shape: 11 code units,
 * ASCII digits at 0–2, 4–5 and 7–10), read in place.
 */
function acceptUsSsn(m: RegExpExecArray): Verdict {
  const s = m[0];
  const d = (i: number): number => s.charCodeAt(i) - 48;
  const area = d(0) * 100 + d(1) * 10 + d(2);
  const group = d(4) * 10 + d(5);
  const serial = d(7) * 1000 + d(8) * 100 + d(9) * 10 + d(10);
  return area !== 0 && area !== 666 && area < 900 && group !== 0 && serial !== 0;
}

// ---------------------------------------------------------------------------------------------
// Detector construction helpers
// ---------------------------------------------------------------------------------------------

interface Finding {
  readonly start: number;
  readonly end: number;
  readonly type?: RedactionType;
}

/** `true` = the whole match; a Finding = that range; `null`/`false` = not a finding. */
type Verdict = Finding | boolean | null;

interface RegexDetectorSpec {
  readonly name: string;
  readonly type: RedactionType;
  readonly extraTypes?: readonly RedactionType[];
  readonly category: DetectorCategory;
  readonly minLength: number;
  readonly gate: DetectorGate;
  readonly applies?: (text: string) => boolean;
  /** see {@link Detector.shape} */
  readonly shape?: (text: string) => boolean;
  /** one or more patterns; compiled once, global flag added */
  readonly patterns: readonly RegExp[];
  /**
   * ASCII class the match continues over past a bounded repetition (see
   * {@link MAX_TOKEN_REGEX_RUN}): the end of the match, and of a finding ending there, is
   * extended over it by hand before `accept` runs.
   */
  readonly tail?: Uint8Array;
  /** `end` is where the (extended) match ends; `m[0]` may be shorter */
  readonly accept?: (m: RegExpExecArray, text: string, end: number) => Verdict;
}

function globalCopy(re: RegExp): RegExp {
  return new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
}

/**
 * Runs `re` over `text`. A rejected candidate is retried one code unit later (the look-behinds
 * keep that linear), so a valid item is not hidden behind an invalid prefix.
 */
function scanWith(
  re: RegExp,
  text: string,
  type: RedactionType,
  spec: Pick<RegexDetectorSpec, 'accept' | 'tail'>,
  sink: SpanSink,
): void {
  const { accept, tail } = spec;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const matchEnd = m.index + m[0].length;
    const end = tail === undefined ? matchEnd : extendRun(text, matchEnd, tail);
    const verdict = accept === undefined ? true : accept(m, text, end);
    if (verdict === null || verdict === false) {
      re.lastIndex = m.index + 1;
      continue;
    }
    if (verdict === true) {
      sink(m.index, end, type);
      re.lastIndex = end > m.index ? end : m.index + 1;
    } else {
      const findingEnd = verdict.end === matchEnd ? end : verdict.end;
      sink(verdict.start, findingEnd, verdict.type ?? type);
      re.lastIndex = Math.max(findingEnd, m.index + 1);
    }
  }
}

function regexDetector(spec: RegexDetectorSpec): Detector {
  const compiled = spec.patterns.map(globalCopy);
  return {
    name: spec.name,
    types: [spec.type, ...(spec.extraTypes ?? [])],
    category: spec.category,
    minLength: spec.minLength,
    gate: spec.gate,
    applies: spec.applies ?? null,
    shape: spec.shape ?? null,
    scan(text, sink) {
      for (const re of compiled) scanWith(re, text, spec.type, spec, sink);
    },
  };
}

/** Range of capture group `n` of a match made with the `d` flag. */
function groupRange(m: RegExpExecArray, n: number): Finding | null {
  const r = m.indices?.[n];
  return r === undefined ? null : { start: r[0], end: r[1] };
}

const VALUE_LITERALS = new Set(['null', 'true', 'false', 'undefined', 'none', 'nil']);

/**
 * Reads the value that follows a `key=` / `key: ` / `"key": ` assignment at `from`. Handles
 * '…', "…", `…` and JSON-escaped \"…\" quoting; unquoted values end at whitespace, quotes,
 * `,;&<>)}]` or a literal `\n`/`\r`/`\t` escape. At most {@link MAX_ASSIGNED_VALUE} code units.
 * Unquoted JSON literals (null, true, …), all-`*` masks and existing markers are not values.
 */
function readAssignedValue(text: string, from: number): Finding | null {
  let i = from;
  while (i < from + 2 && text.charCodeAt(i) === 92 /* \ */) i++;
  const q = text[i];
  if (q === '"' || q === "'" || q === '`') {
    const start = i + 1;
    const limit = Math.min(text.length, start + MAX_ASSIGNED_VALUE);
    let end = start;
    while (end < limit) {
      const c = text[end];
      if (c === q || c === '\n' || c === '\r') break;
      end++;
    }
    if (i > from) while (end > start && text.charCodeAt(end - 1) === 92) end--;
    return acceptValue(text, start, end, true);
  }
  const start = from;
  const limit = Math.min(text.length, start + MAX_ASSIGNED_VALUE);
  let end = start;
  while (end < limit) {
    const c = text.charCodeAt(end);
    if (c <= 32 || UNQUOTED_TERMINATORS.has(c)) break;
    if (c === 92) {
      const next = text[end + 1];
      if (next === 'n' || next === 'r' || next === 't' || next === '"') break;
    }
    end++;
  }
  return acceptValue(text, start, end, false);
}

const UNQUOTED_TERMINATORS = new Set(
  [...'"\'`,;&<>)}]'].map((c) => c.charCodeAt(0)).concat([0x85, 0xa0, 0x2028, 0x2029]),
);

function acceptValue(text: string, start: number, end: number, quoted: boolean): Finding | null {
  if (end <= start) return null;
  const value = text.slice(start, end);
  if (value.startsWith(MARKER_PREFIX)) return null;
  if (/^[*•]+$/.test(value)) return null;
  if (!quoted && VALUE_LITERALS.has(value.toLowerCase())) return null;
  return { start, end };
}

/** separator between a key and its value: `=`, `:`, `:=`, `=>`, `==`, `===`, after an optional closing quote */
const ASSIGN_SEP = String.raw`\\{0,2}["'\x60]?[ \t]{0,4}(?::=|=>|={1,3}|:)[ \t]{0,4}`;

const KEYWORD_GATE = gate({ flags: HINT_KEYWORD });

/** The keywords behind {@link HINT_KEYWORD}, matched case-insensitively (non-Unicode `i`). */
const KEYWORD = /pass|pwd|secret|token|key|auth|bearer/i;
const BEARER = /bearer/i;
/** Assignment context: `:` (also of `:=`), `=` (also of `=>`, `==`) and `<` (XML elements). */
const KEYWORD_CONTEXT = /[:=<]/g;
/**
 * How far (UTF-16 code units) a keyword of a keyword-gated detector's finding can lie from a
 * context character {@link KEYWORD_CONTEXT} of the same finding, with room to spare. From the
 * patterns: the assignment keys (AWS secret, generic API key) end in their keyword and the
 * separator follows within 7 code units (`\\{0,2}["'\x60]?[ \t]{0,4}`), so the keyword ends
 * ≤ 7 before `:`/`=` and starts ≤ 13 before it; a password key's `pass`/`pwd` starts ≤ 30 before
 * it (`phrase` + `_confirmation` + 7); `authorization` starts ≤ 20 before it; an XML password
 * element's keyword ends ≤ 38 after its `<` (`<` + a 33-unit namespace prefix + `password`).
 * Only `bearer <token>` needs no context character, and it is tested on the whole text.
 */
const KEYWORD_REACH = 64;
/** Longest keyword of {@link KEYWORD} minus one: the overlap of consecutive windows. */
const KEYWORD_OVERLAP = 5;

/**
 * Folded ASCII letter bits (bit `c & 31` of a letter of either case) of each keyword of
 * {@link KEYWORD}: a keyword can occur only when all bits of one entry are present.
 */
const KEYWORD_LETTERS: readonly number[] = ['pass', 'pwd', 'secret', 'token', 'key', 'auth'].map(
  (k) => [...k].reduce((bits, c) => bits | (1 << (c.charCodeAt(0) & 31)), 0),
);
const BEARER_LETTERS = [...'bearer'].reduce((bits, c) => bits | (1 << (c.charCodeAt(0) & 31)), 0);
/**
 * Shortest text holding a bare `bearer <token>` finding: `bearer`, one blank and 16 token
 * characters (the Authorization detector's second pattern); a shorter text with `bearer` needs a
 * context character like every other keyword-gated finding.
 */
const MIN_BARE_BEARER = 'bearer'.length + 1 + 16;

/**
 * The {@link HINT_KEYWORD} fact of normalized `text`: whether a keyword-gated detector (AWS
 * secret and generic API key assignments, password assignments and elements, Authorization
 * credentials) can match. A necessary condition only: `true` when `bearer` occurs anywhere, or
 * a keyword occurs within {@link KEYWORD_REACH} code units of a `:`, `=` or `<`. `ascii` is the
 * text's {@link TextHints.ascii} set (all ones when unknown): letters of which no keyword can be
 * spelled skip every search. Linear: the windows around context characters are searched once
 * each (a window reaches 2 × {@link KEYWORD_REACH} ahead, so context characters inside it need
 * no window of their own), never the text between them.
 */
export function mayHaveKeyword(text: string, ascii: Uint32Array): boolean {
  // letters of either case share bit `c & 31` in words 2 (upper) and 3 (lower)
  const folded = (ascii[2] as number) | (ascii[3] as number);
  const blank = ((ascii[1] as number) & 1) !== 0 || ((ascii[0] as number) & (1 << 9)) !== 0;
  if (
    blank &&
    text.length >= MIN_BARE_BEARER &&
    (folded & BEARER_LETTERS) === BEARER_LETTERS &&
    BEARER.test(text)
  ) {
    return true;
  }
  // `:` 58, `<` 60, `=` 61: bits 26, 28, 29 of word 1
  if (((ascii[1] as number) & 0x34000000) === 0) return false;
  if (!KEYWORD_LETTERS.some((k) => (folded & k) === k)) return false;
  if (text.length <= 4 * KEYWORD_REACH) return KEYWORD.test(text);
  return keywordWindows(text, (from, to) => KEYWORD.test(text.slice(from, to)));
}

/**
 * Calls `search(from, to)` for the windows of `text` that {@link mayHaveKeyword} searches for a
 * keyword, in order, until one returns `true` (then returns `true`). Windows overlap by
 * {@link KEYWORD_OVERLAP} code units at most, so their total length is below
 * `text.length + windows · KEYWORD_OVERLAP` with every window but the last at least
 * {@link KEYWORD_REACH} long: linear in `text.length`.
 */
function keywordWindows(text: string, search: (from: number, to: number) => boolean): boolean {
  const n = text.length;
  let scannedTo = 0;
  KEYWORD_CONTEXT.lastIndex = 0;
  for (let m = KEYWORD_CONTEXT.exec(text); m !== null; m = KEYWORD_CONTEXT.exec(text)) {
    const p = m.index;
    const from = Math.max(0, p - KEYWORD_REACH, scannedTo - KEYWORD_OVERLAP);
    const to = Math.min(n, p + 2 * KEYWORD_REACH);
    if (search(from, to)) return true;
    scannedTo = to;
    // a context character at q ≤ p + KEYWORD_REACH has its window [q - R, q + R] inside
    // [p - R, p + 2R], which is searched (or was, before `from`)
    KEYWORD_CONTEXT.lastIndex = p + KEYWORD_REACH + 1;
  }
  return false;
}

/**
 * Code units the keyword windows of a long `text` without keywords cover in all (see
 * {@link mayHaveKeyword}): the work of its windowed search, for linearity tests.
 */
export function keywordWindowUnits(text: string): number {
  let units = 0;
  keywordWindows(text, (from, to) => {
    units += to - from;
    return false;
  });
  return units;
}

interface AssignmentSpec {
  readonly name: string;
  readonly type: RedactionType;
  readonly key: RegExp;
  readonly minLength: number;
  /** extra check on the value text (and the matched key) */
  readonly acceptValue?: (value: string, key: string) => boolean;
}

/** Detector for `<key><sep><value>`: the key regex is matched, then the value is read by hand. */
function assignmentDetector(spec: AssignmentSpec): Detector {
  const re = new RegExp(`(${spec.key.source})${ASSIGN_SEP}`, `${spec.key.flags.replace('g', '')}g`);
  return {
    name: spec.name,
    types: [spec.type],
    category: 'secret',
    minLength: spec.minLength,
    gate: KEYWORD_GATE,
    applies: null,
    shape: null,
    scan(text, sink) {
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const after = m.index + m[0].length;
        const found = readAssignedValue(text, after);
        if (
          found !== null &&
          (spec.acceptValue === undefined ||
            spec.acceptValue(text.slice(found.start, found.end), m[1] ?? ''))
        ) {
          sink(found.start, found.end, spec.type);
          re.lastIndex = Math.max(found.end, after);
        } else {
          re.lastIndex = Math.max(after, m.index + 1);
        }
      }
    },
  };
}

const BASE62 = asciiClass('A-Za-z0-9');
const GITHUB_PAT_BODY = asciiClass('A-Za-z0-9_');

/**
 * Whether `text[start, end)` holds an ASCII digit and at least `letters` ASCII letters (one
 * forward pass; no regex over a possibly long token).
 */
function hasDigitAndTwoLetters(text: string, start: number, end: number, letters = 2): boolean {
  let digit = false;
  let seen = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i) | 0x20;
    if (c >= 0x30 && c <= 0x39) digit = true;
    else if (c >= 0x61 && c <= 0x7a) seen++;
    if (digit && seen >= letters) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Secret detectors (always on)
// ---------------------------------------------------------------------------------------------

/** Source of the exact secret values a redactor knows about (longest first). */
export interface KnownSecretSource {
  /** normalized secret values, sorted longest first */
  values(): readonly string[];
}

/**
 * `known_secret`: every exact occurrence of a secret the process holds (e.g. loaded
 * credentials). Plain `indexOf` scan, longest secret first so it wins over its substrings.
 */
export function createKnownSecretDetector(source: KnownSecretSource): Detector {
  return {
    name: 'known secrets',
    types: ['known_secret'],
    category: 'secret',
    minLength: 8,
    gate: gate({}),
    applies: () => source.values().length > 0,
    shape: null,
    scan(text, sink) {
      for (const secret of source.values()) {
        for (let i = text.indexOf(secret); i !== -1; i = text.indexOf(secret, i + secret.length)) {
          sink(i, i + secret.length, 'known_secret');
        }
      }
    },
  };
}

/**
 * `private_key`: PEM-encoded private keys (RFC 7468 §2 encapsulation boundaries; labels such as
 * PRIVATE KEY, RSA/EC/DSA/OPENSSH/ENCRYPTED PRIVATE KEY, PGP PRIVATE KEY BLOCK per RFC 4880
 * §6.2). The whole block from BEGIN to END is redacted; a BEGIN without an END (truncated
 * output) is redacted to the end of the text. One forward pass per block, no backtracking.
 */
function privateKeyDetector(): Detector {
  const begin = /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/g;
  const end = /-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/g;
  return {
    name: 'PEM private key',
    types: ['private_key'],
    category: 'secret',
    minLength: 40,
    gate: gate({ anyOf: ['PRIVATE KEY'] }),
    applies: null,
    shape: null,
    scan(text, sink) {
      begin.lastIndex = 0;
      for (let b = begin.exec(text); b !== null; b = begin.exec(text)) {
        end.lastIndex = b.index + b[0].length;
        const e = end.exec(text);
        const stop = e === null ? text.length : e.index + e[0].length;
        sink(b.index, stop, 'private_key');
        if (e === null) return;
        begin.lastIndex = stop;
      }
    },
  };
}

const BASE64URL = asciiClass('A-Za-z0-9_-');

/**
 * JWT (RFC 7519 §3, JWS compact serialization RFC 7515 §7.1; JWE RFC 7516 §7.1 has five parts
 * and may have an empty second part): a base64url header starting `eyJ` (`{"`) that decodes to
 * a JSON object with "alg", then `.payload.signature` (either may be empty) and up to two more
 * non-empty `.segment`s; 16+ characters in all. Scanned by hand from each `eyJ` that does not
 * continue a base64url run, so each segment is read once whatever its length.
 */
function jwtDetector(): Detector {
  return {
    name: 'JWT',
    types: ['jwt'],
    category: 'secret',
    minLength: 16,
    gate: gate({ anyOf: ['eyJ'] }),
    applies: null,
    shape: null,
    scan(text, sink) {
      let from = 0;
      for (let at = text.indexOf('eyJ'); at !== -1; at = text.indexOf('eyJ', from)) {
        from = at + 1;
        const before = text.charCodeAt(at - 1);
        if (before < 128 && BASE64URL[before] === 1) continue;
        const headerEnd = extendRun(text, at + 3, BASE64URL);
        if (headerEnd === at + 3 || text.charCodeAt(headerEnd) !== 46 /* . */) continue;
        const payloadEnd = extendRun(text, headerEnd + 1, BASE64URL);
        if (text.charCodeAt(payloadEnd) !== 46) continue;
        let end = extendRun(text, payloadEnd + 1, BASE64URL);
        for (let extra = 0; extra < 2 && text.charCodeAt(end) === 46; extra++) {
          const next = extendRun(text, end + 1, BASE64URL);
          if (next === end + 1) break;
          end = next;
        }
        if (end - at < 16 || !isJoseHeader(text.slice(at, headerEnd))) continue;
        sink(at, end, 'jwt');
        from = end;
      }
    },
  };
}

/** Builds every always-on secret detector, in priority order (after `known_secret`). */
export function createSecretDetectors(): Detector[] {
  return [
    privateKeyDetector(),

    jwtDetector(),

    // URL userinfo password (RFC 3986 §3.2.1): scheme://user:PASSWORD@host — only PASSWORD is
    // replaced, scheme, user and host stay readable.
    regexDetector({
      name: 'connection string password',
      type: 'connection_string_password',
      category: 'secret',
      minLength: 8,
      gate: gate({ flags: HINT_AT, anyOf: ['://'] }),
      patterns: [
        /(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,31}:\/\/[^\s:@/?#[\]"'<>]{0,256}:([^\s@/?#"'<>]{1,512})@(?=[^\s@/?#"'<>])/d,
      ],
      accept: (m) => {
        const pw = m[1] ?? '';
        if (pw.startsWith(MARKER_PREFIX) || /^\*+$/.test(pw)) return null;
        return groupRange(m, 1);
      },
    }),

    // AWS access key ids (AWS IAM "Unique identifiers": AKIA long-term, ASIA STS temporary,
    // ABIA/ACCA service-specific): prefix + 16 upper-case alphanumerics.
    regexDetector({
      name: 'AWS access key id',
      type: 'aws_access_key_id',
      category: 'secret',
      minLength: 20,
      gate: gate({ anyOf: ['AKIA', 'ASIA', 'ABIA', 'ACCA'] }),
      patterns: [/(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])/],
    }),

    // aws_secret_access_key = <value> / "SecretAccessKey": "<value>" (AWS CLI config and STS
    // response field names); the value is redacted whatever its shape.
    assignmentDetector({
      name: 'AWS secret access key',
      type: 'aws_secret_access_key',
      minLength: 20,
      key: /(?<![A-Za-z0-9])(?:aws[_-]?)?secret[_-]?access[_-]?key(?![A-Za-z0-9_-])/i,
    }),

    // GitHub tokens ("Behind GitHub's new authentication token formats", 2021): ghp_/gho_/ghu_/
    // ghs_/ghr_ + 36+ base62, fine-grained github_pat_ + 22+ [A-Za-z0-9_].
    regexDetector({
      name: 'GitHub token',
      type: 'github_token',
      category: 'secret',
      minLength: 33,
      // `github_pat_` does not contain `gh`
      gate: gate({ anyOf: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'] }),
      patterns: [
        new RegExp(
          `(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,${MAX_TOKEN_REGEX_RUN}}|github_pat_[A-Za-z0-9_]{22,${MAX_TOKEN_REGEX_RUN}})`,
        ),
      ],
      tail: BASE62,
      // the fine-grained token's body may also contain `_` (ghp_… tokens end at it)
      accept: (m, text, end) =>
        m[0].startsWith('github_pat_')
          ? { start: m.index, end: extendRun(text, end, GITHUB_PAT_BODY) }
          : true,
    }),

    // Slack tokens (Slack API "Token types"): xoxb- bot, xoxp- user, xoxa-/xoxr- legacy
    // app/refresh, xoxe-/xoxs-, xapp- app-level; and incoming-webhook URLs.
    regexDetector({
      name: 'Slack token',
      type: 'slack_token',
      extraTypes: ['slack_webhook_url'],
      category: 'secret',
      minLength: 15,
      gate: gate({ anyOf: ['xox', 'xapp-'] }),
      patterns: [
        new RegExp(
          String.raw`(?<![A-Za-z0-9_-])(?:xox[abeprs]-[A-Za-z0-9-]{10,${MAX_TOKEN_REGEX_RUN}}|xapp-\d-[A-Za-z0-9-]{10,${MAX_TOKEN_REGEX_RUN}})`,
        ),
      ],
      tail: asciiClass('A-Za-z0-9-'),
    }),
    regexDetector({
      name: 'Slack webhook URL',
      type: 'slack_webhook_url',
      category: 'secret',
      minLength: 40,
      gate: gate({ anyOf: ['hooks.slack.com'] }),
      patterns: [
        new RegExp(
          String.raw`https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/-]{16,${MAX_TOKEN_REGEX_RUN}}`,
        ),
      ],
      tail: asciiClass('A-Za-z0-9_/-'),
    }),

    // Stripe secret and restricted keys (Stripe docs "API keys"): sk_live_/rk_live_ and the
    // _test_ variants.
    regexDetector({
      name: 'Stripe key',
      type: 'stripe_key',
      category: 'secret',
      minLength: 18,
      gate: gate({ anyOf: ['_live_', '_test_'] }),
      patterns: [
        new RegExp(`(?<![A-Za-z0-9_])[sr]k_(?:live|test)_[A-Za-z0-9]{10,${MAX_TOKEN_REGEX_RUN}}`),
      ],
      tail: BASE62,
    }),

    // Anthropic API keys (sk-ant-api03-…, sk-ant-admin01-…).
    regexDetector({
      name: 'Anthropic API key',
      type: 'anthropic_api_key',
      category: 'secret',
      minLength: 27,
      gate: gate({ anyOf: ['sk-ant-'] }),
      patterns: [new RegExp(`(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20,${MAX_TOKEN_REGEX_RUN}}`)],
      tail: BASE64URL,
    }),

    // OpenAI-style keys: sk-…, sk-proj-…, sk-svcacct-…; 20+ characters that mix letters and
    // digits (so words such as "sk-learn-compatible" are not keys).
    regexDetector({
      name: 'OpenAI-style API key',
      type: 'openai_api_key',
      category: 'secret',
      minLength: 23,
      gate: gate({ anyOf: ['sk-'] }),
      patterns: [
        new RegExp(`(?<![A-Za-z0-9_-])sk-(?!ant-)[A-Za-z0-9_-]{20,${MAX_TOKEN_REGEX_RUN}}`),
      ],
      tail: BASE64URL,
      accept: (m, text, end) => hasDigitAndTwoLetters(text, m.index + 3, end),
    }),

    // Google API keys: AIza + 35 [0-9A-Za-z_-] (39 characters in total).
    regexDetector({
      name: 'Google API key',
      type: 'google_api_key',
      category: 'secret',
      minLength: 39,
      gate: gate({ anyOf: ['AIza'] }),
      patterns: [/(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/],
    }),

    // HTTP credentials (RFC 9110 §11.6.2 Authorization; RFC 6750 Bearer; RFC 7617 Basic):
    // `Authorization: Bearer|Token|Basic <credentials>`, and a bare `Bearer <token>` whose token
    // is 16+ characters with letters and digits. Only the credentials are replaced.
    regexDetector({
      name: 'Authorization credentials',
      type: 'bearer_token',
      extraTypes: ['basic_auth'],
      category: 'secret',
      minLength: 12,
      gate: KEYWORD_GATE,
      // token68 (RFC 9110 §11.2) with its `=` padding; the tail may repeat `=`
      patterns: [
        new RegExp(
          String.raw`(?<![A-Za-z0-9])(?:proxy-)?authorization\\{0,2}["'\x60]?[ \t]{0,4}[:=][ \t]{0,4}\\{0,2}["'\x60]?[ \t]{0,4}(bearer|token|basic)[ \t]{1,4}([A-Za-z0-9._~+/-]{1,${MAX_TOKEN_REGEX_RUN}}={0,2})`,
          'di',
        ),
        new RegExp(
          String.raw`(?<![A-Za-z0-9])bearer[ \t]{1,4}([A-Za-z0-9._~+/-]{16,${MAX_TOKEN_REGEX_RUN}}={0,2})`,
          'di',
        ),
      ],
      tail: asciiClass('A-Za-z0-9._~+/=-'),
      accept: (m, text, end) => {
        const scheme = m.length > 2 ? (m[1] ?? '').toLowerCase() : 'bearer';
        const group = m.length > 2 ? 2 : 1;
        const tokenStart = m.indices?.[group]?.[0] ?? end;
        if (m.length <= 2 && !hasDigitAndTwoLetters(text, tokenStart, end, 1)) return null;
        const range = groupRange(m, group);
        if (range === null) return null;
        return { ...range, type: scheme === 'basic' ? 'basic_auth' : 'bearer_token' };
      },
    }),

    // Named API credentials: api_key / x-api-key / client_secret / secret_key / access_token /
    // auth_token / refresh_token / session_token / private_token, and bare `token` / `secret`
    // (not page_token etc.), followed by `=`/`:` and a value of 8+ visible ASCII characters.
    assignmentDetector({
      name: 'generic API key',
      type: 'generic_api_key',
      minLength: 12,
      key: /(?:(?<![A-Za-z0-9])(?:x[_-]?)?(?:api[_-]?(?:key|secret|token)|apikey|client[_-]?secret|secret[_-]?key|(?:access|auth|refresh|session|private)[_-]?token)|(?<![A-Za-z0-9_.-])(?:secret|token))(?![A-Za-z0-9_-])/i,
      acceptValue: (value) => /^[\x21-\x7e]{8,}$/.test(value),
    }),

    // Password assignments: password= / passwd: / passphrase / pwd / *_pass, in env files,
    // query strings, ODBC/ADO connection strings (`Pwd=…;`) and JSON (`"password": "…"`);
    // also camelCase (dbPassword), run-together (PGPASSWORD) and *_hash/*_confirmation variants. `PWD=/home/…` (the
    // POSIX working-directory variable) is not a password.
    assignmentDetector({
      name: 'password assignment',
      type: 'password_assignment',
      minLength: 5,
      key: /(?:(?<![A-Za-z0-9])(?:[Pp]ass(?:word|wd|phrase)|PASS(?:WORD|WD|PHRASE)|[Pp]wd|PWD)|(?<=[a-z0-9])(?:Pass(?:word|wd|phrase)|Pwd|password|passwd)|(?<=[A-Z0-9])(?:PASSWORD|PASSWD)|(?<=[A-Za-z0-9][_-])(?:[Pp]ass|PASS))(?:[_-]?(?:[Hh]ash|HASH|[Dd]igest|DIGEST|[Cc]onfirm(?:ation)?|CONFIRM(?:ATION)?))?(?![A-Za-z0-9_])/,
      acceptValue: (value, key) =>
        !(key.toLowerCase() === 'pwd' && (value.startsWith('/') || value.startsWith('~'))),
    }),

    // XML/HTML password elements: <password>…</password> (also passwd, pwd, ns:password).
    regexDetector({
      name: 'password element',
      type: 'password_assignment',
      category: 'secret',
      minLength: 12,
      gate: KEYWORD_GATE,
      patterns: [
        /<(?:[A-Za-z0-9_-]{1,32}:)?(?:[Pp]ass(?:word|wd)|PASS(?:WORD|WD)|[Pp]wd|PWD)>([^<]{1,1024})<\//d,
      ],
      accept: (m) => ((m[1] ?? '').startsWith(MARKER_PREFIX) ? null : groupRange(m, 1)),
    }),
  ];
}

// ---------------------------------------------------------------------------------------------
// PII detectors (default on)
// ---------------------------------------------------------------------------------------------

/** digit-group separators accepted in phone numbers: space, dot, hyphen and U+2010–U+2015 dashes */
const PHONE_SEP = String.raw`[ .\-\u2010-\u2015]`;
const NOT_WORD_AFTER = String.raw`(?![\p{L}\p{N}_])`;

/** Most digit groups a phone candidate can split into (the regexes allow 15). */
const MAX_PHONE_GROUPS = 64;
/** per group of the last {@link splitPhoneGroups}: its digit count */
const G_DIGITS = new Int32Array(MAX_PHONE_GROUPS);
/** per group: 1 when written in parentheses, `(12)` */
const G_PAREN = new Uint8Array(MAX_PHONE_GROUPS);
/** per group: 1 when parenthesized and all zeros (a trunk prefix such as `(0)`) */
const G_ZERO_PAREN = new Uint8Array(MAX_PHONE_GROUPS);
/** per group: 1 when the separator text before it contains `.` */
const G_SEP_DOT = new Uint8Array(MAX_PHONE_GROUPS);
/** per group: its end index within the candidate */
const G_END = new Int32Array(MAX_PHONE_GROUPS);

const isAsciiDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * Splits a phone candidate into digit groups: each group is a parenthesized digit run `(12)` or
 * a bare digit run, preceded by the shortest run of non-digits before it (its separator). The
 * same result as matching `/(\D*?)(\((\d+)\)|\d+)/g` repeatedly, by hand, in one pass, into
 * the reused `G_*` arrays (no allocation). Returns the number of groups; 0 when there are more
 * than {@link MAX_PHONE_GROUPS} (never for the phone regexes' matches).
 */
function splitPhoneGroups(s: string): number {
  const n = s.length;
  let count = 0;
  let pos = 0;
  outer: while (pos < n) {
    let dot = 0;
    for (let q = pos; q < n; q++) {
      const c = s.charCodeAt(q);
      if (c === 40 /* ( */) {
        let d = q + 1;
        let zeros = true;
        for (let e = s.charCodeAt(d); isAsciiDigit(e); e = s.charCodeAt(++d)) {
          if (e !== 48) zeros = false;
        }
        if (d > q + 1 && s.charCodeAt(d) === 41 /* ) */) {
          if (count === MAX_PHONE_GROUPS) return 0;
          G_DIGITS[count] = d - q - 1;
          G_PAREN[count] = 1;
          G_ZERO_PAREN[count] = zeros ? 1 : 0;
          G_SEP_DOT[count] = dot;
          G_END[count] = d + 1;
          count++;
          pos = d + 1;
          continue outer;
        }
      } else if (isAsciiDigit(c)) {
        let d = q + 1;
        while (d < n && isAsciiDigit(s.charCodeAt(d))) d++;
        if (count === MAX_PHONE_GROUPS) return 0;
        G_DIGITS[count] = d - q;
        G_PAREN[count] = 0;
        G_ZERO_PAREN[count] = 0;
        G_SEP_DOT[count] = dot;
        G_END[count] = d;
        count++;
        pos = d;
        continue outer;
      }
      if (c === 46 /* . */) dot = 1;
    }
    break;
  }
  return count;
}

/**
 * International number (ITU-T E.123 / E.164): `+CC` then digit groups separated by one space,
 * dot or dash, at most one parenthesized group such as `(12)` or trunk `(0)`. Accepted when
 * it has 8–15 digits (E.164 maximum; 11 for +1 NANP; a `(0)` trunk prefix is not counted),
 * 10+ digits if written without separators, at most one one-digit group after the country code,
 * a last group of 2+ digits, and not a decimal like `+1234.5678`. Extra trailing groups (e.g.
 * a year after the number) are dropped rather than rejecting the number.
 */
function acceptInternationalPhone(m: RegExpExecArray): Verdict {
  const s = m[0];
  if (s.length < 9) return null;
  const count = splitPhoneGroups(s);
  if (count === 0) return null;
  const max =
    count > 1 && G_DIGITS[0] === 1 && s.charCodeAt((G_END[0] as number) - 1) === 49 ? 11 : 15;
  // digits of groups [0, n): a parenthesized all-zero group (a trunk `(0)`) does not count
  let n = count;
  let digits = 0;
  for (let k = 0; k < n; k++) digits += G_ZERO_PAREN[k] === 1 ? 0 : (G_DIGITS[k] as number);
  // extra trailing groups (e.g. a year after the number) are dropped
  while (n > 1 && digits > max) {
    n--;
    digits -= G_ZERO_PAREN[n] === 1 ? 0 : (G_DIGITS[n] as number);
  }
  if (digits < 8 || digits > 15) return null;
  if (n === 1 && digits < 10) return null;
  if (n > 1 && (G_DIGITS[n - 1] as number) < 2) return null;
  let parens = 0;
  let singles = 0;
  let dots = 0;
  let plain = 0;
  for (let k = 1; k < n; k++) {
    if (G_PAREN[k] === 1) parens++;
    else if (G_DIGITS[k] === 1) singles++;
    if (G_SEP_DOT[k] === 1) dots++;
    else if (G_PAREN[k] === 0) plain++;
  }
  if (parens > 1 || singles > 1) return null;
  if (dots > 0 && (dots < 2 || plain > 0)) return null;
  return { start: m.index, end: m.index + (G_END[n - 1] as number) };
}

/** National `(area) local` number, e.g. `(555) 123-4567`, `(12) 3923-5555`: 8–12 digits. */
function acceptParenPhone(m: RegExpExecArray): Verdict {
  const count = splitPhoneGroups(m[0]);
  let digits = 0;
  for (let k = 0; k < count; k++) digits += G_DIGITS[k] as number;
  if (digits < 8 || digits > 12 || count === 0 || (G_DIGITS[count - 1] as number) < 3) return null;
  return true;
}

/**
 * Payment card candidate (the regex already fixed the shape: 13–19 contiguous digits or the
 * printed groupings 4-4-4-1..4, 4-4-4-4-3, 4-6-4 and 4-6-5 with one consistent space/hyphen
 * separator): network range/length check, then the Luhn checksum (ISO/IEC 7812-1).
 */
function acceptCard(m: RegExpExecArray): Verdict {
  const s = m[0];
  const first = s.charCodeAt(0);
  if (first < 50 /* 2 */ || first > 54 /* 6 */) return null;
  // one pass over the match (digits and separators), without building the digit string: the
  // first four digits, the digit count and the Luhn sum (ISO/IEC 7812-1 Annex B, from the right)
  let len = 0;
  let p4 = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) continue;
    if (len < 4) p4 = p4 * 10 + d;
    len++;
  }
  if (!isCardNetworkPrefix(p4, len)) return null;
  let sum = 0;
  let double = false;
  for (let i = s.length - 1; i >= 0; i--) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) continue;
    if (double) {
      const x = d * 2;
      sum += x > 9 ? x - 9 : x;
    } else {
      sum += d;
    }
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * IBAN candidate, electronic (no spaces) or print format (groups of four separated by single
 * spaces, ISO 13616-1 §5.1). The registry length for the country code decides where the IBAN
 * ends (so trailing groups such as a currency code are left alone); it must end on a group
 * boundary and pass {@link isValidIban}.
 */
function acceptIban(m: RegExpExecArray, text: string): Verdict {
  const start = m.index;
  const stop = start + m[0].length;
  const length = ibanLength(text.charCodeAt(start), text.charCodeAt(start + 1));
  if (length === 0) return null;
  let seen = 0;
  let end = start;
  while (end < stop && seen < length) {
    if (text.charCodeAt(end) !== 32) seen++;
    end++;
  }
  if (seen < length || (end < stop && text.charCodeAt(end) !== 32)) return null;
  return isValidIbanRange(text, start, end) ? { start, end } : null;
}

const EMAIL_LOCAL_ASCII = asciiClass('A-Za-z0-9._%+-');
/** one letter or number (a surrogate pair counts as one), sticky */
const LETTER_OR_NUMBER = /[\p{L}\p{N}]/uy;
/** `@domain`: 1–8 DNS labels (≤ 63 characters) and a TLD, all bounded; sticky, run at an `@` */
const EMAIL_DOMAIN =
  /@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.){1,8}(?:\p{L}{2,24}|xn--[a-z0-9-]{1,59})(?![\p{L}\p{N}_-])/uy;
/**
 * Most UTF-16 code units of one DNS label in {@link EMAIL_DOMAIN}: 63 code points, each at most
 * a surrogate pair. The domain's first label ends at the first `.` after the `@` (labels hold no
 * `.`), so a `.` further away than this rules the `@` out without running the regex.
 */
const MAX_LABEL_UNITS = 2 * 63;
const RETINA_ASSET = /^\d{1,63}(?:\.\d{1,63})?x\.(?:png|jpe?g|gif|webp|svg|avif)$/i;

/** Start of the e-mail local part (`[\p{L}\p{N}._%+-]` run) that ends at `at`. */
function emailLocalStart(text: string, at: number): number {
  let i = at;
  for (;;) {
    i = extendRunBack(text, i, EMAIL_LOCAL_ASCII);
    const c = text.charCodeAt(i - 1);
    if (!(c >= 128)) return i;
    // a non-ASCII letter or number (a surrogate pair is tested as one code point)
    const width = c >= 0xdc00 && c <= 0xdfff && i >= 2 ? 2 : 1;
    // exactly the code units [i - width, i) must form one letter or number
    LETTER_OR_NUMBER.lastIndex = i - width;
    if (!LETTER_OR_NUMBER.test(text) || LETTER_OR_NUMBER.lastIndex !== i) return i;
    i -= width;
  }
}

/**
 * E-mail addresses (RFC 5322 §3.4.1 addr-spec, dot-atom form; internationalized per RFC 6531):
 * local part, @, 1–8 dot-separated DNS labels (RFC 1035, ≤63 chars) and an alphabetic or
 * punycode TLD. Excludes retina asset names like icon@2x.png, `git@host:` remotes and URL
 * userinfo (`https://user@host`). Anchored at each `@`: the local part is read backwards by hand
 * (any length, once), the domain by a bounded sticky regex.
 */
function emailDetector(): Detector {
  return {
    name: 'e-mail address',
    types: ['email'],
    category: 'pii',
    minLength: 6,
    gate: gate({ flags: HINT_AT }),
    applies: null,
    shape: null,
    scan(text, sink) {
      // the first `.` after the current `@` (the domain's first label ends there), or -1
      let dot = -2;
      for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
        if (dot !== -1 && dot <= at) dot = text.indexOf('.', at + 1);
        // no `.` after this `@`: neither this nor any later `@` has a domain
        if (dot === -1) return;
        if (dot < at + 2 || dot > at + 1 + MAX_LABEL_UNITS) continue;
        const start = emailLocalStart(text, at);
        if (start === at) continue;
        EMAIL_DOMAIN.lastIndex = at;
        if (!EMAIL_DOMAIN.test(text)) continue;
        const end = EMAIL_DOMAIN.lastIndex;
        // a retina asset name starts with a digit after the @
        if (isAsciiDigit(text.charCodeAt(at + 1)) && RETINA_ASSET.test(text.slice(at + 1, end))) {
          continue;
        }
        if (at - start === 3 && text.startsWith('git', start) && text[end] === ':') continue;
        // URL userinfo (scheme://user@host) names an account on that host, not a mailbox
        if (text.startsWith('://', start - 3)) continue;
        sink(start, end, 'email');
        at = end - 1;
      }
    },
  };
}

const WHOLE_DECIMAL_CARD = /^[+-]?(\d{13,19})\.0{1,32}$/;

/**
 * Texts up to this length (UTF-16 code units) get the {@link Detector.shape} pre-checks; longer
 * ones go straight to the regex (the redactor's hints for long texts are coarse anyway, and one
 * regex pass over a long text is cheaper than a JS loop and then the regex).
 */
export const SHAPE_CHECK_MAX = 512;

/**
 * Whether code unit `c` (or `NaN`, before the text) may stand right before the first digit of a
 * card finding (`plus` true) or an SSN finding (`plus` false). The card pattern's look-behind
 * refuses `[\p{L}\p{N}_.+-]` there, the SSN pattern's `[\p{L}\p{N}_.-]`; so every code unit
 * but ASCII letters, digits and `_ . -` (and `+` when `plus`) is allowed. A non-ASCII unit
 * counts as allowed (it may be a letter or number, then the regex refuses it), so the callers
 * stay necessary conditions.
 */
function mayPrecedeNumber(c: number, plus: boolean): boolean {
  if (!(c < 128)) return true; // NaN (start of text) or non-ASCII
  return !(
    isAsciiDigit(c) ||
    ((c | 0x20) >= 97 && (c | 0x20) <= 122) ||
    c === 95 ||
    c === 46 ||
    c === 45 ||
    (plus && c === 43)
  );
}

/**
 * Card shape pre-check (necessary condition of a `card_number` finding of the card regex): some
 * digit `2`–`6` with at least 12 code units after it, preceded by the start of the text or a
 * code unit {@link mayPrecedeNumber} (for cards, `+` refused). Every match of the card regex starts at a digit so
 * preceded (its look-behind) and spans 13+ code units, and {@link acceptCard} refuses a match
 * whose first digit is not 2–6 (ISO/IEC 7812 networks start with 2–6). So an IBAN's `1234 5698
 * 7654 32` or a phone number's `+49 0711 9757509` skips the card regex.
 */
export function mayHoldCard(text: string): boolean {
  const last = text.length - 13;
  for (let i = 0; i <= last; i++) {
    const c = text.charCodeAt(i);
    if (c >= 50 && c <= 54 && mayPrecedeNumber(text.charCodeAt(i - 1), true)) return true;
  }
  return false;
}

/**
 * US SSN shape pre-check (necessary condition of a `us_ssn` finding): `DDD?DD?DDDD` with `?` the
 * same space or hyphen twice, first digit not `9` ({@link acceptUsSsn} refuses areas 900–999),
 * preceded by the start of the text or a code unit {@link mayPrecedeNumber} (`+` allowed): the regex's
 * shape without its look-ahead. So a phone number such as `+55 (12) 1733-8101` skips the SSN
 * regex.
 */
export function mayHoldUsSsn(text: string): boolean {
  const last = text.length - 11;
  for (let i = 0; i <= last; i++) {
    const c = text.charCodeAt(i);
    if (!(c >= 48 && c <= 56)) continue;
    const sep = text.charCodeAt(i + 3);
    if (
      (sep === 32 || sep === 45) &&
      text.charCodeAt(i + 6) === sep &&
      isAsciiDigit(text.charCodeAt(i + 1)) &&
      isAsciiDigit(text.charCodeAt(i + 2)) &&
      isAsciiDigit(text.charCodeAt(i + 4)) &&
      isAsciiDigit(text.charCodeAt(i + 5)) &&
      isAsciiDigit(text.charCodeAt(i + 7)) &&
      isAsciiDigit(text.charCodeAt(i + 8)) &&
      isAsciiDigit(text.charCodeAt(i + 9)) &&
      isAsciiDigit(text.charCodeAt(i + 10)) &&
      mayPrecedeNumber(text.charCodeAt(i - 1), false)
    ) {
      return true;
    }
  }
  return false;
}

/**
 * UK NINO shape pre-check (necessary condition of a `uk_nino` finding): the pattern's core
 * `[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]` read by hand (its letter classes widened to all ASCII
 * capitals, the excluded prefixes and the look-ahead left to the regex), the capitals preceded
 * by the start of the text, a non-ASCII code unit or an ASCII code unit that is no letter, digit
 * or `_` (the look-behind refuses `[\p{L}\p{N}_]`). Each optional space is followed by a digit
 * or the suffix letter, which a space is not, so taking the space whenever it is there decides
 * the match as the regex's backtracking would. So prose with `invoice 896840` or an IBAN's
 * `GB82 WEST …` skips the NINO regex.
 */
export function mayHoldUkNino(text: string): boolean {
  const n = text.length;
  const last = n - 9;
  for (let i = 0; i <= last; i++) {
    const c = text.charCodeAt(i);
    if (!(c >= 65 && c <= 90)) continue;
    const d = text.charCodeAt(i + 1);
    if (!(d >= 65 && d <= 90)) continue;
    let j = i + 2;
    let pairs = 0;
    for (; pairs < 3; pairs++) {
      if (text.charCodeAt(j) === 32) j++;
      if (!isAsciiDigit(text.charCodeAt(j)) || !isAsciiDigit(text.charCodeAt(j + 1))) break;
      j += 2;
    }
    if (pairs < 3) continue;
    if (text.charCodeAt(j) === 32) j++;
    const suffix = text.charCodeAt(j);
    if (!(suffix >= 65 && suffix <= 68)) continue;
    const b = text.charCodeAt(i - 1);
    if (!(b < 128) || !(isAsciiDigit(b) || ((b | 0x20) >= 97 && (b | 0x20) <= 122) || b === 95)) {
      return true;
    }
  }
  return false;
}

/** Builds the PII detectors, in priority order. */
export function createPiiDetectors(): Detector[] {
  return [
    // E-mail addresses (RFC 5322 §3.4.1 addr-spec, dot-atom form; internationalized per RFC
    // 6531): local part, @, 1–8 dot-separated DNS labels (RFC 1035, ≤63 chars) and an alphabetic
    // or punycode TLD. Excludes retina asset names like icon@2x.png, `git@host:` remotes and
    // URL userinfo (`https://user@host`).
    emailDetector(),

    // Payment card numbers: see acceptCard. Not embedded in a longer number, a decimal or a
    // +phone number.
    regexDetector({
      name: 'payment card number',
      type: 'card_number',
      category: 'pii',
      minLength: 13,
      gate: gate({ digits: 13 }),
      shape: mayHoldCard,
      patterns: [
        /\d(?<![\p{L}\p{N}_.+-]\d)(?:\d{12,18}|\d{3}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{3})?|\d{3}([ -])\d{6}\2\d{4,5})(?![\p{L}\p{N}_]|[.-]\d)/u,
      ],
      accept: acceptCard,
    }),

    // A card number written as an integer-valued decimal, the whole text: how PostgreSQL renders
    // a `numeric(p, s)` value with a scale (`4111111111111111.00`). A decimal inside other text
    // is left alone (prices, measurements).
    {
      name: 'payment card number as a decimal',
      types: ['card_number'],
      category: 'pii',
      minLength: 15,
      gate: gate({ digits: 14 }),
      applies: (text) => text.length <= 52 && text.endsWith('0'),
      shape: null,
      scan(text, sink) {
        const m = WHOLE_DECIMAL_CARD.exec(text);
        const digits = m?.[1];
        if (digits !== undefined && isCardNetworkNumber(digits) && isLuhnValid(digits)) {
          sink(0, text.length, 'card_number');
        }
      },
    },

    // IBAN (ISO 13616): electronic and print formats, see acceptIban.
    regexDetector({
      name: 'IBAN',
      type: 'iban',
      category: 'pii',
      minLength: 15,
      gate: gate({ flags: HINT_LETTER | HINT_IBAN_HEAD, digits: 2 }),
      // one pass for both formats (they differ right after the check digits)
      patterns: [
        /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[A-Za-z0-9]{11,30}|(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,3})?)(?![A-Za-z0-9])/,
      ],
      accept: acceptIban,
    }),

    // US Social Security numbers AAA-GG-SSSS (hyphen or space, used consistently), with the
    // SSA never-issued ranges excluded (isPlausibleUsSsn).
    regexDetector({
      name: 'US SSN',
      type: 'us_ssn',
      category: 'pii',
      minLength: 11,
      gate: gate({ digits: 9 }),
      shape: mayHoldUsSsn,
      patterns: [/\d(?<![\p{L}\p{N}_.-]\d)\d{2}([ -])\d{2}\1\d{4}(?![\p{L}\p{N}_]|[.-]\d)/u],
      accept: acceptUsSsn,
    }),

    // UK National Insurance numbers (HMRC National Insurance Manual NIM39110): two prefix
    // letters (first not D F I Q U V; second not D F I O Q U V; not BG GB KN NK NT TN ZZ), six
    // digits (optionally spaced in pairs) and suffix A–D.
    regexDetector({
      name: 'UK National Insurance number',
      type: 'uk_nino',
      category: 'pii',
      minLength: 9,
      gate: gate({ flags: HINT_LETTER, digits: 6 }),
      shape: mayHoldUkNino,
      patterns: [
        /(?<![\p{L}\p{N}_])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\p{L}\p{N}_])/u,
      ],
    }),

    // Phone numbers (ITU-T E.123 notation, E.164 length). Three shapes, none of which can match
    // dates (2021-03-04), times (12:30:00), decimals or plain ids:
    //  1. international `+CC …` (acceptInternationalPhone);
    //  2. national with parenthesized area code `(555) 123-4567` (acceptParenPhone);
    //  3. NANP `403-262-3443` / `403.262.3443` (same separator twice, area code 2–9);
    //  4. trunk-prefixed national `0711 2842222`, `020 7976 5722` (9–12 digits).
    regexDetector({
      name: 'international phone number',
      type: 'phone',
      category: 'pii',
      minLength: 9,
      gate: gate({ flags: HINT_PLUS, digits: 8 }),
      patterns: [
        new RegExp(
          String.raw`(?<![\p{L}\p{N}_+])\+[1-9]\d{0,14}(?:(?:${PHONE_SEP}|${PHONE_SEP}?\(\d{1,5}\)${PHONE_SEP}?)\d{1,10}){0,7}${NOT_WORD_AFTER}`,
          'u',
        ),
      ],
      accept: acceptInternationalPhone,
    }),
    regexDetector({
      name: 'national phone number',
      type: 'phone',
      category: 'pii',
      minLength: 10,
      gate: gate({ flags: HINT_PAREN, digits: 8 }),
      patterns: [
        new RegExp(
          String.raw`(?<![\p{L}\p{N}_+(])\(\d{2,5}\)${PHONE_SEP}?\d{2,8}(?:${PHONE_SEP}\d{2,8}){0,3}(?![\p{L}\p{N}_]|[.\-]\d)`,
          'u',
        ),
      ],
      accept: acceptParenPhone,
    }),
    regexDetector({
      name: 'NANP phone number',
      type: 'phone',
      category: 'pii',
      minLength: 12,
      gate: gate({ digits: 10 }),
      patterns: [/[2-9](?<![\p{L}\p{N}_.\-+]\d)\d{2}([.-])\d{3}\1\d{4}(?![\p{L}\p{N}_]|[.-]\d)/u],
    }),
    regexDetector({
      name: 'trunk-prefixed national phone number',
      type: 'phone',
      category: 'pii',
      minLength: 10,
      gate: gate({ digits: 9 }),
      patterns: [
        /0(?<![\p{L}\p{N}_.\-+]0)[1-9]\d{0,3}[ \-\u2010-\u2015]\d{3,8}(?:[ \-\u2010-\u2015]\d{2,8}){0,2}(?![\p{L}\p{N}_]|[.-]\d)/u,
      ],
      accept: (m) => {
        const digits = m[0].replace(/\D/g, '').length;
        return digits >= 9 && digits <= 12;
      },
    }),
  ];
}

/** Every type id the built-in detectors can emit, plus `known_secret` and `column_rule`. */
export const REDACTION_TYPES: readonly RedactionType[] = [
  'known_secret',
  ...createSecretDetectors().flatMap((d) => d.types),
  ...createPiiDetectors().flatMap((d) => d.types),
  'column_rule',
].filter((t, i, all) => all.indexOf(t) === i);
