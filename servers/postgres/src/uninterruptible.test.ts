/**
 * The guard refuses operators PostgreSQL does not interrupt (array/jsonb containment and
 * overlap, jsonb `?|`/`?&`) over values built in the query, in every spelling, and keeps the
 * honest uses (a stored column against a literal or a parameter) working.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { checkReadOnlySql, initSqlGuard, type SqlGuardPolicy } from './sql-guard.js';

const POLICY: SqlGuardPolicy = { allowedSchemas: ['public'] };

beforeAll(async () => {
  await initSqlGuard();
});

const big = (n: number) => `'{${Array.from({ length: n }, (_, i) => i).join(',')}}'`;

/** Each builds at least one operand in the query. */
const ATTACKS: readonly [string, string][] = [
  [
    'array_agg over generate_series',
    'SELECT (SELECT array_agg(g) FROM generate_series(1, 60000) g) @> (SELECT array_agg(g) FROM generate_series(60000, 1, -1) g)',
  ],
  [
    'jsonb_agg over generate_series',
    'SELECT (SELECT jsonb_agg(g) FROM generate_series(1, 30000) g) @> (SELECT jsonb_agg(g) FROM generate_series(30000, 1, -1) g)',
  ],
  ['array_fill', "SELECT array_fill(1, ARRAY[300000000]) @> '{2}'"],
  [
    'array_fill, qualified operator',
    'SELECT array_fill(1, ARRAY[50000]) OPERATOR(pg_catalog.<@) array_fill(2, ARRAY[50000])',
  ],
  [
    'string_to_array of repeat',
    "SELECT string_to_array(repeat('a,', 60000), ',') && string_to_array(repeat('b,', 60000), ',')",
  ],
  ['regexp_split_to_array', "SELECT regexp_split_to_array(repeat('x ', 60000), ' ') @> ARRAY['y']"],
  ['array_cat', 'SELECT array_cat(ARRAY[1], array_fill(1, ARRAY[60000])) <@ ARRAY[2]'],
  ['|| concatenation', 'SELECT (ARRAY[1] || array_fill(1, ARRAY[60000])) @> ARRAY[2]'],
  ['|| of two columns', 'SELECT (a.tags || b.tags) @> a.tags FROM tagged a, tagged b'],
  ['jsonb || with to_jsonb', "SELECT to_jsonb(array_fill(1, ARRAY[30000])) @> '[2]'::jsonb"],
  [
    '?| over a built text array',
    "SELECT '{\"a\":1}'::jsonb ?| string_to_array(repeat('k,', 60000), ',')",
  ],
  [
    '?& over a built text array',
    "SELECT doc ?& regexp_split_to_array(repeat('k ', 60000), ' ') FROM tagged",
  ],
  [
    'a CTE column',
    'WITH x AS (SELECT array_agg(g) AS a FROM generate_series(1, 60000) g) SELECT a @> a FROM x',
  ],
  [
    'a CTE column, qualified',
    'WITH x AS (SELECT array_agg(g) AS a FROM generate_series(1, 60000) g) SELECT x.a @> x.a FROM x',
  ],
  [
    'a subquery column in FROM',
    'SELECT s.a <@ s.a FROM (SELECT array_agg(g) AS a FROM generate_series(1, 60000) g) s',
  ],
  [
    'an unaliased subquery column (PostgreSQL 16+)',
    'SELECT a && a FROM (SELECT array_agg(g) AS a FROM generate_series(1, 60000) g)',
  ],
  ['a function in FROM', "SELECT f @> f FROM string_to_array(repeat('a,', 60000), ',') AS f"],
  [
    'a table alias shadowed by a CTE of the same name',
    'WITH tagged AS (SELECT array_agg(g) AS tags FROM generate_series(1, 60000) g) SELECT tagged.tags @> tagged.tags FROM tagged',
  ],
  [
    '= ANY style: @> ANY of a subquery',
    'SELECT tags @> ANY (SELECT array_agg(g) FROM generate_series(1, 60000) g) FROM tagged',
  ],
  [
    '@> ANY of a built array',
    "SELECT tags @> ANY (ARRAY[array_fill('a'::text, ARRAY[60000])]) FROM tagged",
  ],
  [
    'a range aggregate',
    'SELECT range_agg(int4range(g, g + 1)) @> range_agg(int4range(g, g + 2)) FROM generate_series(1, 60000) g',
  ],
  [
    'COALESCE of an aggregate',
    "SELECT COALESCE(array_agg(g), '{}') @> ARRAY[1] FROM generate_series(1, 60000) g",
  ],
  ['a computed subscript', "SELECT tags[1:length(repeat('x', 60000))] @> tags FROM tagged"],
  ['a whole-row reference', 'SELECT tagged.* @> tagged.* FROM tagged'],
  ['a jsonb path built in the query', "SELECT doc -> repeat('k', 10) @> '[1]' FROM tagged"],
  ['two 64 KiB parameters', 'SELECT $1::int[] @> $2::int[]'],
  ['two big literals', `SELECT ${big(6000)}::int[] @> ${big(6000)}::int[]`],
];

