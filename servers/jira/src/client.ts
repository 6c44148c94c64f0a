import {
  type CredentialHandle,
  type CredentialScope,
  createUpstreamClient,
  ErrorCode,
  ToolError,
  type UpstreamClient,
  type UpstreamMethod,
} from '@hardened-mcp/core';
import type { Client as JiraJsClient } from 'jira.js/core';
import type { JiraSettings } from './config.js';

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
      const detail = res.text().slice(0, 2_000);
      if (res.status === 400)
        throw new ToolError(ErrorCode.InvalidInput, 'Jira refused the request', { detail });
      if (NOT_VISIBLE.has(res.status))
        throw new ToolError(ErrorCode.UpstreamError, 'not found, or not visible to this server', {
          detail,
        });
      throw new ToolError(ErrorCode.UpstreamError, `Jira answered HTTP ${res.status}`, { detail });
    },
  } as JiraJsClient;
}

/**
 * Opens the client of one credential scope: the core's upstream client with the site origin
 * from configuration, `Basic base64(email:token)` or `Bearer token` set from the credential on
 * every attempt (never cached, so a rotated token is used at once).
 */
export function openJiraClient(
  scope: CredentialScope,
  credential: CredentialHandle,
  settings: JiraSettings,
): JiraClient {
  const email = settings.auth.email ?? '';
  const upstream = createUpstreamClient({
    origin: settings.site,
    credential,
    authorization: (secret) =>
      settings.auth.scheme === 'basic'
        ? `Basic ${Buffer.from(`${email}:${secret.reveal()}`).toString('base64')}`
        : `Bearer ${secret.reveal()}`,
    headers: { accept: 'application/json' },
  });
  return { scope, api: (signal) => jiraTransport(upstream, scope, signal) };
}
