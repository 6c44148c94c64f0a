/**
 * The catalog check's query, differentially: on one catalog holding every kind of object the
 * check looks at (views over views, a materialized view, a view reading another schema, calling
 * a user function or using a user operator, inheritance and partitions, domains with and without
 * a user-function constraint, composite, enum, range, multirange, array and object-identifier
 * columns, a user cast, a dropped column, same-named user functions and operators), the facts of
 * {@link CATALOG_FACTS_SQL} (run as the server prepares it, {@link CATALOG_CHECK_SQL}) equal
 * those of the query it replaced ({@link REFERENCE_SQL}, the
 * previous text verbatim) for every parameter set below, on the generic plan the server uses and
 * on custom plans, before and after a user-defined cast between built-in types appears. Facts
 * are compared as sets per field (duplicates kept): the order of rows was never specified (it
 * followed the plan's hash order).
 */
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG_CHECK_SQL, CATALOG_FACTS_SQL } from './catalog-check.js';

/** The catalog check's query before it was reshaped for index lookups (commit 932017b). */
const REFERENCE_SQL = `WITH RECURSIVE
  rel AS (SELECT q.s, q.r, c.oid, n.nspname, c.relname, c.relkind
            FROM unnest($1::text[], $2::text[]) AS q(s, r)
            JOIN pg_class c ON c.oid = to_regclass(CASE WHEN q.s IS NULL THEN quote_ident(q.r) ELSE quote_ident(q.s) || '.' || quote_ident(q.r) END)
            JOIN pg_namespace n ON n.oid = c.relnamespace),
  rules AS (SELECT rw.oid, rw.ev_class FROM pg_rewrite rw WHERE rw.ev_type = '1'),
  viewdep(oid) AS (SELECT oid FROM rel WHERE relkind IN ('v', 'm')
                   UNION
                   SELECT d.refobjid FROM viewdep JOIN rules rw ON rw.ev_class = viewdep.oid
                     JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> rw.ev_class),
  viewdeps AS (SELECT d.refclassid, d.refobjid FROM viewdep JOIN rules rw ON rw.ev_class = viewdep.oid
                 JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid),
  reached AS (SELECT oid FROM rel UNION SELECT oid FROM viewdep),
  kid(oid) AS (SELECT i.inhrelid FROM pg_inherits i JOIN reached ON i.inhparent = reached.oid
               UNION SELECT i.inhrelid FROM pg_inherits i JOIN kid ON i.inhparent = kid.oid),
  ty(oid) AS (SELECT to_regtype(x) FROM unnest($5::text[]) AS x WHERE to_regtype(x) IS NOT NULL
              UNION
              SELECT a.atttypid FROM pg_attribute a
               WHERE a.attrelid IN (SELECT oid FROM reached UNION SELECT oid FROM kid) AND a.attnum > 0 AND NOT a.attisdropped
              UNION
              SELECT s.x FROM ty JOIN pg_type t ON t.oid = ty.oid
                CROSS JOIN LATERAL (
                  SELECT t.typbasetype WHERE t.typbasetype <> 0
                  UNION ALL SELECT t.typelem WHERE t.typelem <> 0
                  UNION ALL SELECT a.atttypid FROM pg_attribute a
                             WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                  UNION ALL SELECT rg.rngsubtype FROM pg_range rg WHERE rg.rngtypid = t.oid
                  UNION ALL SELECT rg.rngtypid FROM pg_range rg WHERE rg.rngmultitypid = t.oid) AS s(x)),
  -- The reached types' rows, materialized: the hazard tests below run per reached type, never
  -- per row of pg_type (a filter pushed into a scan of pg_type ran them for all ~600 types).
  tyt AS MATERIALIZED (SELECT t.* FROM ty JOIN pg_type t ON t.oid = ty.oid)
SELECT
  (SELECT coalesce(json_agg(json_build_array(s, r, nspname, relname)), '[]') FROM rel) AS rels,
  (SELECT coalesce(json_agg(json_build_array(rel.s, rel.r, a.attname)), '[]')
     FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid
    WHERE a.attname = ANY($7::text[]) AND a.attnum > 0 AND NOT a.attisdropped) AS relcols,
  (SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname)), '[]')
     FROM viewdep v JOIN pg_class c ON c.oid = v.oid JOIN pg_namespace n ON n.oid = c.relnamespace) AS deps,
  (SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname)), '[]')
     FROM kid JOIN pg_class c ON c.oid = kid.oid JOIN pg_namespace n ON n.oid = c.relnamespace) AS kids,
  (SELECT coalesce(json_agg(DISTINCT jsonb_build_array(n.nspname, p.proname)), '[]')
     FROM viewdeps d JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid
     JOIN pg_namespace n ON n.oid = p.pronamespace) AS depfns,
  (SELECT coalesce(json_agg(DISTINCT jsonb_build_array(n.nspname, o.oprname)), '[]')
     FROM viewdeps d JOIN pg_operator o ON d.refclassid = 'pg_operator'::regclass AND o.oid = d.refobjid
     JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname <> 'pg_catalog') AS depops,
  (SELECT coalesce(json_agg(json_build_array(f.name,
            EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = f.name AND p.pronamespace = 'pg_catalog'::regnamespace),
            EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE p.proname = f.name AND n.nspname <> 'pg_catalog' AND n.nspname = ANY($6::text[])))), '[]')
     FROM unnest($3::text[]) AS f(name)) AS procs,
  (SELECT coalesce(array_agg(DISTINCT o.oprname::text), '{}') FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
    WHERE o.oprname = ANY($4::text[]) AND n.nspname <> 'pg_catalog' AND n.nspname = ANY($6::text[])) AS ops,
  (SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname, t.x)), '[]')
     FROM unnest($5::text[]) AS t(x) JOIN pg_type ty ON ty.oid = to_regtype(t.x)
     JOIN pg_class c ON c.oid = ty.typrelid JOIN pg_namespace n ON n.oid = c.relnamespace) AS types,
  (SELECT coalesce(json_agg(json_build_array(h.typ, h.why)), '[]') FROM (
     SELECT format_type(t.oid, NULL) AS typ, 'an object-identifier type' AS why
       FROM tyt t
      WHERE t.typnamespace = 'pg_catalog'::regnamespace AND (t.typname ~ '^reg' OR t.typname IN ('oid', 'oidvector'))
     UNION ALL
     SELECT format_type(t.oid, NULL), 'one of its support functions (input, output, subscript, range canonical or difference) is defined outside pg_catalog'
       FROM tyt t
      WHERE EXISTS (SELECT 1 FROM pg_proc p
                     WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze, t.typsubscript)
                       AND p.pronamespace <> 'pg_catalog'::regnamespace)
         OR EXISTS (SELECT 1 FROM pg_range rg JOIN pg_proc p ON p.oid IN (rg.rngcanonical, rg.rngsubdiff)
                     WHERE rg.rngtypid = t.oid AND p.pronamespace <> 'pg_catalog'::regnamespace)
     UNION ALL
     SELECT format_type(t.oid, NULL), 'a cast from or to it runs a function defined outside pg_catalog'
       FROM tyt t
      WHERE t.oid >= 16384 AND EXISTS (SELECT 1 FROM pg_cast k JOIN pg_proc p ON p.oid = k.castfunc
                     WHERE (k.castsource = t.oid OR k.casttarget = t.oid) AND p.pronamespace <> 'pg_catalog'::regnamespace)
     UNION ALL
     SELECT format_type(t.oid, NULL), 'a domain constraint calls a function defined outside pg_catalog'
       FROM tyt t
      WHERE EXISTS (SELECT 1 FROM pg_constraint con JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = con.oid
                      JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid
                     WHERE con.contypid = t.oid AND p.pronamespace <> 'pg_catalog'::regnamespace)
     UNION ALL
     SELECT format_type(t.oid, NULL), 'an operator on it is defined outside pg_catalog'
       FROM tyt t
      WHERE t.oid >= 16384 AND EXISTS (SELECT 1 FROM pg_operator o
                     WHERE (o.oprleft = t.oid OR o.oprright = t.oid) AND o.oprnamespace <> 'pg_catalog'::regnamespace)
     UNION ALL
     SELECT 'any', 'a cast between built-in types runs a function defined outside pg_catalog'
      WHERE EXISTS (SELECT 1 FROM pg_cast k JOIN pg_proc p ON p.oid = k.castfunc
                     WHERE k.castsource < 16384 AND k.casttarget < 16384 AND p.pronamespace <> 'pg_catalog'::regnamespace)
   ) AS h) AS hazards`;

