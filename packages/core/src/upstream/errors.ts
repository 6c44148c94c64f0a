/**
 * The errors of the upstream kit: {@link ToolError}s whose public message is fixed text chosen
 * by a stable sub-code ({@link UpstreamFailure}), never upstream text, a URL, a header or a token.
 * The original error travels as `cause` for the server log only.
 */
import { ErrorCode, type ErrorCodeValue, ToolError } from '../errors.js';

/**
 * Why an upstream call failed: a stable sub-code under the {@link ErrorCode} it maps to
 * (see {@link UPSTREAM_FAILURES}). Part of the public contract, like `ErrorCode`.
 */
export const UpstreamFailure = {
  /** The upstream host name did not resolve (`ENOTFOUND`, `EAI_AGAIN`). */
  Dns: 'dns',
  /** The TLS handshake failed: untrusted or expired certificate, wrong host name, protocol. */
  Tls: 'tls',
  /** Nothing listens at the upstream address (`ECONNREFUSED`). */
  ConnectionRefused: 'connection_refused',
  /** The connection was reset or closed mid-request (`ECONNRESET`, `EPIPE`, socket closed). */
  ConnectionReset: 'connection_reset',
  /** The TCP/TLS connection was not established in time (`UND_ERR_CONNECT_TIMEOUT`, `ETIMEDOUT`). */
  ConnectTimeout: 'connect_timeout',
  /** Any other network failure. */
  Network: 'network',
  /** The call's deadline passed before the upstream answered in full. */
  Deadline: 'deadline',
  /** The caller's abort signal fired (client cancelled, server shutting down). */
  Cancelled: 'cancelled',
  /** The upstream answered with a redirect; redirects are never followed with the credential. */
  Redirect: 'redirect',
  /** The upstream refused the credential (`401`) even after one refresh. */
  AuthRejected: 'auth_rejected',
  /** The credential could not be fetched again after a `401`. */
  CredentialRefresh: 'credential_refresh_failed',
  /** The upstream answered `5xx`. */
  ServerError: 'server_error',
  /** The response body exceeded the byte bound; reading stopped there. */
  ResponseTooLarge: 'response_too_large',
  /** The response body is not what was expected (e.g. not JSON). */
  InvalidResponse: 'invalid_response',
  /** A request path would leave the configured upstream or is not a clean path; nothing was sent. */
  PathRefused: 'path_refused',
  /** A URL from upstream data points outside the configured origin or base path; not followed. */
  ForeignUrl: 'foreign_url',
  /** The upstream said to slow down (`429`, `Retry-After`, or a vendor rate-limit answer). */
  RateLimited: 'rate_limited',
} as const;

/** One of {@link UpstreamFailure}'s values. */
export type UpstreamFailureValue = (typeof UpstreamFailure)[keyof typeof UpstreamFailure];

/** Per sub-code: the tool error code and the fixed public message. */
export const UPSTREAM_FAILURES: Readonly<
  Record<UpstreamFailureValue, { readonly code: ErrorCodeValue; readonly message: string }>
