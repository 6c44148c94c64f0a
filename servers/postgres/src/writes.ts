import {
  ALLOW,
  type Decision,
  deny,
  ErrorCode,
  type Identity,
  type Tool,
  ToolError,
} from '@hardened-mcp/core';
import pg from 'pg';
import { z } from 'zod';
import type { PostgresSettings } from './config.js';
import { type PgHandle, withTransaction } from './database.js';
import { identifierArg, kit, sqlValueArg } from './define.js';
import type { SqlValue } from './query.js';
import { describeValues, escapeForApproval } from './saved-queries.js';
import type { TablePolicy } from './table-policy.js';
import { checkWriteEffects, readTableCounters, sideEffectsNote } from './write-effects.js';

/** Columns and primary key of a writable table, straight from the catalog. */
interface WritableTable {
  /** Schema-qualified, quoted name from catalog values (safe to embed). */
  readonly quoted: string;
  /** The schema and table as the catalog names them. */
  readonly schema: string;
  readonly table: string;
  readonly columns: ReadonlySet<string>;
  readonly primaryKey: readonly string[];
}

async function loadTable(
  client: pg.PoolClient,
  schema: string,
  table: string,
): Promise<WritableTable> {
  const r = await client.query<{
    nspname: string;
    relname: string;
    columns: string[];
    pk: string[] | null;
  }>({
    text: `SELECT n.nspname, c.relname,
                  ARRAY(SELECT a.attname::text FROM pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns,
                  (SELECT ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY k(attnum, i)
                                JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i)
                     FROM pg_constraint con WHERE con.conrelid = c.oid AND con.contype = 'p') AS pk
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname::text = $1::text AND c.relname::text = $2::text AND c.relkind IN ('r', 'p')`,
    values: [schema, table],
  });
  const row = r.rows[0];
  if (!row) throw new ToolError(ErrorCode.UpstreamError, `table ${schema}.${table} does not exist`);
  return {
    quoted: `${pg.escapeIdentifier(row.nspname)}.${pg.escapeIdentifier(row.relname)}`,
    schema: row.nspname,
    table: row.relname,
    columns: new Set(row.columns),
    primaryKey: row.pk ?? [],
  };
}

function checkColumns(t: WritableTable, names: readonly string[], what: string): void {
  const unknown = names.filter((n) => !t.columns.has(n));
  if (unknown.length > 0)
    throw new ToolError(
      ErrorCode.InvalidInput,
      `${what}: unknown or generated column ${unknown.slice(0, 5).join(', ')}`,
    );
}

function checkKey(t: WritableTable, key: Readonly<Record<string, SqlValue>>): string[] {
  if (t.primaryKey.length === 0)
    throw new ToolError(
      ErrorCode.PolicyDenied,
      'the table has no primary key; rows can only be changed by primary key',
    );
  const names = Object.keys(key);
  const pk = new Set(t.primaryKey);
  if (names.length !== pk.size || names.some((n) => !pk.has(n))) {
    throw new ToolError(
      ErrorCode.InvalidInput,
      `key must name exactly the primary key column(s): ${t.primaryKey.join(', ')}`,
    );
  }
  return t.primaryKey.slice();
}

const valuesArg = z.record(identifierArg, sqlValueArg);

/**
 * The write tools (read-write mode, write credential, approval). SQL is generated: identifiers
 * come from the catalog and are quoted (`pg.escapeIdentifier`), values are bound parameters.
 * `key` is an equality match on the whole primary key. A statement changing more than
 * `maxAffectedRows` rows over all tables (cascades and triggers included), or changing a table
 * that is not writable by policy, is rolled back; every approval text says so.
 */
