/**
 * Postgres walls, round two (issue 10 §1 and §3): what the guard allows must be what the catalog
 * says, operators PostgreSQL cannot interrupt never run over values built in the query (§2.1), and
 * the approved write must be the whole write. Black-box: the built
 * `hardened-mcp-postgres` bin over stdio with the MCP SDK client, against a real PostgreSQL with
 * Chinook (embedded 18, or `DATABASE_URL` with `HMCP_TEST_PG=external`).
 *
 * Every attack row must come back as a tool error with its stable code, never show the secret or
 * a denied relation's name, and leave the database exactly as it was (db-state.ts); a normal query
 * is served after each. Beside the attacks, a table of honest queries (ordered-set aggregates,
 * window functions, JSON functions, CTEs, joins, arrays, containment over stored arrays and jsonb,
 * a view over allowed tables) must keep passing, and honest writes (cascades into writable tables within the cap) must keep working.
 *
 * Sessions: `ro` reads schema `public`; `sh` reads `public` and `shadow`, where user-defined
 * overloads, operators, casts and types wait for type resolution to pick them; `rw` is read-write
 * with an approving client (it declines texts containing DECLINE_MARK).
 */
import { randomBytes } from 'node:crypto';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerSession, startPostgresServer, textOf } from '../support/server.ts';
import {
  type DbState,
  openStateProbe,
  type StateProbe,
  settled,
  snapshotSettled,
} from './db-state.ts';

const TAG = randomBytes(4).toString('hex');
/** Value of `secret.creds.token`: schema `secret` is not allowed, yet the read role could SELECT it. */
const SECRET = `tok${TAG}walls`;
/** Approval texts containing this are declined by the rw client. */
const DECLINE_MARK = 'DECLINE-ME';

type Code = 'policy_denied' | 'limit_exceeded' | 'approval_declined';

interface ReadAttack {
  readonly name: string;
  readonly session: 'ro' | 'sh';
  readonly tool: 'postgres_query' | 'postgres_explain';
  readonly sql: string;
  /** Extra strings the error text must not contain (besides the secret). */
  readonly secrets?: readonly string[];
}

const ro = (name: string, sql: string, secrets?: string[]): ReadAttack => ({
  name,
  session: 'ro',
  tool: 'postgres_query',
  sql,
  ...(secrets ? { secrets } : {}),
});
const sh = (name: string, sql: string): ReadAttack => ({
  name,
  session: 'sh',
  tool: 'postgres_query',
  sql,
});
const explain = (name: string, sql: string, secrets: string[]): ReadAttack => ({
  name,
  session: 'ro',
  tool: 'postgres_explain',
  sql,
  secrets,
});

/** §1.1 Object-identifier types in every spelling. */
const OID_TYPE_ATTACKS: readonly ReadAttack[] = [
  ro('array type _regclass', "SELECT '{secret.creds}'::_regclass"),
  ro('array type pg_catalog._regclass', "SELECT ARRAY['secret.creds']::pg_catalog._regclass"),
  ro('array type _regrole', "SELECT '{postgres}'::_regrole"),
  ro('array type _oid then text', "SELECT '{1259}'::_oid::text"),
  ro('quoted array type "_regnamespace"', 'SELECT \'{secret}\'::"_regnamespace"'),
  ro('oidvector', "SELECT '1259 1255'::oidvector"),
  ro('domain over regclass', "SELECT 'secret.creds'::rc"),
  ro('domain over regclass, qualified', "SELECT CAST('secret.creds' AS public.rc)"),
  ro('domain over a domain over regclass', "SELECT 'secret.creds'::rc2::text"),
  ro('domain over regclass[]', "SELECT '{secret.creds}'::rcs"),
  ro(
    'domain over oid then domain over regclass: enumerates relations',
    'SELECT g::oiddom::rc::text FROM generate_series(1, 20000) g LIMIT 5',
  ),
  ro('composite type with a regclass field', "SELECT ('(secret.creds)'::relref).r"),
  ro(
    'a column of type regclass meets a name (GREATEST, no operator named)',
    "SELECT greatest(rel, 'secret.creds')::text FROM rel_notes",
  ),
  ro('a column of type regclass printed', 'SELECT rel::text FROM rel_notes'),
];

/** §1.2 Every function, operator, cast and type function is the one the allowlist means. */
const RESOLUTION_ATTACKS: readonly ReadAttack[] = [
  sh('user overload of lower(integer) on the search path', 'SELECT lower(1)'),
  sh('user overload chosen for a column', 'SELECT lower(genre_id) FROM genre LIMIT 1'),
  sh('user overload through an implicit cast int4 -> int8', 'SELECT length(5)'),
  sh('user variadic overload', "SELECT concat_ws(',', 1, 2)"),
  sh('user overload of an aggregate name', 'SELECT max(g.genre_id::int2) FROM genre g'),
  sh('user overload, pg_catalog name in a subquery', 'SELECT (SELECT lower(1)) AS x'),
  sh('user overload in FROM', 'SELECT * FROM lower(1) AS t(x)'),
  sh(
    'attribute notation: a column of another relation than its qualifier',
    'SELECT c.total FROM customer c, invoice i LIMIT 1',
  ),
  sh(
    'attribute notation: unaliased qualifier without the column',
    'SELECT customer.total FROM customer, invoice LIMIT 1',
  ),
  sh(
    'attribute notation after an expression, the name a column elsewhere',
    'SELECT (c).total FROM customer c, invoice i LIMIT 1',
  ),
  sh(
    'attribute notation through a subquery alias',
    'SELECT s.total FROM (SELECT c FROM customer c) s(c2), invoice LIMIT 1',
  ),
  sh('user overload reached by attribute notation on a value', 'SELECT (1).lower'),
  sh(
    'user overload reached by attribute notation on a function alias',
    'SELECT g.lower FROM generate_series(1, 2) g',
  ),
  sh('user operator picked by NULLIF (=)', "SELECT NULLIF(genre_id, '1') FROM genre"),
  sh('user operator picked by IN (=)', "SELECT 1 FROM genre WHERE genre_id IN ('1')"),
  sh(
    'user operator picked by IS DISTINCT FROM (=)',
    "SELECT 1 FROM genre WHERE genre_id IS DISTINCT FROM '1'",
  ),
  sh(
    'user operator picked by BETWEEN (>=)',
    "SELECT 1 FROM genre WHERE genre_id BETWEEN '1' AND '2'",
  ),
  sh(
    'user operator picked by a simple CASE (=)',
    "SELECT CASE genre_id WHEN '1' THEN 'a' END FROM genre",
  ),
  sh('user implicit cast to text', 'SELECT lower(m) FROM moods'),
  sh('user cast, explicit', 'SELECT m::text FROM moods'),
  sh('user cast from text to a user type', "SELECT 'sad'::text::shadow.mood"),
  sh('domain constraint calling a user function', "SELECT 'x'::shadow.peeky"),
  sh('type with a user-defined input function', "SELECT 'abc'::shadow.opaque_text::text"),
  sh('column of a type with a user-defined output function', 'SELECT v FROM opaque_notes'),
  sh('range type with a user-defined subtype difference function', "SELECT '[1,2]'::shadow.frange"),
];