/** One check's parameters, named as in {@link CATALOG_FACTS_SQL}'s docstring. */
interface Params {
  readonly label: string;
  readonly rels?: readonly (readonly [string | null, string])[];
  readonly names?: readonly string[];
  readonly ops?: readonly string[];
  readonly types?: readonly string[];
  readonly schemas?: readonly string[];
  readonly attrs?: readonly string[];
}

const rel = (name: string, schema: string | null = null) => [schema, name] as const;

const CASES: readonly Params[] = [
  { label: 'the bench statement: one plain table', rels: [rel('customer')] },
  { label: 'nothing resolves', rels: [rel('no_such_table'), rel('x', 'no_such_schema')] },
  {
    label: 'a catalog relation, unqualified and qualified',
    rels: [rel('pg_roles'), rel('pg_authid', 'pg_catalog')],
  },
  {
    label: 'the same relation twice and a join',
    rels: [rel('customer'), rel('customer', 'public'), rel('invoice')],
  },
  {
    label: 'a schema the role may not use',
    rels: [rel('t', 'hidden')],
    types: ['"hidden"."t"'],
  },
  { label: 'a view over a view', rels: [rel('v_nested')] },
  { label: 'a view reading another schema', rels: [rel('v_secret')] },
  { label: 'a view calling a user function', rels: [rel('v_fn')] },
  { label: 'a view using a user operator', rels: [rel('v_op')] },
  { label: 'a materialized view over views', rels: [rel('mv')] },
  { label: 'inheritance, two levels, a dropped column', rels: [rel('parent')] },
  { label: 'a partitioned table', rels: [rel('part')] },
  { label: 'columns of every kind of type', rels: [rel('typed')] },
  {
    label: 'a view over a table with a cast-hazard column',
    rels: [rel('v_typed'), rel('casted')],
  },
  {
    label: 'function and attribute names',
    rels: [rel('customer')],
    names: ['lower', 'upper', 'count', 'evil', 'first_name', 'email', 'no_such_fn'],
    attrs: ['first_name', 'email', 'no_such_column'],
  },
  {
    label: 'functions with another schema on the path',
    names: ['lower', 'evil'],
    schemas: ['public', 'other'],
  },
  { label: 'operators', ops: ['=', '+', '===', '<->', '||'], schemas: ['public', 'other'] },
  {
    label: 'cast types',
    types: [
      '"customer"',
      '"public"."customer"',
      '"other"."secret"',
      '"posint"',
      '"plainint"',
      '"pair"',
      '"mood"',
      '"frange"',
      '"castme"',
      '"regclass"',
      '"oid"',
      '"int4"[]',
      '"pair"[]',
      '"no_such_type"',
    ],
  },
  {
    label: 'everything at once',
    rels: [rel('mv'), rel('parent'), rel('typed'), rel('v_fn')],
    names: ['lower', 'evil'],
    ops: ['===', '='],
    types: ['"posint"', '"customer"'],
    schemas: ['public', 'other'],
    attrs: ['customer_id', 'p'],
  },
];

