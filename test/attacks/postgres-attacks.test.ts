/**
 * The attack table (foundation issue): hostile SQL sent to the built `hardened-mcp-postgres` bin
 * over stdio, against a real PostgreSQL with Chinook (embedded 18, or DATABASE_URL).
 *
 * Every row must come back as a tool error whose text starts with the expected stable code and
 * carries a correlation id, without echoing the SQL, and the database must be exactly as before
 * (see db-state.ts: rows and their content, objects, privileges, role/database settings, the
 * settings a fresh read session starts with, sequences, advisory locks, large objects, prepared
 * transactions, files, NOTIFY, busy sessions). After each row a normal query must still be served.
 *
 * Sessions: `ro` is read-only mode with the least-privilege read role; `rw` is read-write mode
 * with the write credential and a client that approves everything, to prove that
 * `postgres_query` stays read-only there too (it must never even ask for approval).
 *
 * Rows marked `bug` are real findings: they show how the server SHOULD behave and run as
 * `it.fails` so the suite stays green until the bug is fixed (then `it.fails` turns red and the
 * mark must be removed).
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn, waitFor } from '../support/audit.ts';
import { type ServerSession, startPostgresServer, textOf } from '../support/server.ts';
import {
  type DbState,
  openStateProbe,
  type StateProbe,
  settled,
  snapshotSettled,
} from './db-state.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures named in the attacks

const TAG = randomBytes(4).toString('hex');
const tmpFile = (what: string) => join(tmpdir(), `hmcp-attack-${TAG}-${what}`);
/** Server-side files the attacks try to create. */
const FILES = {
  copyTo: tmpFile('copy-to.csv'),
  copyQuery: tmpFile('copy-query.csv'),
  program: tmpFile('program'),
  loExport: tmpFile('lo-export'),
  fileWrite: tmpFile('file-write'),
} as const;
/** Cluster objects the attacks try to create. */
const EVIL = {
  role: `hmcp_evil_role_${TAG}`,
  db: `hmcp_evil_db_${TAG}`,
  schema: `hmcp_evil_schema_${TAG}`,
} as const;
/** Value of `secret.creds.token` (schema not allowed; the read role could SELECT it). */
const SECRET_TOKEN = `tok${TAG}secret`;
/** Value of `public.no_grant_notes.note` (the read role has no privilege on it). */
const PRIVATE_NOTE = `note${TAG}private`;
/** Channel the admin LISTENs on. */
const CHANNEL = 'hmcp_attack';
/** First customer's PII (Chinook). */
const EMAIL = 'luisg@embraer.com.br';

const STATEMENT_TIMEOUT_MS = 1000;

// ---------------------------------------------------------------------------------------------
// The table

type Tool = 'postgres_query' | 'postgres_explain';
type Code = 'policy_denied' | 'invalid_input' | 'timeout' | 'upstream_error';

interface Attack {
  readonly name: string;
  readonly tool: Tool;
  readonly sql: string;
  readonly params?: readonly unknown[];
  readonly expectCode: Code;
  /** `rw`: the read-write session (write credential configured, approving client). Default `ro`. */
  readonly session?: 'ro' | 'rw';
  /**
   * Which wall stops it: `guard` = the policy step (SQL guard / input schema; audited as a denied
   * decision), `execute` = during execution (relation resolution against the catalog, the
   * database's read-only transaction or privileges, the statement timeout).
   * Default: `guard` for policy_denied/invalid_input, else `execute`.
   */
  readonly wall?: 'guard' | 'execute';
  /** Strings the error text must never contain (data the attack tries to leak). */
  readonly secrets?: readonly string[];
  /** Arguments added to `{ sql, params }`. */
  readonly extraArgs?: Readonly<Record<string, unknown>>;
  /** A real finding: the row shows the correct behaviour and runs as `it.fails`. */
  readonly bug?: string;
}

type More = Partial<Omit<Attack, 'name' | 'tool' | 'sql'>>;
const q = (name: string, sql: string, more: More = {}): Attack => ({
  name,
  tool: 'postgres_query',
  sql,
  expectCode: 'policy_denied',
  ...more,
});
const x = (name: string, sql: string, more: More = {}): Attack => ({
  name,
  tool: 'postgres_explain',
  sql,
  expectCode: 'policy_denied',
  ...more,
});
const rw: More = { session: 'rw' };
const atExecute: More = { wall: 'execute' };

const DEEP_SUBQUERIES = `SELECT ${'(SELECT '.repeat(5000)}1${')'.repeat(5000)}`;

