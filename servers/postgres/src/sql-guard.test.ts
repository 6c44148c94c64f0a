import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  BUILTIN_FUNCTION_ALLOWLIST,
  DENIED_FUNCTION_NAMES,
  isDeniedFunctionName,
  TABLESAMPLE_METHOD_ALLOWLIST,
} from './function-allowlist.js';
import {
  checkReadOnlySql,
  initSqlGuard,
  type SqlGuardDecision,
  type SqlGuardErrorCode,
  type SqlGuardPolicy,
} from './sql-guard.js';

/** Chinook-like analytics policy used by most cases. */
const POLICY: SqlGuardPolicy = {
  allowedSchemas: ['public'],
  deniedTables: ['public.employee_salary', 'api_key'],
};

beforeAll(async () => {
  await initSqlGuard();
});

function check(sql: string, policy: SqlGuardPolicy = POLICY): SqlGuardDecision {
  return checkReadOnlySql(sql, policy);
}

/** Every rejection message must be a short single line that does not echo the query. */
function expectSanitized(sql: string, message: string): void {
  expect(message.length).toBeGreaterThan(0);
  expect(message.length).toBeLessThan(300);
  expect(message).not.toMatch(/[\r\n]/);
  expect(message).not.toMatch(/\bat .*:\d+:\d+\)?$/); // no stack-trace frames
  expect(message).not.toMatch(/scan\.l|gram\.y|scanner_yyerror|wasm/i); // no parser internals
  // A single keyword such as COMMIT may legitimately be named; any real query must not be echoed.
  if (/\s/.test(sql.trim())) expect(message).not.toContain(sql.trim());
}

const rel = (r: { schema: string | null; name: string }): string =>
  r.schema === null ? r.name : `${r.schema}.${r.name}`;

// ---------------------------------------------------------------------------------------
// Accepted queries
// ---------------------------------------------------------------------------------------

interface AcceptCase {
  readonly sql: string;
  /** exact relations, in order of first appearance ('schema.name' or bare 'name') */
  readonly relations: readonly string[];
  /** functions that must be reported (subset) */
  readonly functions?: readonly string[];
  readonly params?: number;
}

