import { type ResourceRef, toolKit } from '@hardened-mcp/core';
import { z } from 'zod';
import type { PgHandle } from './database.js';
import type { SqlGuardDecision } from './sql-guard.js';

/** The Postgres tool kit: `postgres_` names, `postgres:read`/`postgres:write` scopes, a {@link PgHandle} per scope. */
export const kit = toolKit<PgHandle>('postgres');

/** A statement the SQL guard accepted. */
export type GuardOk = Extract<SqlGuardDecision, { ok: true }>;

/**
 * The Cedar resource type of the SQL read tools (`postgres_query`, `postgres_explain`, saved
 * read queries): `Statement` with the set of relations it names. Spread into a tool's `resource`
 * beside an `of` returning {@link statementRef}.
 */
export const statementType = {
  type: 'Statement',
  attributes: { tables: 'StringSet' },
} as const;

/**
 * The resource of one accepted statement: the relations as written (`schema.name` or `name`).
 * Its classification paths are empty: the columns are classified in `execute`, resolved by the
 * planner before any row is read (generic-plan.ts).
 */
export function statementRef(verdict: Pick<GuardOk, 'relations'>): ResourceRef {
  return {
    id: 'statement',
    attrs: { tables: verdict.relations.map((r) => (r.schema ? `${r.schema}.${r.name}` : r.name)) },
    classify: [],
  };
}

/** Scope of every read tool. */
export const READ_SCOPE = kit.readScope;
/** Scope of every write tool. */
export const WRITE_SCOPE = kit.writeScope;

/**
 * An identifier argument: 1–63 UTF-8 bytes (NAMEDATALEN − 1; PostgreSQL silently truncates longer
 * names, which would let a long name alias a denied table). Checked against the catalog, never interpolated.
 */
export const identifierArg = z
  .string()
  .min(1)
  .max(63)
  .refine((s) => Buffer.byteLength(s, 'utf8') <= 63, 'identifiers are at most 63 bytes');
/** A bound value: what `params` may hold. */
export const sqlValueArg = z.union([z.string().max(65_536), z.number(), z.boolean(), z.null()]);
/** The per-statement catalog check (moved to catalog-check.ts; re-exported for the tools). */
export { checkStatementInCatalog } from './catalog-check.js';