const ATTACKS: readonly Attack[] = [
  // Stacked statements, in every shape.
  q('stacked: SELECT; COMMIT; DROP', 'SELECT 1; COMMIT; DROP TABLE customer'),
  q('stacked: no space before DELETE', 'SELECT 1;DELETE FROM invoice_line'),
  q('stacked: blank lines between', 'SELECT 1 ;\n\n   DELETE FROM invoice_line'),
  q('stacked: comments around ;', 'SELECT 1/* a */;/* b */DELETE FROM invoice_line'),
  q('stacked: line comment then ;', 'SELECT 1 -- trailing comment\n; DELETE FROM invoice_line'),
  q('stacked: tab and CRLF', 'SELECT 1;\tDELETE FROM invoice_line;\r\n'),
  q('stacked: leading empty statement', '; DELETE FROM invoice_line'),
  q('stacked: write first', 'DELETE FROM invoice_line; SELECT 1'),
  q('stacked: double semicolon', 'SELECT 1;; DELETE FROM invoice_line'),
  q('stacked: two harmless SELECTs', 'SELECT 1; SELECT 2'),
  q('stacked: UPDATE after SELECT *', "SELECT * FROM customer; UPDATE customer SET email = 'x'"),
  q(
    'stacked: COMMIT then read-write transaction',
    'SELECT 1; COMMIT; SET TRANSACTION READ WRITE; DELETE FROM invoice_line',
  ),
  q(
    'stacked: ROLLBACK; BEGIN READ WRITE; DELETE; COMMIT',
    'SELECT 1\n;\nROLLBACK;\nBEGIN READ WRITE;\nDELETE FROM invoice_line;\nCOMMIT',
  ),
  q('stacked (rw session)', 'SELECT 1; DELETE FROM invoice_line', rw),
  x('stacked via explain', 'SELECT 1; DELETE FROM invoice_line'),

  // Plain writes.
  q('DELETE', 'DELETE FROM invoice_line'),
  q('UPDATE', 'UPDATE customer SET email = NULL'),
  q('INSERT', "INSERT INTO genre (genre_id, name) VALUES (9999, 'evil')"),
  q(
    'MERGE',
    'MERGE INTO genre g USING (SELECT 1 AS id) s ON g.genre_id = s.id WHEN MATCHED THEN DELETE',
  ),
  q('DELETE (rw session)', 'DELETE FROM invoice_line', rw),
  q('INSERT (rw session)', "INSERT INTO genre (genre_id, name) VALUES (9999, 'evil')", rw),

  // Transaction control.
  q('COMMIT', 'COMMIT'),
  q('ROLLBACK; BEGIN READ WRITE', 'ROLLBACK; BEGIN READ WRITE'),
  q('SET TRANSACTION READ WRITE', 'SET TRANSACTION READ WRITE'),
  q('START TRANSACTION', 'START TRANSACTION READ WRITE'),
  q('BEGIN', 'BEGIN'),
  q('SAVEPOINT', 'SAVEPOINT s1'),
  q('RELEASE', 'RELEASE SAVEPOINT s1'),
  q('ROLLBACK TO SAVEPOINT', 'ROLLBACK TO SAVEPOINT s1'),
  q('ABORT', 'ABORT'),
  q('END', 'END'),
  q('PREPARE TRANSACTION', "PREPARE TRANSACTION 'hmcp_evil'"),
  q('COMMIT PREPARED', "COMMIT PREPARED 'hmcp_evil'"),
  q('SET SESSION CHARACTERISTICS', 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE'),
  q('SET TRANSACTION READ WRITE (rw session)', 'SET TRANSACTION READ WRITE', rw),

  // Settings, roles.
  q('SET default_transaction_read_only', 'SET default_transaction_read_only = off'),
  q('SET transaction_read_only', 'SET transaction_read_only = off'),
  q('SET LOCAL statement_timeout', 'SET LOCAL statement_timeout = 0'),
  q('SET ... TO DEFAULT', 'SET statement_timeout TO DEFAULT'),
  q('RESET', 'RESET statement_timeout'),
  q('RESET ALL', 'RESET ALL'),
  q('SET ROLE', 'SET ROLE postgres'),
  q('SET SESSION AUTHORIZATION', 'SET SESSION AUTHORIZATION postgres'),
  q('SET search_path', 'SET search_path = pg_catalog, public'),
  q('set_config read-only off', "SELECT set_config('default_transaction_read_only', 'off', false)"),
  q(
    'pg_catalog.set_config statement_timeout',
    "SELECT pg_catalog.set_config('statement_timeout', '0', false)",
  ),
  q('set_config with bound values', 'SELECT set_config($1, $2, false)', {
    params: ['default_transaction_read_only', 'off'],
  }),
  q('SET CONSTRAINTS', 'SET CONSTRAINTS ALL DEFERRED'),
  q('ALTER SYSTEM', "ALTER SYSTEM SET log_statement = 'none'"),
  q('ALTER ROLE SET', 'ALTER ROLE CURRENT_USER SET default_transaction_read_only = off'),
  q('ALTER ROLE ALL SET', 'ALTER ROLE ALL SET statement_timeout = 0'),
  q('SHOW a server path', 'SHOW data_directory'),
  q('SHOW ALL', 'SHOW ALL'),
  q('current_setting', "SELECT current_setting('data_directory')"),
  q('current_setting is_superuser', "SELECT current_setting('is_superuser')"),
  q('pg_catalog.current_setting', "SELECT pg_catalog.current_setting('config_file')"),
  q('pg_show_all_settings in FROM', 'SELECT * FROM pg_show_all_settings()'),

  // Writable CTEs.
  q(
    'WITH DELETE RETURNING',
    'WITH d AS (DELETE FROM invoice_line RETURNING *) SELECT count(*) FROM d',
  ),
  q('WITH DELETE unreferenced', 'WITH d AS (DELETE FROM invoice_line) SELECT 1'),
  q(
    'WITH INSERT',
    "WITH i AS (INSERT INTO genre (genre_id, name) VALUES (9999, 'evil') RETURNING *) SELECT * FROM i",
  ),
  q(
    'WITH UPDATE',
    "WITH u AS (UPDATE customer SET email = 'owned@example.com' RETURNING 1) SELECT count(*) FROM u",
  ),
  q(
    'WITH MERGE',
    'WITH m AS (MERGE INTO genre g USING (SELECT 1 AS id) s ON g.genre_id = s.id WHEN MATCHED THEN DELETE RETURNING 1) SELECT * FROM m',
  ),
  q(
    'WITH nested DELETE',
    'WITH a AS (SELECT 1), b AS (WITH c AS (DELETE FROM invoice_line RETURNING 1) SELECT * FROM c) SELECT * FROM b',
  ),
  q(
    'WITH DELETE in a FROM subquery',
    'SELECT * FROM (WITH d AS (DELETE FROM invoice_line RETURNING 1) SELECT * FROM d) s',
  ),
  q(
    'WITH DELETE in EXISTS',
    'SELECT EXISTS (WITH d AS (DELETE FROM invoice_line RETURNING 1) SELECT 1)',
  ),
  q(
    'WITH DELETE in a UNION arm',
    'SELECT 1 UNION ALL (WITH d AS (DELETE FROM invoice_line RETURNING 1) SELECT * FROM d)',
  ),
  q('WITH RECURSIVE DELETE', 'WITH RECURSIVE d AS (DELETE FROM invoice_line RETURNING 1) SELECT 1'),
  q(
    'WITH DELETE (rw session)',
    'WITH d AS (DELETE FROM invoice_line RETURNING *) SELECT count(*) FROM d',
    rw,
  ),
  x('WITH DELETE via explain', 'WITH d AS (DELETE FROM invoice_line RETURNING 1) SELECT * FROM d'),

  // Row locks.
  q('FOR UPDATE', 'SELECT * FROM customer FOR UPDATE'),
  q('FOR SHARE', 'SELECT * FROM customer FOR SHARE'),
  q('FOR NO KEY UPDATE', 'SELECT * FROM customer FOR NO KEY UPDATE'),
  q('FOR KEY SHARE', 'SELECT * FROM customer FOR KEY SHARE'),
  q('FOR UPDATE SKIP LOCKED', 'SELECT * FROM customer FOR UPDATE SKIP LOCKED'),
  q('FOR UPDATE in FROM subquery', 'SELECT * FROM (SELECT * FROM customer FOR UPDATE) s'),
  q(
    'FOR UPDATE in scalar subquery',
    'SELECT (SELECT customer_id FROM customer LIMIT 1 FOR UPDATE)',
  ),
  q('FOR UPDATE in CTE', 'WITH c AS (SELECT * FROM customer FOR UPDATE) SELECT count(*) FROM c'),
  q(
    'FOR SHARE OF in EXISTS',
    'SELECT 1 WHERE EXISTS (SELECT 1 FROM customer FOR SHARE OF customer)',
  ),
  q('FOR UPDATE (rw session)', 'SELECT * FROM customer FOR UPDATE', rw),
  x('FOR UPDATE via explain', 'SELECT * FROM customer FOR UPDATE'),

  // SELECT INTO and friends.
  q('SELECT INTO', 'SELECT * INTO attack_copy FROM customer'),
  q('SELECT INTO TEMP', 'SELECT * INTO TEMP attack_copy FROM customer'),
  q('CREATE TABLE AS', 'CREATE TABLE attack_copy AS SELECT * FROM customer'),
  q('CREATE MATERIALIZED VIEW', 'CREATE MATERIALIZED VIEW attack_mv2 AS SELECT 1'),

  // Sequences.
  q('nextval', "SELECT nextval('attack_seq')"),
  q('setval', "SELECT setval('attack_seq', 1000)"),
  q('currval', "SELECT currval('attack_seq')"),
  q('lastval', 'SELECT lastval()'),
  q('pg_catalog.nextval', "SELECT pg_catalog.nextval('public.attack_seq')"),
  q('quoted "nextval" with regclass', `SELECT "nextval"('attack_seq'::regclass)`),
  q('upper-case NEXTVAL', "SELECT NEXTVAL('ATTACK_SEQ')"),
  q('nextval in FROM', "SELECT * FROM nextval('attack_seq')"),
  q('ALTER SEQUENCE', 'ALTER SEQUENCE attack_seq RESTART WITH 500'),
  q(
    'nextval by attribute notation (read-only transaction refuses)',
    "SELECT ('attack_seq'::regclass).nextval",
    atExecute,
  ),
  q('nextval (rw session)', "SELECT nextval('attack_seq')", rw),

  // Anonymous code blocks and procedures.
  q('DO', 'DO $$ BEGIN DELETE FROM invoice_line; END $$'),
  q('DO with tagged quote', "DO LANGUAGE plpgsql $x$ BEGIN EXECUTE 'DROP TABLE customer'; END $x$"),
  q('CALL', 'CALL attack_proc()'),

  // COPY.
  q('COPY table TO file', `COPY customer TO '${FILES.copyTo}'`),
  q('COPY query TO file', `COPY (SELECT * FROM customer) TO '${FILES.copyQuery}'`),
  q('COPY FROM server file', "COPY customer FROM '/etc/passwd'"),
  q('COPY TO PROGRAM id', "COPY (SELECT 1) TO PROGRAM 'id'"),
  q('COPY TO PROGRAM touching a file', `COPY (SELECT 1) TO PROGRAM 'touch ${FILES.program}'`),
  q('COPY TO STDOUT', 'COPY customer TO STDOUT'),
  q('COPY FROM STDIN', 'COPY genre FROM STDIN'),

  // Server files.
  q('pg_read_file', "SELECT pg_read_file('/etc/passwd')"),
  q('pg_read_binary_file', "SELECT pg_read_binary_file('/etc/passwd')"),
  q('pg_ls_dir', "SELECT pg_ls_dir('.')"),
  q('pg_stat_file', "SELECT * FROM pg_stat_file('/etc/passwd')"),
  q('pg_catalog.pg_read_file', "SELECT pg_catalog.pg_read_file('postgresql.conf', 0, 100)"),
  q('pg_read_file with a bound path', 'SELECT pg_read_file($1)', { params: ['/etc/passwd'] }),
  q('pg_ls_waldir', 'SELECT * FROM pg_ls_waldir()'),
  q('adminpack pg_file_write', `SELECT pg_file_write('${FILES.fileWrite}', 'owned', false)`),

  // Large objects.
  q('lo_import', "SELECT lo_import('/etc/passwd')"),
  q('lo_export', `SELECT lo_export(lo_from_bytea(0, 'x'), '${FILES.loExport}')`),
  q('lo_creat', 'SELECT lo_creat(-1)'),
  q('lo_from_bytea', "SELECT lo_from_bytea(0, 'owned')"),
  q('lo_create', 'SELECT lo_create(0)'),
  q('loread', 'SELECT loread(lo_open(1, 262144), 10)'),

  // dblink.
  q('dblink', "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(x int)"),
  q('dblink_exec', "SELECT dblink_exec('dbname=postgres', 'DROP TABLE customer')"),
  q('public.dblink_connect', "SELECT public.dblink_connect('host=127.0.0.1')"),

  // DDL.
  q('CREATE TABLE', 'CREATE TABLE attack_t (x int)'),
  q('CREATE TEMP TABLE', 'CREATE TEMP TABLE attack_t (x int)'),
  q('DROP TABLE', 'DROP TABLE customer'),
  q('DROP TABLE CASCADE', 'DROP TABLE IF EXISTS customer CASCADE'),
  q('ALTER TABLE ADD COLUMN', 'ALTER TABLE customer ADD COLUMN owned int'),
  q('ALTER TABLE RENAME', 'ALTER TABLE customer RENAME TO owned'),
  q('TRUNCATE', 'TRUNCATE invoice_line'),
  q('GRANT', 'GRANT ALL ON customer TO PUBLIC'),
  q('REVOKE', 'REVOKE SELECT ON customer FROM CURRENT_USER'),
  q('GRANT a role', 'GRANT pg_read_server_files TO CURRENT_USER'),
  q('CREATE FUNCTION', "CREATE FUNCTION attack_f() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
  q('CREATE EXTENSION', 'CREATE EXTENSION dblink'),
  q('COMMENT ON', "COMMENT ON TABLE customer IS 'owned'"),
  q('CREATE SCHEMA', `CREATE SCHEMA ${EVIL.schema}`),
  q('CREATE ROLE', `CREATE ROLE ${EVIL.role} SUPERUSER LOGIN`),
  q('CREATE DATABASE', `CREATE DATABASE ${EVIL.db}`),
  q('CREATE VIEW', 'CREATE VIEW attack_v AS SELECT * FROM customer'),
  q('CREATE INDEX', 'CREATE INDEX ON customer (email)'),
  q('CREATE RULE', 'CREATE RULE attack_r AS ON INSERT TO genre DO INSTEAD NOTHING'),
  q('CREATE POLICY', 'CREATE POLICY attack_p ON customer USING (false)'),
  q('DROP OWNED', 'DROP OWNED BY CURRENT_USER'),
  q('REASSIGN OWNED', 'REASSIGN OWNED BY CURRENT_USER TO postgres'),
  q('SECURITY LABEL', "SECURITY LABEL ON TABLE customer IS 'secret'"),
  q('IMPORT FOREIGN SCHEMA', 'IMPORT FOREIGN SCHEMA public FROM SERVER loopback INTO public'),
  q('CREATE SERVER', 'CREATE SERVER attack_srv FOREIGN DATA WRAPPER postgres_fdw'),
  q('REFRESH MATERIALIZED VIEW', 'REFRESH MATERIALIZED VIEW attack_mv'),
  q('CLUSTER', 'CLUSTER customer USING customer_pkey'),
  q('REINDEX', 'REINDEX TABLE customer'),
  q('LOAD', "LOAD 'plpgsql'"),
  q('CREATE PUBLICATION', 'CREATE PUBLICATION attack_pub FOR ALL TABLES'),
  q('ALTER DEFAULT PRIVILEGES', 'ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC'),
  q('DROP TABLE (rw session)', 'DROP TABLE customer', rw),

  // Prepared statements and cursors.
  q('PREPARE a DELETE', 'PREPARE attack_p AS DELETE FROM invoice_line'),
  q('PREPARE a SELECT', 'PREPARE attack_q AS SELECT 1'),
  q('EXECUTE', 'EXECUTE attack_p'),
  q('DEALLOCATE', 'DEALLOCATE ALL'),
  q('DECLARE CURSOR WITH HOLD', 'DECLARE c CURSOR WITH HOLD FOR SELECT * FROM customer'),
  q('FETCH', 'FETCH ALL FROM c'),

  // EXPLAIN ANALYZE executes its statement.
  q('EXPLAIN ANALYZE DELETE via query', 'EXPLAIN ANALYZE DELETE FROM invoice_line'),
  x('EXPLAIN ANALYZE DELETE via explain', 'EXPLAIN ANALYZE DELETE FROM invoice_line'),
  x('DELETE via explain', 'DELETE FROM invoice_line'),
  q('EXPLAIN (ANALYZE) SELECT via query', 'EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM customer'),
  x('explain option injection', '(ANALYZE) SELECT 1'),
  x('ANALYZE via explain', 'ANALYZE customer'),
  x(
    'EXPLAIN ANALYZE DELETE via explain (rw session)',
    'EXPLAIN ANALYZE DELETE FROM invoice_line',
    rw,
  ),

  // LISTEN/NOTIFY.
  q('LISTEN', `LISTEN ${CHANNEL}`),
  q('NOTIFY', `NOTIFY ${CHANNEL}, 'owned'`),
  q('UNLISTEN', 'UNLISTEN *'),
  q('pg_notify', `SELECT pg_notify('${CHANNEL}', 'owned')`),
  q('pg_catalog.pg_notify', `SELECT pg_catalog.pg_notify('${CHANNEL}', 'owned')`),
  q('NOTIFY (rw session)', `NOTIFY ${CHANNEL}, 'owned'`, rw),

  // Locks.
  q('LOCK TABLE', 'LOCK TABLE customer IN ACCESS EXCLUSIVE MODE'),
  q('LOCK', 'LOCK customer'),
  q('pg_advisory_lock', 'SELECT pg_advisory_lock(4242)'),
  q('pg_try_advisory_xact_lock', 'SELECT pg_try_advisory_xact_lock(4242)'),
  q('pg_advisory_lock_shared', 'SELECT pg_advisory_lock_shared(4242)'),
  q('pg_catalog.pg_try_advisory_lock', 'SELECT pg_catalog.pg_try_advisory_lock(1, 2)'),

  // Comment tricks.
  q('; inside a block comment', 'SELECT 1 /* ; */ ; DROP TABLE customer'),
  q('line comment then newline', 'SELECT 1 -- \n; DROP TABLE customer'),
  q('nested block comments', 'SELECT 1 /* /* nested ; */ */ ; DELETE FROM invoice_line'),
  q('line comment ended by CR', 'SELECT 1 --x\r; DELETE FROM invoice_line'),
  q('commented-out SELECT', '/* SELECT 1; */ DELETE FROM invoice_line'),
  q('line-commented SELECT', '-- SELECT 1\nDELETE FROM invoice_line'),
  q('unterminated block comment', 'SELECT 1 /* ; DELETE FROM invoice_line'),
  q('comment inside a function name', 'SELECT pg_/**/sleep(10)'),

  // Dollar quotes.
  q('dollar quote hiding ;', 'SELECT $$ ; $$; DROP TABLE customer'),
  q('tagged dollar quote containing $$', 'SELECT $a$ $$ ; $a$; DROP TABLE customer'),
  q('tagged dollar quote, no spaces', 'SELECT $a$;$a$;DELETE FROM invoice_line'),
  q('underscore tag', 'SELECT $_$x$_$; DELETE FROM invoice_line'),
  q('unterminated dollar quote', 'SELECT $$ ; DELETE FROM invoice_line'),

  // String escapes.
  q('E-string escaped backslash', "SELECT E'\\\\'; DELETE FROM invoice_line; --'"),
  q('backslash is literal in standard strings', "SELECT '\\'; DELETE FROM invoice_line; --'"),
  q('E-string escaped quote', "SELECT E'\\''; DELETE FROM invoice_line; --'"),
  q('unicode-escape string then ;', "SELECT U&'\\0027'; DELETE FROM invoice_line"),
  q('UESCAPE then ;', "SELECT U&'d!0061t!+000061' UESCAPE '!'; DELETE FROM invoice_line"),
  q('unicode-escaped function name', 'SELECT U&"\\0070g_sleep"(10)'),
  q('unicode-escaped catalog relation', 'SELECT * FROM U&"\\0070g_authid"', atExecute),

  // pg_sleep and friends.
  q('pg_sleep', 'SELECT pg_sleep(10)'),
  q('pg_catalog.pg_sleep', 'SELECT pg_catalog.pg_sleep(10)'),
  q('quoted qualified pg_sleep', 'SELECT "pg_catalog"."pg_sleep"(10)'),
  q('upper-case PG_SLEEP', 'SELECT PG_SLEEP(10)'),
  q('quoted upper-case "PG_SLEEP"', 'SELECT "PG_SLEEP"(10)'),
  q('public.pg_sleep', 'SELECT public.pg_sleep(10)'),
  q('pg_sleep_for', "SELECT pg_sleep_for('10 seconds')"),
  q('pg_sleep_until', "SELECT pg_sleep_until('infinity')"),
  q('pg_sleep in WHERE', 'SELECT * FROM customer WHERE pg_sleep(10) IS NULL'),
  q('pg_sleep in ORDER BY', 'SELECT 1 ORDER BY pg_sleep(10)'),
  q('pg_sleep in FROM', 'SELECT * FROM pg_sleep(10)'),
  q('pg_sleep in FILTER', 'SELECT count(*) FILTER (WHERE pg_sleep(1) IS NULL) FROM customer'),
  x('pg_sleep via explain', 'SELECT pg_sleep(10)'),

  // Signals, administration, transaction ids.
  q('pg_terminate_backend', 'SELECT pg_terminate_backend(1)'),
  q('pg_cancel_backend', 'SELECT pg_cancel_backend(1)'),
  q('pg_reload_conf', 'SELECT pg_reload_conf()'),
  q('pg_rotate_logfile', 'SELECT pg_rotate_logfile()'),
  q('pg_switch_wal', 'SELECT pg_switch_wal()'),
  q('pg_create_restore_point', "SELECT pg_create_restore_point('x')"),
  q('pg_logical_emit_message', "SELECT pg_logical_emit_message(true, 'x', 'y')"),
  q('pg_stat_reset', 'SELECT pg_stat_reset()'),
  q('txid_current', 'SELECT txid_current()'),
  q('pg_current_xact_id', 'SELECT pg_current_xact_id()'),
  q('pg_backend_pid', 'SELECT pg_backend_pid()'),
  q('version', 'SELECT version()'),
  q('setseed', 'SELECT setseed(0.5)'),

  // Functions that run SQL text.
  q('query_to_xml', "SELECT query_to_xml('DELETE FROM invoice_line RETURNING *', true, false, '')"),
  q('table_to_xml of a denied table', "SELECT table_to_xml('employee', true, false, '')"),
  q('database_to_xml', "SELECT database_to_xml(true, false, '')"),
  q('ts_stat', "SELECT * FROM ts_stat('SELECT to_tsvector(token) FROM secret.creds')"),
  q('ts_rewrite', "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')"),
  q('xpath', "SELECT xpath('/a', '<a/>')"),
  q('XMLPARSE', "SELECT xmlparse(document '<a/>')"),

  // Catalog reads.
  q('pg_authid', 'SELECT rolname, rolpassword FROM pg_authid', atExecute),
  q('pg_shadow', 'SELECT usename, passwd FROM pg_shadow', atExecute),
  q('pg_roles unqualified', 'SELECT * FROM pg_roles', atExecute),
  q('pg_catalog.pg_user', 'SELECT * FROM pg_catalog.pg_user'),
  q('information_schema.tables', 'SELECT * FROM information_schema.tables'),
  q('pg_stat_activity', 'SELECT query FROM pg_stat_activity', atExecute),
  q('pg_settings', 'SELECT * FROM pg_settings', atExecute),
  q('pg_file_settings', 'SELECT * FROM pg_file_settings', atExecute),
  q('pg_hba_file_rules', 'SELECT * FROM pg_hba_file_rules', atExecute),
  q('pg_catalog.pg_authid', 'SELECT * FROM pg_catalog.pg_authid'),
  q('quoted pg_catalog.pg_class', 'SELECT * FROM "pg_catalog"."pg_class"'),
  q('upper-case PG_CATALOG.PG_PROC', 'SELECT * FROM PG_CATALOG.PG_PROC'),
  q('TABLE pg_authid', 'TABLE pg_authid', atExecute),
  q('pg_shadow in a scalar subquery', 'SELECT (SELECT passwd FROM pg_shadow LIMIT 1)', atExecute),
  q('pg_roles in a CTE', 'WITH r AS (SELECT * FROM pg_roles) SELECT * FROM r', atExecute),
  q(
    'pg_roles in a LATERAL join',
    'SELECT * FROM customer c JOIN LATERAL (SELECT * FROM pg_roles) r ON true',
    atExecute,
  ),
  q(
    'pg_authid in IN (...)',
    'SELECT * FROM customer WHERE customer_id IN (SELECT oid::int FROM pg_authid)',
    atExecute,
  ),
  q('pg_largeobject', 'SELECT * FROM pg_largeobject', atExecute),
  q('database-qualified relation', 'SELECT * FROM postgres.public.customer'),
  x('pg_authid via explain', 'SELECT * FROM pg_authid', atExecute),
  q('pg_roles (rw session)', 'SELECT * FROM pg_roles', { ...rw, ...atExecute }),

  // Relations outside the allowed schemas/tables.
  q('other schema', 'SELECT * FROM secret.creds', { secrets: [SECRET_TOKEN] }),
  q('other schema, quoted', 'SELECT * FROM "secret"."creds"', { secrets: [SECRET_TOKEN] }),
  q('other schema in a join', 'SELECT * FROM customer, secret.creds', { secrets: [SECRET_TOKEN] }),
  q('pg_temp schema', 'SELECT * FROM pg_temp.customer'),
  q('denied table', 'SELECT * FROM employee'),
  q('denied table, qualified', 'SELECT * FROM public.employee'),
  q('denied table, ONLY and quoted', 'SELECT * FROM ONLY "employee"'),
  q(
    'denied table behind a same-named CTE',
    'WITH employee AS (SELECT * FROM employee) SELECT * FROM employee',
  ),
  q(
    'denied table next to a subquery CTE of its name',
    'SELECT * FROM (WITH employee AS (SELECT 1) SELECT * FROM employee) x, employee',
  ),
  q('table without a grant (database refuses)', 'SELECT * FROM no_grant_notes', {
    ...atExecute,
    secrets: [PRIVATE_NOTE],
  }),
  q('other schema (rw session)', 'SELECT * FROM secret.creds', { ...rw, secrets: [SECRET_TOKEN] }),

  // Functions outside the allowlist, operators, sampling methods.
  q('user function, unqualified', 'SELECT attack_peek(c) FROM customer c'),
  q('user function, qualified', 'SELECT public.attack_peek(c) FROM customer c'),
  q(
    'computed field that writes (read-only transaction refuses)',
    'SELECT c.attack_write FROM customer c LIMIT 1',
    atExecute,
  ),
  q('schema-qualified operator', 'SELECT 1 OPERATOR(public.+) 1'),
  q('extension TABLESAMPLE method', 'SELECT * FROM customer TABLESAMPLE system_rows(10)'),
  q(
    'ts_stat by attribute notation running a sequence write',
    "SELECT ('SELECT to_tsvector(nextval(''attack_seq'')::text)'::text).ts_stat",
    atExecute,
  ),
  q(
    'ts_stat by attribute notation reading a server file',
    "SELECT ('SELECT to_tsvector(pg_read_file(''/etc/passwd''))'::text).ts_stat",
    atExecute,
  ),

  // Errors must not carry data.
  q('error-based: cast PII to int', 'SELECT email::int FROM customer ORDER BY customer_id', {
    expectCode: 'upstream_error',
    secrets: [EMAIL, 'luisg'],
  }),
  q(
    'error-based: row data quoted by a class-42 tsquery syntax error',
    "SELECT to_tsquery('simple', last_name || ' &') FROM customer ORDER BY customer_id",
    { expectCode: 'upstream_error', secrets: ['Gonçalves', 'gonçalves'] },
  ),
  q(
    'error-based: PII quoted by a class-42 tsquery syntax error',
    "SELECT (email || ' &')::tsquery FROM customer ORDER BY customer_id",
    { expectCode: 'upstream_error', secrets: [EMAIL] },
  ),
  q('bound value cast to an integer', 'SELECT * FROM customer WHERE customer_id = $1', {
    expectCode: 'upstream_error',
    params: ['1; DROP TABLE customer'],
  }),
  q(
    'error-based: PII as a date',
    'SELECT (SELECT email FROM customer ORDER BY customer_id LIMIT 1)::date',
    { expectCode: 'upstream_error', secrets: [EMAIL] },
  ),

  // Maintenance and session commands.
  q('VACUUM', 'VACUUM'),
  q('VACUUM FULL', 'VACUUM FULL customer'),
  q('ANALYZE', 'ANALYZE'),
  q('ANALYZE a table', 'ANALYZE customer'),
  q('CHECKPOINT', 'CHECKPOINT'),
  q('DISCARD ALL', 'DISCARD ALL'),
  q('DISCARD TEMP', 'DISCARD TEMP'),

  // Malformed input.
  q('NUL byte before a stacked DROP', 'SELECT 1\u0000; DROP TABLE customer'),
  q('leading NUL byte', '\u0000DELETE FROM invoice_line'),
  q('NUL byte inside a literal', "SELECT 'a\u0000b'"),
  q('5,000 nested subqueries', DEEP_SUBQUERIES),
  q('20,000-term operator chain', `SELECT 1${' + 1'.repeat(20_000)}`),
  q('5,000 NOTs', `SELECT ${'NOT '.repeat(5000)}true`),
  q('whitespace only', '  \n\t '),
  q('comment only', '-- only a comment'),
  q('lone semicolon', ';'),
  q('$0', 'SELECT $0'),
  q('$65536', 'SELECT $65536::text'),
  q('empty SQL', '', { expectCode: 'invalid_input' }),
  q('SQL over 100,000 characters', `SELECT 1 -- ${'x'.repeat(100_000)}`, {
    expectCode: 'invalid_input',
  }),
  q('too few params', 'SELECT $1::int + $2::int', { expectCode: 'invalid_input', params: [1] }),
  q('a param without a placeholder', 'SELECT 1', {
    expectCode: 'invalid_input',
    params: ["'; DROP TABLE customer; --"],
  }),
  q('an object as a param', 'SELECT $1', {
    expectCode: 'invalid_input',
    params: [{ toString: 'DROP TABLE customer' }],
  }),
  q('an unknown argument', 'SELECT 1', {
    expectCode: 'invalid_input',
    extraArgs: { sneaky: 'DROP TABLE customer' },
  }),
  x('empty SQL via explain', '', { expectCode: 'invalid_input' }),

  // Look-alikes and scoping tricks.
  q('full-width semicolon', 'SELECT 1\uff1bDELETE FROM invoice_line'),
  q('Cyrillic homoglyph of pg_sleep', 'SELECT \u0440g_sleep(10)'),
  q('psql-style \\; separator', 'SELECT 1 \\; DELETE FROM invoice_line'),
  q('zero-width space before a stacked DELETE', 'SELECT 1;\u200bDELETE FROM invoice_line'),
  q(
    'CTE scope: an earlier sibling sees the real catalog view',
    'WITH a AS (SELECT * FROM pg_roles), pg_roles AS (SELECT 1) SELECT * FROM a',
    atExecute,
  ),
  q(
    'CTE scope: a UNION arm outside the WITH',
    '(WITH pg_roles AS (SELECT 1) SELECT * FROM pg_roles) UNION ALL SELECT 1 FROM pg_roles',
    atExecute,
  ),
  q(
    'CTE scope: a subquery CTE does not cover the outer FROM',
    'SELECT * FROM (WITH pg_roles AS (SELECT 1) SELECT 1) s, pg_roles',
    atExecute,
  ),
  q('101 params', `SELECT ${Array.from({ length: 101 }, (_, i) => `$${i + 1}::text`).join(', ')}`, {
    expectCode: 'invalid_input',
    params: Array.from({ length: 101 }, (_, i) => `v${i}`),
  }),
  q('a param over 65,536 characters', 'SELECT length($1)', {
    expectCode: 'invalid_input',
    params: ['x'.repeat(65_537)],
  }),
  q('maxRows 0', 'SELECT 1', { expectCode: 'invalid_input', extraArgs: { maxRows: 0 } }),
  q('maxRows over the ceiling', 'SELECT 1', {
    expectCode: 'invalid_input',
    extraArgs: { maxRows: 1_000_000_000 },
  }),

  // The same walls through postgres_explain and in the read-write session.
  x('SET via explain', 'SET default_transaction_read_only = off'),
  x('DO via explain', 'DO $$ BEGIN DELETE FROM invoice_line; END $$'),
  x('COPY via explain', `COPY customer TO '${FILES.copyTo}'`),
  x('nextval via explain', "SELECT nextval('attack_seq')"),
  x('pg_read_file via explain', "SELECT pg_read_file('/etc/passwd')"),
  x('pg_notify via explain', `SELECT pg_notify('${CHANNEL}', 'owned')`),
  x('denied table via explain', 'SELECT * FROM employee'),
  x('other schema via explain', 'SELECT * FROM secret.creds'),
  x('NUL byte via explain', 'SELECT 1\u0000; DROP TABLE customer'),
  x('5,000 nested subqueries via explain', DEEP_SUBQUERIES),
  q(
    'set_config (rw session)',
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    rw,
  ),
  q('COPY TO file (rw session)', `COPY customer TO '${FILES.copyTo}'`, rw),
  q('DO (rw session)', 'DO $$ BEGIN DELETE FROM invoice_line; END $$', rw),
  q('CREATE TABLE (rw session)', 'CREATE TABLE attack_t (x int)', rw),
  q('TRUNCATE (rw session)', 'TRUNCATE invoice_line', rw),
  q('pg_notify (rw session)', `SELECT pg_notify('${CHANNEL}', 'owned')`, rw),
  q('LOCK TABLE (rw session)', 'LOCK TABLE customer IN ACCESS EXCLUSIVE MODE', rw),
  q('pg_advisory_lock (rw session)', 'SELECT pg_advisory_lock(4242)', rw),
  q(
    'EXPLAIN ANALYZE DELETE via query (rw session)',
    'EXPLAIN ANALYZE DELETE FROM invoice_line',
    rw,
  ),
  q(
    'WITH UPDATE (rw session)',
    "WITH u AS (UPDATE customer SET email = 'x' RETURNING 1) SELECT 1",
    rw,
  ),
  q('lo_import (rw session)', "SELECT lo_import('/etc/passwd')", rw),

  // Runaway queries that pass the guard end at the statement timeout.
  q('runaway: triple cross join', 'SELECT count(*) FROM track a, track b, track c', {
    expectCode: 'timeout',
  }),
  q('runaway: generate_series to 1e12', 'SELECT count(*) FROM generate_series(1, 1e12)', {
    expectCode: 'timeout',
  }),
  q(
    'runaway: endless recursive CTE',
    'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r',
    { expectCode: 'timeout' },
  ),
  q(
    'runaway: cross join of two series',
    'SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b',
    { expectCode: 'timeout' },
  ),
  q('runaway (rw session)', 'SELECT count(*) FROM track a, track b, track c', {
    ...rw,
    expectCode: 'timeout',
  }),

  // Attribute notation: PostgreSQL reads `(x).f` and `alias.f` as the call `f(x)` when there is
  // no column f, for ANY single-argument function (docs §8.16.5, §10.3). Found open on HEAD
  // 2c667be (arbitrary SQL through `('<sql>'::text).ts_stat`); refused by the catalog check of
  // attribute names (sql-guard.ts `attributeNames`, catalog-check.ts `checkStatementInCatalog`).
  q(
    'ts_stat by attribute notation runs arbitrary SQL: other schema',
    "SELECT ('SELECT array_to_tsvector(ARRAY[token]) FROM secret.creds'::text).ts_stat",
    { secrets: [SECRET_TOKEN] },
  ),
  q('ts_stat by attribute notation with the SQL as a bound value', 'SELECT ($1::text).ts_stat', {
    params: ['SELECT array_to_tsvector(ARRAY[token]) FROM secret.creds'],
    secrets: [SECRET_TOKEN],
  }),
  q(
    'ts_stat by attribute notation runs arbitrary SQL: denied table',
    "SELECT ('SELECT array_to_tsvector(ARRAY[last_name::text]) FROM employee'::text).ts_stat",
    { secrets: ['Adams'] },
  ),
  q(
    'ts_stat by attribute notation runs arbitrary SQL: catalog',
    "SELECT ('SELECT array_to_tsvector(ARRAY[rolname::text]) FROM pg_roles'::text).ts_stat",
  ),
  x(
    'ts_stat by attribute notation via explain',
    "SELECT ('SELECT array_to_tsvector(ARRAY[token]) FROM secret.creds'::text).ts_stat",
  ),
  q('current_setting by attribute notation', "SELECT ('server_version'::text).current_setting"),
  q('pg_advisory_lock by attribute notation', 'SELECT (4242::int8).pg_advisory_lock'),
  q('pg_sleep by attribute notation', 'SELECT (10::float8).pg_sleep'),
  q(
    'computed field (a user function) reads another schema',
    'SELECT c.attack_peek FROM customer c WHERE c.customer_id = 1',
    { ...atExecute, secrets: [SECRET_TOKEN] },
  ),

  // ---- Found by this corpus and fixed (chained attribute notation, user-defined operators).
  q(
    'ts_stat by attribute notation followed by a field: other schema',
    "SELECT ('SELECT array_to_tsvector(ARRAY[token]) FROM secret.creds'::text).ts_stat.word",
    { secrets: [SECRET_TOKEN] },
  ),
  q(
    'ts_stat by attribute notation followed by .*: catalog',
    "SELECT ('SELECT array_to_tsvector(ARRAY[rolname::text]) FROM pg_roles'::text).ts_stat.*",
    {},
  ),
  q(
    'ts_stat by attribute notation followed by .*: denied table',
    "SELECT ('SELECT array_to_tsvector(ARRAY[last_name::text]) FROM employee'::text).ts_stat.*",
    { secrets: ['Adams'] },
  ),
  q(
    'a non-allowlisted function by attribute notation followed by a subscript',
    'SELECT (true).current_schemas[1]',
    { ...atExecute },
  ),
  q('a user-defined operator runs a non-allowlisted function', 'SELECT 1 ##> 2', {
    ...atExecute,
    secrets: [SECRET_TOKEN],
  }),
];

{
  const names = new Set<string>();
  for (const a of ATTACKS) {
    if (names.has(a.name)) throw new Error(`duplicate attack name: ${a.name}`);
    names.add(a.name);
  }
}

const wallOf = (a: Attack): 'guard' | 'execute' =>
  a.wall ??
  (a.expectCode === 'policy_denied' || a.expectCode === 'invalid_input' ? 'guard' : 'execute');

// ---------------------------------------------------------------------------------------------
// Setup

let server: TestPostgres;
let db: ChinookDatabase;
let probe: StateProbe;
let ro: ServerSession;
let rwSession: ServerSession;
const approvalRequests: string[] = [];
let genreCount: string;

/** Correlation ids of the calls made by the table, for the audit check. */
const refused: { attack: Attack; correlationId: string }[] = [];

const rateLimit = { points: 100_000, durationSeconds: 60 };
const postgresSection = {
  statementTimeoutMs: STATEMENT_TIMEOUT_MS,
  lockTimeoutMs: 500,
  tables: { deny: ['employee'] },
};

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
  const setup = new pg.Client({ connectionString: db.adminUrl });
  await setup.connect();
  try {
    const r = pg.escapeIdentifier;
    await setup.query(`
      CREATE SEQUENCE public.attack_seq;
      SELECT nextval('public.attack_seq');
      GRANT USAGE, SELECT ON SEQUENCE public.attack_seq TO ${r(db.readRole)};
      CREATE SCHEMA secret;
      CREATE TABLE secret.creds (id int PRIMARY KEY, token text NOT NULL);
      INSERT INTO secret.creds VALUES (1, '${SECRET_TOKEN}');
      GRANT USAGE ON SCHEMA secret TO ${r(db.readRole)}, ${r(db.writeRole)};
      GRANT SELECT ON secret.creds TO ${r(db.readRole)}, ${r(db.writeRole)};
      CREATE TABLE public.no_grant_notes (id int PRIMARY KEY, note text NOT NULL);
      INSERT INTO public.no_grant_notes VALUES (1, '${PRIVATE_NOTE}');
      CREATE MATERIALIZED VIEW public.attack_mv AS SELECT 1 AS x;
      CREATE PROCEDURE public.attack_proc() LANGUAGE sql AS $$ DELETE FROM public.invoice_line $$;
      CREATE FUNCTION public.attack_write(c public.customer) RETURNS int LANGUAGE plpgsql
        AS $$ BEGIN DELETE FROM public.invoice_line; RETURN 1; END $$;
      CREATE FUNCTION public.attack_peek(c public.customer) RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT token FROM secret.creds LIMIT 1 $$;
      CREATE FUNCTION public.attack_peek_op(int, int) RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT token FROM secret.creds LIMIT 1 $$;
      CREATE OPERATOR public.##> (LEFTARG = int, RIGHTARG = int, FUNCTION = public.attack_peek_op);
    `);
    genreCount = (await setup.query<{ n: string }>('SELECT count(*)::text AS n FROM genre'))
      .rows[0]!.n;
  } finally {
    await setup.end();
  }
  probe = await openStateProbe({
    adminUrl: db.adminUrl,
    readUrl: db.readUrl,
    roles: [db.readRole, db.writeRole],
    channels: [CHANNEL],
    files: Object.values(FILES),
    forbiddenNames: Object.values(EVIL),
  });
  ro = await startPostgresServer({
    env: { POSTGRES_URL: db.readUrl },
    config: {
      identity: { principal: 'mallory', roles: ['analyst'] },
      roles: { analyst: ['postgres:read'] },
      rateLimit,
      log: { level: 'warn' },
      postgres: postgresSection,
    },
  });
  rwSession = await startPostgresServer({
    env: { POSTGRES_URL: db.readUrl, POSTGRES_WRITE_URL: db.writeUrl },
    config: {
      mode: 'read-write',
      identity: { principal: 'mallory-rw', roles: ['admin'] },
      roles: { admin: ['postgres:read', 'postgres:write'] },
      rateLimit,
      log: { level: 'warn' },
      postgres: postgresSection,
    },
    capabilities: { elicitation: {} },
  });
  rwSession.client.setRequestHandler(ElicitRequestSchema, async (req) => {
    approvalRequests.push(String(req.params.message));
    return { action: 'accept', content: { approve: true } };
  });
});