const ACCEPTED: ReadonlyArray<readonly [string, AcceptCase]> = [
  ['constant select', { sql: 'SELECT 1', relations: [] }],
  ['trailing semicolon', { sql: 'SELECT 1;', relations: [] }],
  ['star from bare table', { sql: 'SELECT * FROM customer', relations: ['customer'] }],
  [
    'qualified table with alias and $1',
    {
      sql: 'SELECT c.first_name, c.last_name FROM public.customer AS c WHERE c.country = $1',
      relations: ['public.customer'],
      params: 1,
    },
  ],
  [
    'inner join',
    {
      sql: 'SELECT ar.name AS artist, al.title FROM artist ar JOIN album al ON al.artist_id = ar.artist_id ORDER BY ar.name LIMIT 50',
      relations: ['artist', 'album'],
    },
  ],
  [
    'GROUP BY / HAVING with aggregates',
    {
      sql: 'SELECT g.name, count(*) AS tracks, avg(t.milliseconds) / 1000.0 AS avg_seconds FROM track t JOIN genre g USING (genre_id) GROUP BY g.name HAVING count(*) > 10 ORDER BY tracks DESC',
      relations: ['track', 'genre'],
      functions: ['count', 'avg'],
    },
  ],
  [
    'CTE is not reported as a relation',
    {
      sql: 'WITH sales AS (SELECT customer_id, sum(total) AS spent FROM invoice GROUP BY customer_id) SELECT c.email, s.spent FROM sales s JOIN customer c ON c.customer_id = s.customer_id WHERE s.spent > $1 ORDER BY s.spent DESC',
      relations: ['invoice', 'customer'],
      functions: ['sum'],
      params: 1,
    },
  ],
  [
    'window functions with frame and named window',
    {
      sql: 'SELECT billing_country, invoice_date, total, sum(total) OVER (PARTITION BY billing_country ORDER BY invoice_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running, rank() OVER w AS rnk FROM invoice WINDOW w AS (PARTITION BY billing_country ORDER BY total DESC)',
      relations: ['invoice'],
      functions: ['sum', 'rank'],
    },
  ],
  [
    'lag / lead / ntile / row_number / first_value',
    {
      sql: 'SELECT invoice_id, lag(total) OVER o, lead(total, 2, 0) OVER o, ntile(4) OVER o, row_number() OVER o, first_value(total) OVER o, dense_rank() OVER o FROM invoice WINDOW o AS (ORDER BY invoice_date)',
      relations: ['invoice'],
      functions: ['lag', 'lead', 'ntile', 'row_number', 'first_value', 'dense_rank'],
    },
  ],
  [
    'UNION ALL / EXCEPT',
    {
      sql: 'SELECT name FROM artist UNION ALL SELECT title FROM album EXCEPT SELECT name FROM genre',
      relations: ['artist', 'album', 'genre'],
    },
  ],
  [
    'INTERSECT with parenthesised branches',
    {
      sql: '(SELECT customer_id FROM invoice WHERE total > 10) INTERSECT (SELECT customer_id FROM customer WHERE country = $2)',
      relations: ['invoice', 'customer'],
      params: 2,
    },
  ],
  ['bare VALUES', { sql: "VALUES (1, 'one'), (2, 'two') ORDER BY 1", relations: [] }],
  [
    'VALUES in FROM',
    { sql: "SELECT v.id, v.label FROM (VALUES (1, 'a'), (2, 'b')) AS v(id, label)", relations: [] },
  ],
  ['TABLE command', { sql: 'TABLE genre', relations: ['genre'] }],
  [
    'LATERAL subquery',
    {
      sql: 'SELECT c.customer_id, latest.invoice_date FROM customer c CROSS JOIN LATERAL (SELECT i.invoice_date FROM invoice i WHERE i.customer_id = c.customer_id ORDER BY i.invoice_date DESC LIMIT 1) latest',
      relations: ['customer', 'invoice'],
    },
  ],
  [
    'scalar / EXISTS / IN subqueries',
    {
      sql: 'SELECT a.name, (SELECT count(*) FROM album al WHERE al.artist_id = a.artist_id) AS albums FROM artist a WHERE EXISTS (SELECT 1 FROM album al2 WHERE al2.artist_id = a.artist_id) AND a.artist_id IN (SELECT artist_id FROM album)',
      relations: ['album', 'artist'],
    },
  ],
  [
    'jsonb operators and functions',
    {
      sql: "SELECT data->>'name' AS name, data #> '{address,city}' AS city, jsonb_array_length(data->'tags') FROM customer_profile WHERE data @> $1::jsonb AND data ? 'email'",
      relations: ['customer_profile'],
      functions: ['jsonb_array_length'],
      params: 1,
    },
  ],
  [
    'jsonb_agg with ORDER BY',
    {
      sql: "SELECT jsonb_agg(jsonb_build_object('id', track_id, 'name', name) ORDER BY name) FROM track WHERE album_id = $1",
      relations: ['track'],
      functions: ['jsonb_agg', 'jsonb_build_object'],
      params: 1,
    },
  ],
  [
    'casts in every syntax',
    {
      sql: "SELECT total::numeric(10,2), CAST(invoice_date AS date), '2024-01-01'::date + interval '1 month', invoice_id::text, numeric '1.5', int4(invoice_id) FROM invoice",
      relations: ['invoice'],
      functions: ['int4'],
    },
  ],
  [
    'date/time functions',
    {
      sql: "SELECT date_trunc('month', invoice_date) AS month, extract(year FROM invoice_date) AS yr, to_char(invoice_date, 'YYYY-MM'), age(invoice_date) FROM invoice WHERE invoice_date >= now() - interval '1 year' AND invoice_date < current_date",
      relations: ['invoice'],
      functions: ['date_trunc', 'extract', 'to_char', 'age', 'now'],
    },
  ],
  [
    'string functions including SQL-syntax forms',
    {
      sql: "SELECT lower(email), upper(last_name), initcap(first_name), concat_ws(' ', first_name, last_name), split_part(email, '@', 2), regexp_replace(phone, '[^0-9]', '', 'g'), substring(postal_code from 1 for 3), trim(both ' ' from city), position('@' in email), left(company, 10), lpad(customer_id::text, 6, '0'), md5(email), format('%s <%s>', first_name, email) FROM customer",
      relations: ['customer'],
      functions: ['lower', 'substring', 'btrim', 'position', 'format', 'md5'],
    },
  ],
  [
    'COALESCE / NULLIF / GREATEST / LEAST / CASE',
    {
      sql: "SELECT coalesce(company, 'n/a'), nullif(state, ''), greatest(total, 0), least(total, 100), CASE WHEN total > 10 THEN 'big' ELSE 'small' END FROM invoice JOIN customer USING (customer_id)",
      relations: ['invoice', 'customer'],
    },
  ],
  [
    'generate_series in FROM',
    {
      sql: "SELECT d::date FROM generate_series(date '2024-01-01', date '2024-12-01', interval '1 month') AS d",
      relations: [],
      functions: ['generate_series'],
    },
  ],
  [
    'ROWS FROM ... WITH ORDINALITY',
    {
      sql: 'SELECT * FROM ROWS FROM (unnest(ARRAY[1,2,3]), generate_series(1, 3)) WITH ORDINALITY AS r(a, b, n)',
      relations: [],
      functions: ['unnest', 'generate_series'],
    },
  ],
  [
    'ordered-set aggregates and FILTER',
    {
      sql: 'SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY milliseconds), mode() WITHIN GROUP (ORDER BY genre_id), count(*) FILTER (WHERE milliseconds > 300000), stddev_samp(unit_price), corr(milliseconds, bytes) FROM track',
      relations: ['track'],
      functions: ['percentile_cont', 'mode', 'count', 'stddev_samp', 'corr'],
    },
  ],
  [
    'ROLLUP / GROUPING()',
    {
      sql: 'SELECT billing_country, billing_city, sum(total), grouping(billing_country) FROM invoice GROUP BY ROLLUP (billing_country, billing_city)',
      relations: ['invoice'],
    },
  ],
  [
    'recursive CTE (self reference is not a relation)',
    {
      sql: 'WITH RECURSIVE chain(employee_id, reports_to, depth) AS (SELECT employee_id, reports_to, 0 FROM employee WHERE reports_to IS NULL UNION ALL SELECT e.employee_id, e.reports_to, c.depth + 1 FROM employee e JOIN chain c ON e.reports_to = c.employee_id) SELECT * FROM chain',
      relations: ['employee'],
    },
  ],
  [
    'non-recursive CTE body sees the real table of the same name',
    {
      sql: "WITH customer AS (SELECT * FROM customer WHERE country = 'Brazil') SELECT * FROM customer",
      relations: ['customer'],
    },
  ],
  [
    'CTE visible inside a sublink',
    {
      sql: 'WITH top AS (SELECT artist_id FROM album GROUP BY artist_id HAVING count(*) > 5) SELECT name FROM artist WHERE artist_id IN (SELECT artist_id FROM top)',
      relations: ['album', 'artist'],
    },
  ],
  [
    'CTE scoped to its subquery only',
    {
      sql: 'SELECT * FROM (WITH x AS (SELECT 1 AS v) SELECT v FROM x) s, x',
      relations: ['x'],
    },
  ],
  [
    'DISTINCT ON',
    {
      sql: 'SELECT DISTINCT ON (customer_id) customer_id, invoice_date, total FROM invoice ORDER BY customer_id, invoice_date DESC',
      relations: ['invoice'],
    },
  ],
  [
    'pg_catalog-qualified allowed function',
    {
      sql: 'SELECT pg_catalog.lower(name) FROM artist',
      relations: ['artist'],
      functions: ['lower'],
    },
  ],
  ['explicit OPERATOR(pg_catalog.+)', { sql: 'SELECT 1 OPERATOR(pg_catalog.+) 2', relations: [] }],
  [
    'several parameters, highest wins',
    {
      sql: 'SELECT * FROM track WHERE album_id = $2 AND genre_id = $1 LIMIT $3',
      relations: ['track'],
      params: 3,
    },
  ],
  [
    'TABLESAMPLE SYSTEM with REPEATABLE',
    {
      sql: 'SELECT * FROM track TABLESAMPLE SYSTEM (10) REPEATABLE (42)',
      relations: ['track'],
      functions: ['system'],
    },
  ],
  [
    'SQL/JSON constructors and query functions',
    {
      sql: "SELECT JSON_OBJECT('id': track_id, 'name': name RETURNING jsonb), JSON_ARRAY(1, 2), JSON_VALUE(payload, '$.a' RETURNING int DEFAULT 0 ON EMPTY), JSON_QUERY(payload, '$.b' WITH WRAPPER), JSON_EXISTS(payload, '$.c'), payload IS JSON OBJECT FROM track",
      relations: ['track'],
    },
  ],
  [
    'JSON_TABLE',
    {
      sql: "SELECT jt.* FROM customer_profile p, JSON_TABLE(p.data, '$.orders[*]' COLUMNS (id FOR ORDINALITY, sku text PATH '$.sku', qty int PATH '$.qty' DEFAULT 1 ON EMPTY)) AS jt",
      relations: ['customer_profile'],
    },
  ],
  [
    'ARRAY subquery, subscripts and array functions',
    {
      sql: "SELECT ARRAY(SELECT name FROM genre ORDER BY name), array_to_string(ARRAY['a','b'], ','), (ARRAY[1,2,3])[2], cardinality(ARRAY[1,2])",
      relations: ['genre'],
      functions: ['array_to_string', 'cardinality'],
    },
  ],
  [
    'IS DISTINCT FROM / BETWEEN / ILIKE / LIKE ESCAPE / SIMILAR TO',
    {
      sql: "SELECT * FROM track WHERE composer IS DISTINCT FROM NULL AND unit_price BETWEEN 0.5 AND 2 AND name ILIKE $1 AND name NOT LIKE '%live%' ESCAPE '!' AND name SIMILAR TO '%(a|b)%'",
      relations: ['track'],
      functions: ['like_escape', 'similar_to_escape'],
      params: 1,
    },
  ],
  [
    'AT TIME ZONE',
    {
      sql: "SELECT invoice_date AT TIME ZONE 'UTC' FROM invoice",
      relations: ['invoice'],
      functions: ['timezone'],
    },
  ],
  [
    'FETCH FIRST ... WITH TIES',
    {
      sql: 'SELECT name, milliseconds FROM track ORDER BY milliseconds DESC FETCH FIRST 10 ROWS WITH TIES',
      relations: ['track'],
    },
  ],
  // Rule 7: the real lexer decides what is a statement separator.
  ['block comment hiding a semicolon', { sql: 'SELECT 1 /* ; DROP TABLE t */', relations: [] }],
  ['dollar-quoted string hiding a semicolon', { sql: 'SELECT $$; DROP TABLE t$$', relations: [] }],
  ['tagged dollar quote', { sql: 'SELECT $fn$ ; COMMIT; $fn$ AS txt', relations: [] }],
  ['line comment hiding a semicolon', { sql: 'SELECT 1 -- ; DROP', relations: [] }],
  [
    'nested block comments',
    { sql: 'SELECT 1 /* outer /* inner ; DROP TABLE t */ still comment; */', relations: [] },
  ],
  ['E string with escaped quote', { sql: "SELECT E'it\\'s; DROP TABLE t'", relations: [] }],
  ['Unicode escape string', { sql: "SELECT U&'d\\0061t\\+000061; DROP'", relations: [] }],
  [
    'quoted identifier containing a semicolon',
    { sql: 'SELECT "weird;name" FROM artist', relations: ['artist'] },
  ],
  [
    'control characters inside literals and \\v/\\f whitespace',
    { sql: "SELECT 'a\u0001b\u001fc'\u000b,\u000c'd' FROM artist", relations: ['artist'] },
  ],
  [
    'same relation reported once, qualified and bare kept apart',
    {
      sql: 'SELECT * FROM track t1 JOIN track t2 ON t1.track_id = t2.track_id JOIN public.track t3 ON true',
      relations: ['track', 'public.track'],
    },
  ],
];