/** Each fact field as a sorted list of JSON texts (a set comparison that keeps duplicates). */
function normalized(facts: Record<string, unknown>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(facts)) {
    if (!Array.isArray(v)) throw new Error(`fact ${k} is not an array`);
    out[k] = v.map((x) => JSON.stringify(x)).sort();
  }
  return out;
}

let server: TestPostgres;
let db: ChinookDatabase;
let admin: pg.Client;
let reader: pg.Client;

/** Both queries' facts for `p` in one READ ONLY transaction, as the server runs the check. */
async function factsOf(
  p: Params,
  planMode: string,
): Promise<[Record<string, string[]>, Record<string, string[]>]> {
  const schemas = p.schemas ?? ['public'];
  const values = [
    (p.rels ?? []).map(([s]) => s),
    (p.rels ?? []).map(([, r]) => r),
    p.names ?? [],
    p.ops ?? [],
    p.types ?? [],
    schemas,
    p.attrs ?? [],
  ];
  await reader.query('BEGIN READ ONLY');
  try {
    await reader.query(
      "SELECT set_config('search_path', $1, true), set_config('jit', 'off', true), set_config('plan_cache_mode', $2, true)",
      [schemas.map((s) => pg.escapeIdentifier(s)).join(', '), planMode],
    );
    // An error (a name in a schema the role may not use) is a fact too: its SQLSTATE. Each query
    // runs in its own savepoint so the second still runs after the first failed.
    const run = async (name: string, text: string) => {
      await reader.query('SAVEPOINT q');
      try {
        const row = { ...(await reader.query({ name, text, values })).rows[0] };
        if (text === CATALOG_CHECK_SQL) {
          // The statement as the server prepares it: the facts, then the switch back to `auto`.
          expect(row.plan_cache_mode).toBe('auto');
          delete row.plan_cache_mode;
        }
        return normalized(row as Record<string, unknown>);
      } catch (err) {
        await reader.query('ROLLBACK TO SAVEPOINT q');
        return { error: [String((err as { code?: unknown }).code)] };
      }
    };
    return [
      await run('hmcp_catalog_reference', REFERENCE_SQL),
      await run('hmcp_catalog', CATALOG_CHECK_SQL),
    ];
  } finally {
    await reader.query('ROLLBACK');
  }
}

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
  admin = new pg.Client({ connectionString: db.adminUrl });
  await admin.connect();
  await admin.query(`
    CREATE SCHEMA other;
    GRANT USAGE ON SCHEMA other TO ${pg.escapeIdentifier(db.readRole)};
    CREATE SCHEMA hidden;
    CREATE TABLE hidden.t (id int);
    CREATE TABLE other.secret (id int, v text);
    CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1';
    CREATE FUNCTION other.evil(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
    CREATE FUNCTION public.first_name(customer) RETURNS text LANGUAGE sql AS 'SELECT ''x''';
    CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
    CREATE OPERATOR other.+ (LEFTARG = text, RIGHTARG = text, FUNCTION = textcat);
    CREATE VIEW public.v_plain AS SELECT customer_id, pg_catalog.lower(email) AS e FROM customer;
    CREATE VIEW public.v_nested AS SELECT * FROM public.v_plain;
    CREATE VIEW public.v_secret AS SELECT * FROM other.secret;
    CREATE VIEW public.v_fn AS SELECT other.evil(customer_id) AS x FROM customer;
    CREATE VIEW public.v_op AS SELECT customer_id === 1 AS x FROM customer;
    CREATE MATERIALIZED VIEW public.mv AS SELECT * FROM public.v_nested;
    CREATE TABLE public.parent (id int, gone int);
    CREATE TABLE public.child () INHERITS (public.parent);
    CREATE TABLE other.grandchild () INHERITS (public.child);
    ALTER TABLE public.parent DROP COLUMN gone;
    CREATE TABLE public.part (id int, k int) PARTITION BY RANGE (k);
    CREATE TABLE public.part_1 PARTITION OF public.part FOR VALUES FROM (0) TO (10);
    CREATE TABLE other.part_2 PARTITION OF public.part FOR VALUES FROM (10) TO (20);
    CREATE FUNCTION public.pos(int) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0';
    CREATE DOMAIN public.posint AS int CHECK (public.pos(VALUE));
    CREATE DOMAIN public.plainint AS int CHECK (VALUE > 0);
    CREATE TYPE public.pair AS (a int, b public.posint);
    CREATE TYPE public.mood AS ENUM ('a', 'b');
    CREATE FUNCTION public.moodeq(public.mood, public.mood) RETURNS bool LANGUAGE sql IMMUTABLE
      AS 'SELECT $1 = $2';
    CREATE OPERATOR public.<-> (LEFTARG = public.mood, RIGHTARG = public.mood, FUNCTION = public.moodeq);
    CREATE FUNCTION public.fdiff(float8, float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS 'SELECT $1 - $2';
    CREATE TYPE public.frange AS RANGE (subtype = float8, subtype_diff = public.fdiff);
    CREATE TABLE public.typed (id int, p public.pair, m public.mood, r public.frange, o regclass,
                               d public.plainint, arr public.pair[], mr public.fmultirange);
    CREATE TYPE public.castme AS (x int);
    CREATE FUNCTION public.castfn(public.castme) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
    CREATE CAST (public.castme AS int) WITH FUNCTION public.castfn(public.castme);
    CREATE TABLE public.casted (id int, c public.castme);
    CREATE VIEW public.v_typed AS SELECT t.id, t.p FROM public.typed t JOIN public.casted c USING (id);
  `);
  reader = new pg.Client({ connectionString: db.readUrl });
  await reader.connect();
}, 180_000);