afterAll(async () => {
  await ro?.close();
  await rwSession?.close();
  await probe?.close();
  await db?.drop();
  await server?.stop();
});

// ---------------------------------------------------------------------------------------------
// Checks

const sessionOf = (a: Attack): ServerSession => (a.session === 'rw' ? rwSession : ro);

async function expectUnchanged(before: DbState): Promise<DbState> {
  const after = await snapshotSettled(probe, before);
  expect(settled(before, after)).toEqual(before);
  expect(after.advisoryLocks).toBe(0);
  expect(after.largeObjects).toBe(0);
  expect(after.existingFiles).toEqual([]);
  expect(after.forbiddenNamesFound).toEqual([]);
  expect(after.busyServerSessions).toBe(0);
  expect(after.readSessionSettings.default_transaction_read_only).toBe('on');
  return after;
}

/** String literals and dollar-quoted bodies of at least 4 characters. */
function literalsIn(sql: string): string[] {
  const out: string[] = [];
  for (const m of sql.matchAll(/'((?:[^']|'')*)'/g)) if ((m[1] ?? '').length >= 4) out.push(m[1]!);
  for (const m of sql.matchAll(/\$([A-Za-z_]*)\$([\s\S]*?)\$\1\$/g))
    if ((m[2] ?? '').trim().length >= 4) out.push(m[2]!);
  return out;
}

