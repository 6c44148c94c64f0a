import { createHash, hash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { CryptoKey, JSONWebKeySet, JWK, JWTPayload, JWTVerifyGetKey } from 'jose';
import type { z } from 'zod';
import { type authConfigSchema, forwardedClaimValueSchema } from '../config.js';
import { Secret } from '../credentials.js';
import { StartupError } from '../errors.js';
import type { ForwardedClaims } from '../identity.js';
import {
  certificateThumbprint,
  describeCertificateFailure,
  type PeerTls,
  principalFromCertificate,
} from './mtls.js';

/** The `jose` module (loaded on first use, see {@link createAuthenticator}). */
type Jose = typeof import('jose');

/** The `auth:` configuration section. */
export type AuthConfig = z.infer<typeof authConfigSchema>;

/** Who a request authenticated as. */
export interface Principal {
  /** Token `sub` or API key principal; `anonymous` for `auth.mode: none`. */
  readonly principal: string;
  /** OAuth `client_id`/`azp` or the API key id. */
  readonly clientId?: string | undefined;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  /** Seconds since the epoch. */
  readonly expiresAt?: number | undefined;
  /**
   * The verified OAuth access token itself (oauth mode), for RFC 8693 token exchange only
   * (`principalCredentials.tokenExchange`); never handed to a connector or forwarded upstream.
   */
  readonly accessToken?: Secret | undefined;
  /** The token claims allowlisted by `auth.oauth.forwardClaims` (oauth mode). */
  readonly claims?: ForwardedClaims | undefined;
  /**
   * The verified token's claims (OAuth), as policy attributes (`policies.claims`): in-process
   * only, never handed to a data source (that is `claims`).
   */
  readonly attributes?: Readonly<Record<string, unknown>> | undefined;
}

/** An authentication failure, mapped to RFC 6750 §3 responses. */
export interface AuthFailure {
  readonly ok: false;
  /** 401 for missing/invalid credentials. */
  readonly status: 401;
  /** RFC 6750 error code; absent when no credentials were sent (§3.1). */
  readonly error?: 'invalid_token' | 'invalid_request' | undefined;
  /** Safe description for the response body and audit (never the token). */
  readonly description: string;
}

/** Authenticates one HTTP request from its `Authorization` header and its TLS client certificate. */
export interface Authenticator {
  readonly mode: AuthConfig['mode'];
  authenticate(
    authorization: string | undefined,
    tls?: PeerTls | undefined,
  ): Promise<{ ok: true; principal: Principal } | AuthFailure>;
}

/**
 * Builds the authenticator for `auth.mode`:
 *
 * - `oauth`: an OAuth 2.1 resource server. Bearer JWT access tokens (RFC 6750 header only; tokens
 *   in query strings are never read) verified with `jose` against a JWKS URL (cached, refetched on
 *   an unknown `kid`) and/or static keys; `iss` must equal the issuer, `aud` must contain this
 *   server's canonical resource URL (RFC 8707, MCP 2025-11-25 Authorization §"Token Audience
 *   Binding"), `exp`/`nbf` are checked with bounded clock skew, and only the configured asymmetric
 *   algorithms are accepted (never `none` or HS*; RFC 8725 §3.1-3.2); with
 *   `accessTokenType: at+jwt` only RFC 9068 access tokens (`typ: at+jwt`) are accepted.
 * - `api-key`: `Authorization: Bearer <key>`; keys are stored only as SHA-256 hashes and compared in
 *   constant time; expired keys are refused.
 * - `none`: everyone is `anonymous` with the connector's reader role (the HTTP server allows this on loopback only).
 *
 * @param resource - this server's canonical resource URL, the default expected `aud` (read per request: it is known once the listener is bound)
 * @throws StartupError when static key files cannot be read or parsed.
 */
export async function createAuthenticator(
  config: AuthConfig,
  resource: () => string,
): Promise<Authenticator> {
  if (config.mode === 'none') {
    return {
      mode: 'none',
      authenticate: async () => ({
        ok: true,
        principal: { principal: 'anonymous', roles: ['reader'], scopes: [] },
      }),
    };
  }
  if (config.mode === 'api-key') return apiKeyAuthenticator(config.apiKeys);
  if (config.mode === 'mtls') return mtlsAuthenticator(config.mtls!);
  const mtls = config.mtls;
  const oauth = config.oauth!;
  // jose is loaded only for OAuth (startup cost of the other modes and of stdio, issue 14).
  const jose = await import('jose');
  const keySources: JWTVerifyGetKey[] = [];
  if (oauth.jwksUrl)
    keySources.push(
      jose.createRemoteJWKSet(new URL(oauth.jwksUrl), {
        cooldownDuration: 30_000,
        cacheMaxAge: 600_000,
        timeoutDuration: 5_000,
      }),
    );
  if (oauth.keys.length > 0) keySources.push(await staticKeys(jose, oauth.keys));
  const getKey: JWTVerifyGetKey = async (header, token) => {
    let lastError: unknown;
    for (const source of keySources) {
      try {
        return await source(header, token);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError ?? new jose.errors.JWKSNoMatchingKey();
  };
  return {
    mode: 'oauth',
    async authenticate(authorization, tls) {
      // With auth.mtls, a verified client certificate is required before any token is looked at.
      if (mtls && !tls?.authorized)
        return { ok: false, status: 401, description: describeCertificateFailure(tls) };
      const token = bearerToken(authorization);
      if (!token.ok) return token;
      try {
        const { payload } = await jose.jwtVerify(token.value, getKey, {
          issuer: oauth.issuer,
          audience: oauth.audience ?? resource(),
          algorithms: oauth.algorithms,
          clockTolerance: oauth.clockToleranceSeconds,
          requiredClaims: ['sub', 'exp'],
          // RFC 9068 §4: the typ header is checked by jose (media type, `application/` optional).
          ...(oauth.accessTokenType === 'at+jwt' ? { typ: 'at+jwt' } : {}),
        });
        const binding = checkCertificateBinding(payload, tls, mtls?.requireBoundTokens === true);
        if (binding)
          return { ok: false, status: 401, error: 'invalid_token', description: binding };
        const claims = forwardedClaims(payload, oauth.forwardClaims);
        if (typeof claims === 'string')
          return { ok: false, status: 401, error: 'invalid_token', description: claims };
        return {
          ok: true,
          principal: {
            ...principalFromClaims(payload, oauth.scopeRoles),
            accessToken: new Secret(token.value, 'caller access token'),
            ...(claims ? { claims } : {}),
          },
        };
      } catch (err) {
        return {
          ok: false,
          status: 401,
          error: 'invalid_token',
          description: describeJoseError(jose.errors, err),
        };
      }
    },
  };
}

/**
 * RFC 8705 §3: a token carrying `cnf.x5t#S256` is bound to the client certificate with that
 * SHA-256 thumbprint, and is refused over a connection without that (verified) certificate.
 * With `required`, a token without the confirmation is refused too.
 *
 * @returns the refusal reason, or undefined when the token may be used.
 */
function checkCertificateBinding(
  payload: JWTPayload,
  tls: PeerTls | undefined,
  required: boolean,
): string | undefined {
  const cnf = payload.cnf as Record<string, unknown> | undefined;
  const bound = cnf && typeof cnf === 'object' ? cnf['x5t#S256'] : undefined;
  if (bound === undefined)
    return required ? 'the token is not bound to a client certificate (cnf.x5t#S256)' : undefined;
  if (typeof bound !== 'string') return 'the token has an invalid certificate binding (cnf)';
  if (!tls?.authorized || !tls.certificate)
    return 'the token is bound to a client certificate the connection does not present';
  const actual = Buffer.from(certificateThumbprint(tls.certificate));
  const expected = Buffer.from(bound);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected))
    return 'the token is bound to another client certificate (cnf.x5t#S256)';
  return undefined;
}

/** `auth.mode: mtls`: the verified client certificate is the credential (see mtls.ts). */
function mtlsAuthenticator(mtls: NonNullable<AuthConfig['mtls']>): Authenticator {
  return {
    mode: 'mtls',
    async authenticate(_authorization, tls) {
      if (!tls?.authorized || !tls.certificate)
        return { ok: false, status: 401, description: describeCertificateFailure(tls) };
      const mapped = await principalFromCertificate(tls.certificate, mtls.rules);
      if (!mapped)
        return {
          ok: false,
          status: 401,
          description: 'the client certificate maps to no principal',
        };
      return {
        ok: true,
        principal: {
          principal: mapped.principal,
          clientId: `x5t#S256:${certificateThumbprint(tls.certificate)}`,
          roles: mapped.roles,
          scopes: mapped.scopes,
        },
      };
    },
  };
}

/**
 * The claims of `payload` named by `auth.oauth.forwardClaims`, frozen; absent claims are left
 * out. Fails closed: a listed claim of another shape (object, boolean, …) or over the bounds of
 * `forwardedClaimValueSchema` refuses the token rather than being dropped or truncated.
 *
 * @returns the claims (undefined when none are present), or the refusal reason (claim name only,
 *   never its value).
 */
function forwardedClaims(
  payload: JWTPayload,
  names: readonly string[],
): ForwardedClaims | undefined | string {
  const out: Record<string, string | number | readonly string[]> = {};
  for (const name of names) {
    if (!Object.hasOwn(payload, name) || payload[name] === undefined) continue;
    const parsed = forwardedClaimValueSchema.safeParse(payload[name]);
    if (!parsed.success)
      return `the token claim ${name} is not a bounded string, number or array of strings`;
    out[name] = Array.isArray(parsed.data) ? Object.freeze([...parsed.data]) : parsed.data;
  }
  return Object.keys(out).length > 0 ? Object.freeze(out) : undefined;
}

function principalFromClaims(
  payload: JWTPayload,
  scopeRoles: Readonly<Record<string, readonly string[]>>,
): Principal {
  const raw = payload.scope ?? payload.scp;
  const scopes =
    typeof raw === 'string'
      ? raw.split(' ').filter(Boolean)
      : Array.isArray(raw)
        ? raw.filter((s): s is string => typeof s === 'string')
        : [];
  const roles = new Set<string>();
  for (const s of scopes)
    if (Object.hasOwn(scopeRoles, s)) for (const r of scopeRoles[s] ?? []) roles.add(r);
  const clientId =
    typeof payload.client_id === 'string'
      ? payload.client_id
      : typeof payload.azp === 'string'
        ? payload.azp
        : undefined;
  return {
    principal: String(payload.sub),
    clientId,
    roles: [...roles],
    scopes,
    expiresAt: payload.exp,
    attributes: payload,
  };
}

/** A safe, stable reason for a token failure (no token content). */
function describeJoseError(joseErrors: Jose['errors'], err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return 'the token is not for this resource (aud)';
    if (err.claim === 'iss') return 'the token is from an unexpected issuer (iss)';
    if (err.claim === 'nbf') return 'the token is not yet valid (nbf)';
    if (err.claim === 'typ') return 'the token is not an access token (typ must be at+jwt)';
    return `the token claim ${err.claim} is invalid`;
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'the token algorithm is not allowed';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no key matches the token (kid)';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return 'the token signature is invalid';
  if (
    err instanceof joseErrors.JWKSTimeout ||
    (err instanceof joseErrors.JOSEError && err.code === 'ERR_JWKS_INVALID')
  )
    return 'the token could not be verified (key set unavailable)';
  return 'the token is invalid';
}

function bearerToken(authorization: string | undefined): { ok: true; value: string } | AuthFailure {
  if (!authorization) return { ok: false, status: 401, description: 'authentication required' };
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization.trim());
  if (!match?.[1])
    return {
      ok: false,
      status: 401,
      error: 'invalid_request',
      description: 'expected Authorization: Bearer <token>',
    };
  return { ok: true, value: match[1] };
}