afterAll(async () => {
  await reader?.end().catch(() => undefined);
  await admin?.end().catch(() => undefined);
  await db?.drop();
  await server?.stop();
}, 60_000);

describe("the check's own functions resolve in pg_catalog only", () => {
  it('a more exact unnest planted in an allowed schema is never called by the check', async () => {
    // unnest(text[]) and unnest(oid[]) match the check's calls more exactly than pg_catalog's
    // unnest(anyarray): unqualified, PostgreSQL would choose them (pg_catalog first only breaks
    // ties of identical signatures). CVE-2018-1058's class.
    await admin.query(`
      CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'shadowed unnest(text[]) called'; END $$;
      CREATE FUNCTION public.unnest(oid[]) RETURNS SETOF oid LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'shadowed unnest(oid[]) called'; END $$;
    `);
    try {
      const p = CASES.find((c) => c.label === 'function and attribute names') as Params;
      const [reference, check] = await factsOf(
        { ...p, rels: [rel('v_nested'), rel('parent')] },
        'force_generic_plan',
      );
      // The unqualified reference query calls the planted function; the check does not.
      expect(reference).toEqual({ error: ['P0001'] });
      expect(check.error).toBeUndefined();
    } finally {
      await admin.query('DROP FUNCTION public.unnest(text[]); DROP FUNCTION public.unnest(oid[]);');
    }
  }, 60_000);
});

