import { verifyAuditChain } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn, waitFor } from '../support/audit.ts';
import { queryAs } from '../support/db.ts';
import {
  runBin,
  type ServerSession,
  startPostgresServer,
  textOf,
  writeTempConfig,
} from '../support/server.ts';

let server: TestPostgres;
let db: ChinookDatabase;

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
});
afterAll(async () => {
  await db?.drop();
  await server?.stop();
});

type Structured = {
  columns: { name: string; type: string }[];
  rows: unknown[][];
  rowCount: number;
  truncated: boolean;
};

/** A statement as the test database's superuser. */
const adminQuery = <T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) =>
  queryAs<T>(db.adminUrl, sql, values);

describe('read-only session', () => {
  let s: ServerSession;
  beforeAll(async () => {
    s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: {
        identity: { principal: 'alice', roles: ['analyst'] },
        roles: { analyst: ['postgres:read'] },
        log: { level: 'info' },
      },
    });
  });
  afterAll(async () => s?.close());

  it('lists exactly the read tools, with annotations derived from access and strict schemas', async () => {
    const { tools } = await s.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      'postgres_describe_table',
      'postgres_explain',
      'postgres_list_schemas',
      'postgres_list_tables',
      'postgres_query',
    ]);
    for (const t of tools) {
      expect(t.annotations).toMatchObject({
        readOnlyHint: true,
        destructiveHint: false,
        openWorldHint: false,
      });
      expect(t.inputSchema.additionalProperties).toBe(false);
    }
    expect(tools.find((t) => t.name === 'postgres_query')?.outputSchema).toBeDefined();
  });

  it('lists schemas and tables from the catalog', async () => {
    const schemas = await s.client.callTool({ name: 'postgres_list_schemas', arguments: {} });
    expect((schemas.structuredContent as Structured).rows).toEqual([['public', expect.anything()]]);
    const tables = await s.client.callTool({ name: 'postgres_list_tables', arguments: {} });
    const names = (tables.structuredContent as Structured).rows.map((r) => r[0]);
    expect(names).toEqual(
      expect.arrayContaining([
        'album',
        'artist',
        'customer',
        'employee',
        'invoice',
        'invoice_line',
        'track',
      ]),
    );
  });

  it('describes a table: columns, primary key, foreign keys, indexes, row estimate', async () => {
    const r = await s.client.callTool({
      name: 'postgres_describe_table',
      arguments: { table: 'invoice' },
    });
    expect(r.isError).toBeFalsy();
    const d = r.structuredContent as {
      columns: { name: string; type: string; nullable: boolean }[];
      primaryKey: string[];
      foreignKeys: { columns: string[]; references: { table: string } }[];
      indexes: { name: string }[];
      rowEstimate: number | null;
    };
    expect(d.primaryKey).toEqual(['invoice_id']);
    expect(d.columns.find((c) => c.name === 'total')).toMatchObject({
      type: 'numeric(10,2)',
      nullable: false,
    });
    expect(d.foreignKeys).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          columns: ['customer_id'],
          references: expect.objectContaining({ table: 'customer' }),
        }),
      ]),
    );
    expect(d.indexes.length).toBeGreaterThan(0);
  });

  it('a table outside the allowlist or catalog is refused without interpolation', async () => {
    const r = await s.client.callTool({
      name: 'postgres_describe_table',
      arguments: { schema: 'pg_catalog', table: 'pg_authid' },
    });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^policy_denied: schema pg_catalog is not in the allowed schemas/);
    const missing = await s.client.callTool({
      name: 'postgres_describe_table',
      arguments: { table: 'customer"; DROP TABLE customer; --' },
    });
    expect(missing.isError).toBe(true);
    expect((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM customer'))[0]?.n).toBe(
      '59',
    );
  });

  it('answers a real query with PII redacted, the data fenced as untrusted, and counts audited', async () => {
    const r = await s.client.callTool({
      name: 'postgres_query',
      arguments: {
        sql: 'SELECT first_name, last_name, email, phone, country FROM customer WHERE country = $1 ORDER BY customer_id',
        params: ['Brazil'],
      },
    });
    expect(r.isError).toBeFalsy();
    const st = r.structuredContent as Structured;
    expect(st.columns.map((c) => c.name)).toEqual([
      'first_name',
      'last_name',
      'email',
      'phone',
      'country',
    ]);
    expect(st.rowCount).toBe(5);
    expect(st.truncated).toBe(false);
    expect(st.rows[0]).toEqual([
      'Luís',
      'Gonçalves',
      '[REDACTED:email]',
      '[REDACTED:phone]',
      'Brazil',
    ]);
    const text = textOf(r);
    expect(text).not.toMatch(/@embraer\.com\.br|3923-5555/);
    expect(text).toMatch(/<<<UNTRUSTED-DATA ([0-9a-f]{32})>>>[\s\S]*<<<END-UNTRUSTED-DATA \1>>>/);
    await waitFor(() =>
      auditRecordsIn(s.stderr()).some(
        (a) => a.tool === 'postgres_query' && a.outcome === 'success',
      ),
    );
    const rec = auditRecordsIn(s.stderr()).find(
      (a) => a.tool === 'postgres_query' && a.outcome === 'success',
    );
    expect(rec).toMatchObject({
      principal: 'alice',
      roles: ['analyst'],
      transport: 'stdio',
      access: 'read',
      rows: 5,
      truncated: false,
      decision: { result: 'allowed' },
    });
    expect(rec?.redactions).toMatchObject({ email: 5, phone: 5 });
    expect(rec?.client.name).toBe('hardened-mcp-e2e');
  });

  it('caps rows and says so', async () => {
    const r = await s.client.callTool({
      name: 'postgres_query',
      arguments: { sql: 'SELECT track_id, name FROM track ORDER BY track_id', maxRows: 10 },
    });
    const st = r.structuredContent as Structured;
    expect(st.rowCount).toBe(10);
    expect(st.rows).toHaveLength(10);
    expect(st.truncated).toBe(true);
    expect(textOf(r)).toContain('truncated');
  });

  it('refuses stacked statements, catalog reads and disallowed functions, and the data stays', async () => {
    for (const sql of [
      'SELECT 1; COMMIT; DROP TABLE customer',
      'SELECT rolname, rolpassword FROM pg_authid',
      'SELECT * FROM pg_roles',
      "SELECT pg_read_file('/etc/passwd')",
    ]) {
      const r = await s.client.callTool({ name: 'postgres_query', arguments: { sql } });
      expect(r.isError, sql).toBe(true);
      expect(textOf(r), sql).toMatch(/^policy_denied: .+ \(correlation id [0-9a-f-]{36}\)$/);
    }
    expect((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM customer'))[0]?.n).toBe(
      '59',
    );
  });

  it('rejects unknown argument keys and wrong parameter counts as invalid input', async () => {
    const extra = await s.client.callTool({
      name: 'postgres_query',
      arguments: { sql: 'SELECT 1', sneaky: true },
    });
    expect(textOf(extra)).toMatch(/^invalid_input: .*unknown key sneaky/);
    const count = await s.client.callTool({
      name: 'postgres_query',
      arguments: { sql: 'SELECT $1::int + $2::int', params: [1] },
    });
    expect(textOf(count)).toMatch(/^invalid_input: the statement uses 2 parameter/);
  });

  it('explains without executing', async () => {
    const r = await s.client.callTool({
      name: 'postgres_explain',
      arguments: { sql: 'SELECT * FROM invoice WHERE customer_id = $1', params: [5] },
    });
    expect(r.isError).toBeFalsy();
    expect(JSON.stringify(r.structuredContent)).toContain('"Node Type"');
    const analyze = await s.client.callTool({
      name: 'postgres_explain',
      arguments: { sql: 'EXPLAIN ANALYZE DELETE FROM invoice' },
    });
    expect(analyze.isError).toBe(true);
  });

  it('writes a verifiable hash-chained audit trail to stderr', async () => {
    const records = auditRecordsIn(s.stderr());
    expect(records.length).toBeGreaterThan(8);
    const verdict = await verifyAuditChain(
      s
        .stderr()
        .split('\n')
        .filter((l) => l.includes('"auditId"')),
    );
    expect(verdict).toMatchObject({ ok: true, records: records.length });
    expect(
      records.some((r) => r.decision.result === 'denied' && r.decision.reason === 'policy_denied'),
    ).toBe(true);
    expect(s.stderr()).not.toContain(new URL(db.readUrl).password);
  });
});

