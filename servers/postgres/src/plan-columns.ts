import type pg from 'pg';
import { pipelined, queryExtended } from './database.js';

/**
 * Keys of an EXPLAIN (VERBOSE, FORMAT JSON) plan node whose values are expressions over the
 * node's inputs. Every column a scan emits appears in its `Output`; every column it filters on
 * in a condition; joins, sorts, groups and subplans refer to the scans' range names.
 */
const NON_EXPRESSION_KEYS = new Set(['Node Type', 'Relation Name', 'Schema', 'Alias', 'Plans']);

/** A scan of a base relation in the plan, with the expressions of its own node. */
interface Scan {
  /** The range name, unique in an EXPLAIN VERBOSE plan. */
  readonly alias: string;
  readonly schema: string;
  readonly table: string;
  /** The scan's `Output` list. */
  readonly output: readonly string[];
  /** The other expressions of the scan node (Filter, Index Cond…). */
  readonly conditions: readonly string[];
  /** The scan is the plan's top node (its output is the result). */
  readonly root: boolean;
}

/** Identifier as PostgreSQL prints it: bare when lower-case simple, else double-quoted. */
function printedForms(name: string): string[] {
  const quoted = `"${name.replace(/"/g, '""')}"`;
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? [name, quoted] : [quoted];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The expression strings of one plan node (not of its children). */
function ownExpressions(rec: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (k === 'Plans' || k === 'Plan' || NON_EXPRESSION_KEYS.has(k)) continue;
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const e of v) if (typeof e === 'string') out.push(e);
  }
  return out;
}

/**
 * Collects the scans of base relations and the expression strings of every other node of a plan
 * tree (iteratively).
 */
