import type { Allowed } from './tool.js';

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

/**
 * A decision returned as data: {@link ALLOW} or a refusal with a stable code and a safe message.
 * A policy step that hands a value to `execute` returns `allow(value)` instead (see tool.ts).
 */
export type Decision = Allowed<undefined> | Denial;

/** A refusal: `code` is stable, `message` is safe to show to the client. */
export interface Denial {
  readonly ok: false;
  readonly code: ErrorCodeValue;
  readonly message: string;
  /** For `rate_limited`: milliseconds until the next call may succeed. */
  readonly retryAfterMs?: number;
}

/** The allow decision that authorizes nothing in particular (shared, frozen). */
export const ALLOW: Allowed<undefined> = Object.freeze({ ok: true as const, value: undefined });

/** Builds a refusal. */
export function deny(code: ErrorCodeValue, message: string, retryAfterMs?: number): Denial {
  return retryAfterMs === undefined
    ? { ok: false, code, message }
    : { ok: false, code, message, retryAfterMs };
}

/** Options of {@link ToolError}. */
export interface ToolErrorOptions {
  /** Kept for the server log (redacted there); never shown to the client. */
  readonly cause?: unknown;
  /**
   * Upstream text that may carry data (a database error message, an API error body): the
   * pipeline caps it, redacts it and shows it inside the untrusted-data fence, never as the
   * message.
   */
  readonly detail?: string | undefined;
  /** For `rate_limited`: milliseconds until the upstream accepts calls again. */
  readonly retryAfterMs?: number | undefined;
}

/**
 * An error a tool may throw. The client sees `code: message`, where `message` must be text of
 * the connector's own (fixed wording, plus names the caller gave or configuration holds) —
 * never text that came from the upstream system, which belongs in `detail`. The message is
 * still redacted. Anything else thrown by a tool is reported to the client as `internal_error`
 * with a correlation id only.
 */
export class ToolError extends Error {
  /** Stable code from {@link ErrorCode}. */
  readonly code: ErrorCodeValue;
  /** Upstream text (may carry data): redacted and fenced by the pipeline, never shown as the message. */
  readonly detail: string | undefined;
  /** For `rate_limited`: milliseconds until a retry may succeed. */
  readonly retryAfterMs: number | undefined;
  constructor(code: ErrorCodeValue, publicMessage: string, options?: ToolErrorOptions) {
    super(publicMessage, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ToolError';
    this.code = code;
    this.detail = options?.detail;
    this.retryAfterMs = options?.retryAfterMs;
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