function expectNoEcho(text: string, a: Attack): void {
  const body = text.replace(/ \(correlation id [^)]*\)$/, '');
  const sql = a.sql.trim();
  if (sql.length >= 16) expect(body).not.toContain(sql);
  for (const lit of literalsIn(a.sql)) expect(body).not.toContain(lit);
  for (const p of a.params ?? [])
    if (typeof p === 'string' && p.length >= 4) expect(body).not.toContain(p);
  for (const secret of a.secrets ?? []) expect(body).not.toContain(secret);
  for (const url of [db.readUrl, db.writeUrl, db.adminUrl]) {
    const password = new URL(url).password;
    if (password) expect(body).not.toContain(password);
  }
  expect(body).not.toMatch(/DETAIL|HINT|\n\s+at |\.ts:\d|\.js:\d/);
  expect(body).not.toContain('\n');
}

async function expectServed(s: ServerSession): Promise<void> {
  const r = await s.client.callTool({
    name: 'postgres_query',
    arguments: { sql: 'SELECT count(*) AS n FROM genre' },
  });
  expect(r.isError, textOf(r)).toBeFalsy();
  expect((r.structuredContent as { rows: unknown[][] }).rows).toEqual([[genreCount]]);
}

/** The state after the last row that completed; rows in between only ran the read-only served check. */
let lastState: DbState | undefined;

