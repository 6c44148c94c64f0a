/**
 * Output redaction for `@hardened-mcp/core`: secrets (always) and PII (default) are replaced
 * with `[REDACTED:<type>]` markers before tool results reach the model; per-type counts go to
 * the audit record. See {@link createRedactor}.
 */

export {
  isCardNetworkNumber,
  isJoseHeader,
  isLuhnValid,
  isPlausibleUsSsn,
  isValidIban,
  MAX_TOKEN_REGEX_RUN,
  REDACTION_TYPES,
  type RedactionType,
  redactionMarker,
} from './patterns.js';
export {
  createRedactor,
  DEFAULT_KEY_RULES,
  mergeCounts,
  normalizeForMatching,
  type RedactionCounts,
  RedactionError,
  type RedactionFailure,
  type RedactionOptions,
  type Redactor,
} from './redactor.js';
