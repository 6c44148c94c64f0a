/**
 * Classifying a failed HTTP exchange by its error codes, never by its message (messages carry
 * host names, URLs and library wording that change between versions). Works for Node's `fetch`
 * (undici: `TypeError('fetch failed')` with the socket error as `cause`), for `node:http`/`tls`
 * errors, and for axios-based vendor SDKs (jira.js, `@slack/web-api`, whose request error keeps
 * the axios error as `original`), so a connector built on such an SDK maps failures the same way.
 */
import { UpstreamCallError, UpstreamFailure, type UpstreamFailureValue } from './errors.js';

/** `getaddrinfo` failures (libuv `UV_EAI_*`). */
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']);
/** The connection broke after it was established. */
const RESET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
/** The connection was not established in time (undici's connect timeout, TCP `ETIMEDOUT`). */
const CONNECT_TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);
/** A response timeout: axios (`ECONNABORTED` on `timeout`), undici's header and body timeouts. */
const DEADLINE_CODES = new Set(['ECONNABORTED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/** An abort by the caller: DOM `AbortError`, Node `ABORT_ERR`, axios `ERR_CANCELED`. */
const CANCEL_CODES = new Set(['ABORT_ERR', 'ERR_CANCELED', 'UND_ERR_ABORTED']);
/** OpenSSL verification results and Node TLS codes (`ERR_TLS_*`, `ERR_SSL_*`, `*CERT*`). */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_)|CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/**
 * The error codes and names found along `err`'s chain: `code`, `name` (`AbortError`,
 * `TimeoutError`), then `cause`, `original` and the `errors` of an `AggregateError`, at most
 * eight levels deep.
 */
function errorCodes(err: unknown, depth = 0): string[] {
  if (depth > 8 || typeof err !== 'object' || err === null) return [];
  const out: string[] = [];
  const { code, name } = err as { code?: unknown; name?: unknown };
  if (typeof code === 'string') out.push(code);
  if (name === 'AbortError') out.push('ABORT_ERR');
  if (name === 'TimeoutError') out.push('UND_ERR_HEADERS_TIMEOUT');
  if (err instanceof AggregateError)
    for (const e of err.errors) out.push(...errorCodes(e, depth + 1));
  out.push(...errorCodes((err as { cause?: unknown }).cause, depth + 1));
  out.push(...errorCodes((err as { original?: unknown }).original, depth + 1));
  return out;
}

/**
 * The {@link UpstreamFailure} sub-code of a transport failure: `dns`, `tls`,
 * `connection_refused`, `connect_timeout`, `connection_reset`, `deadline`, `cancelled`, or
 * `network` when no known code is found. A DNS or TLS code wins over the others found along the
 * chain (it names the root cause).
 */
export function upstreamFailureOf(err: unknown): UpstreamFailureValue {
  if (err instanceof UpstreamCallError) return err.reason;
  const codes = errorCodes(err);
  if (codes.some((c) => DNS_CODES.has(c))) return UpstreamFailure.Dns;
  if (codes.some((c) => TLS_CODE.test(c))) return UpstreamFailure.Tls;
  if (codes.includes('ECONNREFUSED')) return UpstreamFailure.ConnectionRefused;
  if (codes.some((c) => CONNECT_TIMEOUT_CODES.has(c))) return UpstreamFailure.ConnectTimeout;
  if (codes.some((c) => RESET_CODES.has(c))) return UpstreamFailure.ConnectionReset;
  if (codes.some((c) => DEADLINE_CODES.has(c))) return UpstreamFailure.Deadline;
  if (codes.some((c) => CANCEL_CODES.has(c))) return UpstreamFailure.Cancelled;
  return UpstreamFailure.Network;
}

/**
 * `err` as an {@link UpstreamCallError} with the sub-code of {@link upstreamFailureOf} and `err`
 * as `cause` (server log only); an `UpstreamCallError` is returned as it is.
 */
export function toUpstreamCallError(err: unknown): UpstreamCallError {
  return err instanceof UpstreamCallError
    ? err
    : new UpstreamCallError(upstreamFailureOf(err), { cause: err });
}