async function runAttack(a: Attack): Promise<void> {
  const s = sessionOf(a);
  const before = lastState ?? (await probe.snapshot());
  lastState = undefined;
  const seenNotifications = probe.notifications.length;
  const args: Record<string, unknown> = { sql: a.sql, ...a.extraArgs };
  if (a.params) args.params = a.params;
  const r = await s.client.callTool({ name: a.tool, arguments: args });
  const text = textOf(r);
  expect(r.isError, text).toBe(true);
  expect(text.startsWith(`${a.expectCode}: `), text).toBe(true);
  const correlationId =
    / \(correlation id ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)$/.exec(
      text,
    )?.[1];
  expect(correlationId, text).toBeDefined();
  expect((r._meta as Record<string, unknown> | undefined)?.['hardened-mcp/error']).toEqual({
    code: a.expectCode,
    correlationId,
  });
  refused.push({ attack: a, correlationId: correlationId! });
  expectNoEcho(text, a);
  const after = await expectUnchanged(before);
  expect(probe.notifications.slice(seenNotifications)).toEqual([]);
  await expectServed(s);
  lastState = after;
}

// ---------------------------------------------------------------------------------------------
// Tests

describe('attack table', () => {
  it('starts from a sane state', async () => {
    const st = await probe.snapshot();
    expect(st.attackSeq).toEqual({ last_value: '1', is_called: true });
    expect(st.readSessionSettings.default_transaction_read_only).toBe('on');
    expect(st.advisoryLocks).toBe(0);
    expect(st.tables['public.customer']?.rows).toBe(59);
    expect(st.existingFiles).toEqual([]);
    await expectServed(ro);
    await expectServed(rwSession);
  });

  it.each(ATTACKS.filter((a) => !a.bug))('$tool [$expectCode] $name', runAttack);

  for (const a of ATTACKS.filter((row) => row.bug)) {
    it.fails(`${a.tool} [${a.expectCode}] ${a.name}`, () => runAttack(a));
  }
});