/** §1.3 Denied stays denied through views, materialized views and functions. */
const VIEW_ATTACKS: readonly ReadAttack[] = [
  ro('view over a table of a schema that is not allowed', 'SELECT * FROM creds_view'),
  ro('view over a denied table', 'SELECT * FROM staff', ['employee']),
  ro('view over a view over a denied table', 'SELECT * FROM staff2', ['employee']),
  ro('materialized view over a schema that is not allowed', 'SELECT * FROM creds_mv'),
  ro('view backed by a user function', 'SELECT * FROM fn_view'),
  ro('view over a pg_catalog view', 'SELECT * FROM roles_view'),
  ro('view using a user-defined operator', 'SELECT * FROM op_view'),
  ro('view calling a built-in function that is not allowed', 'SELECT * FROM setting_view'),
  ro('view in a subquery', 'SELECT count(*) FROM (SELECT * FROM creds_view) s'),
  ro('view in a CTE', 'WITH v AS (SELECT * FROM staff) SELECT * FROM v', ['employee']),
  ro('view in EXISTS', 'SELECT 1 WHERE EXISTS (SELECT 1 FROM creds_view)'),
  explain('EXPLAIN of a view over a denied table', 'SELECT * FROM staff', ['employee']),
  explain('EXPLAIN of a view over another schema', 'SELECT * FROM creds_view', ['secret', 'creds']),
];

const READ_ATTACKS = [...OID_TYPE_ATTACKS, ...RESOLUTION_ATTACKS, ...VIEW_ATTACKS];

/**
 * §2.1 Operators PostgreSQL does not interrupt (array/jsonb containment and overlap, jsonb `?|`/
 * `?&`) over values built in the query: each would keep its backend busy for seconds past the
 * statement timeout (quadratic loops without an interrupt check). Every spelling is refused by
 * the guard before PostgreSQL sees it; no backend of the server's roles is left running it.
 */
const UNINTERRUPTIBLE_ATTACKS: readonly ReadAttack[] = [
  ro(
    'array_agg of generate_series on both sides',
    'SELECT (SELECT array_agg(g) FROM generate_series(1, 60000) g) @> (SELECT array_agg(g) FROM generate_series(60000, 1, -1) g)',
  ),
  ro(
    'jsonb_agg of generate_series on both sides',
    'SELECT (SELECT jsonb_agg(g) FROM generate_series(1, 30000) g) @> (SELECT jsonb_agg(g) FROM generate_series(30000, 1, -1) g)',
  ),
  ro('array_fill', 'SELECT array_fill(1, ARRAY[60000]) <@ array_fill(2, ARRAY[60000])'),
  ro(
    'string_to_array of repeat, schema-qualified operator',
    "SELECT string_to_array(repeat('a,', 60000), ',') OPERATOR(pg_catalog.&&) string_to_array(repeat('b,', 60000), ',')",
  ),
  ro(
    'regexp_split_to_array against a stored column',
    "SELECT id FROM tagged WHERE tags <@ regexp_split_to_array(repeat('x ', 60000), ' ')",
  ),
  ro(
    'array_cat',
    'SELECT array_cat(ARRAY[0], array_fill(1, ARRAY[60000])) @> array_fill(2, ARRAY[60000])',
  ),
  ro(
    '|| concatenation',
    'SELECT (ARRAY[0] || array_fill(1, ARRAY[60000])) @> array_fill(2, ARRAY[60000])',
  ),
  ro(
    'to_jsonb of a built array',
    'SELECT to_jsonb(array_fill(1, ARRAY[30000])) @> to_jsonb(array_fill(2, ARRAY[30000]))',
  ),
  ro(
    '?| over a built text array',
    "SELECT doc ?| string_to_array(repeat('k,', 60000), ',') FROM tagged",
  ),
  ro(
    'a CTE column',
    'WITH x AS (SELECT array_agg(g) AS a, array_agg(-g) AS b FROM generate_series(1, 60000) g) SELECT x.a @> x.b FROM x',
  ),
  ro(
    'a subquery column',
    'SELECT a && b FROM (SELECT array_agg(g) AS a, array_agg(-g) AS b FROM generate_series(1, 60000) g) s',
  ),
  ro(
    'a set-returning function in FROM',
    "SELECT f @> f FROM string_to_array(repeat('a,', 60000), ',') AS f",
  ),
  ro(
    'a range aggregate',
    'SELECT range_agg(int4range(g, g + 1)) @> range_agg(int4range(g, g + 2)) FROM generate_series(1, 60000) g',
  ),
  ro('two 64 KiB parameters (the params are given below)', 'SELECT $1::text[] @> $2::text[]'),
  explain(
    'EXPLAIN of containment over aggregates',
    'SELECT (SELECT array_agg(g) FROM generate_series(1, 60000) g) @> (SELECT array_agg(g) FROM generate_series(1, 60000) g)',
    [],
  ),
];