describe("the check's operators resolve in pg_catalog only", () => {
  it('operators planted in an allowed schema that match more exactly change no fact', async () => {
    // Each matches one of the check's comparisons more exactly than pg_catalog's, unless the
    // check writes both sides in types pg_catalog has an exact operator for (oid = oid, name ~
    // text): oid = regclass, oid <> regnamespace, oid <> / >= / < int4, oid = regproc (IN over
    // a type's support functions), name ~ name (an unknown literal is taken as the other side's
    // type). A planted one returns the opposite answer, so a check that used it would report
    // other facts (the review's repro hid a view's user function this way).
    const ops: [string, string, string, string][] = [
      ['=', 'oid', 'regclass', 'NOT ($1 OPERATOR(pg_catalog.=) $2::oid)'],
      ['<>', 'oid', 'regnamespace', '$1 OPERATOR(pg_catalog.=) $2::oid'],
      ['<>', 'oid', 'int4', '$1 OPERATOR(pg_catalog.=) $2::oid'],
      ['>=', 'oid', 'int4', '$1 OPERATOR(pg_catalog.<) $2::oid'],
      ['<', 'oid', 'int4', '$1 OPERATOR(pg_catalog.>=) $2::oid'],
      ['=', 'oid', 'regproc', 'NOT ($1 OPERATOR(pg_catalog.=) $2::oid)'],
      ['~', 'name', 'name', 'NOT ($1::text OPERATOR(pg_catalog.~) $2::text)'],
    ];
    const before = [];
    for (const p of CASES) before.push((await factsOf(p, 'force_generic_plan'))[1]);
    const planted = ops.map(([op, l, r, body], i) => ({
      fn: `public.hmcp_opposite_${i}(${l}, ${r})`,
      create: `CREATE FUNCTION public.hmcp_opposite_${i}(${l}, ${r}) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT ${body.replaceAll("'", "''")}';
        CREATE OPERATOR public.${op} (LEFTARG = ${l}, RIGHTARG = ${r}, FUNCTION = public.hmcp_opposite_${i});`,
    }));
    await admin.query(planted.map((x) => x.create).join('\n'));
    try {
      // The one fact the plants change is a true one: a user operator named as the statement's
      // own (`ops`: e.g. "=" now exists in an allowed schema, so a statement using = is refused).
      const plantedNames = new Set(ops.map(([op]) => JSON.stringify(op)));
      const after = [];
      for (const p of CASES) {
        const facts = (await factsOf(p, 'force_generic_plan'))[1];
        if (facts.ops) facts.ops = facts.ops.filter((o) => !plantedNames.has(o));
        after.push(facts);
      }
      expect(after).toEqual(before);
      // The plants are live: the unqualified reference query reports other facts with them.
      const reference = [];
      for (const p of CASES) reference.push((await factsOf(p, 'force_generic_plan'))[0]);
      expect(reference).not.toEqual(before);
    } finally {
      await admin.query(planted.map((x) => `DROP FUNCTION ${x.fn} CASCADE;`).join('\n'));
    }
  }, 120_000);
});

