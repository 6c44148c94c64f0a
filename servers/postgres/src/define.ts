import { defineTool, type ToolDefinition } from '@hardened-mcp/core';
import { z } from 'zod';
import type { PgHandle } from './database.js';
import type { SqlGuardDecision } from './sql-guard.js';

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