describe('checkReadOnlySql: accepted queries', () => {
  it.each(ACCEPTED)('%s', (_name, c) => {
    const decision = check(c.sql);
    if (!decision.ok)
      throw new Error(`expected acceptance, got ${decision.code}: ${decision.message}`);
    expect(decision.relations.map(rel)).toEqual(c.relations);
    expect(decision.paramCount).toBe(c.params ?? 0);
    for (const fn of c.functions ?? []) expect(decision.functions).toContain(fn);
  });
});

// ---------------------------------------------------------------------------------------
// Rejected queries
// ---------------------------------------------------------------------------------------

type RejectCase = readonly [
  name: string,
  sql: string,
  code: SqlGuardErrorCode,
  message?: string | RegExp,
];

const NOT_READ_ONLY = /statements are not allowed; only read-only SELECT queries are permitted$/;

const REJECTED: readonly RejectCase[] = [
  // Rule 1: exactly one statement.
  [
    'stacked statements',
    'SELECT 1; COMMIT; DROP TABLE t',
    'sql_not_single_statement',
    'only one statement is allowed',
  ],
  [
    'two selects',
    'SELECT 1; SELECT 2',
    'sql_not_single_statement',
    'only one statement is allowed',
  ],
  ['statement after an empty comment', 'SELECT 1;/* */DROP TABLE t', 'sql_not_single_statement'],
  [
    'empty string',
    '',
    'sql_not_single_statement',
    'SQL is empty; exactly one SELECT statement is required',
  ],
  ['whitespace only', '  \n\t ', 'sql_not_single_statement'],
  ['comment only', '-- nothing here', 'sql_not_single_statement'],
  ['lone semicolon', ';', 'sql_not_single_statement'],
  // Rule 2: statement kinds.
  ['COMMIT', 'COMMIT', 'sql_not_read_only', NOT_READ_ONLY],
  ['ROLLBACK', 'ROLLBACK', 'sql_not_read_only', NOT_READ_ONLY],
  ['BEGIN READ WRITE', 'BEGIN READ WRITE', 'sql_not_read_only', NOT_READ_ONLY],
  ['START TRANSACTION', 'START TRANSACTION READ WRITE', 'sql_not_read_only'],
  ['SET TRANSACTION READ WRITE', 'SET TRANSACTION READ WRITE', 'sql_not_read_only'],
  [
    'SET SESSION CHARACTERISTICS',
    'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    'sql_not_read_only',
  ],
  ['SAVEPOINT', 'SAVEPOINT s1', 'sql_not_read_only'],
  [
    'SET search_path',
    'SET search_path TO evil, public',
    'sql_not_read_only',
    'SET/RESET statements are not allowed; only read-only SELECT queries are permitted',
  ],
  ['SET ROLE', 'SET ROLE postgres', 'sql_not_read_only'],
  ['RESET ALL', 'RESET ALL', 'sql_not_read_only'],
  ['SHOW', 'SHOW search_path', 'sql_not_read_only'],
  [
    'INSERT',
    "INSERT INTO customer (first_name) VALUES ('x')",
    'sql_not_read_only',
    'INSERT statements are not allowed; only read-only SELECT queries are permitted',
  ],
  ['UPDATE', "UPDATE customer SET email = 'x'", 'sql_not_read_only'],
  ['DELETE', 'DELETE FROM invoice', 'sql_not_read_only'],
  ['MERGE', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'sql_not_read_only'],
  [
    'COPY TO file',
    "COPY customer TO '/tmp/out.csv'",
    'sql_not_read_only',
    'COPY statements are not allowed; only read-only SELECT queries are permitted',
  ],
  ['COPY FROM file', "COPY customer FROM '/etc/passwd'", 'sql_not_read_only'],
  ['COPY TO PROGRAM', "COPY (SELECT 1) TO PROGRAM 'id'", 'sql_not_read_only'],
  ['DO block', 'DO $$ BEGIN PERFORM pg_sleep(10); END $$', 'sql_not_read_only'],
  ['PREPARE', 'PREPARE p AS SELECT 1', 'sql_not_read_only'],
  ['EXECUTE', 'EXECUTE p', 'sql_not_read_only'],
  ['DEALLOCATE', 'DEALLOCATE ALL', 'sql_not_read_only'],
  ['EXPLAIN', 'EXPLAIN SELECT 1', 'sql_not_read_only'],
  [
    'EXPLAIN ANALYZE DELETE',
    'EXPLAIN ANALYZE DELETE FROM invoice',
    'sql_not_read_only',
    'EXPLAIN statements are not allowed; only read-only SELECT queries are permitted',
  ],
  ['LISTEN', 'LISTEN ch', 'sql_not_read_only'],
  ['NOTIFY', "NOTIFY ch, 'x'", 'sql_not_read_only'],
  ['UNLISTEN', 'UNLISTEN *', 'sql_not_read_only'],
  ['LOCK', 'LOCK TABLE invoice IN ACCESS EXCLUSIVE MODE', 'sql_not_read_only'],
  [
    'DROP TABLE',
    'DROP TABLE customer',
    'sql_not_read_only',
    'DDL statements are not allowed; only read-only SELECT queries are permitted',
  ],
  ['CREATE TABLE', 'CREATE TABLE x (id int)', 'sql_not_read_only'],
  ['ALTER TABLE', 'ALTER TABLE customer ADD COLUMN x int', 'sql_not_read_only'],
  ['TRUNCATE', 'TRUNCATE invoice', 'sql_not_read_only'],
  ['CREATE TABLE AS', 'CREATE TABLE x AS SELECT * FROM customer', 'sql_not_read_only'],
  ['CREATE MATERIALIZED VIEW', 'CREATE MATERIALIZED VIEW mv AS SELECT 1', 'sql_not_read_only'],
  ['CALL', 'CALL do_something()', 'sql_not_read_only'],
  ['VACUUM', 'VACUUM', 'sql_not_read_only'],
  ['ANALYZE', 'ANALYZE customer', 'sql_not_read_only'],
  ['DISCARD', 'DISCARD ALL', 'sql_not_read_only'],
  ['CHECKPOINT', 'CHECKPOINT', 'sql_not_read_only'],
  ['GRANT', 'GRANT ALL ON customer TO public', 'sql_not_read_only'],
  ['DECLARE CURSOR', 'DECLARE c CURSOR FOR SELECT 1', 'sql_not_read_only'],
  ['ALTER SYSTEM', "ALTER SYSTEM SET work_mem = '1GB'", 'sql_not_read_only'],
  ['LOAD', "LOAD 'somelib'", 'sql_not_read_only'],
  // Rule 3: nested constructs.
  [
    'SELECT INTO',
    'SELECT * INTO backup FROM customer',
    'sql_not_read_only',
    'SELECT ... INTO is not allowed',
  ],
  [
    'FOR UPDATE',
    'SELECT * FROM invoice FOR UPDATE',
    'sql_not_read_only',
    'SELECT ... FOR UPDATE is not allowed',
  ],
  [
    'FOR UPDATE in a FROM subquery',
    'SELECT * FROM (SELECT * FROM invoice FOR UPDATE) s',
    'sql_not_read_only',
    'SELECT ... FOR UPDATE is not allowed',
  ],
  [
    'FOR SHARE in an IN subquery',
    'SELECT * FROM invoice WHERE invoice_id IN (SELECT invoice_id FROM invoice_line FOR SHARE)',
    'sql_not_read_only',
    'SELECT ... FOR SHARE is not allowed',
  ],
  [
    'FOR NO KEY UPDATE SKIP LOCKED',
    'SELECT * FROM invoice FOR NO KEY UPDATE SKIP LOCKED',
    'sql_not_read_only',
    'SELECT ... FOR NO KEY UPDATE is not allowed',
  ],
  [
    'FOR KEY SHARE in a set-operation branch',
    '(SELECT 1 FROM invoice FOR KEY SHARE) UNION SELECT 2',
    'sql_not_read_only',
    'SELECT ... FOR KEY SHARE is not allowed',
  ],
  [
    'FOR UPDATE inside a CTE',
    'WITH x AS (SELECT * FROM invoice FOR UPDATE) SELECT * FROM x',
    'sql_not_read_only',
  ],
  [
    'writable CTE (DELETE)',
    'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
    'sql_not_read_only',
    'data-modifying statements inside WITH are not allowed',
  ],
  [
    'writable CTE (UPDATE)',
    'WITH u AS (UPDATE customer SET email = NULL RETURNING 1) SELECT 1',
    'sql_not_read_only',
    'data-modifying statements inside WITH are not allowed',
  ],
  [
    'writable CTE (INSERT)',
    'WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM i',
    'sql_not_read_only',
  ],
  [
    'writable CTE (MERGE)',
    'WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *) SELECT 1',
    'sql_not_read_only',
  ],
  [
    'writable CTE nested in a subquery',
    'SELECT * FROM (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) s',
    'sql_not_read_only',
    'data-modifying statements inside WITH are not allowed',
  ],
  [
    'XML construct (unsupported node)',
    'SELECT xmlelement(name foo)',
    'sql_not_read_only',
    'unsupported SQL construct: XML functions',
  ],
  // Rule 4: functions.
  ['pg_sleep', 'SELECT pg_sleep(10)', 'sql_function_denied', 'function pg_sleep is not allowed'],
  [
    'pg_catalog.pg_sleep',
    'SELECT pg_catalog.pg_sleep(10)',
    'sql_function_denied',
    'function pg_catalog.pg_sleep is not allowed',
  ],
  [
    '"PG_SLEEP" quoted upper case',
    'SELECT "PG_SLEEP"(10)',
    'sql_function_denied',
    'function "PG_SLEEP" is not allowed',
  ],
  [
    '"pg_sleep" quoted lower case',
    'SELECT "pg_sleep"(10)',
    'sql_function_denied',
    'function pg_sleep is not allowed',
  ],
  [
    'PG_SLEEP unquoted upper case',
    'SELECT PG_SLEEP(10)',
    'sql_function_denied',
    'function pg_sleep is not allowed',
  ],
  ['pg_catalog."Pg_Sleep"', 'SELECT pg_catalog."Pg_Sleep"(1)', 'sql_function_denied'],
  [
    'Unicode-escaped identifier U&"pg\\005fsleep"',
    'SELECT U&"pg\\005fsleep"(1)',
    'sql_function_denied',
    'function pg_sleep is not allowed',
  ],
  [
    'schema and name both quoted',
    'SELECT "pg_catalog"."pg_sleep"(1)',
    'sql_function_denied',
    'function pg_catalog.pg_sleep is not allowed',
  ],
  ['pg_sleep_for', "SELECT pg_sleep_for('5 minutes')", 'sql_function_denied'],
  [
    'pg_sleep in a window argument',
    'SELECT sum(pg_sleep(1)) OVER () FROM track',
    'sql_function_denied',
  ],
  ['pg_sleep in a CTE', 'WITH x AS (SELECT pg_sleep(1)) SELECT * FROM x', 'sql_function_denied'],
  [
    'pg_sleep in an EXISTS subquery',
    'SELECT * FROM artist WHERE EXISTS (SELECT 1 WHERE pg_sleep(1) IS NOT NULL)',
    'sql_function_denied',
  ],
  [
    'pg_sleep in ORDER BY of an aggregate',
    "SELECT string_agg(name, ',' ORDER BY pg_sleep(1)) FROM artist",
    'sql_function_denied',
  ],
  [
    'set_config',
    "SELECT set_config('statement_timeout', '0', false)",
    'sql_function_denied',
    'function set_config is not allowed',
  ],
  ['current_setting', "SELECT current_setting('data_directory')", 'sql_function_denied'],
  [
    'nextval',
    "SELECT nextval('invoice_invoice_id_seq')",
    'sql_function_denied',
    'function nextval is not allowed',
  ],
  ['setval', "SELECT setval('s', 1)", 'sql_function_denied'],
  ['currval', "SELECT currval('s')", 'sql_function_denied'],
  [
    'pg_read_file',
    "SELECT pg_read_file('/etc/passwd')",
    'sql_function_denied',
    'function pg_read_file is not allowed',
  ],
  ['pg_read_binary_file', "SELECT pg_read_binary_file('/etc/passwd')", 'sql_function_denied'],
  [
    'pg_ls_dir in FROM',
    "SELECT * FROM pg_ls_dir('.')",
    'sql_function_denied',
    'function pg_ls_dir is not allowed',
  ],
  ['pg_stat_file', "SELECT pg_stat_file('postgresql.conf')", 'sql_function_denied'],
  [
    'lo_import',
    "SELECT lo_import('/etc/passwd')",
    'sql_function_denied',
    'function lo_import is not allowed',
  ],
  ['lo_export', "SELECT lo_export(1, '/tmp/x')", 'sql_function_denied'],
  [
    'dblink in FROM',
    "SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)",
    'sql_function_denied',
    'function dblink is not allowed',
  ],
  ['public.dblink_exec', "SELECT public.dblink_exec('x')", 'sql_function_denied'],
  ['pg_terminate_backend', 'SELECT pg_terminate_backend(1234)', 'sql_function_denied'],
  ['pg_cancel_backend', 'SELECT pg_cancel_backend(1)', 'sql_function_denied'],
  ['pg_reload_conf', 'SELECT pg_reload_conf()', 'sql_function_denied'],
  ['pg_advisory_lock', 'SELECT pg_advisory_lock(1)', 'sql_function_denied'],
  ['pg_try_advisory_xact_lock', 'SELECT pg_try_advisory_xact_lock(1)', 'sql_function_denied'],
  ['pg_notify', "SELECT pg_notify('ch', 'x')", 'sql_function_denied'],
  [
    'query_to_xml executes SQL text',
    "SELECT query_to_xml('DELETE FROM invoice RETURNING 1', true, true, '')",
    'sql_function_denied',
    'function query_to_xml is not allowed',
  ],
  ['table_to_xml', "SELECT table_to_xml('employee', true, true, '')", 'sql_function_denied'],
  [
    'pg_logical_slot_get_changes',
    "SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)",
    'sql_function_denied',
  ],
  ['txid_current assigns an xid', 'SELECT txid_current()', 'sql_function_denied'],
  ['pg_current_xact_id', 'SELECT pg_current_xact_id()', 'sql_function_denied'],
  ['pg_switch_wal', 'SELECT pg_switch_wal()', 'sql_function_denied'],
  ['pg_create_restore_point', "SELECT pg_create_restore_point('x')", 'sql_function_denied'],
  ['version() leaks the server build', 'SELECT version()', 'sql_function_denied'],
  [
    'ts_stat executes SQL text',
    "SELECT * FROM ts_stat('SELECT to_tsvector(body) FROM secrets')",
    'sql_function_denied',
  ],
  ['xpath', "SELECT xpath('/a', '<a/>'::xml)", 'sql_function_denied'],
  ['unknown function', 'SELECT my_udf(1)', 'sql_function_denied', 'function my_udf is not allowed'],
  [
    'allowed name in a user schema',
    'SELECT public.lower(name) FROM artist',
    'sql_function_denied',
    'function public.lower is not allowed',
  ],
  ['three-part function name', "SELECT other_db.pg_catalog.lower('x')", 'sql_function_denied'],
  [
    'TABLESAMPLE with extension method',
    'SELECT * FROM track TABLESAMPLE system_time (1000)',
    'sql_function_denied',
    'TABLESAMPLE method system_time is not allowed',
  ],
  [
    'OPERATOR(public.+)',
    'SELECT 1 OPERATOR(public.+) 2',
    'sql_function_denied',
    'operator OPERATOR(public.+) is not allowed: only pg_catalog operators may be schema-qualified',
  ],
  [
    'ORDER BY ... USING OPERATOR(public.<)',
    'SELECT * FROM track ORDER BY name USING OPERATOR(public.<)',
    'sql_function_denied',
  ],
  [
    'qualified operator in ANY (subquery)',
    'SELECT 1 OPERATOR(evil.=) ANY (SELECT 1)',
    'sql_function_denied',
  ],
  // Rule 5: relations.
  [
    'other schema',
    'SELECT * FROM secret.payroll',
    'sql_relation_denied',
    'relation secret.payroll is not allowed: schema secret is not allowed',
  ],
  ['pg_catalog table', 'SELECT * FROM pg_catalog.pg_authid', 'sql_relation_denied'],
  ['information_schema', 'SELECT * FROM information_schema.tables', 'sql_relation_denied'],
  [
    'three-part relation name',
    'SELECT * FROM mydb.public.customer',
    'sql_relation_denied',
    'relation mydb.public.customer is not allowed: database-qualified names are not allowed',
  ],
  [
    'denied table, bare name',
    'SELECT * FROM employee_salary',
    'sql_relation_denied',
    'relation employee_salary is not allowed',
  ],
  [
    'denied table, qualified',
    'SELECT * FROM public.employee_salary',
    'sql_relation_denied',
    'relation public.employee_salary is not allowed',
  ],
  [
    'denied bare entry matches qualified reference',
    'SELECT * FROM public.api_key',
    'sql_relation_denied',
  ],
  [
    'denied table in EXISTS',
    'SELECT c.email FROM customer c WHERE EXISTS (SELECT 1 FROM public.employee_salary s)',
    'sql_relation_denied',
  ],
  [
    'denied table inside a CTE',
    'WITH s AS (SELECT * FROM employee_salary) SELECT * FROM s',
    'sql_relation_denied',
  ],
  [
    'non-recursive CTE cannot shield its own name',
    'WITH employee_salary AS (SELECT * FROM employee_salary) SELECT * FROM employee_salary',
    'sql_relation_denied',
  ],
  [
    'CTE name does not shield a qualified name',
    'WITH payroll AS (SELECT 1) SELECT * FROM secret.payroll',
    'sql_relation_denied',
  ],
  ['quoted schema is case-sensitive', 'SELECT * FROM "Public".customer', 'sql_relation_denied'],
  ['TABLE on another schema', 'TABLE secret.payroll', 'sql_relation_denied'],
  [
    'TABLESAMPLE on another schema',
    'SELECT * FROM secret.payroll TABLESAMPLE BERNOULLI (1)',
    'sql_relation_denied',
  ],
  [
    'other schema in LATERAL join',
    'SELECT * FROM customer JOIN LATERAL (SELECT * FROM secret.x) s ON true',
    'sql_relation_denied',
  ],
  [
    'other schema in a UNION branch',
    'SELECT name FROM artist UNION SELECT login FROM secret.users',
    'sql_relation_denied',
  ],
  // Parse errors and input hygiene.
  [
    'syntax error',
    'SELEC 1',
    'sql_parse_error',
    'SQL could not be parsed: syntax error at character 1',
  ],
  [
    'unterminated string',
    "SELECT 'this literal never ends; DROP TABLE t",
    'sql_parse_error',
    /^SQL could not be parsed: unterminated quoted string at character \d+$/,
  ],
  ['unterminated comment', 'SELECT 1 /* never closed', 'sql_parse_error'],
  [
    'incomplete statement',
    'SELECT * FROM',
    'sql_parse_error',
    'SQL could not be parsed: syntax error at end of input',
  ],
  [
    'control character outside a literal',
    'SELECT 1 \u0001 FROM artist',
    'sql_parse_error',
    /^SQL could not be parsed: syntax error at character \d+$/,
  ],
  [
    'NUL byte truncation attack',
    'SELECT 1\u0000; DROP TABLE t',
    'sql_parse_error',
    'SQL must not contain NUL characters',
  ],
  ['unpaired surrogate', "SELECT '\uD800'", 'sql_parse_error'],
  ['$0 parameter', 'SELECT $0', 'sql_parse_error'],
  ['parameter beyond the protocol limit', 'SELECT $70000', 'sql_parse_error'],
];

