/**
 * An HTTP client for connectors to SaaS APIs (Jira, Slack, …), built on Node's `fetch`
 * (undici). It owns what every such connector would otherwise re-invent: the fixed origin,
 * the credential header with one refresh on `401`, the call's deadline and abort signal, a byte
 * bound on response bodies, rate-limit answers, and failures mapped to stable, sanitized codes.
 *
 * Rules and their sources:
 * - Redirects are never followed (`redirect: 'manual'`): a `3xx` fails with `redirect`. Fetch
 *   would follow a cross-origin redirect without the `Authorization` header, but a same-origin one
 *   with it, and a redirect target comes from upstream data; REST APIs that connectors use answer
 *   directly, so a redirect is a misconfiguration (wrong base URL) or an attack, never a page.
 * - `429 Too Many Requests` (RFC 6585 §4) and `503` with `Retry-After` (RFC 9110 §15.6.4) and
 *   vendor answers (a predicate) become {@link UpstreamRateLimitedError}. A read is retried
 *   after the wait only when the wait is at most `maxRetryWaitMs` and fits in the deadline; a
 *   write never is (it may have been applied).
 * - `401` (RFC 9110 §15.5.2: the request was not applied because authentication failed): the
 *   credential is fetched again once and the request is sent once more, reads and writes alike.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CredentialHandle, Secret } from '../credentials.js';
import { discardBody, readBodyBounded } from './body.js';
import { UpstreamCallError, UpstreamFailure, UpstreamRateLimitedError } from './errors.js';
import { upstreamFailureOf } from './network-errors.js';
import {
  parseUpstreamBase,
  resolveUpstreamUrl,
  type UpstreamBase,
  type UpstreamQuery,
} from './origin.js';
import { parseRetryAfter } from './retry-after.js';

/** HTTP methods the client sends. */
export type UpstreamMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** An upstream answer the client hands back: any status except those it handles itself. */
export interface UpstreamResponse {
  /** HTTP status (1xx–2xx, 4xx other than 401 and 429). */
  readonly status: number;
  readonly headers: Headers;
  /** The body, at most `maxResponseBytes` bytes. */
  readonly body: Buffer;
  /** The body decoded as UTF-8 (malformed sequences become U+FFFD). */
  text(): string;
  /**
   * The body parsed as JSON.
   * @throws UpstreamCallError `invalid_response` when it is not JSON.
   */
  json(): unknown;
}

/** Options of {@link createUpstreamClient}. Durations in ms, sizes in bytes. */
export interface UpstreamClientOptions {
  /**
   * The configured upstream URL: `https://host[:port][/base/path]` (`http:` only to loopback).
   * Every request goes to this origin; see {@link parseUpstreamBase}.
   */
  readonly origin: string;
  /** The credential sent with every request; absent → no `Authorization` header. */
  readonly credential?: CredentialHandle | undefined;
  /** The `Authorization` header value for a secret. Default: `Bearer <secret>` (RFC 6750 §2.1). */
  readonly authorization?: ((secret: Secret) => string) | undefined;
  /** Headers sent with every request (e.g. `Accept`). Credential headers are refused. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Time budget of one call, retries and waits included. Default 30 000 ms. */
  readonly timeoutMs?: number | undefined;
  /** Byte bound of a response body. Default 4 MiB. */
  readonly maxResponseBytes?: number | undefined;
  /** The longest rate-limit wait a read sleeps through before retrying. Default 2 000 ms. */
  readonly maxRetryWaitMs?: number | undefined;
  /** How many times a rate-limited read is retried at most. Default 1. */
  readonly maxReadRetries?: number | undefined;
  /** The wait assumed when a rate-limit answer has no usable `Retry-After`. Default 1 000 ms. */
  readonly defaultRetryAfterMs?: number | undefined;
  /**
   * A vendor's rate-limit answer that is not a `429`, e.g. Slack's HTTP 200
   * `{"ok":false,"error":"ratelimited"}`. Called with every answer the client would return;
   * a predicate that throws counts as `false`.
   */
  readonly isRateLimited?: ((response: UpstreamResponse) => boolean) | undefined;
}