describe('the catalog check returns the facts of the query it replaced', () => {
  for (const planMode of ['force_generic_plan', 'force_custom_plan']) {
    for (const p of CASES) {
      it(`${p.label} (${planMode})`, async () => {
        const [before, after] = await factsOf(p, planMode);
        expect(after).toEqual(before);
      });
    }
  }

  it('the cases reach every kind of fact (the comparison is not vacuous)', async () => {
    const all: Record<string, string[]>[] = [];
    for (const p of CASES) all.push((await factsOf(p, 'force_generic_plan'))[1]);
    expect(all.filter((f) => f.error !== undefined)).toEqual([{ error: ['42501'] }]);
    for (const field of [
      'rels',
      'relcols',
      'deps',
      'kids',
      'depfns',
      'depops',
      'procs',
      'ops',
      'types',
      'hazards',
    ])
      expect(
        all.some((f) => (f[field]?.length ?? 0) > 0),
        field,
      ).toBe(true);
    const hazards = all.flatMap((f) => f.hazards ?? []).join('\n');
    for (const why of [
      'object-identifier',
      'support functions',
      'a cast from or to it',
      'domain constraint',
      'an operator on it',
    ])
      expect(hazards).toContain(why);
  });

  it('with a user-defined cast between built-in types, on both queries', async () => {
    await admin.query(`
      CREATE FUNCTION public.b2d(bool) RETURNS date LANGUAGE sql IMMUTABLE AS 'SELECT current_date';
      CREATE CAST (bool AS date) WITH FUNCTION public.b2d(bool);
    `);
    try {
      for (const p of CASES) {
        const [before, after] = await factsOf(p, 'force_generic_plan');
        expect(after, p.label).toEqual(before);
        if (after.error === undefined)
          expect(
            after.hazards?.some((h) => h.startsWith('["any"')),
            p.label,
          ).toBe(true);
      }
    } finally {
      await admin.query('DROP CAST (bool AS date); DROP FUNCTION public.b2d(bool)');
    }
  });
});