async function staticKeys(
  jose: Jose,
  keys: NonNullable<AuthConfig['oauth']>['keys'],
): Promise<JWTVerifyGetKey> {
  const jwks: JWK[] = [];
  const pems: { key: CryptoKey; alg: string; kid?: string | undefined }[] = [];
  for (const k of keys) {
    if ('jwk' in k) {
      jwks.push(k.jwk as JWK);
      continue;
    }
    let text: string;
    try {
      text = await readFile(k.pemFile, 'utf8');
    } catch (err) {
      throw new StartupError(
        `cannot read auth key file ${k.pemFile} (${(err as NodeJS.ErrnoException).code})`,
      );
    }
    try {
      const key = text.includes('BEGIN CERTIFICATE')
        ? await jose.importX509(text, k.alg)
        : await jose.importSPKI(text, k.alg);
      pems.push({ key, alg: k.alg, kid: k.kid });
    } catch {
      throw new StartupError(
        `auth key file ${k.pemFile} is not a public key or certificate for ${k.alg}`,
      );
    }
  }
  const local =
    jwks.length > 0 ? jose.createLocalJWKSet({ keys: jwks } as JSONWebKeySet) : undefined;
  return async (header, token) => {
    const pem = pems.find(
      (p) => p.alg === header.alg && (p.kid === undefined || p.kid === header.kid),
    );
    if (pem) return pem.key;
    if (local) return local(header, token);
    throw new jose.errors.JWKSNoMatchingKey();
  };
}

