/**
 * Issue 10 §2 at the connector level, against a real PostgreSQL (embedded 18, or DATABASE_URL):
 * bounded time (the watchdog past the statement timeout), fair sharing of connections and SQL
 * checkers between principals, memory bounded by bytes as rows arrive, and error messages that
 * carry no database text (issue 10 §1 bullet 4). No wall-clock assertion: outcomes and ordering.
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
import { type PostgresSettings, postgresSectionSchema } from './config.js';
import {
  FairGate,
  MAX_ERROR_DETAIL_CHARS,
  openPool,
  type PgHandle,
  toToolError,
  withTransaction,
} from './database.js';
import { readCursor } from './query.js';
import type * as GuardClientModule from './sql-guard-client.js';

// The checker processes run the built sql-guard-process.js (the source tree has only .ts):
// this suite needs `pnpm build` first, like the black-box suites.
const { createSqlGuardClient, MAX_QUEUED_SQL_PER_PRINCIPAL } = (await import(
  new URL('../dist/sql-guard-client.js', import.meta.url).href
)) as typeof GuardClientModule;

let server: TestPostgres;
let db: ChinookDatabase;
let admin: pg.Client;
const pools: pg.Pool[] = [];

function settings(overrides: Record<string, unknown> = {}): PostgresSettings {
  return postgresSectionSchema.parse({ statementTimeoutMs: 1_000, ...overrides });
}

function handle(url: string, overrides: Record<string, unknown> = {}): PgHandle {
  const s = settings(overrides);
  const pool = openPool(new Secret(url, 'test'), 'read', s);
  pools.push(pool);
  return { scope: 'read', pool, settings: s };
}

/** Settles `p` and returns its rejection (or undefined). */
const rejectionOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

async function backendAlive(pid: number): Promise<boolean> {
  const r = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
  return (r.rowCount ?? 0) > 0;
}

async function until(predicate: () => Promise<boolean>, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await predicate()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
  admin = new pg.Client({ connectionString: db.adminUrl });
  await admin.connect();
}, 180_000);

afterEach(async () => {
  await Promise.allSettled(pools.splice(0).map((p) => p.end()));
});

afterAll(async () => {
  await Promise.allSettled(pools.splice(0).map((p) => p.end()));
  await admin?.end().catch(() => undefined);
  await db?.drop();
  await server?.stop();
}, 60_000);