/**
 * §2.1 Value builders whose one call makes a value far larger than its arguments (`lpad`/`rpad`
 * and `array_fill` without an interrupt check; `repeat`, `replace` feeding `upper`, `translate`,
 * `~` that have none), whatever consumes the value: refused unless their sizes are integer
 * literals and the result at most 1 MiB (servers/postgres/src/uninterruptible.ts). Also more
 * than 256 repeated `$n` references (a `concat` of one 64 KiB parameter).
 */
const VALUE_BUILDER_ATTACKS: readonly ReadAttack[] = [
  ro('repeat to 2 GB', "SELECT length(repeat('x', 2000000000))"),
  ro('repeat, schema-qualified, into upper', "SELECT upper(pg_catalog.repeat('ab', 600000))"),
  ro('repeat with a computed count', "SELECT repeat('x', 1000 * 1000 * 1000)"),
  ro('repeat with a column count', 'SELECT repeat(name, milliseconds) FROM track LIMIT 1'),
  ro('repeat with named arguments', "SELECT repeat(number => 300000000, str => 'x')"),
  ro(
    'repeat into a CTE column, then upper',
    "WITH a AS (SELECT repeat('x', 100000000) AS s) SELECT length(upper(s)) FROM a",
  ),
  ro(
    'repeat into a LATERAL column, then translate',
    "SELECT length(translate(l.s, 'x', 'y')) FROM genre, LATERAL (SELECT repeat('x', 90000000) AS s) l",
  ),
  ro(
    'repeat in a scalar subquery, then a regex match',
    "SELECT (SELECT repeat('x', 90000000)) ~ 'zq'",
  ),
  ro('lpad to 200 M characters', "SELECT length(lpad('x', 200000000, 'ab'))"),
  ro('rpad to 200 M characters', "SELECT length(pg_catalog.rpad('', 200000000))"),
  ro('lpad to a computed length', "SELECT lpad('x', milliseconds * 1000) FROM track LIMIT 1"),
  ro('array_fill of 10^8 elements', 'SELECT cardinality(array_fill(1, ARRAY[100000000]))'),
  ro('array_fill, 2-D text dimensions', "SELECT cardinality(array_fill(1, '{10000,10000}'))"),
  ro('array_fill with a parameter dimension', 'SELECT cardinality(array_fill(1, ARRAY[$1::int]))'),
  ro('format with a 1 G width', "SELECT length(format('%1000000000s', 'x'))"),
  ro('format with a * width', "SELECT length(format('%*s', 1000000000, 'x'))"),
  ro('format with a parameter format string', "SELECT format($1, 'x')"),
  ro(
    'replace with a 64 KiB parameter replacement',
    "SELECT length(upper(replace(repeat('a', 50000), 'a', $1)))",
  ),
  ro('regexp_replace at every position', "SELECT regexp_replace(name, '', $1, 'g') FROM genre"),
  ro('a cast to char(10485760), then upper', "SELECT length(upper('x'::char(10485760)))"),
  ro('a cast to bit(83886080)', 'SELECT length(0::bit(83886080))'),
  ro(
    'array_fill of a padded char',
    "SELECT cardinality(array_fill(CAST('x' AS character(1000000)), ARRAY[100]))",
  ),
  ro(
    'jsonb minus a text array, both aggregated',
    "SELECT (SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 20000) g) - (SELECT array_agg('x' || g) FROM generate_series(1, 20000) g)",
  ),
  ro(
    'jsonb minus ARRAY(SELECT …)',
    "SELECT doc - ARRAY(SELECT 'k' || g FROM generate_series(1, 60000) g) FROM tagged",
  ),
  ro(
    'jsonb minus a built text array',
    "SELECT jsonb_typeof(doc - string_to_array(repeat('k,', 60000), ',')) FROM tagged",
  ),
  ro(
    '300 references to one parameter',
    `SELECT length(upper(concat(${Array.from({ length: 300 }, () => '$1').join(', ')})))`,
  ),
];

/** One 64 KiB parameter for the builder rows that take `$1`. */
const BIG_TEXT = 'a'.repeat(65_536);

/** 64 KiB text arrays for the parameter row above: 32,768 elements each. */
const BIG_TEXT_ARRAY = `{${Array.from({ length: 32_767 }, () => 'a').join(',')}}`;

interface Honest {
  readonly name: string;
  readonly sql: string;
  readonly params?: readonly unknown[];
}
const h = (name: string, sql: string, params?: unknown[]): Honest => ({
  name,
  sql,
  ...(params ? { params } : {}),
});