> = Object.freeze({
  dns: {
    code: ErrorCode.UpstreamUnavailable,
    message: 'the upstream service could not be reached (its host name did not resolve)',
  },
  tls: {
    code: ErrorCode.UpstreamUnavailable,
    message: 'the upstream service could not be reached (the TLS handshake failed)',
  },
  connection_refused: {
    code: ErrorCode.UpstreamUnavailable,
    message: 'the upstream service could not be reached (connection refused)',
  },
  connection_reset: {
    code: ErrorCode.UpstreamUnavailable,
    message: 'the upstream service closed the connection before it answered in full',
  },
  connect_timeout: {
    code: ErrorCode.UpstreamUnavailable,
    message: 'the upstream service could not be reached (connection timed out)',
  },
  network: {
    code: ErrorCode.UpstreamUnavailable,
    message: 'the upstream service could not be reached (network error)',
  },
  deadline: {
    code: ErrorCode.Timeout,
    message: 'the upstream service did not answer within the time budget of the call',
  },
  cancelled: {
    code: ErrorCode.Timeout,
    message: 'the call was cancelled before the upstream service answered',
  },
  redirect: {
    code: ErrorCode.UpstreamError,
    message: 'the upstream service answered with a redirect, which is not followed',
  },
  auth_rejected: {
    code: ErrorCode.UpstreamUnavailable,
    message: 'the upstream service rejected the server credential',
  },
  credential_refresh_failed: {
    code: ErrorCode.UpstreamUnavailable,
    message: 'the upstream service rejected the server credential and it could not be renewed',
  },
  server_error: {
    code: ErrorCode.UpstreamUnavailable,
    message: 'the upstream service failed to answer (server error)',
  },
  response_too_large: {
    code: ErrorCode.UpstreamError,
    message: 'the upstream response is larger than this server accepts',
  },
  invalid_response: {
    code: ErrorCode.UpstreamError,
    message: 'the upstream response could not be read (unexpected format)',
  },
  path_refused: {
    code: ErrorCode.InvalidInput,
    message:
      'a value does not fit in an upstream request path (separators, dot segments or encoded separators are refused); nothing was sent',
  },
  foreign_url: {
    code: ErrorCode.UpstreamError,
    message:
      'the upstream service pointed to an address outside its configured origin, which is not followed',
  },
  rate_limited: {
    code: ErrorCode.RateLimited,
    message: 'the upstream service is rate limiting this server; retry later',
  },
});

/**
 * An upstream call failed. `code` and `message` are fixed by `reason` ({@link UPSTREAM_FAILURES});
 * `status` is the HTTP status when there was one (for logs and connector mapping, never shown).
 */
export class UpstreamCallError extends ToolError {
  /** The stable sub-code. */
  readonly reason: UpstreamFailureValue;
  /** The upstream's HTTP status, when the failure is an answer (e.g. 503, 302, 401). */
  readonly status: number | undefined;
  /**
   * For a `redirect` failure: the answer's `Location` header as sent (untrusted upstream data),
   * so a connector that expects a redirect (e.g. Jira's attachment download) can check the
   * target against its own allowlist and fetch it itself. Never followed by the client.
   */
  readonly location: string | undefined;
  constructor(
    reason: UpstreamFailureValue,
    options?: { cause?: unknown; status?: number; location?: string | undefined },
  ) {
    const { code, message } = UPSTREAM_FAILURES[reason];
    super(code, message, { cause: options?.cause });
    this.name = 'UpstreamCallError';
    this.reason = reason;
    this.status = options?.status;
    this.location = options?.location;
  }
}

/**
 * The upstream is rate limiting us: code `rate_limited`, with `retryAfterMs` (milliseconds from
 * now until a retry may succeed, from `Retry-After` (RFC 9110 §10.2.3) or the configured default).
 * The pipeline maps it to the `rate_limited` answer carrying `retryAfterMs`.
 */
export class UpstreamRateLimitedError extends ToolError {
  /** Always {@link UpstreamFailure.RateLimited}. */
  readonly reason = UpstreamFailure.RateLimited;
  /** Milliseconds until a retry may succeed (≥ 0, integer); the pipeline passes it to the client. */
  declare readonly retryAfterMs: number;
  /** The upstream's HTTP status (429, or e.g. 200 for a vendor answer such as Slack's). */
  readonly status: number;
  constructor(retryAfterMs: number, status: number, options?: { cause?: unknown }) {
    super(ErrorCode.RateLimited, UPSTREAM_FAILURES.rate_limited.message, {
      cause: options?.cause,
      retryAfterMs: Math.max(0, Math.ceil(retryAfterMs)),
    });
    this.name = 'UpstreamRateLimitedError';
    this.status = status;
  }
}
