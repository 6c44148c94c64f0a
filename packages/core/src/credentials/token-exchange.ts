import type * as Oidc from 'openid-client';
import type { TokenExchangeSettings } from '../config.js';
import type { CredentialHandle } from '../credentials.js';
import { Secret } from '../credentials.js';
import { ErrorCode, ToolError } from '../errors.js';

/** RFC 8693 §2.1 `grant_type`. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 token type identifier of an OAuth 2.0 access token. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** A downstream token and when it stops being used (ms since the epoch, skew applied). */
export interface ExchangedToken {
  readonly token: Secret;
  readonly usableUntil: number;
}

/** Options of {@link TokenExchanger}. */
export interface TokenExchangerOptions {
  /** Called with every issued token before it is used (register it with the redactor). */
  readonly onSecret?: ((secret: Secret) => void) | undefined;
  /** Clock (ms); tests may pass their own. */
  readonly now?: (() => number) | undefined;
}

/**
 * RFC 8693 token exchange with a per-(principal, audience) cache. The caller's access token is
 * sent only to the configured token endpoint, as `subject_token`; it is never handed to a
 * connector. Issued tokens are reused until `expires_in` minus `expirySkewSeconds`; concurrent
 * calls for the same key share one request. Uses `openid-client` for the request, client
 * authentication and response validation.
 */
export class TokenExchanger {
  readonly #settings: TokenExchangeSettings;
  readonly #clientSecret: CredentialHandle;
  readonly #options: TokenExchangerOptions;
  readonly #cache = new Map<string, ExchangedToken>();
  readonly #inflight = new Map<string, Promise<ExchangedToken>>();

  constructor(
    settings: TokenExchangeSettings,
    clientSecret: CredentialHandle,
    options: TokenExchangerOptions = {},
  ) {
    this.#settings = settings;
    this.#clientSecret = clientSecret;
    this.#options = options;
  }

  /** The audience tokens are asked for. */
  get audience(): string {
    return this.#settings.audience;
  }

  /**
   * The downstream token of `principal`, from the cache while usable, else exchanged for
   * `subjectToken`.
   *
   * @throws ToolError `forbidden` when the authorization server refuses the exchange (an OAuth
   *   error response, e.g. `invalid_grant`); `upstream_unavailable` when it cannot be reached or
   *   answers with something that is not a token response.
   */
  async tokenFor(principal: string, subjectToken: Secret): Promise<ExchangedToken> {
    const key = `${principal}\u0000${this.#settings.audience}`;
    const now = this.#now();
    const cached = this.#cache.get(key);
    if (cached && now < cached.usableUntil) return cached;
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#exchange(subjectToken).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    const fresh = await pending;
    this.#cache.delete(key);
    this.#cache.set(key, fresh);
    while (this.#cache.size > this.#settings.maxCachedTokens) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
    return fresh;
  }

  /** Forgets the token of `principal` (e.g. after the downstream refused it). */
  forget(principal: string): void {
    this.#cache.delete(`${principal}\u0000${this.#settings.audience}`);
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }

  async #exchange(subjectToken: Secret): Promise<ExchangedToken> {
    const s = this.#settings;
    // Loaded on demand: servers without token exchange never load the OAuth client.
    const oidc = await loadOidc();
    const config = new oidc.Configuration(
      { issuer: s.issuer, token_endpoint: s.tokenEndpoint },
      s.clientId,
      undefined,
      oidc.ClientSecretBasic(this.#clientSecret.current().reveal()),
    );
    config.timeout = Math.ceil(s.timeoutMs / 1000);
    if (new URL(s.tokenEndpoint).protocol === 'http:') oidc.allowInsecureRequests(config);
    const parameters: Record<string, string> = {
      subject_token: subjectToken.reveal(),
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
      audience: s.audience,
    };
    if (s.scope) parameters.scope = s.scope;
    const started = this.#now();
    let response: Awaited<ReturnType<typeof Oidc.genericGrantRequest>>;
    try {
      response = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE_GRANT, parameters);
    } catch (err) {
      if (err instanceof oidc.ResponseBodyError)
        throw new ToolError(
          ErrorCode.Forbidden,
          `the authorization server refused to issue a token for ${s.audience} (${safeOAuthError(err.error)})`,
          {
            cause: new Error(
              `token exchange refused: ${safeOAuthError(err.error)} (${err.status})`,
            ),
          },
        );
      throw new ToolError(
        ErrorCode.UpstreamUnavailable,
        'the authorization server is unavailable; try again later',
        { cause: err },
      );
    }
    const token = new Secret(response.access_token, `token exchange for ${s.audience}`);
    this.#options.onSecret?.(token);
    const lifetime = response.expiresIn() ?? s.defaultLifetimeSeconds;
    return { token, usableUntil: started + (lifetime - s.expirySkewSeconds) * 1000 };
  }
}

let oidcModule: Promise<typeof Oidc> | undefined;
/** `openid-client`, imported once on first use. */
function loadOidc(): Promise<typeof Oidc> {
  oidcModule ??= import('openid-client');
  return oidcModule;
}

/** An OAuth error code as sent (RFC 6749 §5.2 charset), or `error` when it is not one. */
function safeOAuthError(code: unknown): string {
  return typeof code === 'string' && /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(code)
    ? code
    : 'error';
}
