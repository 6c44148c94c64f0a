import { ErrorCode, ToolError } from '@hardened-mcp/core';
import pg from 'pg';
import type { GuardOk } from './define.js';
import { BUILTIN_FUNCTION_ALLOWLIST } from './function-allowlist.js';
import type { TablePolicy } from './table-policy.js';

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

/** What the one catalog query returns (see the SQL in {@link checkStatementInCatalog}). */
interface CatalogFacts {
  /** Referenced relations that resolved: written schema (or null), written name, resolved schema and name. */
  rels: [string | null, string, string, string][];
  /** Columns of referenced relations named in attribute notation: written schema, written name, column. */
  relcols: [string | null, string, string][];
  /** Relations read through views/materialized views (transitively), and inheritors/partitions. */
  deps: [string, string][];
  kids: [string, string][];
  /** Functions and operators called by those views: schema, name. */
  depfns: [string, string][];
  depops: [string, string][];
  /** Per name: [name, exists in pg_catalog, exists in another schema on the search path]. */
  procs: [string, boolean, boolean][];
  ops: string[];
  /** Row types of relations named as types: schema, relation, written name. */
  types: [string, string, string][];
  /** Type hazards: [type, reason] for each type the statement reaches. */
  hazards: [string, string][];
}

/**
 * The statement's catalog check, inside its own READ ONLY transaction (search_path = the allowed
 * schemas), for what the parse tree alone cannot decide. It runs before the statement is parsed
 * by the server, so nothing it refuses is ever planned or executed (planning alone can run an
 * immutable user function through constant folding). Checked in one round trip:
 *
 * 1. every relation resolves to a readable table — an unqualified `pg_roles` resolves to
 *    `pg_catalog` and is refused — and so does every table that inherits from it or is a
 *    partition of it (their rows are read too);
 * 2. a view or materialized view is readable only if every relation it reads (through its
 *    `_RETURN` rule's `pg_depend` entries, transitively through other views) is readable, every
 *    function it calls is an allowlisted `pg_catalog` function and every operator it uses is in
 *    `pg_catalog` ("function-backed" views are refused: a function's body is opaque);
 * 3. functions: a call of an allowlisted built-in name is refused when a function of the same name
 *    exists in a schema on the search path other than `pg_catalog` — PostgreSQL's overload
 *    resolution (docs §10.3: best match over every visible function, implicit casts, variadic)
 *    could choose it. Names the operator allows through `functions.allow` that are not built-in
 *    names are the operator's choice and resolve as configured;
 * 4. attribute notation: in `q.name`, when a function `name` exists that is not a safe allowlisted
 *    built-in, `q` must be the range name of base relations only and `name` a column of each of
 *    them (`name(q)` is what PostgreSQL runs otherwise, docs §8.16.5); after an expression or a
 *    subquery/CTE alias, `name` must be a column of a referenced relation and no user-defined
 *    function of that name may exist (a column alias with the name of such a function is
 *    refused: rename it);
 * 5. each operator name used (including the `=`, `<`, `>=`, … implied by BETWEEN, simple CASE
 *    and USING/NATURAL joins) exists only in `pg_catalog`;
 * 6. each non-builtin type name in a cast is not the row type of an unreadable table;
 * 7. every type the statement reaches — cast types and the column types of referenced relations,
 *    followed through domains, arrays, composite attributes and ranges — is not an
 *    object-identifier type (`oid`, `reg*`, `oidvector`: their input looks names up in every
 *    schema and their output prints any object's name, docs §8.19), has no input/output/
 *    subscript function (nor a range's canonical or subtype-difference function) outside
 *    `pg_catalog`, no user-defined cast function (implicit or not)
 *    from or to a user-defined type, no domain constraint calling a function outside
 *    `pg_catalog`, and no operator outside `pg_catalog` on a user-defined type (operator classes
 *    use them for ORDER BY, DISTINCT and joins without naming them).
 *
 * @param isAllowedFunction the configured function policy (built-in allowlist, `functions.allow`,
 *   minus the deny list).
 * @throws ToolError `policy_denied` naming the relation, function, operator or type as written.
 */
