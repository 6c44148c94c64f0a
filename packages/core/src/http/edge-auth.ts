import type { IncomingMessage, ServerResponse } from 'node:http';
import { attachSubjectToken } from '../credentials/subject-token.js';
import { Secret } from '../credentials.js';
import { ErrorCode } from '../errors.js';
import type { ForwardedClaims, Identity } from '../identity.js';
import type { Pipeline } from '../pipeline.js';
import type { Authenticator, Principal } from './auth.js';
import { readBody } from './body.js';
import { HttpRefusal, plainError } from './http-refusal.js';
import { peerTlsOf } from './mtls.js';
import type { RefusalAggregator } from './refusal-audit.js';
import { mediaType, peerAddress, singleCredential } from './request-guards.js';
import type { Challenges, OAuthMetadataOptions } from './resource-metadata.js';

/** What {@link createEdgeAuth} needs. */
export interface EdgeAuthOptions {
  readonly authenticator: Authenticator;
  /** Roles of the anonymous principal (`auth.mode: none`). */
  readonly anonymousRoles: readonly string[];
  /** Scope checks and the audit path of refusals ({@link Pipeline.recordRefusal}). */
  readonly pipeline: Pipeline;
  readonly challenge: Challenges;
  /** Where refusals before authentication are counted (per peer and interval). */
  readonly refusals: RefusalAggregator;
  readonly trustedProxies: ReadonlySet<string>;
  /** Bound of a form body read to look for a second credential (`http.maxBodyBytes`). */
  readonly maxBodyBytes: number;
}

/** Authentication and the tool-scope check at the HTTP edge. */
export interface EdgeAuth {
  /**
   * Exactly one credential ({@link singleCredential}), then the authenticator. Failures are
   * audited (aggregated per peer and interval) and thrown as 400/401 refusals with a challenge;
   * the token is never logged.
   *
   * @throws HttpRefusal 400 `invalid_request`, 401 `unauthenticated`, 413 (an oversized form body)
   */
  authenticate(req: IncomingMessage, res: ServerResponse): Promise<Principal>;
  /**
   * RFC 6750 §3.1 `insufficient_scope` for a `tools/call` whose tool needs a scope the principal
   * lacks: audited through the pipeline under the tool's name, then thrown as a 403 naming the
   * scopes. Other messages pass.
   *
   * @throws HttpRefusal 403 `insufficient_scope`
   */
  checkToolScope(body: Record<string, unknown>, principal: Principal): void;
}

/** Builds the edge's authentication and scope check. */
export function createEdgeAuth(opts: EdgeAuthOptions): EdgeAuth {
  const { authenticator, pipeline, challenge, refusals } = opts;
  return {
    async authenticate(req, res) {
      const peer = peerAddress(req, opts.trustedProxies);
      let header: string | undefined;
      try {
        // A form body may carry `access_token` (RFC 6750 §2.2): read it (bounded) to refuse that.
        const form =
          req.method === 'POST' && mediaType(req) === 'application/x-www-form-urlencoded'
            ? (await readBody(req, res, opts.maxBodyBytes)).toString('utf8')
            : undefined;
        header = singleCredential(req, form, (e, d) => challenge.refused(e, d));
      } catch (err) {
        if (err instanceof HttpRefusal && err.reason === 'invalid_request')
          refusals.refuse(peer, 'invalid_request');
        throw err;
      }
      const result = await authenticator.authenticate(header, peerTlsOf(req));
      if (result.ok) {
        return authenticator.mode === 'none'
          ? { ...result.principal, roles: opts.anonymousRoles }
          : result.principal;
      }
      refusals.refuse(peer, result.error ?? 'unauthenticated');
      throw new HttpRefusal(
        401,
        'unauthenticated',
        plainError(result.error ?? 'unauthorized', result.description),
        { 'WWW-Authenticate': challenge.refused(result.error, result.description) },
      );
    },
    checkToolScope(body, principal) {
      if (!isToolCall(body)) return;
      const identity = identityOf(principal);
      const missing = pipeline.missingScopes(body.params.name, identity);
      if (!missing || missing.length === 0) return;
      pipeline.recordRefusal({
        identity,
        tool: body.params.name,
        code: ErrorCode.Forbidden,
        arguments: body.params.arguments,
      });
      const scope = missing.join(' ');
      throw new HttpRefusal(
        403,
        'insufficient_scope',
        {
          jsonrpc: '2.0',
          id: body.id ?? null,
          error: { code: -32001, message: `insufficient_scope: ${scope} required` },
        },
        { 'WWW-Authenticate': challenge.insufficientScope(scope) },
      );
    },
  };
}