export function createWriteTools(
  settings: PostgresSettings,
  tables: TablePolicy,
): Tool<PgHandle>[] {
  const cap = settings.maxAffectedRows;
  const where = (schema: string | undefined, table: string): Decision => {
    const s = schema ?? tables.schemas[0]!;
    if (!tables.schemaAllowed(s))
      return deny(ErrorCode.PolicyDenied, `schema ${s} is not in the allowed schemas`);
    return tables.writable(s, table)
      ? ALLOW
      : deny(ErrorCode.PolicyDenied, `table ${s}.${table} is not writable by policy`);
  };
  const target = (schema: string | undefined, table: string) =>
    `${escapeForApproval(schema ?? tables.schemas[0]!)}.${escapeForApproval(table)}`;

  /**
   * One generated write in its own READ WRITE transaction: loads the table from the catalog,
   * lets `build` produce the statement (identifiers quoted, values pushed as `$n`), runs it and,
   * before COMMIT, measures every table the transaction changed (see write-effects.ts): it rolls
   * back when a cascade or trigger changed a table that is not writable, or when the rows changed
   * over all tables exceed the cap. Returns the tool output (with the rows changed per table).
   */
  const runWrite = async (
    ctx: { client: PgHandle; signal: AbortSignal; identity: Identity },
    input: { schema?: string | undefined; table: string },
    build: (t: WritableTable, values: SqlValue[]) => string,
  ) => {
    const schema = input.schema ?? tables.schemas[0]!;
    const effects = await withTransaction(
      ctx.client,
      // The principal: connections are shared fairly between principals (database.ts FairGate).
      {
        readOnly: false,
        signal: ctx.signal,
        principal: ctx.identity.principal,
        identity: ctx.identity,
      },
      async (c) => {
        const t = await loadTable(c, schema, input.table);
        const values: SqlValue[] = [];
        const text = build(t, values);
        const before = await readTableCounters(c);
        const r = await c.query({ text, values });
        return checkWriteEffects(c, {
          what: 'the statement',
          cap,
          reported: r.rowCount ?? 0,
          tables,
          before,
        });
      },
    );
    return {
      kind: 'json' as const,
      data: {
        table: `${schema}.${input.table}`,
        affectedRows: effects.total,
        changes: effects.changes.map((ch) => ({
          table: `${ch.schema}.${ch.table}`,
          rows: ch.rows,
        })),
      },
    };
  };
  const equalities = (
    cols: readonly string[],
    source: Readonly<Record<string, SqlValue>>,
    values: SqlValue[],
  ) => cols.map((col) => `${pg.escapeIdentifier(col)} = $${values.push(source[col] ?? null)}`);

  const insert = kit.write({
    name: 'insert_rows',
    title: 'Insert rows',
    description: `Inserts rows (objects of column → value, all with the same columns) into a table. Needs approval; at most ${cap} rows.`,
    destructive: false,
    output: 'json',
    input: z.strictObject({
      schema: identifierArg.optional(),
      table: identifierArg,
      rows: z.array(valuesArg).min(1).max(10_000),
    }),
    policy(input) {
      const d = where(input.schema, input.table);
      if (!d.ok) return d;
      if (input.rows.length > cap)
        return deny(ErrorCode.LimitExceeded, `at most ${cap} rows per insert`);
      const cols = Object.keys(input.rows[0]!).sort().join('\u0000');
      if (cols === '') return deny(ErrorCode.InvalidInput, 'rows must name at least one column');
      if (input.rows.some((r) => Object.keys(r).sort().join('\u0000') !== cols))
        return deny(ErrorCode.InvalidInput, 'all rows must have the same columns');
      return ALLOW;
    },
    describeChange: (input) =>
      `INSERT ${input.rows.length} row(s) into ${target(input.schema, input.table)}:\n${input.rows.map((r) => `  ${describeValues(r)}`).join('\n')}\n${sideEffectsNote(cap)}`,
    async execute(input, ctx) {
      const cols = Object.keys(input.rows[0]!);
      return runWrite(ctx, input, (t, values) => {
        checkColumns(t, cols, 'insert');
        const tuples = input.rows.map(
          (row) => `(${cols.map((col) => `$${values.push(row[col] ?? null)}`).join(', ')})`,
        );
        return `INSERT INTO ${t.quoted} (${cols.map((x) => pg.escapeIdentifier(x)).join(', ')}) VALUES ${tuples.join(', ')}`;
      });
    },
  });

  const update = kit.write({
    name: 'update_rows',
    title: 'Update a row by primary key',
    description:
      'Sets columns of the row whose primary key equals `key` (all primary key columns). Needs approval.',
    idempotent: true,
    output: 'json',
    input: z.strictObject({
      schema: identifierArg.optional(),
      table: identifierArg,
      key: valuesArg,
      set: valuesArg,
    }),
    policy(input) {
      const d = where(input.schema, input.table);
      if (!d.ok) return d;
      if (Object.keys(input.key).length === 0)
        return deny(ErrorCode.InvalidInput, 'key must name the primary key column(s)');
      if (Object.keys(input.set).length === 0)
        return deny(ErrorCode.InvalidInput, 'set must name at least one column');
      return ALLOW;
    },
    describeChange: (input) =>
      `UPDATE ${target(input.schema, input.table)}\n  SET ${describeValues(input.set)}\n  WHERE ${describeValues(input.key)}\n${sideEffectsNote(cap)}`,
    async execute(input, ctx) {
      return runWrite(ctx, input, (t, values) => {
        const setCols = Object.keys(input.set);
        checkColumns(t, setCols, 'set');
        const keyCols = checkKey(t, input.key);
        const assignments = equalities(setCols, input.set, values);
        return `UPDATE ONLY ${t.quoted} SET ${assignments.join(', ')} WHERE ${equalities(keyCols, input.key, values).join(' AND ')}`;
      });
    },
  });

  const remove = kit.write({
    name: 'delete_rows',
    title: 'Delete a row by primary key',
    description:
      'Deletes the row whose primary key equals `key` (all primary key columns). Needs approval.',
    idempotent: true,
    output: 'json',
    input: z.strictObject({
      schema: identifierArg.optional(),
      table: identifierArg,
      key: valuesArg,
    }),
    policy(input) {
      const d = where(input.schema, input.table);
      if (!d.ok) return d;
      return Object.keys(input.key).length === 0
        ? deny(ErrorCode.InvalidInput, 'key must name the primary key column(s)')
        : ALLOW;
    },
    describeChange: (input) =>
      `DELETE FROM ${target(input.schema, input.table)}\n  WHERE ${describeValues(input.key)}\n${sideEffectsNote(cap)}`,
    async execute(input, ctx) {
      return runWrite(
        ctx,
        input,
        (t, values) =>
          `DELETE FROM ONLY ${t.quoted} WHERE ${equalities(checkKey(t, input.key), input.key, values).join(' AND ')}`,
      );
    },
  });

  return [insert, update, remove];
}