// Unknown vs disabled tools and a stdout of JSON-RPC only: the shared contract suite
// (test/contract/postgres.contract.test.ts) checks both for every connector.

describe('read-write session', () => {
  const base = () => ({
    env: { POSTGRES_URL: db.readUrl, POSTGRES_WRITE_URL: db.writeUrl },
    config: {
      mode: 'read-write',
      identity: { principal: 'bob', roles: ['writer'] },
      postgres: { maxAffectedRows: 5 },
    },
  });
  const genreCount = async () =>
    Number((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM genre'))[0]?.n);

  it('lists write tools with destructive annotations', async () => {
    const s = await startPostgresServer({ ...base(), capabilities: { elicitation: {} } });
    try {
      const { tools } = await s.client.listTools();
      const del = tools.find((t) => t.name === 'postgres_delete_rows');
      expect(del?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
      expect(tools.find((t) => t.name === 'postgres_insert_rows')?.annotations).toMatchObject({
        readOnlyHint: false,
        destructiveHint: false,
      });
    } finally {
      await s.close();
    }
  });

  it('asks for approval and writes only when the human accepts', async () => {
    const s = await startPostgresServer({ ...base(), capabilities: { elicitation: {} } });
    const asked: string[] = [];
    let answer: 'accept' | 'decline' = 'decline';
    s.client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(String(req.params.message));
      return answer === 'accept'
        ? { action: 'accept', content: { approve: true } }
        : { action: 'decline' };
    });
    try {
      const before = await genreCount();
      const declined = await s.client.callTool({
        name: 'postgres_insert_rows',
        arguments: { table: 'genre', rows: [{ genre_id: 9001, name: 'Declined' }] },
      });
      expect(textOf(declined)).toMatch(/^approval_declined:/);
      expect(await genreCount()).toBe(before);
      answer = 'accept';
      const ok = await s.client.callTool({
        name: 'postgres_insert_rows',
        arguments: { table: 'genre', rows: [{ genre_id: 9002, name: 'Approved' }] },
      });
      expect(ok.isError).toBeFalsy();
      expect(ok.structuredContent).toMatchObject({ affectedRows: 1 });
      expect(await genreCount()).toBe(before + 1);
      expect(asked[1]).toContain('INSERT 1 row(s) into public.genre');
      const upd = await s.client.callTool({
        name: 'postgres_update_rows',
        arguments: { table: 'genre', key: { genre_id: 9002 }, set: { name: 'Renamed' } },
      });
      expect(upd.structuredContent).toMatchObject({ affectedRows: 1 });
      const badKey = await s.client.callTool({
        name: 'postgres_delete_rows',
        arguments: { table: 'genre', key: { name: 'Renamed' } },
      });
      expect(textOf(badKey)).toMatch(
        /^invalid_input: key must name exactly the primary key column\(s\): genre_id/,
      );
      const del = await s.client.callTool({
        name: 'postgres_delete_rows',
        arguments: { table: 'genre', key: { genre_id: 9002 } },
      });
      expect(del.structuredContent).toMatchObject({ affectedRows: 1 });
      expect(await genreCount()).toBe(before);
      const tooMany = await s.client.callTool({
        name: 'postgres_insert_rows',
        arguments: {
          table: 'genre',
          rows: Array.from({ length: 6 }, (_, i) => ({ genre_id: 9100 + i, name: `g${i}` })),
        },
      });
      expect(textOf(tooMany)).toMatch(/^limit_exceeded:/);
      expect(await genreCount()).toBe(before);
      const records = auditRecordsIn(s.stderr());
      expect(records.find((r) => r.decision.approval === 'declined')).toMatchObject({
        tool: 'postgres_insert_rows',
        outcome: 'denied',
        access: 'write',
      });
      expect(
        records.filter((r) => r.decision.approval === 'approved').length,
      ).toBeGreaterThanOrEqual(3);
    } finally {
      await s.close();
    }
  });

  it('refuses writes from a client that cannot ask for approval', async () => {
    const s = await startPostgresServer(base());
    try {
      const r = await s.client.callTool({
        name: 'postgres_insert_rows',
        arguments: { table: 'genre', rows: [{ genre_id: 9003, name: 'x' }] },
      });
      expect(textOf(r)).toMatch(/^approval_unavailable:/);
      expect((await adminQuery('SELECT 1 FROM genre WHERE genre_id = 9003')).length).toBe(0);
    } finally {
      await s.close();
    }
  });

  it('refuses a principal without the write scope', async () => {
    const s = await startPostgresServer({
      ...base(),
      config: { ...base().config, identity: { principal: 'carol', roles: ['reader'] } },
      capabilities: { elicitation: {} },
    });
    try {
      const r = await s.client.callTool({
        name: 'postgres_delete_rows',
        arguments: { table: 'genre', key: { genre_id: 1 } },
      });
      expect(textOf(r)).toMatch(/^forbidden: principal lacks scope postgres:write/);
      expect(auditRecordsIn(s.stderr()).at(-1)).toMatchObject({
        principal: 'carol',
        decision: { result: 'denied', reason: 'forbidden' },
      });
    } finally {
      await s.close();
    }
  });

  it('has no write tools without a write credential', async () => {
    const s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: { mode: 'read-write' },
    });
    try {
      const { tools } = await s.client.listTools();
      expect(tools.every((t) => t.annotations?.readOnlyHint === true)).toBe(true);
    } finally {
      await s.close();
    }
  });
});