/** Honest queries over allowed tables: they must keep passing (on PostgreSQL 15 and 18). */
const HONEST: readonly Honest[] = [
  h(
    'ordered-set aggregate percentile_cont',
    'SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM invoice',
  ),
  h(
    'ordered-set aggregate mode',
    'SELECT mode() WITHIN GROUP (ORDER BY billing_country) FROM invoice',
  ),
  h(
    'window rank over partitions',
    'SELECT customer_id, total, rank() OVER (PARTITION BY customer_id ORDER BY total DESC) FROM invoice LIMIT 20',
  ),
  h(
    'named window with lag and running sum',
    'SELECT invoice_id, lag(total) OVER w, sum(total) OVER w FROM invoice WINDOW w AS (ORDER BY invoice_date, invoice_id) LIMIT 10',
  ),
  h('jsonb_build_object', "SELECT jsonb_build_object('id', genre_id, 'name', name) FROM genre"),
  h('json_agg ordered', 'SELECT json_agg(name ORDER BY name) FROM media_type'),
  h(
    'jsonpath over an aggregate',
    "SELECT jsonb_path_query_array(jsonb_agg(total), '$[*] ? (@ > 20)') FROM invoice",
  ),
  h('json operators', "SELECT (jsonb_build_object('a', 1, 'b', ARRAY[1, 2]))->'b'->>1"),
  h(
    'CTE joined USING',
    'WITH top AS (SELECT customer_id, sum(total) AS s FROM invoice GROUP BY 1 ORDER BY 2 DESC LIMIT 5) SELECT c.first_name, top.s FROM top JOIN customer c USING (customer_id)',
  ),
  h(
    'recursive CTE',
    'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT sum(i) FROM n',
  ),
  h(
    'three-way join with BETWEEN',
    'SELECT t.name, a.title, g.name FROM track t JOIN album a ON a.album_id = t.album_id LEFT JOIN genre g ON g.genre_id = t.genre_id WHERE t.milliseconds BETWEEN 200000 AND 210000 LIMIT 10',
  ),
  h('NATURAL JOIN', 'SELECT count(*) FROM genre NATURAL JOIN genre AS g2'),
  h(
    'array_agg ordered',
    'SELECT array_agg(track_id ORDER BY track_id) FROM track WHERE album_id = 1',
  ),
  h('unnest an array', 'SELECT unnest(ARRAY[1, 2, 3]) AS x'),
  h('= ANY of a bound array', 'SELECT name FROM genre WHERE genre_id = ANY($1::int[])', [
    '{1,2,3}',
  ]),
  h('array slice of an aggregate', 'SELECT (array_agg(name ORDER BY name))[1:3] FROM artist'),
  h('simple CASE', "SELECT CASE genre_id WHEN 1 THEN 'rock' ELSE 'other' END FROM genre"),
  h(
    'qualified columns of joined tables',
    'SELECT c.first_name, i.total FROM customer c JOIN invoice i ON i.customer_id = c.customer_id LIMIT 3',
  ),
  h(
    'a subquery column named like a built-in function',
    'SELECT s.name FROM (SELECT name FROM track) s LIMIT 3',
  ),
  h('a view over allowed tables', 'SELECT * FROM track_names ORDER BY track_id LIMIT 3'),
  h(
    'full-text search with a configuration name',
    "SELECT count(*) FROM track WHERE to_tsvector('english', name) @@ plainto_tsquery('english', 'love')",
  ),
  h('DISTINCT with ORDER BY', 'SELECT DISTINCT billing_country FROM invoice ORDER BY 1'),
  h(
    'GROUP BY ROLLUP',
    'SELECT billing_country, count(*) FROM invoice GROUP BY ROLLUP (billing_country)',
  ),
  h(
    'string functions',
    "SELECT lower(name), upper(name), length(name), concat_ws('-', name, genre_id) FROM genre",
  ),
  h('lpad of an id', "SELECT lpad(genre_id::text, 6, '0') FROM genre"),
  h('repeat for a bar chart', "SELECT name, repeat('*', 20) FROM genre"),
  h('format with widths', "SELECT format('%-20s|%5s', name, genre_id) FROM genre"),
  h(
    'replace and regexp_replace with literals',
    "SELECT replace(name, ' ', '_'), regexp_replace(name, '[^A-Za-z]', '', 'g') FROM genre",
  ),
  h('array_fill small', 'SELECT array_fill(0, ARRAY[3, 4]) FROM genre LIMIT 1'),
  h(
    'upper of an aggregate of stored rows',
    "SELECT upper(string_agg(name, ', ' ORDER BY name)) FROM genre",
  ),
  h('regex over stored text', "SELECT count(*) FROM track WHERE name ~* '^(love|the)'"),
  h(
    'jsonpath exists over a stored column',
    "SELECT id FROM tagged WHERE jsonb_path_exists(doc, '$.k ? (@ >= 1)')",
  ),
  h(
    'ts_rank over stored text',
    "SELECT name, ts_rank(to_tsvector('english', name), plainto_tsquery('english', 'love')) FROM track WHERE to_tsvector('english', name) @@ plainto_tsquery('english', 'love')",
  ),
  h('array_position over a stored array', "SELECT array_position(tags, 'a') FROM tagged"),
  h('jsonb minus an array literal and one key', "SELECT doc - ARRAY['k'] - 'items' FROM tagged"),
  h(
    'IN list of distinct parameters',
    'SELECT name FROM genre WHERE genre_id IN ($1, $2, $3)',
    [1, 2, 3],
  ),
  h('@> on a stored array column with a literal', "SELECT id FROM tagged WHERE tags @> '{a}'"),
  h(
    '&& on a stored array column with a parameter',
    'SELECT id FROM tagged WHERE tags && $1::text[]',
    ['{a,c}'],
  ),
  h('jsonb @> on a stored column', 'SELECT id FROM tagged WHERE doc @> \'{"k": 1}\''),
  h(
    'jsonb extraction of a stored column <@ a literal',
    "SELECT t.id FROM tagged t WHERE t.doc -> 'items' <@ '[1, 2, 3]'::jsonb",
  ),
  h('jsonb ?| an array of literals', "SELECT id FROM tagged WHERE doc ?| ARRAY['k', 'x']"),
  h('range overlap', 'SELECT id FROM tagged WHERE int4range(id, id + 10) && int4range(1, 5)'),
  h(
    'two stored arrays in a self-join',
    'SELECT a.id FROM tagged a JOIN tagged b ON a.tags @> b.tags',
  ),
  h(
    'row comparison and IN',
    'SELECT count(*) FROM invoice WHERE (customer_id, invoice_id) > (1, 1) AND customer_id IN (1, 2, 3)',
  ),
];