describe('checkReadOnlySql: rejected queries', () => {
  const rows = REJECTED.map(([name, sql, code, message]) => ({ name, sql, code, message }));
  it.each(rows)('$name', ({ sql, code, message }) => {
    const decision = check(sql);
    if (decision.ok) throw new Error('expected rejection, got acceptance');
    expect(decision.code).toBe(code);
    expectSanitized(sql, decision.message);
    if (typeof message === 'string') expect(decision.message).toBe(message);
    else if (message !== undefined) expect(decision.message).toMatch(message);
  });
});

// ---------------------------------------------------------------------------------------
// Policy options
// ---------------------------------------------------------------------------------------

describe('checkReadOnlySql: policy options', () => {
  const extras: SqlGuardPolicy = {
    allowedSchemas: ['public', 'analytics'],
    extraFunctions: ['my_udf', 'analytics.score', 'pg_sleep', 'public.dblink'],
  };

  it('allows operator-listed functions, bare and schema-qualified', () => {
    const d = check('SELECT my_udf(1), analytics.score(2), pg_catalog.my_udf(3)', extras);
    expect(d).toEqual({
      ok: true,
      relations: [],
      functions: ['my_udf', 'analytics.score'],
      paramCount: 0,
      attributeNames: [],
      typeNames: [],
      operatorNames: [],
      attributeRefs: [],
      relationAliases: [],
      opaqueAliases: [],
    });
  });

  it.each([
    ['SELECT public.my_udf(1)', 'function public.my_udf is not allowed'],
    ['SELECT other.score(1)', 'function other.score is not allowed'],
    ['SELECT pg_sleep(1)', 'function pg_sleep is not allowed'],
    ["SELECT * FROM public.dblink('x', 'y') AS t(a int)", 'function public.dblink is not allowed'],
  ])(
    'extraFunctions cannot reach other schemas or re-enable denied functions: %s',
    (sql, message) => {
      expect(check(sql, extras)).toEqual({ ok: false, code: 'sql_function_denied', message });
    },
  );

  it('extraFunctions can add TABLESAMPLE methods', () => {
    const policy = { allowedSchemas: ['public'], extraFunctions: ['system_rows'] };
    const d = check('SELECT * FROM track TABLESAMPLE system_rows (100)', policy);
    expect(d.ok).toBe(true);
  });

  const tables: SqlGuardPolicy = {
    allowedSchemas: ['public'],
    allowedTables: ['public.track', 'album'],
  };

  it('allowedTables admits listed tables (qualified entry matches bare reference too)', () => {
    const d = check('SELECT * FROM track JOIN public.album USING (album_id)', tables);
    expect(d).toMatchObject({
      ok: true,
      relations: [
        { schema: null, name: 'track' },
        { schema: 'public', name: 'album' },
      ],
    });
  });

  it('allowedTables rejects anything else, even in an allowed schema', () => {
    expect(check('SELECT * FROM track JOIN customer ON true', tables)).toEqual({
      ok: false,
      code: 'sql_relation_denied',
      message: 'relation customer is not in the allowed tables',
    });
  });

  it('CTE references are exempt from allowedTables', () => {
    const d = check('WITH t AS (SELECT * FROM album) SELECT * FROM t', tables);
    expect(d).toMatchObject({ ok: true, relations: [{ schema: null, name: 'album' }] });
  });

  it('information_schema is readable only when it is an allowed schema', () => {
    const sql = 'SELECT table_name FROM information_schema.tables';
    expect(check(sql).ok).toBe(false);
    expect(check(sql, { allowedSchemas: ['public', 'information_schema'] })).toMatchObject({
      ok: true,
      relations: [{ schema: 'information_schema', name: 'tables' }],
    });
  });

  it.each([
    [{ allowedSchemas: 'public' }],
    [{ allowedSchemas: ['public'], allowedTables: ['a.b.c'] }],
    [{ allowedSchemas: ['public'], deniedTables: ['.x'] }],
    [{ allowedSchemas: ['public'], extraFunctions: [42] }],
    [{ allowedSchemas: [''] }],
  ])('malformed policy throws TypeError: %j', (policy) => {
    expect(() => checkReadOnlySql('SELECT 1', policy as unknown as SqlGuardPolicy)).toThrow(
      TypeError,
    );
  });
});