export async function checkStatementInCatalog(
  client: pg.PoolClient,
  verdict: GuardOk,
  tables: TablePolicy,
  isAllowedFunction: (name: string) => boolean,
): Promise<void> {
  const queries = catalogCheckQueries(verdict, tables);
  if (queries.length === 0) return;
  // On its generic plan, as in `withTransaction` with `firstOnGenericPlan` (the check itself
  // switches the mode back to `auto`).
  await client.query(GENERIC_PLAN_ON);
  const results: pg.QueryResult[] = [];
  for (const q of queries) results.push(await client.query(q as pg.QueryConfig));
  decideCatalogCheck(results, verdict, tables, isAllowedFunction);
}

/** The switch to the generic plan for {@link checkStatementInCatalog} (transaction-local). */
const GENERIC_PLAN_ON =
  "SELECT pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)";

/**
 * The catalog check's protocol-level prepared statement (node-pg's `name`: parsed once per
 * connection, then only bound and executed; it survives ROLLBACK and the per-call reset, see
 * `KEPT_STATEMENTS` in database.ts).
 */
export const CATALOG_STATEMENT = 'hmcp_catalog';

/**
 * The statement of {@link checkStatementInCatalog} for `withTransaction`'s `first` (sent in the
 * round trip that opens the transaction), every value bound. Empty when the statement names
 * nothing to check.
 *
 * The check runs on its generic plan (planned once per connection, PostgreSQL docs §19.7.4
 * `plan_cache_mode` and PREPARE): re-planning it for every call with its arrays' values cost
 * about as much as running it (PostgreSQL 15: 9.5 ms a call with custom plans, 5.3 ms generic).
 * Pass {@link CATALOG_CHECK_ON_GENERIC_PLAN} as `withTransaction`'s `firstOnGenericPlan`: the
 * settings statement switches `plan_cache_mode` to `force_generic_plan` (read when the check is
 * bound), and the check's own select list switches it back to `auto` for the rest of the
 * transaction ({@link CATALOG_CHECK_SQL}), so no statement of its own is spent on either switch.
 *
 * @returns no statement, or the check alone; give its results to {@link decideCatalogCheck}.
 */
export function catalogCheckQueries(
  verdict: GuardOk,
  tables: TablePolicy,
): (string | pg.QueryConfig)[] {
  const typeNames = verdict.typeNames
    .filter((parts) => !(parts.length === 1 && PLAIN_TYPES.has(parts[0] ?? '')))
    .map((parts) => parts.map((p) => pg.escapeIdentifier(p)).join('.'));
  const calls = verdict.functions.filter((f) => !f.includes('.'));
  const names = [...new Set([...calls, ...verdict.attributeNames])];
  if (
    verdict.relations.length + names.length + verdict.operatorNames.length + typeNames.length ===
    0
  )
    return [];
  return [
    {
      name: CATALOG_STATEMENT,
      text: CATALOG_CHECK_SQL,
      values: [
        verdict.relations.map((x) => x.schema),
        verdict.relations.map((x) => x.name),
        names,
        verdict.operatorNames,
        typeNames,
        tables.schemas,
        verdict.attributeNames,
      ],
    },
  ];
}

/**
 * `withTransaction`'s `firstOnGenericPlan` for {@link catalogCheckQueries}: true, the check must
 * be bound on its generic plan (it sets `plan_cache_mode` back to `auto` itself).
 */
export const CATALOG_CHECK_ON_GENERIC_PLAN = true;

/**
 * Decides the catalog check from the results of {@link catalogCheckQueries}' statement (one
 * row of facts); nothing to decide for none. Fails closed on anything else.
 *
 * @throws ToolError `policy_denied` as {@link checkStatementInCatalog} documents.
 */
export function decideCatalogCheck(
  results: readonly pg.QueryResult[],
  verdict: GuardOk,
  tables: TablePolicy,
  isAllowedFunction: (name: string) => boolean,
): void {
  if (results.length === 0) return;
  const facts = results[0]?.rows[0] as CatalogFacts | undefined;
  if (results.length !== 1 || !facts)
    throw new ToolError(ErrorCode.Internal, 'internal error; see the server log', {
      cause: new Error('the catalog check returned no facts'),
    });
  decide(facts, verdict, tables, isAllowedFunction);
}