/** One request. */
export interface UpstreamRequest {
  readonly method: UpstreamMethod;
  /** A path under the configured base, e.g. `/rest/api/3/myself` (see {@link resolveUpstreamUrl}). */
  readonly path: string;
  readonly query?: UpstreamQuery | undefined;
  /** Extra headers; credential and hop headers (`Authorization`, `Cookie`, `Host`, …) are refused. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** A JSON body (sent with `Content-Type: application/json`). Exclusive with `body`. */
  readonly json?: unknown;
  /** A raw body. Exclusive with `json`. */
  readonly body?: string | Uint8Array | undefined;
  /**
   * Whether the request reads or changes upstream data; only reads are retried after a rate
   * limit. Default: `read` for GET and HEAD, `write` otherwise (declare `read` for a search sent
   * as POST).
   */
  readonly access?: 'read' | 'write' | undefined;
  /** The call's abort signal (`ctx.signal`). */
  readonly signal?: AbortSignal | undefined;
  /** Overrides the client's `timeoutMs` for this call. */
  readonly timeoutMs?: number | undefined;
  /** Overrides the client's `maxResponseBytes` for this call. */
  readonly maxResponseBytes?: number | undefined;
}

/** The client connectors hold (one per credential scope). */
export interface UpstreamClient {
  /** The checked base (origin and base path). */
  readonly base: UpstreamBase;
  /**
   * Sends `request` and reads the answer.
   *
   * @returns the answer for any status the client does not handle itself (connectors map 4xx).
   * @throws UpstreamRateLimitedError on a rate-limit answer that was not (or may not be) retried.
   * @throws UpstreamCallError with a {@link UpstreamFailure} sub-code for everything else:
   *   `path_refused`, `redirect`, `auth_rejected`, `credential_refresh_failed`, `server_error`,
   *   `response_too_large`, `deadline`, `cancelled`, `dns`, `tls`, `connection_refused`,
   *   `connection_reset`, `connect_timeout`, `network`.
   */
  request(request: UpstreamRequest): Promise<UpstreamResponse>;
}

const DEFAULTS = {
  timeoutMs: 30_000,
  maxResponseBytes: 4 * 1024 * 1024,
  maxRetryWaitMs: 2_000,
  maxReadRetries: 1,
  defaultRetryAfterMs: 1_000,
} as const;

/** Headers only the client sets (credentials, hop-by-hop and framing headers). */
const RESERVED_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
]);

function checkHeaders(headers: Readonly<Record<string, string>> | undefined): void {
  for (const name of Object.keys(headers ?? {}))
    if (RESERVED_HEADERS.has(name.toLowerCase()))
      throw new TypeError(`upstream client: the ${name} header is set by the client only`);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) throw new TypeError(`upstream client: ${name} must be ≥ 0`);
  return v;
}

/**
 * Creates an upstream client for one configured origin and credential.
 *
 * @throws StartupError when `origin` breaks a rule of {@link parseUpstreamBase}.
 * @throws TypeError for a reserved header in `headers` or a negative bound (a connector bug).
 */