// ---------------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------------

describe('checkReadOnlySql: robustness', () => {
  it('rejects nesting that would overflow the WASM parser, and keeps working afterwards', () => {
    // ~2,300 nested scalar subqueries overflow libpg-query's recursive serializer and corrupt
    // the module; the lexical pre-check must stop this before parseSync is called.
    for (const depth of [2_500, 5_000]) {
      const sql = `SELECT ${'(SELECT '.repeat(depth)}1${')'.repeat(depth)}`;
      expect(check(sql)).toEqual({
        ok: false,
        code: 'sql_parse_error',
        message: 'SQL is too deeply nested or too complex to check',
      });
    }
    const chain = `SELECT ${Array.from({ length: 12_000 }, () => '1').join('+')}`;
    expect(check(chain)).toMatchObject({ ok: false, code: 'sql_parse_error' });
    expect(check('SELECT name FROM artist')).toMatchObject({
      ok: true,
      relations: [{ name: 'artist' }],
    });
  });

  it('accepts large but flat realistic queries', () => {
    const inList = Array.from({ length: 5_000 }, (_, i) => `$${i + 1}`).join(', ');
    expect(check(`SELECT * FROM track WHERE track_id IN (${inList})`)).toMatchObject({
      ok: true,
      paramCount: 5_000,
    });
    const conditions = Array.from({ length: 300 }, (_, i) => `genre_id <> ${i}`).join(' AND ');
    expect(check(`SELECT count(*) FROM track WHERE ${conditions}`).ok).toBe(true);
    const columns = Array.from(
      { length: 400 },
      (_, i) => `coalesce(sum(total) FILTER (WHERE customer_id = ${i}), 0) AS c${i}`,
    ).join(',\n  ');
    expect(check(`SELECT\n  ${columns}\nFROM invoice`).ok).toBe(true);
  });

  it('rejects oversized input without parsing it', () => {
    const sql = `SELECT 1 -- ${'x'.repeat(1_000_001)}`;
    expect(check(sql)).toMatchObject({
      ok: false,
      code: 'sql_parse_error',
      message: expect.stringMatching(/too long/),
    });
  });

  it('initSqlGuard is idempotent and concurrency-safe', async () => {
    await Promise.all([initSqlGuard(), initSqlGuard(), initSqlGuard()]);
    expect(check('SELECT 1').ok).toBe(true);
  });

  it('throws if initSqlGuard has not been awaited', async () => {
    vi.resetModules();
    const fresh = await import('./sql-guard.js');
    expect(() => fresh.checkReadOnlySql('SELECT 1', POLICY)).toThrow(/initSqlGuard/);
    await fresh.initSqlGuard();
    expect(fresh.checkReadOnlySql('SELECT 1', POLICY).ok).toBe(true);
  });

  it('decision objects are plain data (JSON round-trip)', () => {
    const d = check('SELECT lower(name) FROM public.artist WHERE artist_id = $1');
    expect(JSON.parse(JSON.stringify(d))).toEqual({
      ok: true,
      relations: [{ schema: 'public', name: 'artist' }],
      functions: ['lower'],
      paramCount: 1,
      attributeNames: [],
      typeNames: [],
      operatorNames: ['='],
      attributeRefs: [],
      relationAliases: [{ alias: 'artist', schema: 'public', name: 'artist' }],
      opaqueAliases: [],
    });
  });
});

