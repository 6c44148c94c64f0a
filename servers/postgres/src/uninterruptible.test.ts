/**
 * The guard refuses operators PostgreSQL does not interrupt (array/jsonb containment and
 * overlap, jsonb `?|`/`?&`) over values built in the query, in every spelling, and keeps the
 * honest uses (a stored column against a literal or a parameter) working.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { checkReadOnlySql, initSqlGuard, type SqlGuardPolicy } from './sql-guard.js';
import { MAX_PARAM_REFERENCES } from './uninterruptible.js';

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

/**
 * Value builders whose one call makes a value far larger than its arguments: refused unless
 * their sizes are integer literals and the result at most 1 MiB, whatever consumes the value
 * (a CTE column, a subquery, LATERAL, a function argument or nothing at all).
 */
const BUILDER_ATTACKS: readonly [string, string][] = [
  ['repeat to 2 GB', "SELECT length(repeat('x', 2000000000))"],
  ['repeat, schema-qualified', "SELECT upper(pg_catalog.repeat('ab', 600000))"],
  ['repeat with a parameter count', "SELECT upper(repeat('x', $1))"],
  ['repeat with a column count', "SELECT repeat('x', g) FROM generate_series(1, 3) g"],
  ['repeat with a computed count', "SELECT repeat('x', 1000 * 1000 * 1000)"],
  ['repeat with a string-literal count', "SELECT repeat('x', '5000000')"],
  ['repeat with a cast count', "SELECT repeat('x', 5000000::int)"],
  ['repeat with named arguments', "SELECT repeat(number => 3, str => 'x')"],
  ['repeat of a column, many times', 'SELECT repeat(title, 100000) FROM tagged'],
  ['repeat of a parameter, many times', 'SELECT repeat($1, 1000)'],
  [
    'repeat into a CTE column',
    "WITH a AS (SELECT repeat('x', 100000000) AS s) SELECT upper(s) FROM a",
  ],
  [
    'repeat into a LATERAL column',
    "SELECT translate(l.s, 'x', 'y') FROM tagged, LATERAL (SELECT repeat('x', 90000000) AS s) l",
  ],
  ['repeat in a scalar subquery', "SELECT (SELECT repeat('x', 90000000)) ~ 'zq'"],
  ['lpad to 200 M characters', "SELECT length(lpad('x', 200000000, 'ab'))"],
  ['rpad to 200 M characters', "SELECT length(pg_catalog.rpad('', 200000000))"],
  ['lpad to a computed length', "SELECT lpad('x', length(title) * 100000) FROM tagged"],
  ['array_fill of 10^8 elements', 'SELECT cardinality(array_fill(1, ARRAY[100000000]))'],
  ['array_fill, 2-D text dimensions', "SELECT array_fill(1, '{10000,10000}')"],
  ['array_fill, 3-D', 'SELECT array_fill(0, ARRAY[1000, 1000, 10])'],
  ['array_fill with a parameter dimension', 'SELECT array_fill(1, ARRAY[$1::int])'],
  ['array_fill with computed dimensions', "SELECT array_fill(1, ARRAY[length(repeat('x', 9))])"],
  ['array_fill of a column value', 'SELECT array_fill(title, ARRAY[100000]) FROM tagged'],
  ['format with a 1 G width', "SELECT format('%1000000000s', 'x')"],
  ['format with a * width', "SELECT format('%*s', 1000000000, 'x')"],
  ['format with a positional * width and a flag', "SELECT format('%-*2$s', 'x', 1000000000)"],
  ['format with a parameter format string', "SELECT format($1, 'x')"],
  ['format with a column format string', "SELECT format(title, 'x') FROM tagged"],
  ['replace with a parameter replacement', "SELECT upper(replace(repeat('a', 50000), 'a', $1))"],
  ['replace with a built replacement', "SELECT replace(title, 'a', repeat('b', 1000)) FROM tagged"],
  [
    'replace with a long literal replacement',
    `SELECT replace(title, 'a', '${'b'.repeat(100)}') FROM tagged`,
  ],
  ['regexp_replace of every position', "SELECT regexp_replace(title, '', $1, 'g') FROM tagged"],
  [
    'regexp_replace with a column replacement',
    "SELECT regexp_replace(title, 'a', title, 'g') FROM tagged",
  ],
  ['a cast to char(10485760)', "SELECT upper('x'::char(10485760))"],
  ['a cast to character(n), CAST spelling', "SELECT length(CAST('x' AS character(5000000)))"],
  ['a cast to bit(83886080)', 'SELECT 0::bit(83886080)'],
  ['array_fill of a padded char', "SELECT array_fill('x'::char(1000000), ARRAY[100])"],
];