describe('saved queries', () => {
  it('runs typed saved queries and validates their parameters', async () => {
    const s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: {
        postgres: {
          savedQueries: {
            invoices_by_country: {
              description: 'Invoice totals for one billing country',
              sql: 'SELECT billing_country, count(*) AS invoices, sum(total) AS total FROM invoice WHERE billing_country = $1 AND total >= $2 GROUP BY 1',
              params: [
                { name: 'country', type: 'string', maxLength: 40, pattern: '[A-Za-z ]+' },
                { name: 'min_total', type: 'number', min: 0, required: false },
              ],
            },
          },
        },
      },
    });
    try {
      const { tools } = await s.client.listTools();
      expect(tools.find((t) => t.name === 'postgres_run_saved_query')?.description).toContain(
        'invoices_by_country(country: string, min_total?: number 0..)',
      );
      const r = await s.client.callTool({
        name: 'postgres_run_saved_query',
        arguments: { name: 'invoices_by_country', params: { country: 'Germany', min_total: 0 } },
      });
      expect((r.structuredContent as Structured).rows).toEqual([['Germany', '28', '156.48']]);
      const bad = await s.client.callTool({
        name: 'postgres_run_saved_query',
        arguments: {
          name: 'invoices_by_country',
          params: { country: "x'; DROP TABLE invoice; --" },
        },
      });
      expect(textOf(bad)).toMatch(
        /^invalid_input: invalid params for invoices_by_country: country/,
      );
      const unknown = await s.client.callTool({
        name: 'postgres_run_saved_query',
        arguments: { name: 'nope', params: {} },
      });
      expect(textOf(unknown)).toMatch(/^invalid_input:/);
    } finally {
      await s.close();
    }
  });

  it('runs saved write queries only with approval, bound params and the row cap', async () => {
    const s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl, POSTGRES_WRITE_URL: db.writeUrl },
      config: {
        mode: 'read-write',
        identity: { principal: 'ops', roles: ['writer'] },
        postgres: {
          maxAffectedRows: 3,
          savedQueries: {
            rename_media_type: {
              description: 'Rename a media type',
              access: 'write',
              sql: 'UPDATE media_type SET name = $2 WHERE media_type_id = $1',
              params: [
                { name: 'id', type: 'integer', min: 1 },
                { name: 'name', type: 'string', maxLength: 120 },
              ],
            },
            rename_all_media_types: {
              description: 'Rename every media type (more rows than the cap)',
              access: 'write',
              sql: "UPDATE media_type SET name = name || ' (x)'",
            },
          },
        },
      },
      capabilities: { elicitation: {} },
    });
    const asked: string[] = [];
    s.client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(String(req.params.message));
      return { action: 'accept', content: { approve: true } };
    });
    try {
      const { tools } = await s.client.listTools();
      const tool = tools.find((t) => t.name === 'postgres_run_saved_write_query');
      expect(tool?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
      expect(tool?.description).toContain('rename_media_type(id: integer 1.., name: string)');
      const ok = await s.client.callTool({
        name: 'postgres_run_saved_write_query',
        arguments: { name: 'rename_media_type', params: { id: 1, name: 'MPEG audio' } },
      });
      expect(ok.structuredContent).toMatchObject({
        savedQuery: 'rename_media_type',
        affectedRows: 1,
      });
      expect(asked[0]).toContain('"name" = "MPEG audio"');
      expect(await adminQuery('SELECT name FROM media_type WHERE media_type_id = 1')).toEqual([
        { name: 'MPEG audio' },
      ]);
      const bad = await s.client.callTool({
        name: 'postgres_run_saved_write_query',
        arguments: { name: 'rename_media_type', params: { id: 0, name: 'x' } },
      });
      expect(textOf(bad)).toMatch(/^invalid_input: invalid params for rename_media_type: id/);
      const before = await adminQuery('SELECT media_type_id, name FROM media_type ORDER BY 1');
      const tooMany = await s.client.callTool({
        name: 'postgres_run_saved_write_query',
        arguments: { name: 'rename_all_media_types' },
      });
      expect(textOf(tooMany)).toMatch(
        /^limit_exceeded: rename_all_media_types would change 5 rows, more than the cap of 3; rolled back/,
      );
      expect(await adminQuery('SELECT media_type_id, name FROM media_type ORDER BY 1')).toEqual(
        before,
      );
    } finally {
      await s.close();
    }
  });

  it('refuses to start with a saved read query that is not read-only', async () => {
    const { code, stderr } = await runBin({ POSTGRES_URL: db.readUrl }, [
      '--config',
      writeTempConfig({
        postgres: { savedQueries: { evil: { description: 'x', sql: 'DELETE FROM invoice' } } },
      }),
    ]);
    expect(code).toBe(1);
    expect(stderr.trim()).toMatch(
      /^hardened-mcp-postgres: saved query evil is not an acceptable read-only statement/,
    );
  });
});