// ---------------------------------------------------------------------------------------
// Attribute notation and type names (found in review: `x.fn` is the call `fn(x)`)
// ---------------------------------------------------------------------------------------

describe('checkReadOnlySql: attribute notation and types', () => {
  it.each([
    ["SELECT ('SELECT 1').ts_stat", 'function ts_stat is not allowed (attribute notation)'],
    [
      'SELECT ($1::int).pg_terminate_backend',
      'function pg_terminate_backend is not allowed (attribute notation)',
    ],
    [
      "SELECT ('TimeZone').current_setting",
      'function current_setting is not allowed (attribute notation)',
    ],
    [
      'SELECT g.pg_stat_get_backend_activity FROM generate_series(1, 10) g',
      'function pg_stat_get_backend_activity is not allowed (attribute notation)',
    ],
    ['SELECT (1::float8).pg_sleep', 'function pg_sleep is not allowed (attribute notation)'],
    ['SELECT c.setseed FROM customer c', 'function setseed is not allowed (attribute notation)'],
    [
      'SELECT (1::int8).pg_try_advisory_lock',
      'function pg_try_advisory_lock is not allowed (attribute notation)',
    ],
  ])('refuses denied functions called as attributes: %s', (sql, message) => {
    expect(check(sql)).toEqual({ ok: false, code: 'sql_function_denied', message });
  });

  it.each([
    ["SELECT ('SELECT 1').ts_stat.word", 'function ts_stat is not allowed (attribute notation)'],
    ["SELECT ('SELECT 1'::text).ts_stat.*", 'function ts_stat is not allowed (attribute notation)'],
  ])('checks every name of an attribute chain, whatever ends it: %s', (sql, message) => {
    expect(check(sql)).toEqual({ ok: false, code: 'sql_function_denied', message });
  });

  it('reports names before a subscript for the catalog check', () => {
    const d = check('SELECT (true).current_schemas[1]');
    expect(d.ok && d.attributeNames).toEqual(['current_schemas']);
  });

  it('reports each attribute name with its qualifier, and the range names', () => {
    const d = check(
      'SELECT c.email, (c).first_name, i.total, s.x, t.a.b FROM customer c JOIN invoice i USING (customer_id), (SELECT 1 AS x) s, track t',
    );
    expect(d.ok && d.attributeRefs).toEqual([
      { qualifier: 'c', name: 'email' },
      { qualifier: null, name: 'first_name' },
      { qualifier: 'i', name: 'total' },
      { qualifier: 's', name: 'x' },
      { qualifier: null, name: 'a' },
      { qualifier: null, name: 'b' },
    ]);
    expect(d.ok && d.relationAliases).toEqual([
      { alias: 'c', schema: null, name: 'customer' },
      { alias: 'i', schema: null, name: 'invoice' },
      { alias: 't', schema: null, name: 'track' },
    ]);
    expect(d.ok && d.opaqueAliases).toEqual(['s']);
  });

  it('reports CTE names and aliases shared with subqueries as opaque range names', () => {
    const d = check(
      'WITH w AS (SELECT 1 AS n) SELECT w.n, x.name FROM w, genre x WHERE EXISTS (SELECT 1 FROM (SELECT 2) x)',
    );
    expect(d.ok && [...d.opaqueAliases].sort()).toEqual(['w', 'x']);
  });

  it.each([
    ['SELECT 1 BETWEEN 0 AND 2', ['>=', '<=', '<', '>']],
    ['SELECT 1 NOT BETWEEN SYMMETRIC 0 AND 2', ['>=', '<=', '<', '>']],
    ['SELECT CASE 1 WHEN 2 THEN 3 END', ['=']],
    ['SELECT 1 FROM genre JOIN track USING (genre_id)', ['=']],
    ['SELECT 1 FROM genre NATURAL JOIN track', ['=']],
  ])('reports the operators a construct looks up by name: %s', (sql, ops) => {
    const d = check(sql);
    expect(d.ok && d.operatorNames.filter((o) => /^[<>=]+$/.test(o))).toEqual(ops);
  });

  it('reports operator names for the catalog check', () => {
    const d = check('SELECT 1 ##> 2, 3 + 4');
    expect(d.ok && d.operatorNames).toEqual(['##>', '+']);
  });

  it('reports trailing attribute names for the catalog check', () => {
    const d = check(
      'SELECT c.email, (c).first_name, i.total FROM customer c JOIN invoice i USING (customer_id)',
    );
    expect(d.ok && [...d.attributeNames].sort()).toEqual(['email', 'first_name', 'total']);
  });

  it.each([
    ["SELECT 'customer'::regclass", 'type regclass is not allowed'],
    ['SELECT 10::regrole', 'type regrole is not allowed'],
    ["SELECT 'now'::pg_catalog.regproc", 'type regproc is not allowed'],
    ['SELECT g::oid FROM generate_series(1, 3) g', 'type oid is not allowed'],
    ["SELECT '{customer}'::_regclass", 'type _regclass is not allowed'],
    ["SELECT '{customer}'::regclass[]", 'type regclass is not allowed'],
    ["SELECT ARRAY['customer']::pg_catalog._regclass", 'type _regclass is not allowed'],
    ["SELECT CAST('{1}' AS _oid)", 'type _oid is not allowed'],
    ["SELECT '1 2'::oidvector", 'type oidvector is not allowed'],
    ['SELECT \'x\'::"_regnamespace"', 'type _regnamespace is not allowed'],
    ["SELECT regrole 'postgres'", 'type regrole is not allowed'],
  ])('refuses object-identifier types: %s', (sql, message) => {
    expect(check(sql)).toEqual({ ok: false, code: 'sql_function_denied', message });
  });

  it('refuses types from schemas that are not allowed and row types of denied tables', () => {
    expect(check('SELECT null::hr.salaries').ok).toBe(false);
    expect(
      check("SELECT * FROM json_populate_record(null::secret, '{}')", {
        allowedSchemas: ['public'],
        deniedTables: ['secret'],
      }),
    ).toMatchObject({ ok: false, code: 'sql_relation_denied' });
    const d = check("SELECT '1'::int4, 'a'::pg_catalog.text, null::customer");
    expect(d.ok && d.typeNames).toEqual([['int4'], ['customer']]);
  });
});

