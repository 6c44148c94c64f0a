/**
 * The lower walls on their own, against a real PostgreSQL (embedded 18, or DATABASE_URL): what
 * `openPool` + `withTransaction` guarantee even if the SQL guard were bypassed and hostile SQL
 * reached the database raw. Statements here are sent with `client.query` (simple protocol), i.e.
 * exactly what the guard would never let through.
 */
import { ErrorCode, Secret, ToolError } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeTable, listSchemas, listTables } from './catalog.js';
import { type PostgresSettings, postgresSectionSchema } from './config.js';
import {
  KEPT_STATEMENTS,
  openPool,
  type PgHandle,
  toToolError,
  withTransaction,
} from './database.js';
import { readCursor } from './query.js';
import { readTableCounters } from './write-effects.js';

const STATEMENT_TIMEOUT_MS = 2_000;
const LOCK_TIMEOUT_MS = 300;
/** The statement timeout in force, in ms. */
const TIMEOUT_SQL = "SELECT setting AS s FROM pg_settings WHERE name = 'statement_timeout'";

let server: TestPostgres;
let db: ChinookDatabase;
let admin: pg.Client;
const pools: pg.Pool[] = [];

function settings(overrides: Record<string, unknown> = {}): PostgresSettings {
  return postgresSectionSchema.parse({
    statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    lockTimeoutMs: LOCK_TIMEOUT_MS,
    ...overrides,
  });
}

/** A pool + handle; `max` 1 makes every use of the pool land on the same backend. */
function handle(
  url: string,
  scope: 'read' | 'write',
  overrides: Record<string, unknown> = {},
): PgHandle {
  const s = settings({ pool: { max: 1 }, ...overrides });
  const pool = openPool(new Secret(url, 'test'), scope, s);
  pools.push(pool);
  return { scope, pool, settings: s };
}

async function adminRows<T extends pg.QueryResultRow>(
  sql: string,
  values: unknown[] = [],
): Promise<T[]> {
  return (await admin.query<T>(sql, values)).rows;
}

/** What a write would change: row counts and content of the written tables, sequences, temp relations. */
async function fingerprint(): Promise<unknown> {
  return adminRows(
    `SELECT (SELECT count(*) FROM invoice_line) AS invoice_lines,
            (SELECT md5(string_agg(g::text, ',' ORDER BY genre_id)) FROM genre g) AS genres,
            (SELECT md5(string_agg(c::text, ',' ORDER BY customer_id)) FROM customer c) AS customers,
            (SELECT last_value::text || '/' || is_called FROM public.attack_seq) AS seq,
            (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname LIKE 'pg_temp%' OR (n.nspname = 'public' AND c.relname LIKE 'hmcp_evil%')) AS created,
            (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory') AS advisory`,
  );
}

/** Runs `fn` expecting a ToolError and returns it. */
async function toolErrorOf(p: Promise<unknown>): Promise<ToolError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ToolError);
  return err as ToolError;
}

const sqlstateOf = (err: ToolError): unknown => (err.cause as { code?: unknown } | undefined)?.code;

const pidOf = async (c: pg.ClientBase): Promise<number> =>
  (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
  admin = new pg.Client({ connectionString: db.adminUrl });
  await admin.connect();
  await admin.query(`
    CREATE SEQUENCE public.attack_seq;
    GRANT USAGE, SELECT ON SEQUENCE public.attack_seq TO ${pg.escapeIdentifier(db.readRole)};
    CREATE TABLE public.no_grant (id int PRIMARY KEY, secret text NOT NULL);
    INSERT INTO public.no_grant VALUES (1, 'hunter2-no-grant');
  `);
}, 180_000);

// Each role may hold at most ROLE_CONNECTION_LIMIT sessions: end every test's pools.
afterEach(async () => {
  await Promise.allSettled(pools.splice(0).map((p) => p.end()));
});

afterAll(async () => {
  await Promise.allSettled(pools.splice(0).map((p) => p.end()));
  await admin?.end().catch(() => undefined);
  await db?.drop();
  await server?.stop();
}, 60_000);

