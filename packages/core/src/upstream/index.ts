/**
 * The upstream kit for HTTP API connectors: an HTTP client with a fixed origin, sealed
 * pagination cursors, allowlists and approval-text helpers. See README.md, "Upstream kit for
 * HTTP API connectors".
 */
export {
  type Allowlist,
  type AllowlistMatch,
  type AllowlistOptions,
  type CaseRule,
  createAllowlist,
} from './allowlist.js';
export {
  ApprovalText,
  type ApprovalTextOptions,
  boundText,
  displayValue,
  escapeForApproval,
  neutralizeApprovalText,
} from './approval-text.js';
export { discardBody, readBodyBounded } from './body.js';
export {
  createUpstreamClient,
  type UpstreamClient,
  type UpstreamClientOptions,
  type UpstreamMethod,
  type UpstreamRequest,
  type UpstreamResponse,
} from './client.js';
export {
  type CursorBinding,
  type CursorRefusal,
  CursorSealer,
  type CursorSealerOptions,
  type OpenedCursor,
} from './cursor.js';
export {
  UPSTREAM_FAILURES,
  UpstreamCallError,
  UpstreamFailure,
  type UpstreamFailureValue,
  UpstreamRateLimitedError,
} from './errors.js';
export { toUpstreamCallError, upstreamFailureOf } from './network-errors.js';
export {
  encodePathSegment,
  isLoopbackHost,
  parseUpstreamBase,
  resolveUpstreamUrl,
  type UpstreamBase,
  type UpstreamQuery,
  upstreamPath,
  upstreamPathOf,
} from './origin.js';
export { parseRetryAfter } from './retry-after.js';