function walkPlan(root: unknown): { scans: Scan[]; upper: string[] } {
  const scans: Scan[] = [];
  const upper: string[] = [];
  const stack: { node: unknown; depth: number }[] = [{ node: root, depth: 0 }];
  let planNodes = 0;
  while (stack.length > 0) {
    const { node, depth } = stack.pop() as { node: unknown; depth: number };
    if (Array.isArray(node)) {
      for (const n of node) stack.push({ node: n, depth });
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    const rec = node as Record<string, unknown>;
    if ('Plan' in rec) stack.push({ node: rec.Plan, depth });
    if ('Plans' in rec) stack.push({ node: rec.Plans, depth: depth + 1 });
    if (!('Node Type' in rec)) continue;
    planNodes++;
    const isRoot = planNodes === 1;
    if (typeof rec['Relation Name'] === 'string' && typeof rec.Schema === 'string') {
      const table = rec['Relation Name'];
      const output = Array.isArray(rec.Output)
        ? rec.Output.filter((e): e is string => typeof e === 'string')
        : [];
      scans.push({
        alias: typeof rec.Alias === 'string' ? rec.Alias : table,
        schema: rec.Schema,
        table,
        output,
        conditions: ownExpressions({ ...rec, Output: undefined }),
        root: isRoot,
      });
    } else upper.push(...ownExpressions(rec));
  }
  return { scans, upper };
}

/** Every identifier of an expression (both parts of `a.b`), but not function or type names. */
function allNames(expression: string): string[] {
  const text = expression.replace(/'(?:[^']|'')*'/g, "''");
  const names: string[] = [];
  const re =
    /(::\s*)?(?<![A-Za-z0-9_$"])("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(?![A-Za-z0-9_$"])(\s*\()?/g;
  for (const m of text.matchAll(re)) {
    if (m[1] || m[3]) continue;
    const raw = m[2] ?? '';
    names.push(raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw);
  }
  return names;
}

/**
 * Unqualified identifiers of an expression: string literals removed, and neither function names
 * (followed by `(`), type names (after `::`) nor the second part of a qualified name.
 */
function unqualifiedNames(expression: string): string[] {
  const text = expression.replace(/'(?:[^']|'')*'/g, "''");
  const names: string[] = [];
  const re =
    /(::\s*)?(?<![A-Za-z0-9_$."])("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(?![A-Za-z0-9_$"])(\s*\()?(\.)?/g;
  for (const m of text.matchAll(re)) {
    if (m[1] || m[3] || m[4]) continue;
    const raw = m[2] ?? '';
    names.push(raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw);
  }
  return names;
}

/**
 * Every column of a base table the statement can read, as `schema.table.column`, resolved by
 * PostgreSQL's own planner rather than by re-implementing name resolution: the statement's
 * generic plan (constants as parameters, PREPAREd, `EXPLAIN (VERBOSE) EXECUTE` with NULL
 * arguments — nothing runs) lists, per scan of a base relation, the columns it emits and filters
 * on, qualified by a range name unique in the plan (unqualified when the query has a single
 * range-table entry: those belong to the scan whose node shows them). `*`, NATURAL/USING joins,
 * functions over columns, subqueries, CTEs and views are therefore already resolved to base
 * columns; a whole-row reference (`t`, `row_to_json(t)`, printed `t.*`) counts as every column of
 * `t`. Names are matched against the catalog's columns of the scanned tables; the match errs on
 * the side of more columns (an identifier inside a quoted name may count), never fewer.
 *
 * @param c - a client inside the statement's READ ONLY transaction, with the statement PREPAREd
 *   as `hmcp_explain` by the caller
 * @param paramCount - parameters of the prepared statement
 * @param after - statements sent in the same round trip as the catalog lookup, after it
 * @throws the database error of EXPLAIN (mapped by the caller)
 */
export async function columnsOfPreparedStatement(
  c: pg.PoolClient,
  paramCount: number,
  after: readonly (string | pg.QueryConfig)[] = [],
): Promise<string[]> {
  const args =
    paramCount > 0 ? `(${Array.from({ length: paramCount }, () => 'NULL').join(', ')})` : '';
  const r = await queryExtended<{ 'QUERY PLAN': unknown }>(
    c,
    `EXPLAIN (FORMAT JSON, VERBOSE true, COSTS false) EXECUTE hmcp_explain${args}`,
    [],
  );
  const { scans, upper } = walkPlan(r.rows[0]?.['QUERY PLAN']);
  if (scans.length === 0) {
    if (after.length > 0) await pipelined(c, after);
    return [];
  }
  const [catalog] = (await pipelined(c, [
    {
      text: `SELECT w.schema, w.tbl, a.attname AS col
             FROM unnest($1::text[], $2::text[]) AS w(schema, tbl)
             JOIN pg_namespace n ON n.nspname = w.schema
             JOIN pg_class cl ON cl.relnamespace = n.oid AND cl.relname = w.tbl
             JOIN pg_attribute a ON a.attrelid = cl.oid AND a.attnum > 0 AND NOT a.attisdropped`,
      values: [scans.map((s) => s.schema), scans.map((s) => s.table)],
    },
    ...after,
  ])) as [pg.QueryResult<{ schema: string; tbl: string; col: string }>];
  const columnsOf = new Map<string, Set<string>>();
  for (const row of catalog.rows) {
    const key = `${row.schema}.${row.tbl}`;
    let set = columnsOf.get(key);
    if (!set) {
      set = new Set();
      columnsOf.set(key, set);
    }
    set.add(row.col);
  }
  // A scan below another node may emit every column of its table (the planner's "physical
  // tlist", cheaper than projecting) whether or not they are used: its Output then says nothing,
  // and what is read is what the nodes above use. Its conditions always count.
  const physical = (scan: Scan, known: ReadonlySet<string>): boolean => {
    if (scan.root || scan.output.length !== known.size) return false;
    const names = scan.output.map((e) => allNames(e).at(-1));
    return (
      names.every((n) => n !== undefined && known.has(n)) && new Set(names).size === known.size
    );
  };
  const expressions: string[] = [...upper];
  const counted = scans.map((scan) => {
    const known = columnsOf.get(`${scan.schema}.${scan.table}`) ?? new Set<string>();
    const own = physical(scan, known) ? scan.conditions : [...scan.output, ...scan.conditions];
    expressions.push(...own);
    return { scan, known, own };
  });
  const upperNames = new Set(upper.flatMap(allNames));
  const text = expressions.join('\n');
  const columns = new Set<string>();
  for (const { scan, known, own } of counted) {
    const key = `${scan.schema}.${scan.table}`;
    const add = (col: string) => {
      if (known.has(col)) columns.add(`${key}.${col}`);
    };
    const alias = printedForms(scan.alias).map(escapeRegExp).join('|');
    const re = new RegExp(
      `(?<![A-Za-z0-9_$."])(?:${alias})\\.(\\*|"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`,
      'g',
    );
    for (const m of text.matchAll(re)) {
      const col = m[1] ?? '';
      if (col === '*') for (const k of known) add(k);
      else add(col.startsWith('"') ? col.slice(1, -1).replace(/""/g, '"') : col);
    }
    for (const e of own) for (const name of unqualifiedNames(e)) add(name);
    // Names used above the scans (unqualified with one range-table entry, or through a CTE or
    // subquery's own range name): counted for every scanned table that has such a column.
    for (const name of upperNames) add(name);
  }
  return [...columns].sort();
}
