/**
 * Database round trips of one `postgres_query` call, counted on the client's side, and the
 * session a pooled connection keeps between calls (pool size 1: every call lands on the same
 * backend). Against a real PostgreSQL (embedded 18, or DATABASE_URL) with Chinook.
 *
 * A round trip is a turn of the conversation: the client writes after it has read (or for the
 * first time), then waits for the server. Pipelined messages written together count once.
 */
import { type ExecuteClassification, type Identity, Secret } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CATALOG_CHECK_ON_GENERIC_PLAN,
  CATALOG_STATEMENT,
  catalogCheckQueries,
} from './catalog-check.js';
import { type PostgresSettings, postgresSectionSchema } from './config.js';
import { openPool, type PgHandle, withTransaction } from './database.js';
import type * as GuardClientModule from './sql-guard-client.js';
import type { SqlGuardClient } from './sql-guard-client.js';
import { createTablePolicy } from './table-policy.js';
import { createPostgresTools } from './tools.js';

// The checker processes run the built sql-guard-process.js: this suite needs `pnpm build` first.
const { createSqlGuardClient } = (await import(
  new URL('../dist/sql-guard-client.js', import.meta.url).href
)) as typeof GuardClientModule;

let server: TestPostgres;
let db: ChinookDatabase;
let admin: pg.Client;
let guard: SqlGuardClient;
const pools: pg.Pool[] = [];
/** Round trips counted since the last reset, over every connection of the pools below. */
let roundTrips = 0;
const MAPPED_ROLE = `hmcp_rt_${process.pid}`;
const EXTRA_FUNCTIONS: string[] = [];
/** A table with row-level security on the call's principal and claims (see beforeAll). */
const NOTES = `hmcp_rt_notes_${process.pid}`;

function settings(overrides: Record<string, unknown> = {}): PostgresSettings {
  return postgresSectionSchema.parse({
    pool: { max: 1 },
    functions: { allow: EXTRA_FUNCTIONS },
    ...overrides,
  });
}

