import {
  type CredentialHandle,
  type CredentialSource,
  createUpstreamClient,
  ErrorCode,
  loadCredential,
  Secret,
  type SecretRegistry,
  StartupError,
  ToolError,
  type UpstreamClient,
} from '@hardened-mcp/core';
import { z } from 'zod';

/** The `jira.auth.oauth` settings {@link OAuthAccess} uses. */
export interface OAuthSettings {
  readonly clientId: string;
  readonly clientSecret: CredentialSource;
  readonly tokenUrl: string;
}

/** A successful token answer (RFC 6749 §5.1); Atlassian rotates the refresh token on every grant. */
const tokenAnswer = z.object({
  access_token: z.string().min(8).max(8_192),
  expires_in: z.number().int().positive().max(31_536_000).optional(),
  refresh_token: z.string().min(8).max(8_192).optional(),
});

/** An access token is refreshed when it has less than this left (ms). */
const EARLY_REFRESH_MS = 60_000;

/**
 * The OAuth 2.0 (3LO) access token of one credential scope, as a core {@link CredentialHandle}:
 * the upstream client sends `Bearer <current()>` and calls `refresh()` once on a `401`; the Jira
 * transport calls {@link OAuthAccess.fresh} before every request, which refreshes a token that
 * expires within a minute.
 *
 * A refresh is the refresh-token grant (RFC 6749 §6) sent as JSON to `tokenUrl` (Atlassian's
 * "OAuth 2.0 (3LO) apps": `POST https://auth.atlassian.com/oauth/token` with `grant_type`,
 * `client_id`, `client_secret`, `refresh_token`) through the core's fixed-origin client (https
 * only, no redirects, bounded body, deadline). Atlassian rotates refresh tokens: the new one is
 * kept in memory; when the grant is refused, the credential source is read again once (an
 * operator may have put a new refresh token there). Every token is registered with the redactor.
 * Concurrent refreshes share one grant.
 */
export class OAuthAccess implements CredentialHandle {
  readonly source: string;
  readonly #refreshSource: CredentialHandle;
  readonly #clientId: string;
  readonly #clientSecret: CredentialHandle;
  readonly #endpoint: UpstreamClient;
  readonly #path: string;
  readonly #secrets: SecretRegistry | undefined;
  #refreshToken: string;
  #access: Secret | undefined;
  #expiresAt = 0;
  #inflight: Promise<Secret> | undefined;

  private constructor(
    refreshSource: CredentialHandle,
    clientSecret: CredentialHandle,
    settings: OAuthSettings,
    secrets: SecretRegistry | undefined,
  ) {
    const url = new URL(settings.tokenUrl);
    this.source = `OAuth 2.0 refresh token (${refreshSource.source})`;
    this.#refreshSource = refreshSource;
    this.#clientId = settings.clientId;
    this.#clientSecret = clientSecret;
    this.#endpoint = createUpstreamClient({
      origin: url.origin,
      headers: { accept: 'application/json' },
      timeoutMs: 15_000,
      maxResponseBytes: 64 * 1024,
    });
    this.#path = url.pathname;
    this.#secrets = secrets;
    this.#refreshToken = refreshSource.current().reveal();
  }

  /**
   * Loads the client secret, obtains the first access token and returns the handle.
   *
   * @param refreshSource - the scope's credential: the refresh token
   * @throws StartupError when the client secret is missing or the first grant fails (the
   *   message names the cause, never a token).
   */
  static async open(
    refreshSource: CredentialHandle,
    settings: OAuthSettings,
    options: { env?: NodeJS.ProcessEnv | undefined; secrets?: SecretRegistry | undefined } = {},
  ): Promise<OAuthAccess> {
    const clientSecret = await loadCredential(settings.clientSecret, options.env);
    if (!clientSecret)
      throw new StartupError('the OAuth client secret is missing (jira.auth.oauth.clientSecret)');
    options.secrets?.register(clientSecret.current().reveal());
    options.secrets?.register(refreshSource.current().reveal());
    const access = new OAuthAccess(refreshSource, clientSecret, settings, options.secrets);
    try {
      await access.refresh();
    } catch (err) {
      throw new StartupError(
        `the first OAuth token could not be obtained (${err instanceof ToolError ? err.message : 'token endpoint failed'})`,
        { cause: err },
      );
    }
    return access;
  }

  /** The access token in hand. @throws Error before the first grant (not reachable after {@link OAuthAccess.open}). */
  current(): Secret {
    if (!this.#access) throw new Error('no OAuth access token yet');
    return this.#access;
  }

  /** Refreshes the access token when it expires within a minute. */
  async fresh(): Promise<void> {
    if (!this.#access || Date.now() >= this.#expiresAt - EARLY_REFRESH_MS) await this.refresh();
  }

  /**
   * Obtains a new access token (concurrent calls share one grant).
   * @throws ToolError `upstream_unavailable` when the token endpoint refuses or fails.
   */
  refresh(): Promise<Secret> {
    this.#inflight ??= this.#grant().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #grant(): Promise<Secret> {
    let answer = await this.#post(this.#refreshToken);
    if (answer === 'refused') {
      // The rotated token in memory was refused: the source may hold a newer one.
      const fromSource = (await this.#refreshSource.refresh()).reveal();
      if (fromSource !== this.#refreshToken) {
        this.#secrets?.register(fromSource);
        this.#refreshToken = fromSource;
        answer = await this.#post(fromSource);
      }
    }
    if (answer === 'refused')
      throw new ToolError(
        ErrorCode.UpstreamUnavailable,
        'the OAuth token endpoint refused the refresh token',
      );
    this.#secrets?.register(answer.access_token);
    if (answer.refresh_token) {
      this.#secrets?.register(answer.refresh_token);
      this.#refreshToken = answer.refresh_token;
    }
    this.#access = new Secret(answer.access_token, this.source);
    this.#expiresAt = Date.now() + (answer.expires_in ?? 3600) * 1000;
    return this.#access;
  }

  async #post(refreshToken: string): Promise<z.infer<typeof tokenAnswer> | 'refused'> {
    const res = await this.#endpoint.request({
      method: 'POST',
      path: this.#path,
      json: {
        grant_type: 'refresh_token',
        client_id: this.#clientId,
        client_secret: this.#clientSecret.current().reveal(),
        refresh_token: refreshToken,
      },
      access: 'write',
    });
    if (res.status >= 400 && res.status < 500) return 'refused';
    const parsed = res.status === 200 ? tokenAnswer.safeParse(res.json()) : undefined;
    if (!parsed?.success)
      throw new ToolError(
        ErrorCode.UpstreamUnavailable,
        'the OAuth token endpoint gave no usable answer',
      );
    return parsed.data;
  }
}
