import {
  type CredentialHandle,
  type CredentialScope,
  createUpstreamClient,
  ErrorCode,
  type SecretRegistry,
  StartupError,
  ToolError,
  type UpstreamClient,
  type UpstreamMethod,
} from '@hardened-mcp/core';
import type { Client as JiraJsClient } from 'jira.js/core';
import { z } from 'zod';
import type { JiraSettings } from './config.js';
import { OAuthAccess } from './oauth.js';

/**
 * The upstream client of one credential scope, as the core hands it to `execute`. It carries
 * the core's fixed-origin HTTP client (no redirects, byte-bounded bodies, deadline, `429` and
 * `Retry-After`, one credential refresh on `401`) authenticated with this scope's credential;
 * `api(signal)` gives a jira.js client that sends every request through it. A token per
 * principal drops in here (a client per principal) without changing the tools.
 */
export interface JiraClient {
  readonly scope: CredentialScope;
  /** A jira.js client bound to this call's abort signal. */
  api(signal?: AbortSignal): JiraJsClient;
  /**
   * The fixed-origin client itself, for the calls jira.js does not model as JSON (attachment
   * content and multipart uploads). Call {@link JiraClient.prepare} before each request.
   */
  readonly upstream: UpstreamClient;
  /** Makes sure the credential is fresh (OAuth: refreshes an access token about to expire). */
  prepare(): Promise<void>;
}

/** Statuses Jira answers for "not there, or not visible with this credential" (REST v3 docs, "Status codes"). */
const NOT_VISIBLE = new Set([403, 404]);

/**
 * The jira.js transport over the core's upstream client. jira.js builds the path and body of
 * each REST v3 call; this sends them with the scope's credential and maps Jira's answers:
 * - `/rest/api/2/…` (the wiki-markup path jira.js uses for string bodies) is refused before
 *   anything is sent: bodies are ADF only;
 * - `400` → `invalid_input` ("Jira refused the request"), `403`/`404` → `upstream_error`
 *   ("not found, or not visible"), other `4xx` → `upstream_error`; Jira's error text goes in
 *   `detail` (redacted and fenced by the core), never in the message;
 * - `401`, `429`, `5xx`, timeouts and network failures are the upstream client's
 *   `UpstreamCallError`/`UpstreamRateLimitedError`.
 *
 * @param upstream - the fixed-origin client of one credential scope
 * @param access - `read` (a `429` may be retried once within the core's bound) or `write` (never retried)
 */
export function jiraTransport(
  upstream: UpstreamClient,
  access: 'read' | 'write',
  signal?: AbortSignal,
  prepare: () => Promise<void> = async () => {},
): JiraJsClient {
  return {
    async sendRequest<T>(options: {
      url: string;
      method?: string | undefined;
      body?: unknown;
      searchParams?: Record<string, unknown> | undefined;
    }): Promise<T> {
      if (!options.url.startsWith('/rest/api/3/'))
        throw new ToolError(ErrorCode.Internal, 'internal error; see the server log');
      const query: Record<string, string | number | boolean> = {};
      for (const [k, v] of Object.entries(options.searchParams ?? {})) {
        if (v === undefined || v === null) continue;
        if (Array.isArray(v)) query[k] = v.map(String).join(',');
        else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
          query[k] = v;
      }
      const method = (options.method ?? 'GET') as UpstreamMethod;
      await prepare();
      const res = await upstream.request({
        method,
        path: options.url,
        query,
        ...(options.body === undefined ? {} : { json: options.body }),
        access,
        signal,
      });
      if (res.status >= 200 && res.status < 300) {
        if (res.status === 204 || res.body.length === 0) return undefined as T;
        return res.json() as T;
      }
      throw jiraError(res.status, res.text());
    },
  } as JiraJsClient;
}

/**
 * The tool error for a Jira answer outside 2xx: `400` → `invalid_input`, `403`/`404` →
 * `upstream_error` ("not found, or not visible"), others → `upstream_error`; Jira's text only
 * in `detail` (at most 2,000 characters; redacted and fenced by the core).
 */
export function jiraError(status: number, text: string): ToolError {
  const detail = text.slice(0, 2_000);
  if (status === 400)
    return new ToolError(ErrorCode.InvalidInput, 'Jira refused the request', { detail });
  if (NOT_VISIBLE.has(status))
    return new ToolError(ErrorCode.UpstreamError, 'not found, or not visible to this server', {
      detail,
    });
  return new ToolError(ErrorCode.UpstreamError, `Jira answered HTTP ${status}`, { detail });
}

/** What {@link openJiraClient} needs besides configuration. */
export interface OpenJiraClientOptions {
  /** Where `JIRA_EMAIL` (and `env` credential sources of OAuth) are read. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Tokens obtained at run time (OAuth access and refresh tokens) are registered here. */
  readonly secrets?: SecretRegistry | undefined;
}

/**
 * Opens the client of one credential scope: the core's upstream client with the site origin
 * from configuration and the credential header set on every attempt (never cached, so a rotated
 * token is used at once):
 * - `basic`: `Basic base64(email:token)`, the e-mail from `jira.auth.email` or else the
 *   `JIRA_EMAIL` environment variable;
 * - `bearer`: `Bearer <token>` as the credential source gives it;
 * - `oauth`: the credential is an OAuth 2.0 (3LO) refresh token; access tokens come from
 *   `auth.oauth.tokenUrl` (see {@link OAuthAccess}) and requests go to
 *   `{apiBase}/ex/jira/{cloudId}`.
 *
 * @throws StartupError when `basic` has no e-mail, or the first OAuth token cannot be obtained.
 */
export async function openJiraClient(
  scope: CredentialScope,
  credential: CredentialHandle,
  settings: JiraSettings,
  options: OpenJiraClientOptions = {},
): Promise<JiraClient> {
  const env = options.env ?? process.env;
  const auth = settings.auth;
  if (auth.scheme === 'oauth') {
    const oauth = auth.oauth;
    if (!oauth) throw new StartupError('jira.auth.oauth is required with scheme oauth');
    const access = await OAuthAccess.open(credential, oauth, { env, secrets: options.secrets });
    const upstream = createUpstreamClient({
      origin: `${oauth.apiBase.replace(/\/$/, '')}/ex/jira/${encodeURIComponent(oauth.cloudId)}`,
      credential: access,
      headers: { accept: 'application/json' },
    });
    const prepare = () => access.fresh();
    return {
      scope,
      upstream,
      prepare,
      api: (signal) => jiraTransport(upstream, scope, signal, prepare),
    };
  }
  let email = '';
  if (auth.scheme === 'basic') {
    const parsed = z.email().safeParse(auth.email ?? env.JIRA_EMAIL);
    if (!parsed.success)
      throw new StartupError(
        'basic auth needs the account e-mail: set jira.auth.email or JIRA_EMAIL (a valid address)',
      );
    email = parsed.data;
  }
  const upstream = createUpstreamClient({
    origin: settings.site,
    credential,
    authorization: (secret) =>
      auth.scheme === 'basic'
        ? `Basic ${Buffer.from(`${email}:${secret.reveal()}`).toString('base64')}`
        : `Bearer ${secret.reveal()}`,
    headers: { accept: 'application/json' },
  });
  const prepare = async () => {};
  return { scope, upstream, prepare, api: (signal) => jiraTransport(upstream, scope, signal) };
}