describe('after the table', () => {
  it('the servers still answer normally, and postgres_query never asked for approval', async () => {
    for (const s of [ro, rwSession]) {
      await expectServed(s);
      const plan = await s.client.callTool({
        name: 'postgres_explain',
        arguments: { sql: 'SELECT * FROM invoice WHERE customer_id = $1', params: [5] },
      });
      expect(plan.isError, textOf(plan)).toBeFalsy();
      const rows = await s.client.callTool({
        name: 'postgres_query',
        arguments: {
          sql: 'SELECT first_name, country FROM customer WHERE country = $1 ORDER BY customer_id',
          params: ["Brazil'; DROP TABLE customer; --"],
        },
      });
      expect(rows.isError, textOf(rows)).toBeFalsy();
      expect((rows.structuredContent as { rowCount: number }).rowCount).toBe(0);
    }
    expect(approvalRequests).toEqual([]);
    const st = await probe.snapshot();
    expect(st.tables['public.customer']?.rows).toBe(59);
    expect(st.attackSeq).toEqual({ last_value: '1', is_called: true });
  });

  it('queries at the nesting limit are answered or refused cleanly, and the server lives on', async () => {
    for (const sql of [
      `SELECT ${'(1,'.repeat(990)}1${')'.repeat(990)} IS NOT NULL AS ok`,
      `SELECT ${'coalesce(1,'.repeat(650)}1${')'.repeat(650)} AS ok`,
      `SELECT ${'ARRAY[1,'.repeat(495)}1${']'.repeat(495)} IS NOT NULL AS ok`,
    ]) {
      const r = await ro.client.callTool({ name: 'postgres_query', arguments: { sql } });
      if (r.isError) expect(textOf(r)).toMatch(/^(policy_denied|upstream_error): /);
      else expect((r.structuredContent as { rowCount: number }).rowCount).toBe(1);
      await expectServed(ro);
    }
  });

  it('every refused call left an audit record with its code; policy refusals are denied decisions', async () => {
    const all = () => [...auditRecordsIn(ro.stderr()), ...auditRecordsIn(rwSession.stderr())];
    const wanted = refused.filter((r) => !r.attack.bug);
    // Rows that failed before their call returned are reported by the table itself.
    expect(wanted.length).toBeGreaterThan(ATTACKS.length / 2);
    await waitFor(() => {
      const ids = new Set(all().map((r) => r.correlationId));
      return wanted.every((w) => ids.has(w.correlationId));
    }, 10_000);
    const byId = new Map<string, AuditRecord>(all().map((r) => [r.correlationId, r]));
    for (const { attack, correlationId } of wanted) {
      const rec = byId.get(correlationId);
      expect(rec, attack.name).toMatchObject({
        tool: attack.tool,
        principal: attack.session === 'rw' ? 'mallory-rw' : 'mallory',
        errorClass: attack.expectCode,
      });
      if (wallOf(attack) === 'guard') {
        expect(rec?.outcome, attack.name).toBe('denied');
        expect(rec?.decision.result, attack.name).toBe('denied');
      } else {
        // Stopped during execution at the latest; refusing it earlier is fine too.
        expect(['error', 'denied'], attack.name).toContain(rec?.outcome);
      }
    }
  });

  // Regression: refusals during execution (an unqualified relation resolving to pg_catalog, 42501,
  // 25006) used to be audited as decision "allowed" with outcome "error".
  it('execute-stage policy refusals are audited as denied decisions', () => {
    const byId = new Map<string, AuditRecord>(
      [...auditRecordsIn(ro.stderr()), ...auditRecordsIn(rwSession.stderr())].map((r) => [
        r.correlationId,
        r,
      ]),
    );
    const late = refused.filter(
      (r) =>
        !r.attack.bug && r.attack.expectCode === 'policy_denied' && wallOf(r.attack) === 'execute',
    );
    expect(late.length).toBeGreaterThan(0);
    for (const { attack, correlationId } of late) {
      expect(byId.get(correlationId)?.decision.result, attack.name).toBe('denied');
    }
  });
});