/** Honest uses: a stored column against a literal, a parameter or another stored column. */
const HONEST: readonly [string, string][] = [
  ['array column @> literal', "SELECT id FROM tagged WHERE tags @> '{a}'"],
  ['array column && ARRAY[...] of literals', "SELECT id FROM tagged WHERE tags && ARRAY['a', 'b']"],
  ['array column <@ a parameter', 'SELECT id FROM tagged WHERE tags <@ $1::text[]'],
  ['jsonb column @> a jsonb literal', 'SELECT id FROM tagged WHERE doc @> \'{"k": 1}\''],
  [
    'jsonb extraction @> a literal',
    "SELECT id FROM tagged t WHERE t.doc -> 'items' @> '[1]'::jsonb",
  ],
  ['jsonb subscript @> a literal', "SELECT id FROM tagged WHERE doc['items'] @> '[1]'"],
  ['jsonb ?| an array of literals', "SELECT id FROM tagged WHERE doc ?| ARRAY['k', 'j']"],
  ['two stored columns in a join', 'SELECT a.id FROM tagged a JOIN tagged b ON a.tags @> b.tags'],
  [
    'range constructors overlap',
    'SELECT id FROM tagged WHERE int4range(id, id + 10) && int4range($1, $2)',
  ],
  ['an element in a range', 'SELECT 5 <@ int4range(1, 10)'],
  ['small literal arrays', 'SELECT ARRAY[1, 2, 3] @> ARRAY[2]'],
  ['a parameter against a small literal', "SELECT $1::int[] && '{1,2,3}'"],
  ['COALESCE of a column', "SELECT id FROM tagged WHERE COALESCE(tags, '{}') @> '{a}'"],
  [
    'qualified stored column beside a CTE',
    "WITH n AS (SELECT 1 AS one) SELECT t.id FROM tagged t, n WHERE t.tags @> '{a}'",
  ],
  ['a slice of a stored array', "SELECT id FROM tagged WHERE tags[1:2] @> '{a}'"],
  ['array_agg used honestly (not an operand)', 'SELECT array_agg(id ORDER BY id) FROM tagged'],
  ['full-text @@ is not affected', "SELECT to_tsvector('a b') @@ plainto_tsquery('a')"],
];

describe('operators PostgreSQL cannot interrupt', () => {
  it.each(ATTACKS)('refuses %s', (_name, sql) => {
    const d = checkReadOnlySql(sql, POLICY);
    expect(d.ok, JSON.stringify(d)).toBe(false);
    if (d.ok) return;
    expect(d.code).toBe('sql_function_denied');
    expect(d.message).toMatch(
      /^operator (@>|<@|&&|\?\||\?&) is not allowed here: PostgreSQL cannot interrupt it/,
    );
    expect(d.message).not.toMatch(/generate_series\(1|60000|repeat\('/);
  });

  it.each(HONEST)('allows %s', (_name, sql) => {
    const d = checkReadOnlySql(sql, POLICY);
    expect(d, JSON.stringify(d)).toMatchObject({ ok: true });
  });
});

describe('postgres_explain plans, never executes', () => {
  it('does not weigh constants of a plan-only statement, but still refuses built values', () => {
    expect(
      checkReadOnlySql('SELECT $1::int[] @> $2::int[]', POLICY, { planOnly: true }),
    ).toMatchObject({
      ok: true,
    });
    expect(
      checkReadOnlySql('SELECT array_fill($1, ARRAY[$2]) @> $3', POLICY, { planOnly: true }),
    ).toMatchObject({ ok: false, code: 'sql_function_denied' });
  });
});