describe('nothing holds a backend past the statement timeout plus a grace', () => {
  it('a backend blocked writing to its socket (it ignores cancels) is answered, cut off and gone', async () => {
    const h = handle(db.readUrl);
    let pid = 0;
    const err = await rejectionOf(
      withTransaction(h, { readOnly: true }, async (c) => {
        pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        // Stop reading: the backend fills the socket and blocks in send(), where PostgreSQL
        // does not act on the statement timeout's cancel.
        (c as unknown as { connection: { stream: { pause(): void } } }).connection.stream.pause();
        await c.query("SELECT repeat('x', 100000) FROM generate_series(1, 100000)");
      }),
    );
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).code).toBe(ErrorCode.Timeout);
    expect(pid).toBeGreaterThan(0);
    expect(await until(async () => !(await backendAlive(pid)))).toBe(true);
  }, 30_000);

  it.each([
    // Sized so the uninterruptible loop outlasts the timeout plus the grace (2 s) even on an idle
    // machine (quadratic: 60,000² comparisons take several seconds; on a loaded one, tens).
    [
      'array containment',
      'SELECT (SELECT array_agg(g) FROM generate_series(1, 60000) g) @> (SELECT array_agg(g) FROM generate_series(60000, 1, -1) g)',
    ],
    [
      'jsonb containment',
      'SELECT (SELECT jsonb_agg(g) FROM generate_series(1, 30000) g) @> (SELECT jsonb_agg(g) FROM generate_series(30000, 1, -1) g)',
    ],
  ])(
    '%s that PostgreSQL does not interrupt: the caller is answered while the backend still runs',
    async (_, sql) => {
      const h = handle(db.readUrl);
      let pid = 0;
      const err = await rejectionOf(
        withTransaction(h, { readOnly: true }, async (c) => {
          pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
          await c.query(sql);
        }),
      );
      // Checked right after the answer: the statement timeout (1 s) has passed, the loop has not.
      const state = (
        await admin.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [
          pid,
        ])
      ).rows[0]?.state;
      expect(err).toBeInstanceOf(ToolError);
      expect((err as ToolError).code).toBe(ErrorCode.Timeout);
      // Still inside the loop: answered before the statement ended, not after.
      expect(state).toBe('active');
      // It ends at the loop's end (cancel or termination pending), not later.
      expect(await until(async () => !(await backendAlive(pid)), 1_500)).toBe(true);
    },
    180_000,
  );

  it('the clock restarts with each statement: several statements each under the timeout pass', async () => {
    const h = handle(db.readUrl);
    const done = await withTransaction(h, { readOnly: true }, async (c) => {
      for (let i = 0; i < 3; i++) await c.query('SELECT pg_sleep(0.7)');
      return true;
    });
    expect(done).toBe(true);
  }, 30_000);

  it('the pool is usable after the watchdog fired', async () => {
    const h = handle(db.readUrl, { pool: { max: 1 } });
    await rejectionOf(
      withTransaction(h, { readOnly: true }, async (c) => {
        (c as unknown as { connection: { stream: { pause(): void } } }).connection.stream.pause();
        await c.query("SELECT repeat('x', 100000) FROM generate_series(1, 100000)");
      }),
    );
    const n = await withTransaction(h, { readOnly: true }, async (c) =>
      Number((await c.query('SELECT count(*) AS n FROM genre')).rows[0].n),
    );
    expect(n).toBeGreaterThan(0);
  }, 30_000);
});

