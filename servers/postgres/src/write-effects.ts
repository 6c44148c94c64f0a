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

/**
 * Every table the current transaction has changed so far, with the rows it changed, read from
 * `pg_stat_xact_user_tables` (n_tup_ins + n_tup_upd + n_tup_del: per-transaction counters that
 * include what cascades of foreign keys (`ON DELETE/UPDATE CASCADE`, `SET NULL`, `SET DEFAULT`)
 * and triggers did, visible inside the transaction before COMMIT; PostgreSQL docs §27.2.2,
 * "pg_stat_xact_all_tables"). Partitions are reported under their partition root.
 */
export async function tableChanges(client: pg.ClientBase): Promise<TableChange[]> {
  const r = await client.query<{ schema: string; table: string; rows: number }>(
    `SELECT n.nspname AS schema, c.relname AS table, sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::float8 AS rows
       FROM pg_stat_xact_user_tables s
       JOIN pg_class c ON c.oid = coalesce(pg_partition_root(s.relid), s.relid)
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE s.n_tup_ins + s.n_tup_upd + s.n_tup_del > 0
      GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  return r.rows;
}

/** What a write may change: see {@link checkWriteEffects}. */
export interface WriteBounds {
  /** Words for messages, e.g. `the statement` or `saved query close_ticket`. */
  readonly what: string;
  /** The most rows the whole change may touch, over every table (`postgres.maxAffectedRows`). */
  readonly cap: number;
  /** Rows the statement itself reported (its command tag); the larger of this and the measured total counts. */
  readonly reported: number;
  /** `target`: only this table may change (the approval named it); `writable`: any table the policy lets the tools write. */
  readonly allowed:
    | { readonly target: { schema: string; table: string } }
    | { readonly writable: TablePolicy };
}

/**
 * The second half of a write, before COMMIT: the approved change must be the whole change. Throws
 * (so the caller's transaction rolls back) when a table the write may not change was changed —
 * through a cascade or a trigger — or when the rows changed over every table exceed the cap.
 * Returns the number of rows changed (the larger of the measured total and `reported`).
 *
 * @throws ToolError `policy_denied` for a table outside the bounds, `limit_exceeded` over the cap.
 */
export async function checkWriteEffects(
  client: pg.ClientBase,
  bounds: WriteBounds,
): Promise<number> {
  const changes = await tableChanges(client);
  const outside = changes.filter((c) =>
    'target' in bounds.allowed
      ? c.schema !== bounds.allowed.target.schema || c.table !== bounds.allowed.target.table
      : !bounds.allowed.writable.writable(c.schema, c.table),
  );
  const first = outside[0];
  if (first !== undefined) {
    const rows = outside.reduce((n, c) => n + c.rows, 0);
    const where =
      'target' in bounds.allowed
        ? `${outside.length} other table(s) (first: ${first.schema}.${first.table}) through a cascade or trigger, which the approval did not cover`
        : `${outside.length} table(s) that are not writable by policy (first: ${first.schema}.${first.table})`;
    throw new ToolError(
      ErrorCode.PolicyDenied,
      `${bounds.what} would also change ${rows} row(s) in ${where}; rolled back, nothing was changed`,
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
  return total;
}
