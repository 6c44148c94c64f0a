import { defineTool, ErrorCode, type ToolDefinition, ToolError } from '@hardened-mcp/core';
import type pg from 'pg';
import { z } from 'zod';
import { resolveRelationSchema } from './catalog.js';
import type { PgHandle } from './database.js';
import type { SqlGuardDecision } from './sql-guard.js';
import type { TablePolicy } from './table-policy.js';

/** `defineTool` with the Postgres handle type fixed, so `execute`'s context is fully typed. */
export function pgTool<S extends z.ZodType>(
  tool: Omit<ToolDefinition<z.output<S>, PgHandle>, 'input'> & { readonly input: S },
): ToolDefinition<z.output<S>, PgHandle> {
  return defineTool<S, PgHandle>(tool);
}

/** A statement the SQL guard accepted. */
export type GuardOk = Extract<SqlGuardDecision, { ok: true }>;

/** Scope of every read tool. */
export const READ_SCOPE = 'postgres:read';
/** Scope of every write tool. */
export const WRITE_SCOPE = 'postgres:write';

/** An identifier argument (1–63 characters, NAMEDATALEN − 1). Checked against the catalog, never interpolated. */
export const identifierArg = z.string().min(1).max(63);
/** A bound value: what `params` may hold. */
export const sqlValueArg = z.union([z.string().max(65_536), z.number(), z.boolean(), z.null()]);
/**
 * Second look at unqualified relations inside the statement's own transaction: each must resolve
 * (with search_path = the allowed schemas) to a readable table, not to `pg_catalog`.
 */
export async function checkResolvedRelations(
  client: pg.PoolClient,
  verdict: GuardOk,
  tables: TablePolicy,
): Promise<void> {
  for (const rel of verdict.relations) {
    const schema = rel.schema ?? (await resolveRelationSchema(client, rel.name));
    if (schema === null) continue; // does not exist: the statement fails with 42P01
    if (!tables.readable(schema, rel.name)) {
      throw new ToolError(
        ErrorCode.PolicyDenied,
        `relation ${rel.name} is not in the allowed schemas/tables`,
      );
    }
  }
}
