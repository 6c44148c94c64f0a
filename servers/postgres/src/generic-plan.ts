import type pg from 'pg';
import { pipelined } from './database.js';
import { columnsOfPreparedStatement } from './plan-columns.js';

/** At most this many parameters get a type by {@link prepareGeneric}'s retries. */
const MAX_TYPED_RETRIES = 32;

/**
 * `PREPARE hmcp_explain` of the constants-as-parameters statement. A parameter that stood for a
 * string literal in a place with no type context (an argument of a variadic `"any"` function such
 * as `jsonb_build_object('id', …)`) cannot be inferred (SQLSTATE 42P18), where the literal would
 * have been resolved as `text` (PostgreSQL docs §10.1, "unknown" literals): such a parameter is
 * declared `text` and the statement prepared again, inside a savepoint so the transaction stays
 * usable. `before` is sent in the first attempt's round trip, ahead of the savepoint. Every other parameter stays `unknown`, i.e. inferred from its context (docs, PREPARE).
 *
 * @throws the database error of the last attempt (mapped by the caller)
 */
export async function prepareGeneric(
  c: pg.PoolClient,
  generic: { readonly sql: string; readonly paramCount: number },
  before: readonly (string | pg.QueryConfig)[] = [],
): Promise<void> {
  const types: string[] = Array.from({ length: generic.paramCount }, () => 'unknown');
  for (let attempt = 0; ; attempt++) {
    const declared = types.length > 0 ? ` (${types.join(', ')})` : '';
    try {
      // One round trip: the savepoint, the PREPARE (extended protocol even without parameters:
      // one statement only) and its release are pipelined.
      await pipelined(c, [
        ...(attempt === 0 ? before : []),
        'SAVEPOINT hmcp_prepare',
        {
          text: `PREPARE hmcp_explain${declared} AS ${generic.sql}`,
          values: [],
          queryMode: 'extended',
        } as pg.QueryConfig,
        'RELEASE SAVEPOINT hmcp_prepare',
      ]);
      return;
    } catch (err) {
      await c.query('ROLLBACK TO SAVEPOINT hmcp_prepare');
      const e = err as { code?: string; message?: string };
      const n = Number(/parameter \$(\d+)/.exec(e.message ?? '')?.[1]);
      if (e.code !== '42P18' || !(n >= 1 && n <= types.length) || types[n - 1] === 'text')
        throw err;
      if (attempt >= MAX_TYPED_RETRIES) throw err;
      types[n - 1] = 'text';
    }
  }
}

/**
 * Every column (`schema.table.column`) a read statement can reach, resolved by the planner over
 * its generic plan (plan-columns.ts), for column-level classification before it runs. Leaves no
 * prepared statement behind and `plan_cache_mode` as it was (`auto`) for the rest of the
 * transaction. Used by `postgres_query`, `postgres_explain` and saved read queries.
 *
 * @param generic - the statement with its constants as parameters (or a saved query's own `$n`)
 * @throws the database error (mapped by the caller)
 */
export async function columnsOfGeneric(
  c: pg.PoolClient,
  generic: { readonly sql: string; readonly paramCount: number },
): Promise<string[]> {
  await prepareGeneric(c, generic, [
    "SELECT pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)",
  ]);
  return columnsOfPreparedStatement(c, generic.paramCount, [
    'DEALLOCATE hmcp_explain',
    "SELECT pg_catalog.set_config('plan_cache_mode', 'auto', true)",
  ]);
}