describe('one principal cannot starve the others', () => {
  it('an honest call is answered while another principal floods every connection', async () => {
    const h = handle(db.readUrl, { pool: { max: 2 }, statementTimeoutMs: 5_000 });
    let floodPending = 0;
    const flood = Array.from({ length: 6 }, () => {
      floodPending++;
      return withTransaction(h, { readOnly: true, principal: 'flooder' }, async (c) => {
        await c.query('SELECT pg_sleep(0.8)');
      }).finally(() => {
        floodPending--;
      });
    });
    await new Promise((r) => setTimeout(r, 100));
    const honest = await withTransaction(h, { readOnly: true, principal: 'honest' }, async (c) => {
      await c.query('SELECT 1');
      return floodPending;
    });
    // Answered while most of the flood was still waiting or running.
    expect(honest).toBeGreaterThanOrEqual(4);
    await Promise.allSettled(flood);
  }, 30_000);

  it('a lone principal (stdio) may use the whole pool; once another shows up, one is kept', async () => {
    const gate = new FairGate(3);
    const x1 = await gate.enter('x', 1_000);
    const x2 = await gate.enter('x', 1_000);
    const x3 = await gate.enter('x', 1_000);
    expect(gate.canGrant('x')).toBe(false);
    x3();
    const y = await gate.enter('y', 1_000);
    // Shared now: x holds 2 = max − 1, so x waits while y would still get the last one.
    expect(gate.canGrant('x')).toBe(false);
    expect(gate.canGrant('z')).toBe(false);
    y();
    expect(gate.canGrant('x')).toBe(false);
    expect(gate.canGrant('z')).toBe(true);
    x1();
    x2();
    expect(gate.canGrant('x')).toBe(true);
  });

  it('a wait for a turn is bounded', async () => {
    const gate = new FairGate(1);
    const a = await gate.enter('a', 1_000);
    const err = await rejectionOf(gate.enter('b', 50));
    expect((err as ToolError).code).toBe(ErrorCode.UpstreamUnavailable);
    a();
    const b = await gate.enter('b', 50);
    b();
  });

  it('waiting principals are served in turn, not first come first served', async () => {
    const h = handle(db.readUrl, { pool: { max: 2 }, statementTimeoutMs: 5_000 });
    const order: string[] = [];
    const call = (principal: string) =>
      withTransaction(h, { readOnly: true, principal }, async (c) => {
        await c.query('SELECT pg_sleep(0.2)');
        order.push(principal);
      });
    const calls = [call('a'), call('a'), call('a'), call('a')];
    await new Promise((r) => setTimeout(r, 50));
    calls.push(call('b'));
    await Promise.all(calls);
    // b came last but is not served last.
    expect(order.indexOf('b')).toBeLessThan(order.length - 1);
  }, 30_000);

  it('the SQL checkers answer a small statement while another principal floods them', async () => {
    const guard = await createSqlGuardClient(
      { allowedSchemas: ['public'], deniedTables: [], extraFunctions: [] },
      { processes: 2 },
    );
    try {
      // Distinct, large, deeply parenthesized statements: each one costs the parser real work.
      const big = (i: number) =>
        `SELECT ${Array.from({ length: 4_000 }, (_, k) => `(${i} + ${k}) * 2`).join(' + ')} AS x`;
      let floodPending = 0;
      const flood = Array.from({ length: 3 }, (_, i) => {
        floodPending++;
        return guard.check(big(i), 'flooder').finally(() => {
          floodPending--;
        });
      });
      const honest = await guard.check('SELECT name FROM genre WHERE genre_id = $1', 'honest');
      expect(honest.ok).toBe(true);
      const stillPending = floodPending;
      await Promise.all(flood);
      expect(stillPending).toBeGreaterThanOrEqual(1);

      // Text waiting per principal is bounded: a fifth statement of the largest size is refused.
      const huge = (i: number) => `SELECT ${i} AS x /* ${'y'.repeat(99_000)} */`;
      const many = Array.from({ length: 5 }, (_, i) => guard.check(huge(i), 'bulk'));
      const verdicts = await Promise.all(many);
      expect(MAX_QUEUED_SQL_PER_PRINCIPAL).toBeLessThan(5 * 99_000);
      expect(verdicts.some((v) => !v.ok && /too much SQL is waiting/.test(v.message))).toBe(true);
    } finally {
      await guard.close();
    }
  }, 60_000);
});

describe('memory is bounded by bytes as rows arrive', () => {
  it('a batch of 100 rows of 15 MB is never buffered whole', async () => {
    const h = handle(db.readUrl, { statementTimeoutMs: 60_000, fetchRows: 200 });
    let peak = 0;
    const base = process.memoryUsage();
    const baseline = base.heapUsed + base.external + base.arrayBuffers;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.external + m.arrayBuffers - baseline);
    }, 2);
    try {
      const result = await withTransaction(h, { readOnly: true }, (c) =>
        readCursor(c, "SELECT repeat('x', 15000000) AS big FROM generate_series(1, 100)", [], {
          maxRows: 100,
          maxBytes: 256 * 1024,
          fetchRows: 200,
        }),
      );
      expect(result.truncated).toBe(true);
      expect(result.rows.length).toBe(0);
      expect(result.columns.map((c) => c.name)).toEqual(['big']);
    } finally {
      clearInterval(sampler);
    }
    // Buffered whole, the batch alone would be 1.5 GB (3 GB as UTF-16 strings).
    expect(peak).toBeLessThan(300 * 1024 * 1024);
  }, 120_000);

  it('small rows still fill the byte cap exactly and say truncated', async () => {
    const h = handle(db.readUrl);
    const result = await withTransaction(h, { readOnly: true }, (c) =>
      readCursor(c, "SELECT g, repeat('y', 100) AS pad FROM generate_series(1, 1000) g", [], {
        maxRows: 1000,
        maxBytes: 10_000,
        fetchRows: 50,
      }),
    );
    expect(result.truncated).toBe(true);
    expect(result.rows.length).toBeGreaterThan(50);
    expect(Buffer.byteLength(JSON.stringify(result.rows))).toBeLessThanOrEqual(10_000);
    expect(result.rows[0]).toEqual([1, 'y'.repeat(100)]);
  });
});