/** The verdict from the catalog facts, in the order the checks are documented. */
function decide(
  facts: CatalogFacts,
  verdict: GuardOk,
  tables: TablePolicy,
  isAllowedFunction: (name: string) => boolean,
): void {
  const deny = (message: string) => new ToolError(ErrorCode.PolicyDenied, message);
  // 1. A relation that does not resolve is absent here: the statement itself fails with 42P01.
  for (const [, written, schema, name] of facts.rels) {
    if (!tables.readable(schema, name))
      throw deny(`relation ${written} is not in the allowed schemas/tables`);
  }
  // 2. Views: never name what they read (that name may itself be the secret).
  const viaView = 'a view or materialized view in the statement';
  for (const [schema, name] of facts.deps) {
    if (!tables.readable(schema, name))
      throw deny(`${viaView} reads a relation that is not in the allowed schemas/tables`);
  }
  for (const [schema, name] of facts.depfns) {
    if (schema !== 'pg_catalog' || !isAllowedFunction(name))
      throw deny(`${viaView} calls a function that is not allowed`);
  }
  if (facts.depops.length > 0) throw deny(`${viaView} uses an operator defined outside pg_catalog`);
  for (const [schema, name] of facts.kids) {
    if (!tables.readable(schema, name))
      throw deny(`a table inheriting from a referenced table (${name}) is not allowed`);
  }
  // 3. Calls.
  const procs = new Map(facts.procs.map(([n, inCatalog, outside]) => [n, { inCatalog, outside }]));
  for (const name of verdict.functions) {
    if (name.includes('.') || !BUILTIN_FUNCTION_ALLOWLIST.has(name)) continue;
    if (procs.get(name)?.outside)
      throw deny(
        `function ${name} is not allowed: a function of that name is defined outside pg_catalog and could be chosen instead`,
      );
  }
  // 4. Attribute notation.
  const safeFunction = (name: string) => {
    const p = procs.get(name);
    if (p === undefined || (!p.inCatalog && !p.outside)) return true; // only a column can match
    return isAllowedFunction(name) && !(BUILTIN_FUNCTION_ALLOWLIST.has(name) && p.outside);
  };
  const relKey = (schema: string | null, name: string) => `${schema ?? ''}\u0000${name}`;
  const columnsOf = new Map<string, Set<string>>();
  for (const [schema, name, column] of facts.relcols) {
    const k = relKey(schema, name);
    const set = columnsOf.get(k) ?? new Set<string>();
    set.add(column);
    columnsOf.set(k, set);
  }
  const opaque = new Set(verdict.opaqueAliases);
  const aliases = verdict.relationAliases;
  for (const { qualifier, name } of verdict.attributeRefs) {
    if (safeFunction(name)) continue;
    const candidates =
      qualifier === null || opaque.has(qualifier)
        ? []
        : aliases.filter((a) => a.alias === qualifier);
    const ok =
      candidates.length > 0
        ? candidates.every((a) => columnsOf.get(relKey(a.schema, a.name))?.has(name) === true)
        : procs.get(name)?.outside !== true &&
          [...columnsOf.values()].some((cols) => cols.has(name));
    if (!ok)
      throw deny(
        `function ${name} is not allowed (attribute notation; if it is a column alias, rename it)`,
      );
  }
  // 5. Operators.
  const op = facts.ops[0];
  if (op !== undefined)
    throw deny(`operator ${op} is not allowed: it is defined outside pg_catalog`);
  // 6. Row types of unreadable tables.
  for (const [schema, name, written] of facts.types) {
    if (!tables.readable(schema, name)) {
      const bare = written.split('.').pop()?.replace(/^"|"$/g, '').replace(/""/g, '"') ?? written;
      throw deny(`type ${bare} is not allowed`);
    }
  }
  // 7. Reached types.
  const hazard = facts.hazards[0];
  if (hazard !== undefined) throw deny(`type ${hazard[0]} is not allowed: ${hazard[1]}`);
}