describe("the server's own statements resolve in pg_catalog only", () => {
  it("a set_config in a schema the login role's search_path puts before pg_catalog is never called", async () => {
    const role = pg.escapeIdentifier(db.readRole);
    await admin.query(`
      CREATE SCHEMA hmcp_shadow;
      CREATE FUNCTION hmcp_shadow.set_config(text, text, boolean) RETURNS text
        LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'shadowed set_config called'; END $$;
      GRANT USAGE ON SCHEMA hmcp_shadow TO ${role};
      ALTER ROLE ${role} SET search_path = hmcp_shadow, pg_catalog, public;
    `);
    try {
      // The shadow is real: a session of that role without the pool's option calls it.
      const raw = new pg.Client({ connectionString: db.readUrl });
      await raw.connect();
      try {
        await expect(raw.query("SELECT set_config('work_mem', '4MB', true)")).rejects.toThrow(
          /shadowed set_config called/,
        );
      } finally {
        await raw.end();
      }
      const h = handle(db.readUrl, 'read');
      const searchPath = await withTransaction(
        h,
        { readOnly: true },
        async (c) =>
          (await c.query<{ s: string }>("SELECT current_setting('search_path') AS s")).rows[0]?.s,
      );
      expect(searchPath).toBe('"public"');
    } finally {
      await admin.query(`
        ALTER ROLE ${role} RESET search_path;
        DROP SCHEMA hmcp_shadow CASCADE;
      `);
    }
  }, 60_000);
});

describe("the catalog tools' and write counters' functions resolve in pg_catalog only", () => {
  it('functions planted in an allowed schema that match more exactly are never called', async () => {
    // Each matches the server's call more exactly than the pg_catalog function it would shadow
    // (smallint[] vs anyarray; text vs name for a string literal; oid vs regclass).
    await admin.query(`
      CREATE FUNCTION public.unnest(smallint[]) RETURNS SETOF smallint LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'shadowed unnest called'; END $$;
      CREATE FUNCTION public.obj_description(oid, text) RETURNS text LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'shadowed obj_description called'; END $$;
      CREATE FUNCTION public.pg_partition_root(oid) RETURNS regclass LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'shadowed pg_partition_root called'; END $$;
    `);
    try {
      const h = handle(db.readUrl, 'read');
      const out = await withTransaction(h, { readOnly: true }, async (c) => {
        // The shadows are reachable on this transaction's search_path (the allowed schemas).
        await c.query('SAVEPOINT s');
        await expect(c.query("SELECT obj_description(0::oid, 'pg_class')")).rejects.toThrow(
          /shadowed obj_description/,
        );
        await c.query('ROLLBACK TO SAVEPOINT s');
        return {
          schemas: await listSchemas(c, ['public']),
          tables: (await listTables(c, 'public')).length,
          described: (await describeTable(c, 'public', 'invoice_line'))?.foreignKeys.length,
        };
      });
      // The write counters, in a write transaction that changed a row (to the value it had).
      const w = handle(db.writeUrl, 'write');
      const counters = await withTransaction(w, { readOnly: false }, async (c) => {
        await c.query('UPDATE public.genre SET name = name WHERE genre_id = 1');
        return readTableCounters(c);
      });
      expect([...counters.values()].map((x) => x.table)).toEqual(['genre']);
      expect(out.schemas.map((x) => x.schema)).toEqual(['public']);
      expect(out.tables).toBeGreaterThan(0);
      expect(out.described).toBeGreaterThan(0);
    } finally {
      await admin.query(`
        DROP FUNCTION public.unnest(smallint[]);
        DROP FUNCTION public.obj_description(oid, text);
        DROP FUNCTION public.pg_partition_root(oid);
      `);
    }
  }, 60_000);
});