function apiKeyAuthenticator(keys: AuthConfig['apiKeys']): Authenticator {
  const entries = keys.map((k) => ({
    ...k,
    digest: Buffer.from(k.sha256, 'hex'),
    expires: k.expiresAt ? Date.parse(k.expiresAt) : undefined,
  }));
  return {
    mode: 'api-key',
    async authenticate(authorization) {
      const token = bearerToken(authorization);
      if (!token.ok) return token;
      // One-shot digest (crypto.hash): the same SHA-256 without a Hash object per request.
      const digest = hash('sha256', token.value, 'buffer');
      // Compare against every key in constant time per comparison; no early exit on a match.
      let found: (typeof entries)[number] | undefined;
      for (const e of entries) if (timingSafeEqual(e.digest, digest) && !found) found = e;
      if (!found)
        return {
          ok: false,
          status: 401,
          error: 'invalid_token',
          description: 'the API key is not valid',
        };
      if (found.expires !== undefined && Date.now() >= found.expires)
        return {
          ok: false,
          status: 401,
          error: 'invalid_token',
          description: 'the API key has expired',
        };
      return {
        ok: true,
        principal: {
          principal: found.principal,
          clientId: found.id,
          roles: found.roles,
          scopes: found.scopes,
        },
      };
    },
  };
}

/** SHA-256 hex of an API key, for `auth.apiKeys[].sha256`. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