/**
 * The facts for {@link decide}. Parameters: $1/$2 written relation schemas (null when
 * unqualified) and names, $3 function and attribute names, $4 operator names, $5 quoted type
 * names, $6 the search path's schemas, $7 attribute names (columns looked up).
 * Prepared once per connection ({@link CATALOG_STATEMENT}); everything is bound; `to_regclass`/`to_regtype` resolve names exactly as the statement will
 * (same transaction, same search_path) without raising for missing ones.
 *
 * Shape (README "Round trips"; the facts are the same as before the reshaping, checked by
 * `catalog-check.test.ts` against the previous query on the same catalog): the check runs on
 * its generic plan, where every array parameter is estimated at 10 elements, so
 * - every catalog row is reached by its oid (or `attrelid`, `inhparent`, `ev_class`, `castfunc`)
 *   through a `LATERAL (… OFFSET 0)` subquery, which PostgreSQL neither flattens nor hashes: a
 *   parameterized index scan per referenced object instead of a scan of `pg_class`,
 *   `pg_attribute` or `pg_type` hashed against a handful of rows;
 * - the view walk starts from the referenced views only (none in the common case) and the
 *   type-hazard `EXISTS` tests are correlated (`OFFSET 0` keeps them per reached type);
 * - the relations and types that seed the recursive CTEs `kid` and `ty` go through
 *   `pg_catalog.unnest(ARRAY(…))` (estimated at 10 rows whatever the joins below): a recursive UNION builds
 *   its hash table at the size of its row estimate at every execution, and the cascading estimates
 *   (130 million rows for `ty`) made that table the largest part of the check's time;
 * - the built-in-cast test looks up the casts' functions (`castfunc <> 0`; 0 is no function) by
 *   oid, one index scan over the array of them, instead of scanning all of `pg_proc` for
 *   functions outside `pg_catalog`.
 */
