/**
 * Stable error codes and the decision shape every pipeline step returns.
 *
 * Codes are part of the public contract: clients and audit consumers may match on them, so
 * they never change meaning. Messages are sanitized: they never carry secrets, stack traces,
 * SQL parameters or internal paths. Details go to the server log (stderr) under the same
 * correlation id.
 */

/** Every code a tool call can be refused or fail with. */
export const ErrorCode = {
  /** The tool does not exist or is not enabled (same answer for both, by design). */
  UnknownTool: 'unknown_tool',
  /** The principal's roles do not grant a scope the tool requires. */
  Forbidden: 'forbidden',
  /** Arguments failed the tool's strict input schema. */
  InvalidInput: 'invalid_input',
  /** A policy constraint (resource allowlist, SQL rule) refused the call. */
  PolicyDenied: 'policy_denied',
  /** The human declined or cancelled the approval request for a write. */
  ApprovalDeclined: 'approval_declined',
  /** A write needs approval but the client cannot ask (no elicitation capability). */
  ApprovalUnavailable: 'approval_unavailable',
  /** The principal exceeded the rate limit for this tool. */
  RateLimited: 'rate_limited',
  /** The upstream system rejected the request (e.g. SQL error). */
  UpstreamError: 'upstream_error',
  /** The upstream system could not be reached or authenticated. */
  UpstreamUnavailable: 'upstream_unavailable',
  /** The call exceeded its time budget (e.g. statement timeout). */
  Timeout: 'timeout',
  /** A write would affect more rows than allowed; it was rolled back. */
  LimitExceeded: 'limit_exceeded',
  /** Anything unexpected. Details are only in the server log. */
  Internal: 'internal_error',
} as const;

/** One of {@link ErrorCode}'s values. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A decision returned as data: `{ ok: true }` or a refusal with a stable code and a safe message. */
export type Decision = { readonly ok: true } | Denial;

/** A refusal: `code` is stable, `message` is safe to show to the client. */
export interface Denial {
  readonly ok: false;
  readonly code: ErrorCodeValue;
  readonly message: string;
  /** For `rate_limited`: milliseconds until the next call may succeed. */
  readonly retryAfterMs?: number;
}

/** The allow decision (shared, frozen). */
export const ALLOW: Decision = Object.freeze({ ok: true as const });

/** Builds a refusal. */
export function deny(code: ErrorCodeValue, message: string, retryAfterMs?: number): Denial {
  return retryAfterMs === undefined
    ? { ok: false, code, message }
    : { ok: false, code, message, retryAfterMs };
}

/**
 * An error a tool may throw with a client-safe message. Anything else thrown by a tool is
 * reported to the client as `internal_error` with a correlation id only.
 *
 * `cause` is kept for the server log and never shown to the client.
 */
export class ToolError extends Error {
  /** Stable code from {@link ErrorCode}. */
  readonly code: ErrorCodeValue;
  /** Upstream text (may carry data): redacted and fenced by the pipeline, never shown as the message. */
  readonly detail: string | undefined;
  constructor(
    code: ErrorCodeValue,
    publicMessage: string,
    options?: { cause?: unknown; detail?: string },
  ) {
    super(publicMessage, options);
    this.name = 'ToolError';
    this.code = code;
    this.detail = options?.detail;
  }
}

/**
 * A startup error with a one-line, operator-facing message (no stack, no secrets). Bins print
 * `message` on stderr and exit non-zero.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}