// ---------------------------------------------------------------------------------------
// Allowlist hygiene
// ---------------------------------------------------------------------------------------

describe('function allowlist', () => {
  it('never allowlists a denied function', () => {
    const clashes = [...BUILTIN_FUNCTION_ALLOWLIST, ...TABLESAMPLE_METHOD_ALLOWLIST].filter(
      isDeniedFunctionName,
    );
    expect(clashes).toEqual([]);
  });

  it('stores lower-case identifiers only', () => {
    for (const name of [...BUILTIN_FUNCTION_ALLOWLIST, ...DENIED_FUNCTION_NAMES]) {
      expect(name).toMatch(/^[a-z_][a-z0-9_]*$/);
    }
  });

  it.each([
    'pg_sleep',
    'PG_SLEEP',
    'pg_sleep_until',
    'set_config',
    'current_setting',
    'nextval',
    'lastval',
    'pg_read_file',
    'pg_ls_waldir',
    'lo_unlink',
    'dblink_connect',
    'pg_advisory_unlock_all',
    'pg_try_advisory_lock_shared',
    'query_to_xmlschema',
    'cursor_to_xml',
    'pg_logical_emit_message',
    'pg_replication_origin_create',
    'txid_current',
    'pg_current_xact_id_if_assigned',
    'pg_create_logical_replication_slot',
    'pg_drop_replication_slot',
    'pg_backup_start',
    'pg_promote',
    'pg_import_system_collations',
    'version',
  ])('denies %s', (name) => {
    expect(isDeniedFunctionName(name)).toBe(true);
  });

  it.each([
    'count',
    'sum',
    'lower',
    'date_trunc',
    'jsonb_build_object',
    'row_number',
    'generate_series',
    'percentile_cont',
  ])('allows %s', (name) => {
    expect(BUILTIN_FUNCTION_ALLOWLIST.has(name)).toBe(true);
    expect(isDeniedFunctionName(name)).toBe(false);
  });
});