describe('a read transaction refuses writes raw (the guard is not the only wall)', () => {
  const writes = [
    'DELETE FROM invoice_line',
    "INSERT INTO genre (genre_id, name) VALUES (9999, 'evil')",
    "UPDATE customer SET email = 'owned@example.com'",
    'CREATE TEMP TABLE hmcp_evil_temp (x int)',
    'CREATE TABLE hmcp_evil_table (x int)',
    "SELECT nextval('public.attack_seq')",
    "SELECT setval('public.attack_seq', 1000)",
    'TRUNCATE invoice_line',
    'DROP TABLE customer',
    "COPY (SELECT 1) TO '/tmp/hmcp-evil-copy'",
  ];

  it.each(writes)('least-privilege read role: %s', async (sql) => {
    const h = handle(db.readUrl, 'read');
    const before = await fingerprint();
    const err = await toolErrorOf(
      withTransaction(h, { readOnly: true }, async (c) => {
        await c.query(sql);
      }),
    );
    expect(['25006', '42501']).toContain(sqlstateOf(err));
    expect(err.code).toBe(ErrorCode.PolicyDenied);
    expect(await fingerprint()).toEqual(before);
  });

  // The write role can write; opened as the READ pool, only the read-only transaction stops it.
  it.each(writes.filter((w) => !/^(CREATE TABLE|TRUNCATE|DROP|COPY)/.test(w)))(
    'write-capable role in the read pool: %s',
    async (sql) => {
      const h = handle(db.writeUrl, 'read');
      const before = await fingerprint();
      const err = await toolErrorOf(
        withTransaction(h, { readOnly: true }, async (c) => {
          await c.query(sql);
        }),
      );
      // nextval/setval: the write role has no privilege on the sequence, which is checked first.
      expect(['25006', '42501']).toContain(sqlstateOf(err));
      if (!/val\(/.test(sql)) expect(sqlstateOf(err)).toBe('25006');
      expect(err.code).toBe(ErrorCode.PolicyDenied);
      expect(await fingerprint()).toEqual(before);
    },
  );

  // PostgreSQL 15 lets lo_from_bytea run in a read-only transaction (newer versions refuse it
  // with 25006); either way the read transaction always ends in ROLLBACK, so nothing persists.
  it.each([
    ['read role', () => db.readUrl],
    ['write-capable role in the read pool', () => db.writeUrl],
  ] as const)('a large object created raw by the %s does not persist', async (_, url) => {
    const h = handle(url(), 'read');
    const count = async () =>
      (await adminRows<{ n: string }>('SELECT count(*) AS n FROM pg_largeobject_metadata'))[0]?.n;
    const before = await count();
    await withTransaction(h, { readOnly: true }, async (c) => {
      await c.query("SELECT lo_from_bytea(0, 'owned')");
    }).catch((err: unknown) => {
      expect(err).toBeInstanceOf(ToolError);
      expect(sqlstateOf(err as ToolError)).toBe('25006');
    });
    expect(await count()).toBe(before);
  });

  it('a session of the write-capable role in the read pool starts read-only (outside any explicit transaction)', async () => {
    const h = handle(db.writeUrl, 'read');
    const before = await fingerprint();
    const c = await h.pool.connect();
    try {
      expect((await c.query('SHOW default_transaction_read_only')).rows[0]).toEqual({
        default_transaction_read_only: 'on',
      });
      const e = await c.query('DELETE FROM public.invoice_line').then(
        () => undefined,
        (x: unknown) => x as { code?: string },
      );
      expect(e?.code).toBe('25006');
    } finally {
      c.release();
    }
    expect(await fingerprint()).toEqual(before);
  });

  it('a read transaction is READ ONLY and its sessions default to read-only', async () => {
    const h = handle(db.readUrl, 'read');
    const r = await withTransaction(h, { readOnly: true }, async (c) => ({
      tx: (await c.query<{ transaction_read_only: string }>('SHOW transaction_read_only')).rows[0]
        ?.transaction_read_only,
      dflt: (
        await c.query<{ default_transaction_read_only: string }>(
          'SHOW default_transaction_read_only',
        )
      ).rows[0]?.default_transaction_read_only,
      timeout: (await c.query<{ s: string }>(TIMEOUT_SQL)).rows[0]?.s,
    }));
    expect(r).toEqual({ tx: 'on', dflt: 'on', timeout: String(STATEMENT_TIMEOUT_MS) });
  });

  it('escaping the transaction raw (COMMIT; SET SESSION CHARACTERISTICS ... READ WRITE; COMMIT) still cannot write as the read role', async () => {
    const h = handle(db.readUrl, 'read');
    const before = await fingerprint();
    for (const tail of [
      'DELETE FROM public.invoice_line',
      "INSERT INTO public.genre (genre_id, name) VALUES (9999, 'evil')",
      'CREATE TEMP TABLE hmcp_evil_temp (x int)',
      'CREATE TABLE public.hmcp_evil_table (x int)',
    ]) {
      const err = await toolErrorOf(
        withTransaction(h, { readOnly: true }, async (c) => {
          await c.query(
            `COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; COMMIT; ${tail}`,
          );
        }),
      );
      // Outside the read-only transaction only the role's privileges are left, and they hold.
      expect(sqlstateOf(err)).toBe('42501');
    }
    expect(await fingerprint()).toEqual(before);
  });

  it('a session switched to READ WRITE raw is read-only again at its next use', async () => {
    const h = handle(db.readUrl, 'read');
    const pid = await withTransaction(h, { readOnly: true }, async (c) => {
      await c.query('COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; COMMIT');
      expect((await c.query('SHOW default_transaction_read_only')).rows[0]).toEqual({
        default_transaction_read_only: 'off',
      });
      return pidOf(c);
    });
    const next = await h.pool.connect();
    try {
      expect(await pidOf(next)).toBe(pid);
      expect((await next.query('SHOW default_transaction_read_only')).rows[0]).toEqual({
        default_transaction_read_only: 'on',
      });
    } finally {
      next.release();
    }
    const inTx = await withTransaction(h, { readOnly: true }, async (c) => ({
      pid: await pidOf(c),
      tx: (await c.query('SHOW transaction_read_only')).rows[0],
    }));
    expect(inTx).toEqual({ pid, tx: { transaction_read_only: 'on' } });
  });

  it('the cursor path (extended protocol) refuses more than one statement outright', async () => {
    const h = handle(db.readUrl, 'read');
    const before = await fingerprint();
    const err = await toolErrorOf(
      withTransaction(h, { readOnly: true }, (c) =>
        readCursor(
          c,
          "COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; SELECT nextval('public.attack_seq')",
          [],
          { maxRows: 10, maxBytes: 10_000, fetchRows: 10 },
        ),
      ),
    );
    expect(sqlstateOf(err)).toBe('42601');
    expect(await fingerprint()).toEqual(before);
  });
});

describe('session state never leaks into the next use of a pooled connection', () => {
  const TAMPER: Record<string, string> = {
    statement_timeout: '3600000',
    work_mem: '1048576',
    search_path: 'pg_catalog',
    application_name: 'owned',
    lock_timeout: '0',
    idle_in_transaction_session_timeout: '0',
  };

  async function sessionSettings(c: pg.ClientBase): Promise<Record<string, string>> {
    const r = await c.query<{ name: string; setting: string }>(
      'SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[]) ORDER BY name',
      [Object.keys(TAMPER)],
    );
    return Object.fromEntries(r.rows.map((x) => [x.name, x.setting]));
  }

  it.each([
    ['read', true, true],
    ['read', true, false],
    ['write', false, true],
  ] as const)(
    '%s pool (read-only: %s, PREPARE: %s): settings, prepared statements, advisory locks, cursors, LISTEN',
    async (scope, readOnly, prepare) => {
      const h = handle(scope === 'read' ? db.readUrl : db.writeUrl, scope);
      // The session as it starts, before anything ran in it.
      const fresh = await h.pool.connect();
      const pid = await pidOf(fresh);
      const baseline = await sessionSettings(fresh);
      fresh.release();
      expect(baseline.statement_timeout).toBe(String(STATEMENT_TIMEOUT_MS));
      expect(baseline.application_name).toBe(`hardened-mcp-postgres:${scope}`);

      await withTransaction(h, { readOnly }, async (c) => {
        expect(await pidOf(c)).toBe(pid);
        for (const [name, value] of Object.entries(TAMPER)) {
          await c.query('SELECT set_config($1, $2, false)', [name, value]);
        }
        if (prepare) await c.query('PREPARE hmcp_evil_stmt AS SELECT 1');
        await c.query('SELECT pg_advisory_lock(4242)');
        await c.query('DECLARE hmcp_evil_cursor CURSOR WITH HOLD FOR SELECT 1');
        await c.query('LISTEN hmcp_evil_channel');
        expect((await sessionSettings(c)).work_mem).toBe(TAMPER.work_mem);
      });

      // Next use through withTransaction: the transaction's own settings are the configured ones.
      const inTx = await withTransaction(h, { readOnly: true }, async (c) => ({
        pid: await pidOf(c),
        timeout: (await c.query<{ s: string }>(TIMEOUT_SQL)).rows[0]?.s,
        searchPath: (await c.query<{ s: string }>("SELECT current_setting('search_path') AS s"))
          .rows[0]?.s,
      }));
      // A read transaction's narrow reset (READ_END_SQL) keeps the backend, unless a prepared
      // statement that is not the server's own survived: that connection is destroyed.
      const kept = !(readOnly && prepare);
      expect(inTx.pid === pid).toBe(kept);
      expect(inTx).toEqual({
        pid: inTx.pid,
        timeout: String(STATEMENT_TIMEOUT_MS),
        searchPath: '"public"',
      });

      // And the session itself, outside a transaction, is exactly as it started.
      const again = await h.pool.connect();
      try {
        expect(await pidOf(again)).toBe(inTx.pid);
        expect(await sessionSettings(again)).toEqual(baseline);
        const leftovers = (
          await again.query<{ prepared: number; cursors: number; locks: number; channels: number }>(
            `SELECT (SELECT count(*)::int FROM pg_prepared_statements WHERE name NOT IN (${KEPT_STATEMENTS.map((n) => `'${n}'`).join(', ')})) AS prepared,
                  (SELECT count(*)::int FROM pg_cursors) AS cursors,
                  (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
                  (SELECT count(*)::int FROM pg_listening_channels()) AS channels`,
            // The server's own prepared statements (the settings statement) stay. Simple
            // protocol (no parameters): an extended-protocol query shows its own portal in
            // pg_cursors.
          )
        ).rows[0];
        expect(leftovers).toEqual({ prepared: 0, cursors: 0, locks: 0, channels: 0 });
      } finally {
        again.release();
      }
      expect(
        (
          await adminRows<{ n: string }>(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'",
          )
        )[0]?.n,
      ).toBe('0');
    },
  );

  it.each(KEPT_STATEMENTS)(
    "a statement PREPAREd under the server's own name %s is not the server's: the connection is destroyed",
    async (name) => {
      const h = handle(db.readUrl, 'read');
      // node-pg has parsed the settings statement on this backend: it only binds it from now on.
      const first = await withTransaction(h, { readOnly: true }, pidOf);
      await withTransaction(h, { readOnly: true }, async (c) => {
        expect(await pidOf(c)).toBe(first);
        // A stand-in under a kept name (the settings statement's, with its four parameters, and
        // no set_config): the name alone must not make it the server's.
        const held = await c.query('SELECT 1 FROM pg_prepared_statements WHERE name = $1', [name]);
        if (held.rows.length > 0) await c.query(`DEALLOCATE ${name}`);
        await c.query(`PREPARE ${name} (text, text, text, text) AS SELECT $1, $2, $3, $4`);
      });
      const next = await withTransaction(h, { readOnly: true }, async (c) => ({
        pid: await pidOf(c),
        searchPath: (await c.query<{ s: string }>("SELECT current_setting('search_path') AS s"))
          .rows[0]?.s,
      }));
      expect(next.pid).not.toBe(first);
      expect(next.searchPath).toBe('"public"');
    },
  );

  it('a transaction that errors destroys its connection: the next use gets a fresh backend', async () => {
    const h = handle(db.readUrl, 'read');
    const first = await withTransaction(h, { readOnly: true }, pidOf);
    const err = await toolErrorOf(
      withTransaction(h, { readOnly: true }, async (c) => {
        expect(await pidOf(c)).toBe(first);
        await c.query("SELECT set_config('work_mem', '1GB', false)");
        await c.query('SELECT 1 / 0');
      }),
    );
    expect(sqlstateOf(err)).toBe('22012');
    const second = await withTransaction(h, { readOnly: true }, pidOf);
    expect(second).not.toBe(first);
    // The old backend goes away.
    const deadline = Date.now() + 5_000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      alive =
        (await adminRows('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [first])).length > 0;
      if (alive) await new Promise((r) => setTimeout(r, 50));
    }
    expect(alive).toBe(false);
  });

  it('a ToolError thrown by the callback also destroys the connection', async () => {
    const h = handle(db.readUrl, 'read');
    const first = await withTransaction(h, { readOnly: true }, pidOf);
    await toolErrorOf(
      withTransaction(h, { readOnly: true }, async () => {
        throw new ToolError(ErrorCode.PolicyDenied, 'refused by a check');
      }),
    );
    expect(await withTransaction(h, { readOnly: true }, pidOf)).not.toBe(first);
  });
});

describe('time limits and cancellation', () => {
  it('an aborted signal cancels a running pg_sleep(10) promptly', async () => {
    const h = handle(db.readUrl, 'read', { pool: { max: 2 }, statementTimeoutMs: 30_000 });
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 200);
    const err = await toolErrorOf(
      withTransaction(h, { readOnly: true, signal: ac.signal }, async (c) => {
        await c.query('SELECT pg_sleep(10)');
      }),
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(sqlstateOf(err)).toBe('57014');
    // The pool still serves.
    expect(
      await withTransaction(
        h,
        { readOnly: true },
        async (c) => (await c.query('SELECT 1 AS x')).rows,
      ),
    ).toEqual([{ x: 1 }]);
  });

  // Regression: the cancel used to go through the pool and waited for a free connection.
  it('an aborted signal cancels promptly even when every pool connection is busy', async () => {
    const h = handle(db.readUrl, 'read', {
      pool: { max: 1, connectionTimeoutMs: 1_000 },
      statementTimeoutMs: 5_000,
    });
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 200);
    const err = await toolErrorOf(
      withTransaction(h, { readOnly: true, signal: ac.signal }, async (c) => {
        await c.query('SELECT pg_sleep(10)');
      }),
    );
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('the statement timeout ends a runaway statement with the stable code timeout', async () => {
    const h = handle(db.readUrl, 'read', { statementTimeoutMs: 300 });
    const started = Date.now();
    const err = await toolErrorOf(
      withTransaction(h, { readOnly: true }, async (c) => {
        await c.query('SELECT count(*) FROM track a, track b, track c');
      }),
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(err.message).toContain('300 ms');
    expect(sqlstateOf(err)).toBe('57014');
  });

  it('a lock wait ends at the lock timeout with the stable code timeout', async () => {
    const h = handle(db.readUrl, 'read');
    const locker = new pg.Client({ connectionString: db.adminUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN; LOCK TABLE genre IN ACCESS EXCLUSIVE MODE');
      const err = await toolErrorOf(
        withTransaction(h, { readOnly: true }, async (c) => {
          await c.query('SELECT count(*) FROM genre');
        }),
      );
      expect(err.code).toBe(ErrorCode.Timeout);
      expect(sqlstateOf(err)).toBe('55P03');
      expect(err.message).toContain(`${LOCK_TIMEOUT_MS} ms`);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
  });
});

describe('toToolError on real database errors never carries DETAIL, values or parameters', () => {
  const s = settings();
  const SECRET = 'hunter2-param-secret';

  /** Runs `sql` on a fresh client of `url` and returns the raw driver error. */
  async function rawError(url: string, sql: string, values: unknown[] = []): Promise<unknown> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query(sql, values);
      throw new Error(`expected ${sql} to fail`);
    } catch (err) {
      return err;
    } finally {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.end();
    }
  }

  const cases: {
    name: string;
    url: () => string;
    sql: string;
    values?: unknown[];
    sqlstate: string;
    code: string;
    forbidden: string[];
  }[] = [
    {
      name: 'unique violation (DETAIL names the key and value)',
      url: () => db.writeUrl,
      sql: 'INSERT INTO genre (genre_id, name) VALUES ($1, $2)',
      values: [1, SECRET],
      sqlstate: '23505',
      code: ErrorCode.UpstreamError,
      forbidden: ['Key', '(genre_id)', '=(1)', SECRET, 'genre_pkey', 'already exists'],
    },
    {
      name: 'NOT NULL violation (DETAIL holds the whole failing row)',
      url: () => db.writeUrl,
      sql: 'UPDATE customer SET email = NULL WHERE customer_id = $1',
      values: [1],
      sqlstate: '23502',
      code: ErrorCode.UpstreamError,
      forbidden: ['Failing row', 'Luís', 'Gonçalves', 'embraer', '3923'],
    },
    {
      name: 'foreign key violation (DETAIL names the missing key)',
      url: () => db.writeUrl,
      sql: 'UPDATE invoice SET customer_id = $1 WHERE invoice_id = 1',
      values: [987654],
      sqlstate: '23503',
      code: ErrorCode.UpstreamError,
      forbidden: ['Key', '987654', 'not present'],
    },
    {
      name: 'invalid text for an integer parameter',
      url: () => db.readUrl,
      sql: 'SELECT $1::int',
      values: [SECRET],
      sqlstate: '22P02',
      code: ErrorCode.UpstreamError,
      forbidden: [SECRET, 'hunter2'],
    },
    {
      name: 'row data cast to an integer',
      url: () => db.readUrl,
      sql: 'SELECT email::int FROM customer ORDER BY customer_id',
      sqlstate: '22P02',
      code: ErrorCode.UpstreamError,
      forbidden: ['luisg', 'embraer', '@'],
    },
    {
      name: 'row data as a tsquery (syntax error class 42 quoting the value)',
      url: () => db.readUrl,
      sql: "SELECT to_tsquery('simple', last_name || ' &') FROM customer ORDER BY customer_id",
      sqlstate: '42601',
      code: ErrorCode.UpstreamError,
      forbidden: ['Gonçalves', 'gonçalves'],
    },
    {
      name: 'permission denied on a table the role may not read',
      url: () => db.readUrl,
      sql: 'SELECT * FROM no_grant WHERE secret = $1',
      values: [SECRET],
      sqlstate: '42501',
      code: ErrorCode.PolicyDenied,
      forbidden: [SECRET, 'hunter2'],
    },
    {
      name: 'division by zero with a parameter',
      url: () => db.readUrl,
      sql: 'SELECT length($1::text) / 0',
      values: [SECRET],
      sqlstate: '22012',
      code: ErrorCode.UpstreamError,
      forbidden: [SECRET],
    },
  ];

  it.each(cases)('$name', async (c) => {
    const before = await fingerprint();
    const raw = (await rawError(c.url(), c.sql, c.values)) as {
      code?: string;
      detail?: string;
      message?: string;
    };
    expect(raw.code).toBe(c.sqlstate);
    const mapped = toToolError(raw, s);
    expect(mapped).toBeInstanceOf(ToolError);
    expect(mapped.code).toBe(c.code);
    expect(mapped.cause).toBe(raw);
    const text = mapped.message;
    expect(text).not.toContain(c.sql);
    if (raw.detail) expect(text).not.toContain(raw.detail);
    for (const f of c.forbidden) expect(text).not.toContain(f);
    for (const url of [db.readUrl, db.writeUrl, db.adminUrl]) {
      const u = new URL(url);
      if (u.password) expect(text).not.toContain(u.password);
      expect(text).not.toContain(u.host);
    }
    expect(text).not.toMatch(/DETAIL|HINT|\n/);
    expect(await fingerprint()).toEqual(before);
  });

  it('withTransaction maps errors the same way and nothing is written', async () => {
    const h = handle(db.writeUrl, 'write');
    const before = await fingerprint();
    const err = await toolErrorOf(
      withTransaction(h, { readOnly: false }, async (c) => {
        await c.query("INSERT INTO genre (genre_id, name) VALUES (9999, 'ok')");
        await c.query('INSERT INTO genre (genre_id, name) VALUES ($1, $2)', [1, SECRET]);
      }),
    );
    expect(err.code).toBe(ErrorCode.UpstreamError);
    expect(sqlstateOf(err)).toBe('23505');
    expect(err.message).toMatch(/unique constraint.*nothing was changed/);
    for (const f of [SECRET, 'Key', '9999', '(1)']) expect(err.message).not.toContain(f);
    expect(await fingerprint()).toEqual(before);
  });

  it.each([
    [
      'a wrong password',
      (u: URL): void => {
        u.password = 'wrong-password-hmcp';
      },
    ],
    [
      'a missing database',
      (u: URL): void => {
        u.pathname = '/hmcp_no_such_db_xyz';
      },
    ],
    [
      'a closed port',
      (u: URL): void => {
        u.port = '1';
      },
    ],
  ] as const)(
    'connection failures (%s) say nothing about the target or the credentials',
    async (_, spoil) => {
      const bad = new URL(db.readUrl);
      spoil(bad);
      const h = handle(bad.toString(), 'read', { pool: { max: 1, connectionTimeoutMs: 2_000 } });
      const result = await withTransaction(h, { readOnly: true }, pidOf).then(
        () => undefined,
        (e: unknown) => e,
      );
      // A server that trusts local connections ignores the password: nothing to check then.
      if (result === undefined) return;
      expect(result).toBeInstanceOf(ToolError);
      const err = result as ToolError;
      expect(err.code).toBe(ErrorCode.UpstreamUnavailable);
      for (const f of ['wrong-password-hmcp', 'hmcp_no_such_db_xyz', bad.hostname, db.readRole])
        expect(err.message).not.toContain(f);
    },
  );
});
