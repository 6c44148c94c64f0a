import {
  type CredentialHandle,
  type CredentialScope,
  createUpstreamClient,
  ErrorCode,
  ToolError,
  type UpstreamClient,
} from '@hardened-mcp/core';
import { type FetchFunction, type WebAPICallResult, WebClient } from '@slack/web-api';
import type { SlackSettings } from './config.js';

/**
 * The upstream client of one credential scope, as the core hands it to `execute`. `api(signal)`
 * gives a `@slack/web-api` WebClient whose every request goes through the core's fixed-origin
 * HTTP client (no redirects, byte-bounded bodies, the deadline and the call's abort signal,
 * `429`/`ratelimited` as the core's `rate_limited` error, the credential set on every attempt).
 * A token per principal drops in here (a client per principal) without changing the tools.
 */
export interface SlackClient {
  readonly scope: CredentialScope;
  /** A WebClient bound to this call's abort signal, authenticated with the scope's token. */
  api(signal?: AbortSignal): WebClient;
  /** The same over the user token (`slack_search_messages` only); absent without one. */
  readonly user?: ((signal?: AbortSignal) => WebClient) | undefined;
}

/** Is `body` Slack's HTTP 200 rate-limit answer `{"ok":false,"error":"ratelimited"}`? */
function isSlackRateLimited(body: Buffer): boolean {
  if (body.length > 4_096) return false;
  const parsed = JSON.parse(body.toString('utf8')) as { ok?: unknown; error?: unknown };
  return parsed.ok === false && parsed.error === 'ratelimited';
}

/**
 * A WHATWG-shaped `fetch` for `@slack/web-api` that sends each request through `upstream`.
 * The WebClient always POSTs a form-encoded body to `<apiUrl><method>`; anything else (another
 * origin, a path outside the base, a multipart upload) is refused before a byte is sent. The
 * WebClient's own Authorization header is dropped: the upstream client sets it from the
 * credential. Upstream failures are thrown as the core's errors, which the WebClient wraps in a
 * `WebAPIRequestError` (see {@link slackCall}).
 *
 * @param access - `read` (a rate-limited read may be retried once within the core's bound) or
 *   `write` (never retried: a post may have been applied)
 */
export function slackFetch(
  upstream: UpstreamClient,
  apiUrl: string,
  access: 'read' | 'write',
  signal?: AbortSignal,
): FetchFunction {
  return async (url, init) => {
    const href = String(url);
    if (!href.startsWith(apiUrl) || typeof init?.body !== 'string' || init.method !== 'POST')
      throw new ToolError(ErrorCode.Internal, 'internal error; see the server log');
    const method = href.slice(apiUrl.length);
    if (!/^[a-z]+(\.[a-zA-Z]+)+$/.test(method))
      throw new ToolError(ErrorCode.Internal, 'internal error; see the server log');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(init.headers ?? {}))
      if (k.toLowerCase() === 'content-type') headers['content-type'] = v;
    const res = await upstream.request({
      method: 'POST',
      path: `/${method}`,
      body: init.body,
      headers,
      access,
      signal,
    });
    const body = res.body;
    const response: Awaited<ReturnType<FetchFunction>> = {
      ok: res.status >= 200 && res.status < 300,
      status: res.status,
      statusText: '',
      url: href,
      headers: res.headers,
      arrayBuffer: async () =>
        body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer,
      json: async () => res.json(),
      text: async () => res.text(),
    };
    return response;
  };
}

/**
 * Opens the client of one credential scope: the core's upstream client with the API origin
 * from configuration and `Bearer <token>` set from the credential on every attempt (never
 * cached, so a rotated token is used at once). The WebClient gets no token of its own,
 * `allowAbsoluteUrls: false`, no retries and `rejectRateLimitedCalls: true`: rate limits come
 * back as the core's `rate_limited` error instead of the SDK's half-hour retry loop.
 */
export function openSlackClient(
  scope: CredentialScope,
  credential: CredentialHandle,
  settings: SlackSettings,
  userCredential?: CredentialHandle,
): SlackClient {
  const make = (cred: CredentialHandle, access: 'read' | 'write') => {
    const upstream = createUpstreamClient({
      origin: settings.apiUrl.replace(/\/+$/, ''),
      credential: cred,
      headers: { accept: 'application/json' },
      timeoutMs: settings.timeoutMs,
      isRateLimited: (r) => r.status === 200 && isSlackRateLimited(r.body),
    });
    return (signal?: AbortSignal) =>
      new WebClient(undefined, {
        slackApiUrl: settings.apiUrl,
        allowAbsoluteUrls: false,
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
        // The deadline is the upstream client's (`timeoutMs`), together with the call's signal.
        timeout: 0,
        maxRequestConcurrency: 4,
        fetch: slackFetch(upstream, settings.apiUrl, access, signal),
        logger: SILENT_LOGGER,
      });
  };
  return {
    scope,
    api: make(credential, scope),
    user: userCredential ? make(userCredential, 'read') : undefined,
  };
}