export const CATALOG_FACTS_SQL = `WITH RECURSIVE
  rel AS (SELECT q.s, q.r, c.oid, n.nspname, c.relname, c.relkind
            FROM unnest($1::text[], $2::text[]) AS q(s, r)
            CROSS JOIN LATERAL (SELECT c.oid, c.relname, c.relkind, c.relnamespace FROM pg_class c
                                 WHERE c.oid = pg_catalog.to_regclass(CASE WHEN q.s IS NULL THEN pg_catalog.quote_ident(q.r) ELSE pg_catalog.quote_ident(q.s) || '.' || pg_catalog.quote_ident(q.r) END)::oid
                                 OFFSET 0) AS c
            CROSS JOIN LATERAL (SELECT n.nspname FROM pg_namespace n WHERE n.oid = c.relnamespace OFFSET 0) AS n),
  viewdep(oid) AS (SELECT oid FROM rel WHERE relkind IN ('v', 'm')
                   UNION
                   SELECT d.refobjid FROM viewdep
                     CROSS JOIN LATERAL (SELECT d.refobjid FROM pg_rewrite rw
                                           JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass::oid AND d.objid = rw.oid
                                            AND d.refclassid = 'pg_class'::regclass::oid AND d.refobjid <> rw.ev_class
                                          WHERE rw.ev_class = viewdep.oid AND rw.ev_type = '1' OFFSET 0) AS d),
  viewdeps AS (SELECT d.refclassid, d.refobjid FROM viewdep
                 CROSS JOIN LATERAL (SELECT d.refclassid, d.refobjid FROM pg_rewrite rw
                                       JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass::oid AND d.objid = rw.oid
                                      WHERE rw.ev_class = viewdep.oid AND rw.ev_type = '1' OFFSET 0) AS d),
  reached AS (SELECT oid FROM rel UNION SELECT oid FROM viewdep),
  kid(oid) AS (SELECT i.inhrelid FROM pg_catalog.unnest(ARRAY(SELECT oid FROM reached)) AS reached(oid) CROSS JOIN LATERAL (SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = reached.oid OFFSET 0) AS i
               UNION SELECT i.inhrelid FROM kid CROSS JOIN LATERAL (SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = kid.oid OFFSET 0) AS i),
  ty(oid) AS (SELECT x FROM pg_catalog.unnest(ARRAY(
                SELECT pg_catalog.to_regtype(x) FROM pg_catalog.unnest($5::text[]) AS x WHERE pg_catalog.to_regtype(x) IS NOT NULL
                UNION
                SELECT a.atttypid FROM pg_catalog.unnest(ARRAY(SELECT oid FROM reached UNION SELECT oid FROM kid)) AS r(oid)
                  CROSS JOIN LATERAL (SELECT a.atttypid FROM pg_attribute a
                                       WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped OFFSET 0) AS a)) AS x
              UNION
              SELECT s.x FROM ty
                CROSS JOIN LATERAL (SELECT t.oid, t.typbasetype, t.typelem, t.typrelid FROM pg_type t WHERE t.oid = ty.oid OFFSET 0) AS t
                CROSS JOIN LATERAL (
                  SELECT t.typbasetype WHERE t.typbasetype <> 0::oid
                  UNION ALL SELECT t.typelem WHERE t.typelem <> 0::oid
                  UNION ALL SELECT a.atttypid FROM pg_attribute a
                             WHERE t.typrelid <> 0::oid AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                  UNION ALL SELECT rg.rngsubtype FROM pg_range rg WHERE rg.rngtypid = t.oid
                  UNION ALL SELECT rg.rngtypid FROM pg_range rg WHERE rg.rngmultitypid = t.oid) AS s(x)),
  -- The reached types' rows, materialized: the hazard tests below run per reached type, never
  -- per row of pg_type (a filter pushed into a scan of pg_type ran them for all ~600 types).
  tyt AS MATERIALIZED (SELECT t.* FROM ty CROSS JOIN LATERAL (SELECT * FROM pg_type t WHERE t.oid = ty.oid OFFSET 0) AS t)
SELECT
  (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(s, r, nspname, relname)), '[]') FROM rel) AS rels,
  (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(rel.s, rel.r, a.attname)), '[]')
     FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid
    WHERE a.attname = ANY($7::text[]) AND a.attnum > 0 AND NOT a.attisdropped) AS relcols,
  (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(c.nspname, c.relname)), '[]')
     FROM viewdep v CROSS JOIN LATERAL (SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                         WHERE c.oid = v.oid OFFSET 0) AS c) AS deps,
  (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(c.nspname, c.relname)), '[]')
     FROM kid CROSS JOIN LATERAL (SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                   WHERE c.oid = kid.oid OFFSET 0) AS c) AS kids,
  (SELECT coalesce(pg_catalog.json_agg(DISTINCT pg_catalog.jsonb_build_array(n.nspname, p.proname)), '[]')
     FROM viewdeps d JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass::oid AND p.oid = d.refobjid
     JOIN pg_namespace n ON n.oid = p.pronamespace) AS depfns,
  (SELECT coalesce(pg_catalog.json_agg(DISTINCT pg_catalog.jsonb_build_array(n.nspname, o.oprname)), '[]')
     FROM viewdeps d JOIN pg_operator o ON d.refclassid = 'pg_operator'::regclass::oid AND o.oid = d.refobjid
     JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname <> 'pg_catalog') AS depops,
  (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(f.name,
            EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = f.name AND p.pronamespace = 'pg_catalog'::regnamespace::oid),
            EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE p.proname = f.name AND n.nspname <> 'pg_catalog' AND n.nspname = ANY($6::text[])))), '[]')
     FROM pg_catalog.unnest($3::text[]) AS f(name)) AS procs,
  (SELECT coalesce(pg_catalog.array_agg(DISTINCT o.oprname::text), '{}') FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
    WHERE o.oprname = ANY($4::text[]) AND n.nspname <> 'pg_catalog' AND n.nspname = ANY($6::text[])) AS ops,
  (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(c.nspname, c.relname, t.x)), '[]')
     FROM pg_catalog.unnest($5::text[]) AS t(x)
     CROSS JOIN LATERAL (SELECT n.nspname, c.relname FROM pg_type ty JOIN pg_class c ON c.oid = ty.typrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE ty.oid = pg_catalog.to_regtype(t.x)::oid OFFSET 0) AS c) AS types,
  (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(h.typ, h.why)), '[]') FROM (
     SELECT pg_catalog.format_type(t.oid, NULL) AS typ, 'an object-identifier type' AS why
       FROM tyt t
      WHERE t.typnamespace = 'pg_catalog'::regnamespace::oid AND (t.typname ~ '^reg'::text OR t.typname IN ('oid', 'oidvector'))
     UNION ALL
     SELECT pg_catalog.format_type(t.oid, NULL), 'one of its support functions (input, output, subscript, range canonical or difference) is defined outside pg_catalog'
       FROM tyt t
      WHERE EXISTS (SELECT 1 FROM pg_proc p
                     WHERE p.oid IN (t.typinput::oid, t.typoutput::oid, t.typreceive::oid, t.typsend::oid, t.typmodin::oid, t.typmodout::oid, t.typanalyze::oid, t.typsubscript::oid)
                       AND p.pronamespace <> 'pg_catalog'::regnamespace::oid)
         OR EXISTS (SELECT 1 FROM pg_range rg JOIN pg_proc p ON p.oid IN (rg.rngcanonical::oid, rg.rngsubdiff::oid)
                     WHERE rg.rngtypid = t.oid AND p.pronamespace <> 'pg_catalog'::regnamespace::oid OFFSET 0)
     UNION ALL
     SELECT pg_catalog.format_type(t.oid, NULL), 'a cast from or to it runs a function defined outside pg_catalog'
       FROM tyt t
      WHERE t.oid >= 16384::oid AND EXISTS (SELECT 1 FROM pg_cast k JOIN pg_proc p ON p.oid = k.castfunc
                     WHERE (k.castsource = t.oid OR k.casttarget = t.oid) AND p.pronamespace <> 'pg_catalog'::regnamespace::oid OFFSET 0)
     UNION ALL
     SELECT pg_catalog.format_type(t.oid, NULL), 'a domain constraint calls a function defined outside pg_catalog'
       FROM tyt t
      WHERE EXISTS (SELECT 1 FROM pg_constraint con JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass::oid AND d.objid = con.oid
                      JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass::oid AND p.oid = d.refobjid
                     WHERE con.contypid = t.oid AND p.pronamespace <> 'pg_catalog'::regnamespace::oid OFFSET 0)
     UNION ALL
     SELECT pg_catalog.format_type(t.oid, NULL), 'an operator on it is defined outside pg_catalog'
       FROM tyt t
      WHERE t.oid >= 16384::oid AND EXISTS (SELECT 1 FROM pg_operator o
                     WHERE (o.oprleft = t.oid OR o.oprright = t.oid) AND o.oprnamespace <> 'pg_catalog'::regnamespace::oid)
     UNION ALL
     SELECT 'any', 'a cast between built-in types runs a function defined outside pg_catalog'
      WHERE EXISTS (SELECT 1 FROM pg_proc p
                     WHERE p.oid = ANY (ARRAY(SELECT k.castfunc FROM pg_cast k
                                               WHERE k.castsource < 16384::oid AND k.casttarget < 16384::oid AND k.castfunc <> 0::oid))
                       AND p.pronamespace <> 'pg_catalog'::regnamespace::oid)
   ) AS h) AS hazards`;

/**
 * The statement the server prepares as {@link CATALOG_STATEMENT}: {@link CATALOG_FACTS_SQL} with
 * one more column, `pg_catalog.set_config('plan_cache_mode', 'auto', true)`, which puts `plan_cache_mode`
 * back to `auto` (transaction-locally) once the check is bound on its generic plan: the plan is
 * chosen when the statement is bound (PostgreSQL's `GetCachedPlan`, reading `plan_cache_mode`
 * then), so switching the mode while it executes changes only the statements after it, the
 * caller's statement among them. An error in the check aborts the transaction, so no statement
 * can run after a check that did not switch the mode back. `round-trips.test.ts` checks both
 * facts: the check's custom-plan count stays 0, and the next statement sees `auto`.
 */
export const CATALOG_CHECK_SQL = `${CATALOG_FACTS_SQL},
  pg_catalog.set_config('plan_cache_mode', 'auto', true) AS plan_cache_mode`;