/** The HTTP identity of an authenticated principal (client info comes later, from `initialize`). */
function identityOf(principal: Principal): Identity {
  return {
    principal: principal.principal,
    roles: principal.roles,
    scopes: principal.scopes,
    transport: 'http',
    client: {},
    ...(principal.claims ? { claims: principal.claims } : {}),
    ...(principal.attributes ? { attributes: principal.attributes } : {}),
  };
}

/**
 * Sets the SDK's `req.auth` (read back by {@link identityFromAuthInfo}): who the caller is. The
 * client's token is never handed on.
 */
export function withAuthInfo(req: IncomingMessage, principal: Principal): IncomingMessage {
  (req as IncomingMessage & { auth?: unknown }).auth = {
    token: '[not forwarded]',
    clientId: principal.clientId ?? principal.principal,
    scopes: [...principal.scopes],
    expiresAt: principal.expiresAt,
    extra: {
      principal: principal.principal,
      roles: [...principal.roles],
      ...(principal.claims ? { claims: principal.claims } : {}),
      ...(principal.attributes ? { attributes: principal.attributes } : {}),
      // Kept in-process for token exchange only (credentials/subject-token.ts).
      ...(principal.accessToken ? { subjectToken: principal.accessToken } : {}),
    },
  };
  return req;
}

/** Builds the stdio-or-HTTP identity from SDK auth info (set by `serveHttp`). */
export function identityFromAuthInfo(
  auth: { clientId?: string; scopes?: string[]; extra?: Record<string, unknown> } | undefined,
  client: { name?: string | undefined; version?: string | undefined },
): Identity | undefined {
  const principal = auth?.extra?.principal;
  if (typeof principal !== 'string') return undefined;
  const roles = Array.isArray(auth?.extra?.roles) ? (auth.extra.roles as string[]) : [];
  const identity: Identity = {
    principal,
    roles,
    scopes: auth?.scopes ?? [],
    transport: 'http',
    client,
    ...(isClaims(auth?.extra?.claims) ? { claims: auth.extra.claims } : {}),
    ...(isClaims(auth?.extra?.attributes) ? { attributes: auth.extra.attributes } : {}),
  };
  const token = auth?.extra?.subjectToken;
  return token instanceof Secret ? attachSubjectToken(identity, token) : identity;
}

/** The claims or attributes `withAuthInfo` stored (a frozen record built by the authenticator). */
function isClaims(value: unknown): value is ForwardedClaims {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The `scope` of the 401 challenge: `auth.oauth.scopesSupported` when configured, else the
 * scopes the enabled read tools require (write scopes are asked for by step-up, through the 403
 * `insufficient_scope` challenge of a write call).
 */
export function initialScope(pipeline: Pipeline, oauth: OAuthMetadataOptions): string | undefined {
  if (oauth.scopesSupported && oauth.scopesSupported.length > 0)
    return oauth.scopesSupported.join(' ');
  const nobody: Identity = { principal: '', roles: [], scopes: [], transport: 'http', client: {} };
  const scopes = new Set<string>();
  for (const tool of pipeline.listTools())
    if (tool.annotations.readOnlyHint)
      for (const s of pipeline.missingScopes(tool.name, nobody) ?? []) scopes.add(s);
  return scopes.size > 0 ? [...scopes].join(' ') : undefined;
}

function isToolCall(
  body: Record<string, unknown>,
): body is { id?: string | number; params: { name: string; arguments?: unknown } } {
  const b = body as { method?: unknown; params?: { name?: unknown } };
  return b.method === 'tools/call' && typeof b.params?.name === 'string';
}