/** The WebClient logs request bodies at debug level: it gets a logger that writes nothing. */
const SILENT_LOGGER = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  setLevel() {},
  getLevel() {
    return 'error';
  },
  setName() {},
} as unknown as NonNullable<ConstructorParameters<typeof WebClient>[1]>['logger'];

/**
 * Slack `error` strings mapped to what the client is told. Sources: the "Errors" table of each
 * method in Slack's Web API reference. Anything else is `upstream_error` "Slack refused the call".
 */
const PLATFORM_ERRORS: Readonly<Record<string, readonly [string, string]>> = {
  channel_not_found: [
    ErrorCode.UpstreamError,
    'conversation not found, or not visible to this server',
  ],
  thread_not_found: [ErrorCode.UpstreamError, 'thread not found, or not visible to this server'],
  message_not_found: [ErrorCode.UpstreamError, 'message not found, or not visible to this server'],
  user_not_found: [ErrorCode.UpstreamError, 'user not found'],
  not_in_channel: [ErrorCode.UpstreamError, 'the Slack app is not a member of this conversation'],
  is_archived: [ErrorCode.UpstreamError, 'the conversation is archived'],
  msg_too_long: [ErrorCode.InvalidInput, 'Slack refused the message: too long'],
  no_text: [ErrorCode.InvalidInput, 'Slack refused the message: no text'],
  invalid_blocks: [ErrorCode.InvalidInput, 'Slack refused the message blocks'],
  invalid_name: [ErrorCode.InvalidInput, 'Slack refused the emoji name'],
  already_reacted: [ErrorCode.UpstreamError, 'the reaction is already there'],
  too_many_reactions: [ErrorCode.UpstreamError, 'the message has too many reactions'],
  invalid_cursor: [ErrorCode.InvalidInput, 'Slack refused the cursor'],
  missing_scope: [ErrorCode.UpstreamError, 'the Slack token lacks a scope this call needs'],
  not_authed: [ErrorCode.UpstreamUnavailable, 'Slack refused the credential'],
  invalid_auth: [ErrorCode.UpstreamUnavailable, 'Slack refused the credential'],
  token_revoked: [ErrorCode.UpstreamUnavailable, 'Slack refused the credential'],
  token_expired: [ErrorCode.UpstreamUnavailable, 'Slack refused the credential'],
  account_inactive: [ErrorCode.UpstreamUnavailable, 'Slack refused the credential'],
  ratelimited: [ErrorCode.RateLimited, 'Slack rate limit reached'],
  fatal_error: [ErrorCode.UpstreamUnavailable, 'Slack is unavailable'],
  internal_error: [ErrorCode.UpstreamUnavailable, 'Slack is unavailable'],
  service_unavailable: [ErrorCode.UpstreamUnavailable, 'Slack is unavailable'],
};

/** The stable code and message for Slack's `{ok:false,error}` (see the table above). */
export function platformError(error: string): ToolError {
  const [code, message] = PLATFORM_ERRORS[error] ?? [
    ErrorCode.UpstreamError,
    'Slack refused the call',
  ];
  return new ToolError(code as typeof ErrorCode.UpstreamError, message, {
    detail: `slack error: ${error.slice(0, 100)}`,
  });
}

/**
 * Runs one Web API call and maps every failure to a {@link ToolError} with a stable code:
 * Slack's `{ok:false,error}` through {@link platformError}; HTTP errors (`WebAPIHTTPError`) to
 * `upstream_error`/`upstream_unavailable`; the core's upstream errors (rate limit, deadline,
 * cancel, network) as they were thrown inside the fetch. Nothing else escapes.
 */
export async function slackCall<T extends WebAPICallResult>(run: () => Promise<T>): Promise<T> {
  try {
    const result = await run();
    if (result.ok !== true) throw platformError('unknown');
    return result;
  } catch (err) {
    throw toSlackError(err);
  }
}

/** See {@link slackCall}. */
export function toSlackError(err: unknown): ToolError {
  if (err instanceof ToolError) return err;
  const e = err as {
    code?: unknown;
    data?: { error?: unknown };
    original?: unknown;
    statusCode?: unknown;
  };
  if (e?.code === 'slack_webapi_platform_error')
    return platformError(typeof e.data?.error === 'string' ? e.data.error : 'unknown');
  if (e?.code === 'slack_webapi_request_error' && e.original instanceof ToolError)
    return e.original;
  if (e?.code === 'slack_webapi_rate_limited_error')
    return new ToolError(ErrorCode.RateLimited, 'Slack rate limit reached');
  if (e?.code === 'slack_webapi_http_error') {
    const status = typeof e.statusCode === 'number' ? e.statusCode : 0;
    return new ToolError(
      status >= 500 ? ErrorCode.UpstreamUnavailable : ErrorCode.UpstreamError,
      `Slack answered HTTP ${status}`,
    );
  }
  return new ToolError(ErrorCode.UpstreamUnavailable, 'the Slack call failed', { cause: err });
}
