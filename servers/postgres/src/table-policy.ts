import type { PostgresSettings } from './config.js';

/** Table-level policy from configuration (pipeline step 5 for the Postgres connector). */
export interface TablePolicy {
  /** The allowed schemas, in search_path order. */
  readonly schemas: readonly string[];
  schemaAllowed(schema: string): boolean;
  /** Visible for reading: schema allowed, on `tables.allow` if set, not on `tables.deny`. */
  readable(schema: string, table: string): boolean;
  /** Writable: readable and on `tables.writable` if set. */
  writable(schema: string, table: string): boolean;
}

/**
 * Compiles the configured allow/deny lists. Entries are `schema.table` (exact) or a bare
 * `table` (that name in any allowed schema). Comparison is exact: PostgreSQL identifiers are
 * case-sensitive once created (docs §4.1.1), and the catalog returns them as stored.
 */
export function createTablePolicy(settings: PostgresSettings): TablePolicy {
  const schemas = new Set(settings.schemas);
  const compile = (list: readonly string[] | undefined) =>
    list === undefined ? undefined : new Set(list);
  const allow = compile(settings.tables.allow);
  const denyList = compile(settings.tables.deny) ?? new Set<string>();
  const writableList = compile(settings.tables.writable);
  const matches = (set: ReadonlySet<string>, schema: string, table: string) =>
    set.has(`${schema}.${table}`) || set.has(table);
  const readable = (schema: string, table: string) =>
    schemas.has(schema) &&
    (allow === undefined || matches(allow, schema, table)) &&
    !matches(denyList, schema, table);
  return Object.freeze({
    schemas: Object.freeze([...settings.schemas]),
    schemaAllowed: (schema: string) => schemas.has(schema),
    readable,
    writable: (schema: string, table: string) =>
      readable(schema, table) &&
      (writableList === undefined || matches(writableList, schema, table)),
  });
}