interface WriteAttack {
  readonly name: string;
  readonly tool: string;
  readonly args: Record<string, unknown>;
  readonly code: Code;
  /** Text the error must contain. */
  readonly says?: RegExp;
}

/** §3 The approved change is the whole change: cascades and triggers count. */
const WRITE_ATTACKS: readonly WriteAttack[] = [
  {
    name: 'delete cascades into a table that is not writable',
    tool: 'postgres_delete_rows',
    args: { table: 'parent_w', key: { id: 1 } },
    code: 'policy_denied',
    says: /public\.child_w/,
  },
  {
    name: 'key update cascades into a table that is not writable',
    tool: 'postgres_update_rows',
    args: { table: 'parent_w', key: { id: 2 }, set: { id: 20 } },
    code: 'policy_denied',
  },
  {
    name: 'saved write query cascades into a table that is not writable',
    tool: 'postgres_run_saved_write_query',
    args: { name: 'drop_parent', params: { id: 1 } },
    code: 'policy_denied',
  },
  {
    name: 'insert fires a trigger writing a table that is not writable',
    tool: 'postgres_insert_rows',
    args: { table: 'audited_w', rows: [{ id: 10, v: 'x' }] },
    code: 'policy_denied',
    says: /public\.audit_log_w/,
  },
  {
    name: 'update fires a trigger writing a table that is not writable',
    tool: 'postgres_update_rows',
    args: { table: 'audited_w', key: { id: 1 }, set: { v: 'y' } },
    code: 'policy_denied',
  },
  {
    name: 'delete fires a trigger writing a table that is not writable',
    tool: 'postgres_delete_rows',
    args: { table: 'audited_w', key: { id: 1 } },
    code: 'policy_denied',
  },
  {
    name: 'saved write query fires a trigger writing a table that is not writable',
    tool: 'postgres_run_saved_write_query',
    args: { name: 'bump_audited', params: { id: 1 } },
    code: 'policy_denied',
  },
  {
    name: 'a trigger multiplies one inserted row past the cap',
    tool: 'postgres_insert_rows',
    args: { table: 'grow_w', rows: [{ id: 1 }] },
    code: 'limit_exceeded',
    says: /would change 5 rows, more than the cap of 3/,
  },
  {
    name: 'a cascade into a writable table past the cap',
    tool: 'postgres_delete_rows',
    args: { table: 'parent2_w', key: { id: 2 } },
    code: 'limit_exceeded',
    says: /would change 4 rows, more than the cap of 3/,
  },
];

/** Characters the approval text must escape (issue 10 §3). */
const HIDDEN_CHARACTERS: readonly [string, string][] = [
  ['line separator U+2028', '\u2028'],
  ['paragraph separator U+2029', '\u2029'],
  ['right-to-left override U+202E', '\u202E'],
  ['left-to-right embedding U+202A', '\u202A'],
  ['right-to-left isolate U+2067', '\u2067'],
  ['pop directional isolate U+2069', '\u2069'],
  ['left-to-right mark U+200E', '\u200E'],
  ['right-to-left mark U+200F', '\u200F'],
  ['arabic letter mark U+061C', '\u061C'],
  ['zero-width space U+200B', '\u200B'],
  ['zero-width joiner U+200D', '\u200D'],
  ['byte order mark U+FEFF', '\uFEFF'],
];
const HIDDEN_RE = /[\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\u061c\ufeff]/u;

// ---------------------------------------------------------------------------------------------
// Setup

let server: TestPostgres;
let db: ChinookDatabase;
let probe: StateProbe;
let roSession: ServerSession;
let shSession: ServerSession;
let rwSession: ServerSession;
const approvals: string[] = [];
const rateLimit = { points: 100_000, durationSeconds: 60 };