describe('runaway queries', () => {
  it('end at the statement timeout with a clear error, and the next call is served', async () => {
    const s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: { postgres: { statementTimeoutMs: 500 } },
    });
    try {
      const r = await s.client.callTool({
        name: 'postgres_query',
        arguments: { sql: 'SELECT count(*) FROM track a, track b, track c' },
      });
      expect(textOf(r)).toMatch(
        /^timeout: the statement was cancelled: it exceeded the statement timeout \(500 ms\)/,
      );
      const next = await s.client.callTool({
        name: 'postgres_query',
        arguments: { sql: 'SELECT count(*) AS n FROM track' },
      });
      expect((next.structuredContent as Structured).rows).toEqual([['3503']]);
    } finally {
      await s.close();
    }
  });
});

describe('security review regressions', () => {
  let s: ServerSession;
  beforeAll(async () => {
    await adminQuery(`CREATE TABLE events (id int PRIMARY KEY, v text);
      CREATE TABLE events_private (secret text) INHERITS (events);
      INSERT INTO events VALUES (1, 'public one');
      INSERT INTO events_private VALUES (1, 'private one', 'top secret');
      GRANT SELECT ON events, events_private TO ${db.readRole};
      GRANT SELECT, UPDATE, DELETE ON events, events_private TO ${db.writeRole};`);
    s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: { postgres: { tables: { deny: ['events_private'] }, statementTimeoutMs: 20_000 } },
    });
  });
  afterAll(async () => {
    await s?.close();
    await adminQuery('DROP TABLE events CASCADE');
  });

  it.each([
    ["SELECT ('SELECT 1').ts_stat", /function ts_stat is not allowed/],
    ["SELECT ('TimeZone').current_setting", /function current_setting is not allowed/],
    ["SELECT ('public.customer').pg_get_viewdef", /pg_get_viewdef is not allowed/],
    ['SELECT g.pg_backend_pid FROM generate_series(1, 2) g', /pg_backend_pid is not allowed/],
    ["SELECT 'customer'::regclass", /type regclass is not allowed/],
  ])(
    'refuses functions reached through attribute notation or catalog types: %s',
    async (sql, message) => {
      const r = await s.client.callTool({ name: 'postgres_query', arguments: { sql } });
      expect(r.isError, sql).toBe(true);
      expect(textOf(r)).toMatch(/^policy_denied: /);
      expect(textOf(r)).toMatch(message);
    },
  );

  it('still allows qualified columns', async () => {
    const r = await s.client.callTool({
      name: 'postgres_query',
      arguments: {
        sql: 'SELECT c.customer_id, i.total FROM customer c JOIN invoice i USING (customer_id) ORDER BY i.invoice_id LIMIT 1',
      },
    });
    expect((r.structuredContent as Structured).rows).toEqual([[2, '1.98']]);
  });

  it('refuses a table whose inheriting child is denied', async () => {
    const r = await s.client.callTool({
      name: 'postgres_query',
      arguments: { sql: 'SELECT * FROM events' },
    });
    expect(textOf(r)).toMatch(
      /^policy_denied: a table inheriting from a referenced table \(events_private\) is not allowed/,
    );
  });

  it('stops a row larger than maxMessageBytes without crashing, and serves the next call', async () => {
    const r = await s.client.callTool({
      name: 'postgres_query',
      // 40 MB from 40 one-MB repeats: a single repeat() above 1 MiB is refused by the guard.
      arguments: {
        sql: "SELECT string_agg(repeat('x', 1000000), '') AS huge FROM generate_series(1, 40)",
      },
    });
    expect(textOf(r)).toMatch(
      /^limit_exceeded: a row or message from the database exceeded 16777216 bytes/,
    );
    const next = await s.client.callTool({
      name: 'postgres_query',
      arguments: { sql: 'SELECT 1 AS one' },
    });
    expect((next.structuredContent as Structured).rows).toEqual([[1]]);
  });

  it('does not relay error messages that quote data rather than the query', async () => {
    const r = await s.client.callTool({
      name: 'postgres_query',
      arguments: {
        sql: 'SELECT quote_ident(email)::text FROM customer WHERE customer_id = 1 AND quote_ident(email)::int > 0',
      },
    });
    expect(r.isError).toBe(true);
    expect(textOf(r)).not.toContain('embraer');
  });

  it('writes with ONLY: a primary-key update touches the named table, not its children', async () => {
    const w = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl, POSTGRES_WRITE_URL: db.writeUrl },
      config: {
        mode: 'read-write',
        identity: { principal: 'w', roles: ['writer'] },
        tools: { settings: { postgres_update_rows: { approval: 'none' } } },
      },
    });
    try {
      const r = await w.client.callTool({
        name: 'postgres_update_rows',
        arguments: { table: 'events', key: { id: 1 }, set: { v: 'changed' } },
      });
      expect(r.structuredContent).toMatchObject({ affectedRows: 1 });
      expect(await adminQuery('SELECT v FROM ONLY events_private')).toEqual([{ v: 'private one' }]);
    } finally {
      await w.close();
    }
  });
});