/** A read pool of one connection whose socket turns are counted into {@link roundTrips}. */
function handle(s: PostgresSettings): PgHandle {
  const pool = openPool(new Secret(db.readUrl, 'test'), 'read', s);
  pool.on('connect', (client) => {
    const stream = (client as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection
      .stream as NodeJS.EventEmitter & { write: (...a: unknown[]) => boolean };
    let waiting = false;
    const write = stream.write;
    stream.write = (...args: unknown[]) => {
      if (!waiting) roundTrips++;
      waiting = true;
      return write.apply(stream, args);
    };
    stream.on('data', () => {
      waiting = false;
    });
  });
  pools.push(pool);
  return { scope: 'read', pool, settings: s };
}

const identity = (principal: string): Identity =>
  ({
    principal,
    roles: ['analyst'],
    transport: 'stdio',
    client: { name: 'test', version: '0' },
    claims: { country: `it's "${principal}"\\` },
  }) as unknown as Identity;

type QueryTool = Awaited<ReturnType<typeof createPostgresTools>>[number];

/** Runs `postgres_query` as the pipeline would after its policy step; returns the rows. */
async function query(
  tool: QueryTool,
  h: PgHandle,
  sql: string,
  options: { principal?: string; classification?: ExecuteClassification } = {},
): Promise<unknown[][]> {
  const principal = options.principal ?? 'alice';
  const verdict = await guard.checkGeneric(sql, principal);
  if (!verdict.ok) throw new Error(verdict.message);
  const result = (await tool.execute(
    { sql } as never,
    {
      identity: identity(principal),
      client: h,
      authorized: verdict,
      limits: { maxRows: 500, maxBytes: 256 * 1024 },
      signal: new AbortController().signal,
      correlationId: 'test',
      classification: options.classification,
      audit: { note: () => undefined },
    } as never,
  )) as unknown as { rows: unknown[][] };
  return result.rows;
}

async function toolFor(s: PostgresSettings, classifying = false): Promise<QueryTool> {
  const tools = await createPostgresTools(s, guard, { classifying });
  const tool = tools.find((t) => t.name === 'postgres_query');
  if (!tool) throw new Error('no postgres_query');
  return tool;
}

/** Round trips of one call. */
async function counted(run: () => Promise<unknown>): Promise<number> {
  roundTrips = 0;
  await run();
  return roundTrips;
}

const HUNDRED_ROWS =
  'SELECT c.customer_id, c.first_name, c.last_name, i.invoice_date, i.total FROM customer c JOIN invoice i ON i.customer_id = c.customer_id ORDER BY i.invoice_id LIMIT 100';

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
  admin = new pg.Client({ connectionString: db.adminUrl });
  await admin.connect();
  await admin.query(`CREATE ROLE ${MAPPED_ROLE} NOLOGIN`);
  await admin.query(`GRANT ${MAPPED_ROLE} TO ${pg.escapeIdentifier(db.readRole)}`);
  await admin.query(`GRANT USAGE ON SCHEMA public TO ${MAPPED_ROLE}`);
  await admin.query(`CREATE TABLE ${NOTES} (owner text NOT NULL, note text NOT NULL)`);
  await admin.query(`INSERT INTO ${NOTES} VALUES ('alice', 'a1'), ('bob', 'b1'), ('carol', 'c1')`);
  await admin.query(`ALTER TABLE ${NOTES} ENABLE ROW LEVEL SECURITY`);
  await admin.query(
    `CREATE POLICY own ON ${NOTES} FOR SELECT TO ${MAPPED_ROLE} USING (owner = current_setting('hardened_mcp.principal', true) AND owner = current_setting('hardened_mcp.claims', true)::jsonb ->> 'principal')`,
  );
  await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${MAPPED_ROLE}`);
  guard = await createSqlGuardClient(
    { allowedSchemas: ['public'], deniedTables: [], extraFunctions: EXTRA_FUNCTIONS },
    { processes: 1 },
  );
}, 180_000);

afterAll(async () => {
  await Promise.allSettled(pools.splice(0).map((p) => p.end()));
  await guard?.close();
  await admin?.query(`DROP TABLE IF EXISTS ${NOTES}`).catch(() => undefined);
  await admin?.query(`DROP OWNED BY ${MAPPED_ROLE}`).catch(() => undefined);
  await admin?.query(`DROP ROLE IF EXISTS ${MAPPED_ROLE}`).catch(() => undefined);
  await admin?.end().catch(() => undefined);
  await db?.drop();
  await server?.stop();
}, 60_000);

describe('postgres_query round trips in the steady state', () => {
  it('at most 3 per call: BEGIN + settings + catalog check, the cursor, ROLLBACK + reset', async () => {
    const s = settings();
    const h = handle(s);
    const tool = await toolFor(s);
    // The first call on a connection also prepares the catalog check and learns column types.
    await query(tool, h, HUNDRED_ROWS);
    const counts: number[] = [];
    for (let i = 0; i < 5; i++) counts.push(await counted(() => query(tool, h, HUNDRED_ROWS)));
    console.log(`round trips per postgres_query call: ${counts.join(', ')}`);
    expect(Math.max(...counts)).toBeLessThanOrEqual(3);
    expect((await query(tool, h, HUNDRED_ROWS)).length).toBe(100);
  }, 60_000);

  it('also at most 3 with per-principal database roles (role and claims in the settings)', async () => {
    const s = settings({
      databaseRoles: {
        rules: [{ principal: 'nobody', read: MAPPED_ROLE }],
        default: { read: MAPPED_ROLE },
      },
    });
    const h = handle(s);
    const tool = await toolFor(s);
    await query(tool, h, HUNDRED_ROWS);
    const n = await counted(() => query(tool, h, HUNDRED_ROWS, { principal: 'bob' }));
    expect(n).toBeLessThanOrEqual(3);
  }, 60_000);

  it('a truncated result (more rows than maxRows) is still one round trip for the cursor', async () => {
    const s = settings();
    const h = handle(s);
    const tool = await toolFor(s);
    const sql = 'SELECT invoice_line_id FROM invoice_line';
    await query(tool, h, sql);
    expect(await counted(() => query(tool, h, sql))).toBeLessThanOrEqual(3);
  }, 60_000);

  it('with column classification: counted and bounded (the planner resolves the columns)', async () => {
    const s = settings();
    const h = handle(s);
    const tool = await toolFor(s, true);
    const classification: ExecuteClassification = {
      classify: async () => ({ maxRows: 500, maxBytes: 256 * 1024 }),
      labelOf: () => 'internal',
    };
    await query(tool, h, HUNDRED_ROWS, { classification });
    const n = await counted(() => query(tool, h, HUNDRED_ROWS, { classification }));
    // The 3 above, plus: savepoint + PREPARE of the generic form; its EXPLAIN; the column
    // lookup with DEALLOCATE (pipelined). Was 11.
    console.log(`round trips with classification: ${n}`);
    expect(n).toBeLessThanOrEqual(6);
  }, 60_000);
});

describe('the catalog check on its generic plan, with no statement of its own for the switch', () => {
  it('is never bound on a custom plan, and the statement after it plans with plan_cache_mode auto', async () => {
    const s = settings();
    const h = handle(s);
    const tool = await toolFor(s);
    for (let i = 0; i < 8; i++) await query(tool, h, HUNDRED_ROWS);
    const tables = createTablePolicy(s);
    /** The mode the caller's statement sees and the check's plan counts, inside one call. */
    const seenAfterCheck = async (sql: string) => {
      const verdict = await guard.checkGeneric(sql, 'alice');
      if (!verdict.ok) throw new Error(verdict.message);
      return withTransaction(
        h,
        {
          readOnly: true,
          first: () => catalogCheckQueries(verdict, tables),
          firstOnGenericPlan: CATALOG_CHECK_ON_GENERIC_PLAN,
        },
        async (c, checked) => {
          const r = await c.query(
            `SELECT current_setting('plan_cache_mode') AS mode,
                    (SELECT custom_plans::int FROM pg_prepared_statements WHERE name = $1) AS custom,
                    (SELECT generic_plans::int FROM pg_prepared_statements WHERE name = $1) AS generic`,
            [CATALOG_STATEMENT],
          );
          return { checks: checked.length, ...r.rows[0] };
        },
      );
    };
    // The settings statement switched to force_generic_plan; the check switched back to auto.
    const checked = await seenAfterCheck(HUNDRED_ROWS);
    expect(checked).toMatchObject({ checks: 1, mode: 'auto', custom: 0 });
    expect(checked.generic).toBeGreaterThanOrEqual(9);
    // Nothing to check: the settings statement leaves plan_cache_mode alone.
    expect(await seenAfterCheck('SELECT 1')).toMatchObject({ checks: 0, mode: 'auto', custom: 0 });
  }, 60_000);
});

describe('no session state survives from one call to the next on the same connection', () => {
  it('principal, claims, role, settings, prepared statements, cursors, locks, channels', async () => {
    const s = settings({
      databaseRoles: {
        rules: [{ principal: 'nobody', read: MAPPED_ROLE }],
        default: { read: MAPPED_ROLE },
      },
    });
    const h = handle(s);
    let connections = 0;
    h.pool.on('connect', () => {
      connections++;
    });
    const tool = await toolFor(s);
    const notes = `SELECT owner, note FROM ${NOTES} ORDER BY owner`;
    // Row-level security sees the principal and claims of the call, and only of this call.
    expect(await query(tool, h, notes, { principal: 'alice' })).toEqual([['alice', 'a1']]);
    expect(await query(tool, h, notes, { principal: 'bob' })).toEqual([['bob', 'b1']]);
    expect(await query(tool, h, notes, { principal: 'dave' })).toEqual([]);
    expect(await query(tool, h, notes, { principal: 'carol' })).toEqual([['carol', 'c1']]);
    // Both calls ran on the one connection the pool ever opened.
    expect(connections).toBe(1);

    // The session itself, outside any call: as it started, with only the server's own
    // prepared statements.
    const c = await h.pool.connect();
    try {
      const r = await c.query(
        `SELECT current_user::text AS "user", session_user::text AS session,
                coalesce(current_setting('hardened_mcp.principal', true), '') AS principal,
                coalesce(current_setting('hardened_mcp.claims', true), '') AS claims,
                current_setting('default_transaction_read_only') AS read_only,
                current_setting('search_path') AS search_path,
                (SELECT array_agg(name::text ORDER BY name) FROM pg_prepared_statements) AS prepared,
                (SELECT count(*)::int FROM pg_cursors) AS cursors,
                (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
                (SELECT count(*)::int FROM pg_listening_channels()) AS channels`,
      );
      expect(connections).toBe(1);
      expect(r.rows[0]).toEqual({
        user: db.readRole,
        session: db.readRole,
        principal: '',
        claims: '',
        read_only: 'on',
        // the session's own (the pools start sessions with search_path=pg_catalog)
        search_path: 'pg_catalog',
        // The catalog check and the settings statement's form with a session and the switch to
        // generic plans (the calls had a database role and a catalog check).
        prepared: ['hmcp_catalog', 'hmcp_settings_session_generic'],
        cursors: 0,
        locks: 0,
        channels: 0,
      });
    } finally {
      c.release();
    }
  }, 60_000);
});