/** One query as the database owner (a fresh connection); returns its rows. */
async function pgAdminQuery<R extends pg.QueryResultRow>(
  sql: string,
  values: unknown[],
): Promise<R[]> {
  const c = new pg.Client({ connectionString: db.adminUrl });
  await c.connect();
  try {
    return (await c.query<R>(sql, values)).rows;
  } finally {
    await c.end();
  }
}

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: db.adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
  const r = pg.escapeIdentifier(db.readRole);
  const w = pg.escapeIdentifier(db.writeRole);
  await admin(`
    CREATE SEQUENCE public.attack_seq;
    SELECT nextval('public.attack_seq');
    CREATE SCHEMA secret;
    CREATE TABLE secret.creds (id int PRIMARY KEY, token text NOT NULL);
    INSERT INTO secret.creds VALUES (1, '${SECRET}');
    GRANT USAGE ON SCHEMA secret TO ${r}, ${w};
    GRANT SELECT ON secret.creds TO ${r}, ${w};

    -- §1.1 object-identifier types behind other names
    CREATE DOMAIN public.rc AS regclass;
    CREATE DOMAIN public.rc2 AS public.rc;
    CREATE DOMAIN public.rcs AS regclass[];
    CREATE DOMAIN public.oiddom AS oid;
    CREATE TYPE public.relref AS (r regclass);
    CREATE TABLE public.rel_notes (id int PRIMARY KEY, rel regclass);
    INSERT INTO public.rel_notes VALUES (1, 'public.genre');

    -- §1.2 user-defined functions, operators, casts and types on the search path
    CREATE SCHEMA shadow;
    GRANT USAGE ON SCHEMA shadow TO ${r}, ${w};
    CREATE FUNCTION shadow.peek() RETURNS text LANGUAGE sql STABLE
      AS $$ SELECT token FROM secret.creds LIMIT 1 $$;
    CREATE FUNCTION shadow.lower(integer) RETURNS text LANGUAGE sql STABLE AS $$ SELECT shadow.peek() $$;
    CREATE FUNCTION shadow.length(bigint) RETURNS text LANGUAGE sql STABLE AS $$ SELECT shadow.peek() $$;
    CREATE FUNCTION shadow.concat_ws(text, VARIADIC integer[]) RETURNS text LANGUAGE sql STABLE
      AS $$ SELECT shadow.peek() $$;
    CREATE FUNCTION shadow.max(smallint) RETURNS text LANGUAGE sql STABLE AS $$ SELECT shadow.peek() $$;
    CREATE FUNCTION shadow.total(public.customer) RETURNS text LANGUAGE sql STABLE AS $$ SELECT shadow.peek() $$;
    CREATE FUNCTION shadow.total(record) RETURNS text LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN shadow.peek(); END $$;
    CREATE FUNCTION shadow.leak_bool(integer, text) RETURNS boolean LANGUAGE plpgsql STABLE
      AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = shadow.peek(), ERRCODE = '42000'; END $$;
    CREATE OPERATOR shadow.>= (LEFTARG = integer, RIGHTARG = text, FUNCTION = shadow.leak_bool);
    CREATE OPERATOR shadow.= (LEFTARG = integer, RIGHTARG = text, FUNCTION = shadow.leak_bool);
    CREATE TYPE shadow.mood AS ENUM ('sad', 'ok');
    CREATE FUNCTION shadow.mood_text(shadow.mood) RETURNS text LANGUAGE sql STABLE AS $$ SELECT shadow.peek() $$;
    CREATE CAST (shadow.mood AS text) WITH FUNCTION shadow.mood_text(shadow.mood) AS IMPLICIT;
    CREATE FUNCTION shadow.text_mood(text) RETURNS shadow.mood LANGUAGE plpgsql STABLE
      AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = shadow.peek(), ERRCODE = '42000'; END $$;
    CREATE CAST (text AS shadow.mood) WITH FUNCTION shadow.text_mood(text);
    CREATE TABLE public.moods (id int PRIMARY KEY, m shadow.mood);
    INSERT INTO public.moods VALUES (1, 'ok');
    CREATE FUNCTION shadow.peek_check(text) RETURNS boolean LANGUAGE plpgsql STABLE
      AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = shadow.peek(), ERRCODE = '42000'; END $$;
    CREATE DOMAIN shadow.peeky AS text CHECK (shadow.peek_check(VALUE));
    CREATE TYPE shadow.opaque_text;
    CREATE FUNCTION shadow.opaque_text_in(cstring) RETURNS shadow.opaque_text LANGUAGE internal IMMUTABLE STRICT AS 'textin';
    CREATE FUNCTION shadow.opaque_text_out(shadow.opaque_text) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'textout';
    CREATE TYPE shadow.opaque_text (INPUT = shadow.opaque_text_in, OUTPUT = shadow.opaque_text_out, LIKE = text);
    CREATE FUNCTION shadow.fdiff(float8, float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS 'SELECT $1 - $2';
    CREATE TYPE shadow.frange AS RANGE (subtype = float8, subtype_diff = shadow.fdiff);
    CREATE TABLE public.opaque_notes (id int PRIMARY KEY, v shadow.opaque_text);
    INSERT INTO public.opaque_notes VALUES (1, 'abc');

    -- §1.3 views
    CREATE VIEW public.creds_view AS SELECT token FROM secret.creds;
    CREATE VIEW public.staff AS SELECT first_name, last_name FROM public.employee;
    CREATE VIEW public.staff2 AS SELECT * FROM public.staff;
    CREATE MATERIALIZED VIEW public.creds_mv AS SELECT token FROM secret.creds;
    CREATE FUNCTION public.peek_rows() RETURNS SETOF text LANGUAGE sql STABLE AS $$ SELECT token FROM secret.creds $$;
    CREATE VIEW public.fn_view AS SELECT t AS token FROM public.peek_rows() AS t;
    CREATE VIEW public.roles_view AS SELECT rolname FROM pg_roles;
    CREATE VIEW public.op_view AS SELECT genre_id FROM public.genre WHERE genre_id OPERATOR(shadow.=) '1';
    CREATE VIEW public.setting_view AS SELECT current_setting('data_directory') AS d;
    CREATE VIEW public.track_names AS SELECT track_id, name FROM public.track;

    -- §2.1 stored arrays and jsonb for the honest containment queries
    CREATE TABLE public.tagged (id int PRIMARY KEY, tags text[] NOT NULL, doc jsonb NOT NULL);
    INSERT INTO public.tagged VALUES (1, '{a,b}', '{"k": 1, "items": [1, 2]}'),
      (2, '{c}', '{"j": 2, "items": [3]}');

    -- §3 cascades and triggers
    CREATE TABLE public.parent_w (id int PRIMARY KEY, name text);
    CREATE TABLE public.child_w (id int PRIMARY KEY,
      parent_id int NOT NULL REFERENCES public.parent_w ON DELETE CASCADE ON UPDATE CASCADE);
    INSERT INTO public.parent_w VALUES (1, 'one'), (2, 'two'), (3, 'three');
    INSERT INTO public.child_w VALUES (1, 1), (2, 1), (3, 2);
    CREATE TABLE public.parent2_w (id int PRIMARY KEY);
    CREATE TABLE public.child2_w (id int PRIMARY KEY,
      parent_id int NOT NULL REFERENCES public.parent2_w ON DELETE CASCADE);
    INSERT INTO public.parent2_w VALUES (1), (2);
    INSERT INTO public.child2_w VALUES (1, 1), (2, 1), (3, 2), (4, 2), (5, 2);
    CREATE TABLE public.audited_w (id int PRIMARY KEY, v text NOT NULL);
    INSERT INTO public.audited_w VALUES (1, 'a');
    CREATE TABLE public.audit_log_w (op text NOT NULL, row_id int NOT NULL);
    CREATE FUNCTION public.audit_w() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' THEN INSERT INTO public.audit_log_w VALUES (TG_OP, OLD.id);
        ELSE INSERT INTO public.audit_log_w VALUES (TG_OP, NEW.id); END IF;
        RETURN NULL;
      END $$;
    CREATE TRIGGER audited_w_log AFTER INSERT OR UPDATE OR DELETE ON public.audited_w
      FOR EACH ROW EXECUTE FUNCTION public.audit_w();
    CREATE TABLE public.grow_w (id int PRIMARY KEY);
    CREATE FUNCTION public.grow_w() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.id < 1000 THEN INSERT INTO public.grow_w SELECT NEW.id * 1000 + g FROM generate_series(1, 4) g; END IF;
        RETURN NULL;
      END $$;
    CREATE TRIGGER grow_w_more AFTER INSERT ON public.grow_w FOR EACH ROW EXECUTE FUNCTION public.grow_w();

    GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${r};
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${w};
  `);
  probe = await openStateProbe({
    adminUrl: db.adminUrl,
    readUrl: db.readUrl,
    roles: [db.readRole, db.writeRole],
    channels: [],
    files: [],
    forbiddenNames: [],
  });
  const base = { statementTimeoutMs: 5000, lockTimeoutMs: 1000 };
  const reader = (principal: string, schemas: string[]) =>
    startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: {
        identity: { principal, roles: ['analyst'] },
        roles: { analyst: ['postgres:read'] },
        rateLimit,
        log: { level: 'warn' },
        postgres: { ...base, schemas, tables: { deny: ['employee'] } },
      },
    });
  roSession = await reader('mallory', ['public']);
  shSession = await reader('mallory-sh', ['public', 'shadow']);
  rwSession = await startPostgresServer({
    env: { POSTGRES_URL: db.readUrl, POSTGRES_WRITE_URL: db.writeUrl },
    config: {
      mode: 'read-write',
      identity: { principal: 'mallory-rw', roles: ['admin'] },
      roles: { admin: ['postgres:read', 'postgres:write'] },
      rateLimit,
      log: { level: 'warn' },
      postgres: {
        ...base,
        maxAffectedRows: 3,
        tables: {
          deny: ['employee'],
          writable: ['parent_w', 'parent2_w', 'child2_w', 'audited_w', 'grow_w', 'genre'],
        },
        savedQueries: {
          drop_parent: {
            description: 'Delete a parent row',
            access: 'write',
            sql: 'DELETE FROM parent_w WHERE id = $1',
            params: [{ name: 'id', type: 'integer', min: 1 }],
          },
          set_audited: {
            description: 'Set the value of an audited row',
            access: 'write',
            sql: 'UPDATE audited_w SET v = $2 WHERE id = $1',
            params: [
              { name: 'id', type: 'integer', min: 1 },
              { name: 'v', type: 'string', maxLength: 200 },
            ],
          },
          bump_audited: {
            description: 'Append ! to an audited row',
            access: 'write',
            sql: "UPDATE audited_w SET v = v || '!' WHERE id = $1",
            params: [{ name: 'id', type: 'integer', min: 1 }],
          },
        },
      },
    },
    capabilities: { elicitation: {} },
  });
  rwSession.client.setRequestHandler(ElicitRequestSchema, async (req) => {
    const message = String(req.params.message);
    approvals.push(message);
    return message.includes(DECLINE_MARK)
      ? { action: 'decline' }
      : { action: 'accept', content: { approve: true } };
  });
}, 240_000);