export function createUpstreamClient(options: UpstreamClientOptions): UpstreamClient {
  const base = parseUpstreamBase(options.origin);
  checkHeaders(options.headers);
  const settings = {
    timeoutMs: positive('timeoutMs', options.timeoutMs, DEFAULTS.timeoutMs),
    maxResponseBytes: positive(
      'maxResponseBytes',
      options.maxResponseBytes,
      DEFAULTS.maxResponseBytes,
    ),
    maxRetryWaitMs: positive('maxRetryWaitMs', options.maxRetryWaitMs, DEFAULTS.maxRetryWaitMs),
    maxReadRetries: positive('maxReadRetries', options.maxReadRetries, DEFAULTS.maxReadRetries),
    defaultRetryAfterMs: positive(
      'defaultRetryAfterMs',
      options.defaultRetryAfterMs,
      DEFAULTS.defaultRetryAfterMs,
    ),
  };
  const authorization = options.authorization ?? ((s: Secret) => `Bearer ${s.reveal()}`);
  const fixedHeaders = { ...options.headers };

  async function request(req: UpstreamRequest): Promise<UpstreamResponse> {
    checkHeaders(req.headers);
    if (req.json !== undefined && req.body !== undefined)
      throw new TypeError('upstream client: give json or body, not both');
    const url = resolveUpstreamUrl(base, req.path, req.query);
    const access = req.access ?? (req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'write');
    const timeoutMs = positive('timeoutMs', req.timeoutMs, settings.timeoutMs);
    const maxBytes = positive('maxResponseBytes', req.maxResponseBytes, settings.maxResponseBytes);
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, deadline]) : deadline;
    const endsAt = performance.now() + timeoutMs;
    const body = req.json !== undefined ? JSON.stringify(req.json) : req.body;

    const failure = (err: unknown): UpstreamCallError => {
      if (err instanceof UpstreamCallError) return err;
      if (req.signal?.aborted)
        return new UpstreamCallError(UpstreamFailure.Cancelled, { cause: err });
      if (deadline.aborted) return new UpstreamCallError(UpstreamFailure.Deadline, { cause: err });
      return new UpstreamCallError(upstreamFailureOf(err), { cause: err });
    };

    let refreshed = false;
    let retries = 0;
    for (;;) {
      const headers = new Headers(fixedHeaders);
      for (const [k, v] of Object.entries(req.headers ?? {})) headers.set(k, v);
      if (req.json !== undefined) headers.set('content-type', 'application/json');
      if (options.credential)
        headers.set('authorization', authorization(options.credential.current()));
      let res: Response;
      try {
        res = await fetch(url, {
          method: req.method,
          headers,
          ...(body === undefined ? {} : { body }),
          redirect: 'manual',
          signal,
        });
      } catch (err) {
        throw failure(err);
      }
      if (res.status >= 300 && res.status < 400 && res.status !== 304) {
        await discardBody(res);
        throw new UpstreamCallError(UpstreamFailure.Redirect, {
          status: res.status,
          location: res.headers.get('location') ?? undefined,
        });
      }
      if (res.status === 401) {
        await discardBody(res);
        if (!options.credential || refreshed)
          throw new UpstreamCallError(UpstreamFailure.AuthRejected, {
            status: 401,
          });
        refreshed = true;
        try {
          await options.credential.refresh();
        } catch (err) {
          throw new UpstreamCallError(UpstreamFailure.CredentialRefresh, {
            cause: err,
            status: 401,
          });
        }
        continue;
      }
      let bytes: Buffer;
      try {
        bytes = await readBodyBounded(res, maxBytes);
      } catch (err) {
        throw failure(err);
      }
      const response = toResponse(res, bytes);
      const limited =
        res.status === 429 ||
        (res.status === 503 && res.headers.has('retry-after')) ||
        (res.status < 500 && vendorRateLimited(options.isRateLimited, response));
      if (limited) {
        const waitMs =
          parseRetryAfter(res.headers.get('retry-after')) ?? settings.defaultRetryAfterMs;
        const fits = waitMs <= settings.maxRetryWaitMs && waitMs < endsAt - performance.now();
        if (access === 'read' && retries < settings.maxReadRetries && fits) {
          retries++;
          try {
            await sleep(waitMs, undefined, { signal });
          } catch (err) {
            throw failure(err);
          }
          continue;
        }
        throw new UpstreamRateLimitedError(waitMs, res.status);
      }
      if (res.status >= 500)
        throw new UpstreamCallError(UpstreamFailure.ServerError, {
          status: res.status,
        });
      return response;
    }
  }

  return Object.freeze({ base, request });
}

/** The connector's predicate; one that throws (e.g. `json()` on a non-JSON body) says no. */
function vendorRateLimited(
  predicate: ((response: UpstreamResponse) => boolean) | undefined,
  response: UpstreamResponse,
): boolean {
  if (!predicate) return false;
  try {
    return predicate(response) === true;
  } catch {
    return false;
  }
}

function toResponse(res: Response, body: Buffer): UpstreamResponse {
  return Object.freeze({
    status: res.status,
    headers: res.headers,
    body,
    text: () => body.toString('utf8'),
    json: (): unknown => {
      try {
        return JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw new UpstreamCallError(UpstreamFailure.InvalidResponse, {
          cause: err,
          status: res.status,
        });
      }
    },
  });
}
