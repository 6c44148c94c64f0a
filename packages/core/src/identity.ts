import { userInfo } from 'node:os';

/** How the call reached the server. */
export type Transport = 'stdio' | 'http';

/** The client software as it named itself in `initialize` (MCP `clientInfo`). */
export interface ClientInfo {
  readonly name?: string | undefined;
  readonly version?: string | undefined;
}

/**
 * The effective identity of one tool call: who (principal), with which roles, over which
 * transport, from which client. Pipeline step 1.
 */
export interface Identity {
  /** Stable principal id: a configured name, the OS user (stdio) or a token subject (HTTP). */
  readonly principal: string;
  /** Role names; each grants scopes through the configured role map. */
  readonly roles: readonly string[];
  /** Scopes granted directly (e.g. from an OAuth token), in addition to the roles' scopes. */
  readonly scopes?: readonly string[] | undefined;
  readonly transport: Transport;
  readonly client: ClientInfo;
  /**
   * Allowlisted caller attributes (e.g. `department`, `tenant`): over HTTP the token claims named
   * by `auth.oauth.forwardClaims`, over stdio `identity.claims` from configuration. Never the
   * whole token. Connectors may hand them to the data source (e.g. Postgres row-level security
   * reads them from `hardened_mcp.claims`).
   */
  readonly claims?: ForwardedClaims | undefined;
  /**
   * Attributes for policies and classification (in-process only, never forwarded): over HTTP
   * the verified token's claims, over stdio `identity.claims` from configuration. Read through
   * the `policies.claims` names.
   */
  readonly attributes?: Readonly<Record<string, unknown>> | undefined;
}

/** One forwarded claim value: a string, a number, or an array of strings. */
export type ForwardedClaim = string | number | readonly string[];

/** Forwarded claims by name; see {@link Identity.claims}. */
export type ForwardedClaims = Readonly<Record<string, ForwardedClaim>>;

/**
 * The stdio identity: `identity.principal`/`identity.roles` from configuration, defaulting to
 * the OS user and the configured default roles; `identity.claims` become {@link Identity.claims}. The OS user lookup can fail in minimal
 * containers (no passwd entry); then the principal is `uid:<n>`.
 */
export function resolveStdioIdentity(
  configured: {
    readonly principal?: string | undefined;
    readonly roles?: readonly string[] | undefined;
    readonly claims?: ForwardedClaims | undefined;
  },
  defaultRoles: readonly string[],
  client: ClientInfo = {},
): Identity {
  return Object.freeze({
    principal: configured.principal ?? osPrincipal(),
    roles: Object.freeze([...(configured.roles ?? defaultRoles)]),
    transport: 'stdio' as const,
    client: Object.freeze({ ...client }),
    ...(configured.claims && Object.keys(configured.claims).length > 0
      ? { claims: Object.freeze({ ...configured.claims }) }
      : {}),
    ...(configured.claims && Object.keys(configured.claims).length > 0
      ? { attributes: Object.freeze({ ...configured.claims }) }
      : {}),
  });
}

function osPrincipal(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid:${process.getuid?.() ?? 'unknown'}`;
  }
}