afterAll(async () => {
  await roSession?.close();
  await shSession?.close();
  await rwSession?.close();
  await probe?.close();
  await db?.drop();
  await server?.stop();
});

// ---------------------------------------------------------------------------------------------
// Checks

async function expectUnchanged(before: DbState): Promise<void> {
  const after = await snapshotSettled(probe, before);
  expect(settled(before, after)).toEqual(before);
}

function expectRefused(r: unknown, code: Code, forbidden: readonly string[]): string {
  const text = textOf(r);
  expect((r as { isError?: boolean }).isError, text).toBe(true);
  expect(text.startsWith(`${code}: `), text).toBe(true);
  expect(text).toMatch(/ \(correlation id [0-9a-f-]{36}\)$/);
  for (const s of [SECRET, ...forbidden]) expect(text).not.toContain(s);
  expect(text).not.toMatch(/DETAIL|HINT|\n\s+at /);
  return text;
}

async function expectServed(s: ServerSession): Promise<void> {
  const r = await s.client.callTool({
    name: 'postgres_query',
    arguments: { sql: 'SELECT count(*) AS n FROM genre' },
  });
  expect(r.isError, textOf(r)).toBeFalsy();
}

const sessionOf = (a: ReadAttack) => (a.session === 'sh' ? shSession : roSession);

// ---------------------------------------------------------------------------------------------
// Tests

