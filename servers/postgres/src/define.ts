import { defineTool, ErrorCode, type ToolDefinition, ToolError } from '@hardened-mcp/core';
import type pg from 'pg';
import { z } from 'zod';
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
/** Built-in type names that are never a table's row type (skips a catalog round trip). */
const PLAIN_TYPES: ReadonlySet<string> = new Set([
  'int',
  'int2',
  'int4',
  'int8',
  'integer',
  'smallint',
  'bigint',
  'numeric',
  'decimal',
  'real',
  'float4',
  'float8',
  'text',
  'varchar',
  'bpchar',
  'char',
  'bool',
  'boolean',
  'date',
  'time',
  'timetz',
  'timestamp',
  'timestamptz',
  'interval',
  'json',
  'jsonb',
  'uuid',
  'bytea',
  'money',
  'inet',
  'cidr',
  'name',
]);

/**
 * The statement's catalog check, inside its own READ ONLY transaction (search_path = the allowed
 * schemas), for what the parse tree alone cannot decide:
 *
 * 1. every relation resolves to a readable table — an unqualified `pg_roles` resolves to
 *    `pg_catalog` and is refused — and so does every table that inherits from it or is a
 *    partition of it (their rows are read too);
 * 2. attribute notation: each trailing name of `a.b`/`(expr).b` must be a column of a referenced
 *    relation or an allowed function, because `b(a)` is what PostgreSQL runs otherwise
 *    (docs §10.3; a name defined only by an alias in the query is refused if a function of that
 *    name exists — rename the alias);
 * 3. each operator name used exists only in pg_catalog (a same-named operator in an allowed
 *    schema could be chosen by type resolution and runs its own function);
 * 4. each non-builtin type name in a cast is not the row type of an unreadable table.
 *
 * @throws ToolError `policy_denied` naming the relation, function or type.
 */
export async function checkStatementInCatalog(
  client: pg.PoolClient,
  verdict: GuardOk,
  tables: TablePolicy,
  isAllowedFunction: (name: string) => boolean,
): Promise<void> {
  const oids: number[] = [];
  if (verdict.relations.length > 0) {
    const r = await client.query<{ oid: number | null; nspname: string | null; relname: string }>({
      text: `SELECT c.oid::int8::float8 AS oid, n.nspname, q.r AS relname
               FROM unnest($1::text[], $2::text[]) AS q(s, r)
               LEFT JOIN pg_class c ON c.oid = to_regclass(CASE WHEN q.s IS NULL THEN quote_ident(q.r) ELSE quote_ident(q.s) || '.' || quote_ident(q.r) END)
               LEFT JOIN pg_namespace n ON n.oid = c.relnamespace`,
      values: [verdict.relations.map((x) => x.schema), verdict.relations.map((x) => x.name)],
    });
    for (const row of r.rows) {
      if (row.oid === null || row.nspname === null) continue; // does not exist: the statement fails with 42P01
      if (!tables.readable(row.nspname, row.relname))
        throw new ToolError(
          ErrorCode.PolicyDenied,
          `relation ${row.relname} is not in the allowed schemas/tables`,
        );
      oids.push(row.oid);
    }
    if (oids.length > 0) {
      const kids = await client.query<{ nspname: string; relname: string }>({
        text: `WITH RECURSIVE d(oid) AS (
                 SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = ANY($1::float8[]::int8[]::oid[])
                 UNION SELECT i.inhrelid FROM pg_inherits i JOIN d ON i.inhparent = d.oid)
               SELECT n.nspname, c.relname FROM d JOIN pg_class c ON c.oid = d.oid JOIN pg_namespace n ON n.oid = c.relnamespace`,
        values: [oids],
      });
      for (const k of kids.rows) {
        if (!tables.readable(k.nspname, k.relname))
          throw new ToolError(
            ErrorCode.PolicyDenied,
            `a table inheriting from a referenced table (${k.relname}) is not allowed`,
          );
      }
    }
  }
  if (verdict.attributeNames.length > 0) {
    const r = await client.query<{ name: string }>({
      text: `SELECT f.name FROM unnest($1::text[]) AS f(name)
              WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = ANY($2::float8[]::int8[]::oid[]) AND a.attname = f.name AND a.attnum > 0 AND NOT a.attisdropped)
                AND EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = f.name)`,
      values: [verdict.attributeNames, oids],
    });
    for (const row of r.rows) {
      if (!isAllowedFunction(row.name))
        throw new ToolError(
          ErrorCode.PolicyDenied,
          `function ${row.name} is not allowed (attribute notation; if it is a column alias, rename it)`,
        );
    }
  }
  if (verdict.operatorNames.length > 0) {
    const r = await client.query<{ oprname: string }>({
      text: `SELECT DISTINCT o.oprname FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
              WHERE o.oprname = ANY($1::text[]) AND n.nspname <> 'pg_catalog'`,
      values: [verdict.operatorNames],
    });
    const first = r.rows[0];
    if (first)
      throw new ToolError(
        ErrorCode.PolicyDenied,
        `operator ${first.oprname} is not allowed: it is defined outside pg_catalog`,
      );
  }
  for (const parts of verdict.typeNames) {
    const bare = parts[parts.length - 1] ?? '';
    if (parts.length === 1 && PLAIN_TYPES.has(bare)) continue;
    const r = await client.query<{ nspname: string; relname: string }>({
      text: `SELECT n.nspname, c.relname FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE t.oid = to_regtype(array_to_string(ARRAY(SELECT quote_ident(x) FROM unnest($1::text[]) x), '.'))`,
      values: [parts],
    });
    const row = r.rows[0];
    if (row && !tables.readable(row.nspname, row.relname))
      throw new ToolError(ErrorCode.PolicyDenied, `type ${bare} is not allowed`);
  }
}
