/**
 * Forensic helpers for audit entries: the digest of the result the client saw, and the
 * client-supplied intent of a call.
 *
 * @module
 */
import { hash } from 'node:crypto';
import { MAX_AUDIT_INTENT_CHARS } from './audit-record.js';

/**
 * The `_meta` key on `tools/call` params that carries the human request or task id behind the
 * call (MCP `_meta` keys use a reverse-DNS prefix, spec "General fields: `_meta`"). Its value is
 * a string; anything else is ignored.
 */
export const AUDIT_INTENT_META_KEY = 'io.hardened-mcp/intent';

/**
 * Hex SHA-256 of the JSON text of `result` as the MCP SDK sends it (`JSON.stringify`, UTF-8).
 * Pass exactly the `CallToolResult` object returned to the client; an investigator holding a
 * retained copy of the response recomputes the same digest from its JSON.
 *
 * @param result The `CallToolResult` (any JSON-serializable value).
 * @returns 64 lowercase hex characters.
 * @throws TypeError if `result` is not JSON-serializable (bigint, cycle) or is `undefined`.
 */
export function resultDigest(result: unknown): string {
  const json = JSON.stringify(result);
  if (json === undefined) throw new TypeError('resultDigest: result is not JSON-serializable');
  // one-shot hash (UTF-8 for a string input): no Hash object per call
  return hash('sha256', json, 'hex');
}

/**
 * {@link resultDigest} of a result whose JSON text is already at hand: hex SHA-256 of `json`
 * (UTF-8). `json` must be exactly `JSON.stringify(result)` of the result returned.
 *
 * @returns 64 lowercase hex characters.
 */
export function resultDigestOfJson(json: string): string {
  return hash('sha256', json, 'hex');
}

/**
 * Extracts the client-supplied intent from a `tools/call` `_meta` object
 * (`_meta["io.hardened-mcp/intent"]`), redacts it and caps it at
 * {@link MAX_AUDIT_INTENT_CHARS} UTF-16 code units (a cut intent ends in `…`, never inside a
 * surrogate pair). Control and invisible characters are kept here and escaped when the audit
 * line is written. The intent is self-reported by the client: evidence, never authorization.
 *
 * @param meta The request's `params._meta` (any value; non-objects yield `undefined`).
 * @param redact Redacts secrets and PII from a string (e.g. `s => redactor.redactString(s).value`).
 * @returns The sanitized intent, or `undefined` when absent, not a string, or empty.
 */
export function auditIntentFromMeta(
  meta: unknown,
  redact: (text: string) => string,
): string | undefined {
  if (meta === null || typeof meta !== 'object') return undefined;
  const raw = (meta as Record<string, unknown>)[AUDIT_INTENT_META_KEY];
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  // Cap before redacting too, so a huge value costs bounded work.
  const redacted = redact(capChars(raw, MAX_AUDIT_INTENT_CHARS * 4));
  return capChars(redacted, MAX_AUDIT_INTENT_CHARS);
}

function capChars(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1; // do not split a surrogate pair
  return `${text.slice(0, end)}…`;
}