describe('reads: what the guard allows is what the catalog says', () => {
  it.each(READ_ATTACKS)('$tool [$session] $name', async (a) => {
    const before = await probe.snapshot();
    const s = sessionOf(a);
    const r = await s.client.callTool({ name: a.tool, arguments: { sql: a.sql } });
    expectRefused(r, 'policy_denied', a.secrets ?? []);
    await expectUnchanged(before);
    await expectServed(s);
  });

  it.each(UNINTERRUPTIBLE_ATTACKS)(
    '$tool: no operator PostgreSQL cannot interrupt over a built value: $name',
    async (a) => {
      const before = await probe.snapshot();
      const s = sessionOf(a);
      const params = a.sql.includes('$2') ? { params: [BIG_TEXT_ARRAY, BIG_TEXT_ARRAY] } : {};
      const r = await s.client.callTool({ name: a.tool, arguments: { sql: a.sql, ...params } });
      const text = expectRefused(r, 'policy_denied', ['generate_series', 'repeat(']);
      expect(text).toMatch(
        /operator (@>|<@|&&|\?\||\?&) is not allowed here: PostgreSQL cannot interrupt it/,
      );
      // Refused before execution: no backend ran (or runs) it.
      const running = await pgAdminQuery<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE query = $1 OR (state = 'active' AND usename = ANY($2))",
        [a.sql, [db.readRole, db.writeRole]],
      );
      expect(Number(running[0]?.n)).toBe(0);
      await expectUnchanged(before);
      await expectServed(s);
    },
  );

  it.each(VALUE_BUILDER_ATTACKS)(
    '$tool: no value builder beyond 1 MiB in one call: $name',
    async (a) => {
      const before = await probe.snapshot();
      const s = sessionOf(a);
      const params = a.sql.includes('$1') ? { params: [BIG_TEXT] } : {};
      const r = await s.client.callTool({ name: a.tool, arguments: { sql: a.sql, ...params } });
      const text = expectRefused(r, 'policy_denied', [
        '2000000000',
        '100000000',
        "'x'",
        BIG_TEXT.slice(0, 64),
      ]);
      expect(text).toMatch(
        /: ((function (repeat|lpad|rpad|array_fill|format|replace|regexp_replace)|type (bpchar|bit)) is not allowed here: its result feeds work PostgreSQL cannot interrupt|a statement may repeat parameter references at most 256 times|operator - is not allowed here: PostgreSQL cannot interrupt it)/,
      );
      // Refused before execution: no backend ran (or runs) it.
      const running = await pgAdminQuery<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE query = $1 OR (state = 'active' AND usename = ANY($2))",
        [a.sql, [db.readRole, db.writeRole]],
      );
      expect(Number(running[0]?.n)).toBe(0);
      await expectUnchanged(before);
      await expectServed(s);
    },
  );

  it.each(HONEST)('honest query keeps passing: $name', async (q) => {
    const r = await roSession.client.callTool({
      name: 'postgres_query',
      arguments: { sql: q.sql, ...(q.params ? { params: q.params } : {}) },
    });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect((r.structuredContent as { rowCount: number }).rowCount).toBeGreaterThan(0);
  });

  it('honest queries can also be explained, and a plan never names a denied relation', async () => {
    for (const q of HONEST.slice(0, 6)) {
      const r = await roSession.client.callTool({
        name: 'postgres_explain',
        arguments: { sql: q.sql, ...(q.params ? { params: q.params } : {}) },
      });
      expect(r.isError, textOf(r)).toBeFalsy();
      expect(textOf(r)).not.toMatch(/employee|secret/);
    }
  });
});

describe('writes: the approved change is the whole change', () => {
  it.each(WRITE_ATTACKS)('$tool [$code] $name', async (a) => {
    const before = await probe.snapshot();
    const asked = approvals.length;
    const r = await rwSession.client.callTool({ name: a.tool, arguments: a.args });
    const text = expectRefused(r, a.code, []);
    if (a.says) expect(text).toMatch(a.says);
    expect(text).toContain('rolled back');
    // The human was asked, and the text said that cascades and triggers count.
    expect(approvals.length).toBe(asked + 1);
    expect(approvals.at(-1)).toMatch(/cascades and triggers count too/);
    await expectUnchanged(before);
  });

  it.each(HIDDEN_CHARACTERS)('the approval text escapes the %s', async (_what, ch) => {
    const before = await probe.snapshot();
    const asked = approvals.length;
    const r = await rwSession.client.callTool({
      name: 'postgres_insert_rows',
      arguments: {
        table: 'genre',
        rows: [{ genre_id: 9001, [`na${ch}me`]: `${DECLINE_MARK}${ch}x` }],
      },
    });
    expectRefused(r, 'approval_declined', []);
    const text = approvals[asked];
    expect(text).toBeDefined();
    expect(text).not.toMatch(HIDDEN_RE);
    const escaped = `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
    expect(text).toContain(`${DECLINE_MARK}${escaped}x`);
    expect(text).toContain(`na${escaped}me`);
    await expectUnchanged(before);
  });

  it('the saved write query approval text escapes them too', async () => {
    const before = await probe.snapshot();
    const asked = approvals.length;
    const hidden = HIDDEN_CHARACTERS.map(([, ch]) => ch).join('');
    const r = await rwSession.client.callTool({
      name: 'postgres_run_saved_write_query',
      arguments: { name: 'set_audited', params: { id: 1, v: `${DECLINE_MARK}${hidden}` } },
    });
    expectRefused(r, 'approval_declined', []);
    const text = approvals[asked];
    expect(text).toContain(DECLINE_MARK);
    expect(text).not.toMatch(HIDDEN_RE);
    expect(text).toContain('\\u2028\\u2029\\u202e');
    await expectUnchanged(before);
  });

  it('honest writes keep working: a cascade into a writable table within the cap is reported', async () => {
    const r = await rwSession.client.callTool({
      name: 'postgres_delete_rows',
      arguments: { table: 'parent2_w', key: { id: 1 } },
    });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(r.structuredContent).toMatchObject({
      table: 'public.parent2_w',
      affectedRows: 3,
      changes: [
        { table: 'public.child2_w', rows: 2 },
        { table: 'public.parent2_w', rows: 1 },
      ],
    });
    const left = await probe.query<{ n: number }>('SELECT count(*)::int AS n FROM public.child2_w');
    expect(left).toEqual([{ n: 3 }]);
    const upd = await rwSession.client.callTool({
      name: 'postgres_update_rows',
      arguments: { table: 'parent_w', key: { id: 3 }, set: { name: 'drei' } },
    });
    expect(upd.isError, textOf(upd)).toBeFalsy();
    expect(upd.structuredContent).toMatchObject({ affectedRows: 1 });
    const ins = await rwSession.client.callTool({
      name: 'postgres_insert_rows',
      arguments: { table: 'grow_w', rows: [{ id: 5000 }] },
    });
    expect(ins.isError, textOf(ins)).toBeFalsy();
    expect(ins.structuredContent).toMatchObject({ affectedRows: 1 });
  });
});
