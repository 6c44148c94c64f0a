import { ErrorCode, ToolError, toolKit } from '@hardened-mcp/core';
import pg from 'pg';
import { z } from 'zod';
import type { PgHandle } from './database.js';
import type { SqlGuardDecision } from './sql-guard.js';
import type { TablePolicy } from './table-policy.js';

/** The Postgres tool kit: `postgres_` names, `postgres:read`/`postgres:write` scopes, a {@link PgHandle} per scope. */
export const kit = toolKit<PgHandle>('postgres');

/** A statement the SQL guard accepted. */
export type GuardOk = Extract<SqlGuardDecision, { ok: true }>;

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
  // Type names that can only be built-in scalars need no look-up.
  const typeNames = verdict.typeNames
    .filter((parts) => !(parts.length === 1 && PLAIN_TYPES.has(parts[0] ?? '')))
    .map((parts) => parts.map((p) => pg.escapeIdentifier(p)).join('.'));
  if (
    verdict.relations.length +
      verdict.attributeNames.length +
      verdict.operatorNames.length +
      typeNames.length ===
    0
  )
    return;
  // One round trip for every check (this runs on each query); the verdict is decided below in
  // the same order as the checks are documented.
  const r = await client.query<{
    rels: [string, string][];
    kids: [string, string][];
    fnattrs: string[];
    ops: string[];
    types: [string, string, string][];
  }>({
    text: `WITH RECURSIVE
             rel AS (SELECT c.oid, n.nspname, q.r AS relname
                       FROM unnest($1::text[], $2::text[]) AS q(s, r)
                       JOIN pg_class c ON c.oid = to_regclass(CASE WHEN q.s IS NULL THEN quote_ident(q.r) ELSE quote_ident(q.s) || '.' || quote_ident(q.r) END)
                       JOIN pg_namespace n ON n.oid = c.relnamespace),
             d(oid) AS (SELECT i.inhrelid FROM pg_inherits i JOIN rel ON i.inhparent = rel.oid
                        UNION SELECT i.inhrelid FROM pg_inherits i JOIN d ON i.inhparent = d.oid)
           SELECT
             (SELECT coalesce(json_agg(json_build_array(nspname, relname)), '[]') FROM rel) AS rels,
             (SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname)), '[]')
                FROM d JOIN pg_class c ON c.oid = d.oid JOIN pg_namespace n ON n.oid = c.relnamespace) AS kids,
             (SELECT coalesce(array_agg(f.name), '{}') FROM unnest($3::text[]) AS f(name)
               WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid IN (SELECT oid FROM rel) AND a.attname = f.name AND a.attnum > 0 AND NOT a.attisdropped)
                 AND EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = f.name)) AS fnattrs,
             (SELECT coalesce(array_agg(DISTINCT o.oprname::text), '{}') FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
               WHERE o.oprname = ANY($4::text[]) AND n.nspname <> 'pg_catalog') AS ops,
             (SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname, t.x)), '[]')
                FROM unnest($5::text[]) AS t(x) JOIN pg_type ty ON ty.oid = to_regtype(t.x)
                JOIN pg_class c ON c.oid = ty.typrelid JOIN pg_namespace n ON n.oid = c.relnamespace) AS types`,
    values: [
      verdict.relations.map((x) => x.schema),
      verdict.relations.map((x) => x.name),
      verdict.attributeNames,
      verdict.operatorNames,
      typeNames,
    ],
  });
  const row = r.rows[0];
  if (!row) return;
  // A relation that does not resolve is absent here: the statement itself fails with 42P01.
  for (const [schema, name] of row.rels) {
    if (!tables.readable(schema, name))
      throw new ToolError(
        ErrorCode.PolicyDenied,
        `relation ${name} is not in the allowed schemas/tables`,
      );
  }
  for (const [schema, name] of row.kids) {
    if (!tables.readable(schema, name)) {
      throw new ToolError(
        ErrorCode.PolicyDenied,
        `a table inheriting from a referenced table (${name}) is not allowed`,
      );
    }
  }
  for (const name of row.fnattrs) {
    if (!isAllowedFunction(name)) {
      throw new ToolError(
        ErrorCode.PolicyDenied,
        `function ${name} is not allowed (attribute notation; if it is a column alias, rename it)`,
      );
    }
  }
  const op = row.ops[0];
  if (op !== undefined)
    throw new ToolError(
      ErrorCode.PolicyDenied,
      `operator ${op} is not allowed: it is defined outside pg_catalog`,
    );
  for (const [schema, name, written] of row.types) {
    if (!tables.readable(schema, name)) {
      const bare = written.split('.').pop()?.replace(/^"|"$/g, '').replace(/""/g, '"') ?? written;
      throw new ToolError(ErrorCode.PolicyDenied, `type ${bare} is not allowed`);
    }
  }
}
