import type pg from 'pg';

/** A column as the catalog describes it. */
export interface ColumnDescription {
  readonly name: string;
  readonly type: string;
  readonly nullable: boolean;
  readonly default: string | null;
  readonly generated: boolean;
  readonly identity: boolean;
  readonly description: string | null;
}

/** `postgres_describe_table`'s result. */
export interface TableDescription {
  readonly schema: string;
  readonly table: string;
  readonly kind: string;
  /** Planner estimate (`pg_class.reltuples`), rows; null when never analyzed. */
  readonly rowEstimate: number | null;
  readonly description: string | null;
  readonly columns: readonly ColumnDescription[];
  readonly primaryKey: readonly string[];
  readonly foreignKeys: readonly {
    name: string;
    columns: string[];
    references: { schema: string; table: string; columns: string[] };
  }[];
  readonly indexes: readonly {
    name: string;
    unique: boolean;
    primary: boolean;
    definition: string;
  }[];
}

const KINDS: Record<string, string> = {
  r: 'table',
  p: 'partitioned table',
  v: 'view',
  m: 'materialized view',
  f: 'foreign table',
};

/** Every catalog lookup binds names as parameters; nothing is interpolated. */
export async function listSchemas(
  client: pg.ClientBase,
  schemas: readonly string[],
): Promise<{ schema: string; description: string | null }[]> {
  const r = await client.query<{ schema: string; description: string | null }>({
    text: `SELECT n.nspname AS schema, pg_catalog.obj_description(n.oid, 'pg_namespace') AS description
             FROM pg_namespace n
            WHERE n.nspname = ANY($1::text[]) AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
            ORDER BY pg_catalog.array_position($1::text[], n.nspname::text)`,
    values: [schemas],
  });
  return r.rows;
}

/** Relations in `schema` that the role may SELECT from. */
export async function listTables(
  client: pg.ClientBase,
  schema: string,
): Promise<
  { table: string; kind: string; rowEstimate: number | null; description: string | null }[]
> {
  const r = await client.query<{
    table: string;
    relkind: string;
    reltuples: number;
    description: string | null;
  }>({
    text: `SELECT c.relname AS table, c.relkind, c.reltuples::float8 AS reltuples, pg_catalog.obj_description(c.oid, 'pg_class') AS description
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname::text = $1::text AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
            ORDER BY c.relname`,
    values: [schema],
  });
  return r.rows.map((row) => ({
    table: row.table,
    kind: KINDS[row.relkind] ?? row.relkind,
    rowEstimate: row.reltuples < 0 ? null : Math.round(row.reltuples),
    description: row.description,
  }));
}

/** Describes one relation, or returns undefined when it does not exist or is not selectable. */
export async function describeTable(
  client: pg.ClientBase,
  schema: string,
  table: string,
): Promise<TableDescription | undefined> {
  const rel = await client.query<{
    oid: number;
    relkind: string;
    reltuples: number;
    description: string | null;
  }>({
    text: `SELECT c.oid::int8::float8 AS oid, c.relkind, c.reltuples::float8 AS reltuples, pg_catalog.obj_description(c.oid, 'pg_class') AS description
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname::text = $1::text AND c.relname::text = $2::text AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND pg_catalog.has_table_privilege(c.oid, 'SELECT')`,
    values: [schema, table],
  });
  const r = rel.rows[0];
  if (!r) return undefined;
  const cols = await client.query<{
    name: string;
    type: string;
    notnull: boolean;
    def: string | null;
    generated: string;
    identity: string;
    description: string | null;
  }>({
    text: `SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
                  pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS def, a.attgenerated::text AS generated, a.attidentity::text AS identity,
                  pg_catalog.col_description(a.attrelid, a.attnum) AS description
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = $1::float8::int8::oid AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum`,
    values: [r.oid],
  });
  const cons = await client.query<{
    name: string;
    contype: string;
    columns: string[];
    ref_schema: string | null;
    ref_table: string | null;
    ref_columns: string[] | null;
  }>({
    text: `SELECT con.conname AS name, con.contype::text AS contype,
                  ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY k(attnum, i)
                        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i) AS columns,
                  rn.nspname AS ref_schema, rc.relname AS ref_table,
                  ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY k(attnum, i)
                        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.i) AS ref_columns
             FROM pg_constraint con
             LEFT JOIN pg_class rc ON rc.oid = con.confrelid
             LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
            WHERE con.conrelid = $1::float8::int8::oid AND con.contype IN ('p', 'f')
            ORDER BY con.conname`,
    values: [r.oid],
  });
  const idx = await client.query<{
    name: string;
    unique: boolean;
    primary: boolean;
    definition: string;
  }>({
    text: `SELECT ic.relname AS name, i.indisunique AS unique, i.indisprimary AS primary, pg_catalog.pg_get_indexdef(i.indexrelid) AS definition
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
            WHERE i.indrelid = $1::float8::int8::oid ORDER BY ic.relname`,
    values: [r.oid],
  });
  return {
    schema,
    table,
    kind: KINDS[r.relkind] ?? r.relkind,
    rowEstimate: r.reltuples < 0 ? null : Math.round(r.reltuples),
    description: r.description,
    columns: cols.rows.map((c) => ({
      name: c.name,
      type: c.type,
      nullable: !c.notnull,
      default: c.def,
      generated: c.generated !== '',
      identity: c.identity !== '',
      description: c.description,
    })),
    primaryKey: cons.rows.find((c) => c.contype === 'p')?.columns ?? [],
    foreignKeys: cons.rows
      .filter((c) => c.contype === 'f')
      .map((c) => ({
        name: c.name,
        columns: c.columns,
        references: {
          schema: c.ref_schema ?? '',
          table: c.ref_table ?? '',
          columns: c.ref_columns ?? [],
        },
      })),
    indexes: idx.rows,
  };
}

const typeNames = new Map<number, string>();

/** Type names for result column type OIDs (cached per process; OIDs of built-in types are fixed). */
export async function typeNamesFor(
  client: pg.ClientBase,
  oids: readonly number[],
): Promise<Map<number, string>> {
  const missing = [...new Set(oids)].filter((o) => !typeNames.has(o));
  if (missing.length > 0) {
    const r = await client.query<{ oid: number; name: string }>({
      text: 'SELECT oid::int8::float8 AS oid, pg_catalog.format_type(oid, NULL) AS name FROM pg_type WHERE oid = ANY($1::int8[]::oid[])',
      values: [missing],
    });
    // Only built-in types (OID < 16384, FirstNormalObjectId) are cached; user types can be recreated.
    for (const row of r.rows) if (row.oid < 16384) typeNames.set(row.oid, row.name);
    const out = new Map(typeNames);
    for (const row of r.rows) out.set(row.oid, row.name);
    return out;
  }
  return typeNames;
}
