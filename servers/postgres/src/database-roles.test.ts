import { ToolError } from '@hardened-mcp/core';
import { describe, expect, it } from 'vitest';
import { postgresSectionSchema } from './config.js';
import { callSessionFor, databaseRoleOf, mappedRoles } from './database-roles.js';

const parse = (databaseRoles: unknown) => postgresSectionSchema.parse({ databaseRoles });

describe('postgres.databaseRoles', () => {
  const settings = parse({
    rules: [
      { principal: 'jane@chinookcorp.com', read: 'sales_rep', write: 'sales_rep_writer' },
      { identityRole: 'manager', read: 'sales_manager' },
    ],
  }).databaseRoles!;

  it('rules match a principal id or one of its roles, first match wins', () => {
    expect(databaseRoleOf(settings, { principal: 'jane@chinookcorp.com', roles: [] }, 'read')).toBe(
      'sales_rep',
    );
    expect(
      databaseRoleOf(settings, { principal: 'jane@chinookcorp.com', roles: ['manager'] }, 'read'),
    ).toBe('sales_rep');
    expect(databaseRoleOf(settings, { principal: 'nancy', roles: ['manager'] }, 'read')).toBe(
      'sales_manager',
    );
    expect(
      databaseRoleOf(settings, { principal: 'jane@chinookcorp.com', roles: [] }, 'write'),
    ).toBe('sales_rep_writer');
  });

  it('an unmapped principal, a write without a write role and a missing identity are refused', () => {
    const identity = { principal: 'mallory', roles: [], transport: 'stdio', client: {} } as const;
    expect(() => callSessionFor(settings, identity, 'read')).toThrow(ToolError);
    expect(() =>
      callSessionFor(settings, { ...identity, principal: 'nancy', roles: ['manager'] }, 'write'),
    ).toThrow(/no database role is mapped/);
    expect(() => callSessionFor(settings, undefined, 'read')).toThrow(/no database role/);
  });

  it('a default serves unmapped principals only when configured; claims are JSON', () => {
    const withDefault = parse({
      rules: [{ principal: 'x', read: 'a' }],
      default: { read: 'fallback' },
    }).databaseRoles!;
    const s = callSessionFor(
      withDefault,
      { principal: 'y', roles: ['r'], scopes: ['s'], transport: 'http', client: {} },
      'read',
    );
    expect(s).toEqual({
      role: 'fallback',
      principal: 'y',
      claims: JSON.stringify({ principal: 'y', roles: ['r'], scopes: ['s'], transport: 'http' }),
    });
    expect(mappedRoles(withDefault, 'read')).toEqual(['a', 'fallback']);
    expect(mappedRoles(settings, 'write')).toEqual(['sales_rep_writer']);
  });

  it('a rule names exactly one matcher; unknown keys are rejected', () => {
    expect(() => parse({ rules: [{ read: 'a' }] })).toThrow(/exactly one/);
    expect(() => parse({ rules: [{ principal: 'p', identityRole: 'r', read: 'a' }] })).toThrow(
      /exactly one/,
    );
    expect(() => parse({ rules: [{ principal: 'p', read: 'a', role: 'b' }] })).toThrow();
    expect(() => parse({ rules: [] })).toThrow();
  });
});
