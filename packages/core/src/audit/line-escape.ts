/**
 * Escaping of invisible and control characters in audit lines.
 *
 * @module
 */

/**
 * Characters written as `\uXXXX` in audit lines even though JSON allows them raw: DEL and C1
 * controls (U+007F–U+009F), the bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E,
 * U+2066–U+2069; Unicode UAX #9), zero-width and invisible formatting characters (U+00AD,
 * U+180E, U+200B–U+200D, U+2060–U+2064, U+FEFF) and the line/paragraph separators U+2028/U+2029
 * (line breaks to many viewers). C0 controls are already escaped by `JSON.stringify`, and lone
 * surrogates too (ES2019 well-formed `JSON.stringify`).
 */
const INVISIBLE =
  /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/**
 * Escapes {@link INVISIBLE} characters in a JSON text as `\uXXXX`. In JSON these characters can
 * only occur inside strings, where the escape denotes the same character, so `JSON.parse` of the
 * result equals `JSON.parse` of the input and record hashes are unchanged. A terminal, `less` or
 * a SIEM viewer therefore never renders a spoofed line from an argument.
 *
 * @param json A JSON text (e.g. a canonical audit line).
 * @returns The same JSON with those characters escaped.
 */
export function escapeAuditLine(json: string): string {
  // Fast path (every call's line): a pure-ASCII text (its UTF-8 length equals its UTF-16 length,
  // since every other code unit takes 2 or more bytes) can hold only DEL of the set above.
  if (Buffer.byteLength(json, 'utf8') === json.length && !json.includes('\x7f')) return json;
  return json.replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