describe('database messages never become the client message (they go to detail, capped)', () => {
  const s = settings();
  async function rawError(sql: string): Promise<{ code?: string; message?: string }> {
    const c = new pg.Client({ connectionString: db.readUrl });
    await c.connect();
    try {
      await c.query(sql);
      throw new Error(`expected ${sql} to fail`);
    } catch (err) {
      return err as { code?: string; message?: string };
    } finally {
      await c.end();
    }
  }
  const cases = [
    {
      name: 'row data cast to an object-identifier type (class 42, quoted)',
      sql: 'SELECT email::regtype FROM customer ORDER BY customer_id',
      data: 'luisg@embraer.com.br',
      message: /^the database rejected the statement: a syntax error \(SQLSTATE 42601\)$/,
    },
    {
      name: 'row data whose value also appears in the query (class 42)',
      sql: "SELECT first_name::regtype FROM customer WHERE first_name = 'Luís'",
      data: 'Luís',
      message:
        /^the database rejected the statement: an object that does not exist \(SQLSTATE 42704\)$/,
    },
    {
      name: 'row data as tsquery syntax (class 42)',
      sql: "SELECT to_tsquery('simple', last_name || ' &') FROM customer ORDER BY customer_id",
      data: 'Gonçalves',
      message: /^the database rejected the statement: a syntax error \(SQLSTATE 42601\)$/,
    },
    {
      name: 'row data cast to an integer (class 22)',
      sql: 'SELECT email::int FROM customer ORDER BY customer_id',
      data: 'luisg@embraer.com.br',
      message: /^invalid data for the statement \(SQLSTATE 22P02\)$/,
    },
    {
      name: 'row data as JSON (class 22)',
      sql: "SELECT (email || '\"')::json FROM customer ORDER BY customer_id",
      data: 'luisg@embraer.com.br',
      message: /^invalid data for the statement \(SQLSTATE 22P02\)$/,
    },
    {
      name: 'a table name from the query (class 42, no data, still fixed text)',
      sql: 'SELECT * FROM hmcp_no_such_table',
      data: 'hmcp_no_such_table',
      message:
        /^the database rejected the statement: a relation that does not exist \(SQLSTATE 42P01\)$/,
    },
  ];
  it.each(cases)('$name', async (c) => {
    const raw = await rawError(c.sql);
    const mapped = toToolError(raw, s, c.sql);
    expect(mapped.message).toMatch(c.message);
    expect(mapped.message).not.toContain(c.data);
    expect(mapped.detail).toBe(raw.message);
  });

  it('detail is capped before redaction, and so is the logged cause', async () => {
    const raw = await rawError("SELECT repeat('z', 5000000)::int");
    const mapped = toToolError(raw, s);
    expect(mapped.detail?.length).toBeLessThanOrEqual(MAX_ERROR_DETAIL_CHARS + 1);
    expect((mapped.cause as { message: string }).message.length).toBeLessThanOrEqual(
      MAX_ERROR_DETAIL_CHARS + 1,
    );
    const long = `value ${'z'.repeat(100_000)}`;
    const fake = toToolError({ code: '22P02', message: long }, s);
    expect(fake.detail?.length).toBeLessThanOrEqual(MAX_ERROR_DETAIL_CHARS + 1);
    expect(fake.message).toBe('invalid data for the statement (SQLSTATE 22P02)');
  });

  it('connection and login failures carry no detail (hosts, roles)', () => {
    for (const code of ['28P01', '08006', '3D000', '53300']) {
      const mapped = toToolError(
        { code, message: 'password authentication failed for user "hmcp_r_x" at db.internal' },
        s,
      );
      expect(mapped.code).toBe(ErrorCode.UpstreamUnavailable);
      expect(mapped.detail).toBeUndefined();
    }
  });
});