/** Honest uses of the same functions: small literal sizes, short literal replacements. */
const BUILDER_HONEST: readonly [string, string][] = [
  ['repeat for a bar', "SELECT repeat('*', 20)"],
  ['repeat at the bound', "SELECT repeat('ab', 524288)"],
  ['repeat of a column, twice', 'SELECT repeat(title, 2) FROM tagged'],
  ['lpad of an id', "SELECT lpad(id::text, 6, '0') FROM tagged"],
  ['rpad without a fill', 'SELECT rpad(title, 30) FROM tagged'],
  ['array_fill small', 'SELECT array_fill(0, ARRAY[3, 4])'],
  ['a cast to char(10)', "SELECT 'x'::char(10), CAST(id AS character(8)) FROM tagged"],
  ['a cast to bit(8)', 'SELECT 5::bit(8)'],
  ['array_fill with text dimensions', "SELECT array_fill('x'::text, '{5}')"],
  ['format with conversions', "SELECT format('%s <%s>', title, id) FROM tagged"],
  ['format with a small width', "SELECT format('%-10s|%5s|%%', title, id) FROM tagged"],
  ['replace with a literal', "SELECT replace(title, ' ', '_') FROM tagged"],
  ['regexp_replace digits only', "SELECT regexp_replace(title, '[^0-9]', '', 'g') FROM tagged"],
  [
    'regexp_replace with a back-reference',
    "SELECT regexp_replace(title, '(a)(b)', '\\2\\1') FROM tagged",
  ],
  ['upper of a stored column', 'SELECT upper(title) FROM tagged'],
  ['string_agg over rows', "SELECT string_agg(title, ', ' ORDER BY id) FROM tagged"],
  [
    'full-text match',
    "SELECT id FROM tagged WHERE to_tsvector('simple', title) @@ to_tsquery('simple', 'a')",
  ],
  [
    'jsonpath over a stored column',
    "SELECT jsonb_path_query_array(doc, '$.items[*] ? (@ > 1)') FROM tagged",
  ],
  ['= ANY of an array', 'SELECT id FROM tagged WHERE id = ANY($1::int[])'],
  ['array_position over a stored array', "SELECT array_position(tags, 'a') FROM tagged"],
  [
    '100 parameters, once each',
    `SELECT ${Array.from({ length: 100 }, (_, i) => `$${i + 1}`).join(', ')}`,
  ],
];

describe('value builders: bounded in one call, whatever consumes them', () => {
  it.each(BUILDER_ATTACKS)('refuses %s', (_name, sql) => {
    const d = checkReadOnlySql(sql, POLICY);
    expect(d.ok, JSON.stringify(d)).toBe(false);
    if (d.ok) return;
    expect(d.code).toBe('sql_function_denied');
    expect(d.message).toMatch(
      /^(function (repeat|lpad|rpad|array_fill|format|replace|regexp_replace)|type (bpchar|bit)) is not allowed here: its result feeds work PostgreSQL cannot interrupt, and /,
    );
    expect(d.message).not.toMatch(/100000|'x'|title/);
  });

  it.each(BUILDER_HONEST)('allows %s', (_name, sql) => {
    const d = checkReadOnlySql(sql, POLICY);
    expect(d, JSON.stringify(d)).toMatchObject({ ok: true });
  });

  it('refuses more than MAX_PARAM_REFERENCES repeated parameter references (concat of one parameter)', () => {
    const refs = (n: number) => Array.from({ length: n }, () => '$1').join(', ');
    expect(
      checkReadOnlySql(`SELECT upper(concat(${refs(MAX_PARAM_REFERENCES + 1)}))`, POLICY),
    ).toMatchObject({
      ok: true,
    });
    for (const sql of [
      `SELECT upper(concat(${refs(MAX_PARAM_REFERENCES + 2)}))`,
      `SELECT ${Array.from({ length: MAX_PARAM_REFERENCES + 2 }, () => '$1').join(' || ')}`,
      `SELECT length(concat_ws(${refs(MAX_PARAM_REFERENCES + 2)}))`,
    ]) {
      expect(checkReadOnlySql(sql, POLICY)).toMatchObject({
        ok: false,
        code: 'sql_function_denied',
        message: expect.stringMatching(
          /^a statement may repeat parameter references at most 256 times/,
        ),
      });
    }
  });

  it('a plan-only statement (postgres_explain) is not limited: nothing is evaluated', () => {
    for (const sql of [
      "SELECT length(repeat('x', 2000000000))",
      'SELECT array_fill(1, ARRAY[$1])',
    ]) {
      expect(checkReadOnlySql(sql, POLICY, { planOnly: true })).toMatchObject({ ok: true });
    }
  });
});

/** `jsonb - text[]` deletes every listed key by comparing each with every object key, uninterruptibly. */
describe('jsonb - text[]', () => {
  const attacks: readonly [string, string][] = [
    [
      'an aggregated object minus an aggregated array',
      "SELECT (SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 20000) g) - (SELECT array_agg('x' || g) FROM generate_series(1, 20000) g)",
    ],
    [
      'a stored object minus a built array',
      "SELECT doc - string_to_array(repeat('k,', 60000), ',') FROM tagged",
    ],
    [
      'a stored object minus ARRAY(SELECT …)',
      "SELECT doc - ARRAY(SELECT 'k' || g FROM generate_series(1, 60000) g) FROM tagged",
    ],
    [
      'a built object minus a cast parameter',
      "SELECT jsonb_object_agg('k' || g, g) - $1::text[] FROM generate_series(1, 20000) g",
    ],
    ['two 64 KiB parameters', 'SELECT $1::jsonb - $2::_text'],
    [
      'COALESCE of a built array',
      "SELECT doc - COALESCE(array_agg('k'), '{}') FROM tagged GROUP BY doc",
    ],
  ];
  it.each(attacks)('refuses %s', (_name, sql) => {
    expect(checkReadOnlySql(sql, POLICY)).toMatchObject({
      ok: false,
      code: 'sql_function_denied',
      message: expect.stringMatching(
        /^operator - is not allowed here: PostgreSQL cannot interrupt it/,
      ),
    });
  });
  const honest: readonly [string, string][] = [
    ['a stored object minus an array literal', "SELECT doc - ARRAY['a', 'b'] FROM tagged"],
    ['a stored object minus a parameter array', 'SELECT doc - $1::text[] FROM tagged'],
    ['a stored object minus one key', "SELECT doc - 'k' FROM tagged"],
    ['a built object minus one key', "SELECT jsonb_build_object('a', 1, 'b', 2) - 'a'"],
    ['arithmetic on aggregates', 'SELECT count(*) - 1, max(id) - min(id) FROM tagged'],
  ];
  it.each(honest)('allows %s', (_name, sql) => {
    expect(checkReadOnlySql(sql, POLICY)).toMatchObject({ ok: true });
  });
});
