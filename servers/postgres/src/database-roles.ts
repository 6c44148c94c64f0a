import { ErrorCode, type Identity, ToolError } from '@hardened-mcp/core';
import type { DatabaseRolesSettings } from './config.js';

/**
 * What one call's transaction is switched to when `postgres.databaseRoles` is configured: the
 * database role (`SET LOCAL ROLE`, as `pg_catalog.set_config('role', …, true)`) and the transaction-local
 * settings row-level-security policies read with `current_setting('hardened_mcp.principal', true)`
 * and `current_setting('hardened_mcp.claims', true)::jsonb`.
 */
export interface CallSession {
  /** The database role the call runs as. */
  readonly role: string;
  /** `hardened_mcp.principal`: the principal id. */
  readonly principal: string;
  /**
   * `hardened_mcp.claims`: JSON `{"principal": string, "roles": string[], "scopes": string[],
   * "transport": "stdio"|"http", …forwarded}`: the identity's allowlisted claims
   * (`auth.oauth.forwardClaims` over HTTP, `identity.claims` over stdio) as top-level members, so a
   * policy reads e.g. `current_setting('hardened_mcp.claims', true)::jsonb ->> 'country'`. The four
   * named members are reserved (config rejects forwarding them) and always win.
   */
  readonly claims: string;
}

/** Names of the transaction-local settings (custom options, PostgreSQL docs §19.16). */
export const PRINCIPAL_SETTING = 'hardened_mcp.principal';
/** See {@link PRINCIPAL_SETTING}. */
export const CLAIMS_SETTING = 'hardened_mcp.claims';

/**
 * The database role of `identity` for a call on the `scope` credential: the first rule (in
 * configuration order) whose `principal` equals the principal id or whose `identityRole` is
 * one of the principal's roles, else `default`. Undefined when nothing matches or the match has
 * no role for `scope` (a write without `write`).
 */
export function databaseRoleOf(
  settings: DatabaseRolesSettings,
  identity: Pick<Identity, 'principal' | 'roles'>,
  scope: 'read' | 'write',
): string | undefined {
  const rule =
    settings.rules.find(
      (r) =>
        (r.principal !== undefined && r.principal === identity.principal) ||
        (r.identityRole !== undefined && identity.roles.includes(r.identityRole)),
    ) ?? settings.default;
  return rule?.[scope];
}

/**
 * The {@link CallSession} of one call. Fails closed: without an identity, or for a principal no
 * rule maps (and no default), the call is refused before a connection is taken; it never runs
 * as the login role.
 *
 * @throws ToolError `forbidden` when no database role is mapped for the principal and scope.
 */
export function callSessionFor(
  settings: DatabaseRolesSettings,
  identity: Identity | undefined,
  scope: 'read' | 'write',
): CallSession {
  const role = identity ? databaseRoleOf(settings, identity, scope) : undefined;
  if (!identity || role === undefined) {
    throw new ToolError(
      ErrorCode.Forbidden,
      `no database role is mapped for this principal (${scope}); see postgres.databaseRoles`,
    );
  }
  return {
    role,
    principal: identity.principal,
    claims: JSON.stringify({
      ...(identity.claims ?? {}),
      principal: identity.principal,
      roles: [...identity.roles],
      scopes: [...(identity.scopes ?? [])],
      transport: identity.transport,
    }),
  };
}

/** Every database role the configuration names for `scope` (rules and default), deduplicated. */
export function mappedRoles(settings: DatabaseRolesSettings, scope: 'read' | 'write'): string[] {
  const roles = new Set<string>();
  for (const r of [...settings.rules, ...(settings.default ? [settings.default] : [])]) {
    const role = r[scope];
    if (role !== undefined) roles.add(role);
  }
  return [...roles];
}
