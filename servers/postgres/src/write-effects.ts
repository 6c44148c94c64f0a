import { ErrorCode, ToolError } from '@hardened-mcp/core';
import type pg from 'pg';
import type { TablePolicy } from './table-policy.js';

/** Rows one write transaction changed in one table (partitions counted under their root). */
export interface TableChange {
  readonly schema: string;
  readonly table: string;
  /** Rows inserted + updated + deleted so far in this transaction. */
  readonly rows: number;
}

/** Per-table change counters at one moment: key = the table's (partition root's) oid. */
export type TableCounters = ReadonlyMap<string, TableChange>;

/**
 * The backend's change counters per table, read from `pg_stat_xact_user_tables`
 * (n_tup_ins + n_tup_upd + n_tup_del; PostgreSQL docs §27.2.2 "pg_stat_xact_all_tables"). They
 * count what foreign-key cascades (`ON DELETE/UPDATE CASCADE`, `SET NULL`, `SET DEFAULT`) and
 * triggers did, and are visible inside the transaction before COMMIT. Since PostgreSQL 15 they
 * may also hold counts of the backend's earlier transactions not yet flushed to the shared
 * statistics (flushes happen only between transactions), so a write reads them before and after
 * its statement, in the same transaction, and uses the difference. Partitions count under their
 * partition root.
 */
export async function readTableCounters(client: pg.ClientBase): Promise<TableCounters> {
  const r = await client.query<{ id: string; schema: string; table: string; rows: number }>(
    `SELECT c.oid::text AS id, n.nspname AS schema, c.relname AS table, pg_catalog.sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::float8 AS rows
       FROM pg_stat_xact_user_tables s
       JOIN pg_class c ON c.oid = coalesce(pg_catalog.pg_partition_root(s.relid), s.relid)
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE s.n_tup_ins + s.n_tup_upd + s.n_tup_del > 0
      GROUP BY 1, 2, 3`,
  );
  return new Map(
    r.rows.map((row) => [row.id, { schema: row.schema, table: row.table, rows: row.rows }]),
  );
}

/** The tables whose counters moved from `before` to `after`, with the rows each changed, sorted by name. */
export function tableChanges(before: TableCounters, after: TableCounters): TableChange[] {
  const out: TableChange[] = [];
  for (const [id, now] of after) {
    const rows = now.rows - (before.get(id)?.rows ?? 0);
    if (rows > 0) out.push({ ...now, rows });
  }
  return out.sort((a, b) =>
    a.schema === b.schema ? (a.table < b.table ? -1 : 1) : a.schema < b.schema ? -1 : 1,
  );
}

/** What a write may change: see {@link checkWriteEffects}. */
export interface WriteBounds {
  /** Words for messages, e.g. `the statement` or `saved query close_ticket`. */
  readonly what: string;
  /** The most rows the whole change may touch, over every table (`postgres.maxAffectedRows`). */
  readonly cap: number;
  /** Rows the statement itself reported (its command tag); the larger of this and the measured total counts. */
  readonly reported: number;
  /** The table policy: every table the transaction changed must be writable by it. */
  readonly tables: TablePolicy;
  /** The counters read (with {@link readTableCounters}) in this transaction before the statement ran. */
  readonly before: TableCounters;
}

/** What a write changed, per table, after {@link checkWriteEffects} accepted it. */
export interface WriteEffects {
  /** Rows changed over every table: the larger of the measured total and the command tag's count. */
  readonly total: number;
  readonly changes: readonly TableChange[];
}

/**
 * The second half of a write, before COMMIT: the approved change must be the whole change (the
 * approval text states this rule). Throws — so the caller's transaction rolls back — when any
 * table that is not writable by policy was changed (directly, through a foreign key's cascade or
 * through a trigger), or when the rows changed over every table exceed the cap.
 *
 * @throws ToolError `policy_denied` for a table that is not writable, `limit_exceeded` over the cap.
 */
export async function checkWriteEffects(
  client: pg.ClientBase,
  bounds: WriteBounds,
): Promise<WriteEffects> {
  const changes = tableChanges(bounds.before, await readTableCounters(client));
  const outside = changes.filter((c) => !bounds.tables.writable(c.schema, c.table));
  const first = outside[0];
  if (first !== undefined) {
    const rows = outside.reduce((n, c) => n + c.rows, 0);
    throw new ToolError(
      ErrorCode.PolicyDenied,
      `${bounds.what} would also change ${rows} row(s) of ${outside.length} table(s) that are not writable by policy (first: ${first.schema}.${first.table}), through a cascade or trigger; rolled back, nothing was changed`,
    );
  }
  const total = Math.max(
    bounds.reported,
    changes.reduce((n, c) => n + c.rows, 0),
  );
  if (total > bounds.cap)
    throw new ToolError(
      ErrorCode.LimitExceeded,
      `${bounds.what} would change ${total} rows, more than the cap of ${bounds.cap}; rolled back, nothing was changed`,
    );
  return { total, changes };
}

/**
 * The sentence every write approval ends with: what else may change and what is rolled back.
 * `cap` is `postgres.maxAffectedRows`.
 */
export function sideEffectsNote(cap: number): string {
  return `Rows changed by foreign-key cascades and triggers count too: only writable tables may change, at most ${cap} rows in all; otherwise everything is rolled back.`;
}
