/**
 * Column-level classification before execution, against a real PostgreSQL (embedded PG 18 with
 * `HMCP_TEST_PG=embedded`; the machine's server with `HMCP_TEST_PG=external DATABASE_URL=…`) and
 * the Chinook sample data from the shared kit (skipped, with a message, when it is absent).
 *
 * Every construct that reaches a column, and every transform that defeats output redaction, is
 * refused for a principal cleared below the column's label, and the statement never ran: every
 * text sent to the database is recorded, and the statement's own text is never among them (the
 * planner sees only its PREPAREd generic form, never executed).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AssembledServer,
  assemble,
  type CallResponse,
  defineConfigSchema,
  type Identity,
  NO_APPROVAL_CHANNEL,
  parseConfig,
} from '@hardened-mcp/core';
import {
  classificationGrants,
  postgresConnector,
  postgresSectionSchema,
} from '@hardened-mcp/postgres';
import {
  type ChinookDatabase,
  chinookSqlPath,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const haveChinook = existsSync(chinookSqlPath);
if (!haveChinook)
  console.warn(
    `column-classification.test: skipped, the Chinook dataset is absent (${chinookSqlPath})`,
  );

/** The labels of the sample data, as the Postgres README shows them. */
const LABELS = {
  'public.customer.email': 'confidential',
  'public.customer.phone': 'confidential',
  'public.customer.fax': 'confidential',
  'public.employee.birth_date': 'restricted',
  'public.employee.email': 'confidential',
} as const;

/** Saved read queries: one reaching a confidential column through a transform, one not. */
const SAVED = {
  emails_by_country: {
    description: 'Reversed e-mails of one country',
    sql: 'SELECT reverse(email) AS e FROM customer WHERE country = $1',
    params: [{ name: 'country', type: 'string', maxLength: 40 }],
  },
  cities_by_country: {
    description: 'First names and cities of one country',
    sql: 'SELECT first_name, city FROM customer WHERE country = $1',
    params: [{ name: 'country', type: 'string', maxLength: 40 }],
  },
};

let server: TestPostgres;
let db: ChinookDatabase;
let hmcp: AssembledServer;
/** Every SQL text any pg client sent during the test. */
const sent: string[] = [];

describe.skipIf(!haveChinook)('postgres_query: column classification before execution', () => {
  beforeAll(async () => {
    server = await startTestPostgres();
    db = await createChinookDatabase(server);
    const original = pg.Client.prototype.query;
    vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (
      this: pg.Client,
      ...args: unknown[]
    ) {
      const first = args[0] as { text?: unknown } | string;
      const text = typeof first === 'string' ? first : first?.text;
      if (typeof text === 'string') sent.push(text);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as never);
    const config = parseConfig(defineConfigSchema('postgres', postgresSectionSchema), {
      audit: {
        stderr: false,
        file: join(mkdtempSync(join(tmpdir(), 'hmcp-pgclass-')), 'audit.jsonl'),
      },
      log: { level: 'silent' },
      classification: { labels: LABELS },
      postgres: { savedQueries: SAVED },
    });
    hmcp = await assemble(postgresConnector, config as never, {
      env: { POSTGRES_URL: db.readUrl },
    });
  }, 180_000);

  afterAll(async () => {
    vi.restoreAllMocks();
    await hmcp?.close();
    await db?.drop();
    await server?.stop();
  });

  const callTool = (
    name: string,
    args: Record<string, unknown>,
    who: Partial<Identity> = {},
  ): Promise<CallResponse> =>
    hmcp.pipeline.callTool({
      name,
      arguments: args,
      identity: { principal: 'analyst', roles: ['reader'], transport: 'stdio', client: {}, ...who },
      approval: NO_APPROVAL_CHANNEL,
      signal: new AbortController().signal,
    });
  const call = (sql: string, who: Partial<Identity> = {}) =>
    callTool('postgres_query', { sql }, who);
  const text = (r: CallResponse) => (r.kind === 'result' ? JSON.stringify(r.result.content) : '');
  const code = (r: CallResponse) =>
    r.kind === 'result'
      ? ((r.result._meta?.['hardened-mcp/error'] as { code?: string } | undefined)?.code ?? 'ok')
      : 'unknown';

  // [construct, statement, a column it reaches]
  const REFUSED: [string, string, string][] = [
    ['plain column', 'SELECT email FROM customer', 'public.customer.email'],
    ['star', 'SELECT * FROM customer', 'public.customer.phone'],
    ['qualified star', 'SELECT c.* FROM customer c', 'public.customer.email'],
    ['whole-row reference', 'SELECT c FROM customer c', 'public.customer.email'],
    ['row_to_json(t)', 'SELECT row_to_json(c) FROM customer c', 'public.customer.email'],
    ['to_jsonb(t.*)', 'SELECT to_jsonb(c.*) FROM customer c', 'public.customer.fax'],
    ['NATURAL join star', 'SELECT * FROM customer NATURAL JOIN invoice', 'public.customer.email'],
    [
      'USING join star',
      'SELECT * FROM customer JOIN invoice USING (customer_id)',
      'public.customer.email',
    ],
    ['function over a column', 'SELECT upper(email) FROM customer', 'public.customer.email'],
    ['reverse', 'SELECT reverse(email) FROM customer', 'public.customer.email'],
    [
      'encode base64',
      "SELECT encode(convert_to(email, 'UTF8'), 'base64') FROM customer",
      'public.customer.email',
    ],
    ["replace '@'", "SELECT replace(email, '@', ' at ') FROM customer", 'public.customer.email'],
    [
      'string_agg of characters',
      "SELECT string_agg(substr(email, g, 1), ' ') FROM customer, generate_series(1, 40) g GROUP BY customer_id",
      'public.customer.email',
    ],
    [
      'two halves in two columns',
      'SELECT left(email, 4) AS a, substr(email, 5) AS b FROM customer',
      'public.customer.email',
    ],
    [
      'phone digits',
      "SELECT translate(phone, '0123456789', 'abcdefghij') FROM customer",
      'public.customer.phone',
    ],
    [
      'subquery in FROM',
      'SELECT x FROM (SELECT email AS x FROM customer) s',
      'public.customer.email',
    ],
    [
      'scalar subquery',
      'SELECT (SELECT email FROM customer WHERE customer_id = 1)',
      'public.customer.email',
    ],
    ['CTE', 'WITH e AS (SELECT email FROM customer) SELECT * FROM e', 'public.customer.email'],
    [
      'materialized CTE',
      'WITH e AS MATERIALIZED (SELECT phone FROM customer) SELECT * FROM e',
      'public.customer.phone',
    ],
    [
      'filter only (an oracle)',
      "SELECT customer_id FROM customer WHERE email LIKE 'a%'",
      'public.customer.email',
    ],
    [
      'EXISTS',
      "SELECT 1 WHERE EXISTS (SELECT 1 FROM customer WHERE email = 'x')",
      'public.customer.email',
    ],
    [
      'UNION',
      'SELECT name FROM artist UNION ALL SELECT email FROM customer',
      'public.customer.email',
    ],
    [
      'LATERAL',
      'SELECT i.total, x.e FROM invoice i, LATERAL (SELECT email AS e FROM customer c WHERE c.customer_id = i.customer_id) x',
      'public.customer.email',
    ],
    ['ORDER BY only', 'SELECT customer_id FROM customer ORDER BY phone', 'public.customer.phone'],
    ['restricted column', 'SELECT birth_date FROM employee', 'public.employee.birth_date'],
    ['quoted identifiers', 'SELECT "email" FROM "public"."customer"', 'public.customer.email'],
  ];

  it.each(REFUSED)('refuses %s, and the statement never ran', async (_name, sql, column) => {
    const before = sent.length;
    const r = await call(sql);
    expect(code(r)).toBe('policy_denied');
    expect(text(r)).toContain(column);
    expect(text(r)).toMatch(/above the principal's clearance \(internal\)/);
    expect(sent.slice(before)).not.toContain(sql);
  });

  const ALLOWED = [
    'SELECT first_name, city FROM customer',
    'SELECT count(*) FROM customer',
    'SELECT c.first_name FROM customer c JOIN invoice i USING (customer_id)',
    "SELECT i.total FROM invoice i WHERE i.customer_id IN (SELECT customer_id FROM customer WHERE country = 'Brazil')",
    'WITH a AS (SELECT name FROM artist) SELECT * FROM a',
    'SELECT first_name FROM employee',
  ];

  it.each(ALLOWED)('runs %s (no classified column)', async (sql) => {
    const before = sent.length;
    const r = await call(sql);
    expect(code(r)).toBe('ok');
    expect(sent.slice(before)).toContain(sql);
  });

  it('the startup check names the classified columns the read role can SELECT anyway', async () => {
    const pool = new pg.Pool({ connectionString: db.readUrl, max: 1 });
    try {
      const found = await classificationGrants(
        pool,
        { ...LABELS, 'public.no_such_table.x': 'restricted', 'public.artist': 'public' },
        (label) => label === 'confidential' || label === 'restricted',
      );
      // The sample read role has SELECT on every table of public: every classified column shows.
      expect(found).toEqual([
        'public.customer.email (confidential)',
        'public.customer.fax (confidential)',
        'public.customer.phone (confidential)',
        'public.employee.birth_date (restricted)',
        'public.employee.email (confidential)',
      ]);
      // With column privileges revoked, the database is a second wall and nothing is reported.
      const admin = new pg.Client({ connectionString: db.adminUrl });
      await admin.connect();
      try {
        await admin.query(`REVOKE SELECT ON public.customer FROM ${db.readRole}`);
        await admin.query(
          `GRANT SELECT (customer_id, first_name, last_name, company, address, city, state, country, postal_code, support_rep_id) ON public.customer TO ${db.readRole}`,
        );
        const after = await classificationGrants(pool, LABELS, (l) => l !== 'public');
        expect(after.filter((f) => f.startsWith('public.customer.'))).toEqual([]);
      } finally {
        await admin.query(`GRANT SELECT ON public.customer TO ${db.readRole}`);
        await admin.end();
      }
    } finally {
      await pool.end();
    }
  });

  it('the startup check reads the privileges of a named role (postgres.databaseRoles)', async () => {
    const pool = new pg.Pool({ connectionString: db.readUrl, max: 1 });
    const admin = new pg.Client({ connectionString: db.adminUrl });
    await admin.connect();
    const role = `hmcp_cls_probe_${process.pid}`;
    const above = (l: string) => l === 'confidential' || l === 'restricted';
    try {
      await admin.query(`CREATE ROLE ${role} NOLOGIN`);
      // The login role has SELECT on everything; the named role has nothing yet.
      expect(await classificationGrants(pool, LABELS, above, role)).toEqual([]);
      await admin.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
      await admin.query(`GRANT SELECT (customer_id, email) ON public.customer TO ${role}`);
      expect(await classificationGrants(pool, LABELS, above, role)).toEqual([
        'public.customer.email (confidential)',
      ]);
      // The login role named explicitly answers as without a name.
      expect(await classificationGrants(pool, LABELS, above, db.readRole)).toEqual(
        await classificationGrants(pool, LABELS, above),
      );
    } finally {
      await admin.query(`REVOKE ALL ON public.customer FROM ${role}`).catch(() => undefined);
      await admin.query(`REVOKE ALL ON SCHEMA public FROM ${role}`).catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      await admin.end();
      await pool.end();
    }
  });

  it('restricted columns need an approval even to read, asked before the statement runs', async () => {
    const sql = 'SELECT first_name, birth_date FROM employee';
    const restricted = { attributes: { clearance: 'restricted' } };
    const before = sent.length;
    const refused = await call(sql, restricted);
    expect(code(refused)).toBe('policy_denied');
    expect(text(refused)).toMatch(/approval/);
    expect(sent.slice(before)).not.toContain(sql);
    const prompts: string[] = [];
    const approved = await hmcp.pipeline.callTool({
      name: 'postgres_query',
      arguments: { sql },
      identity: {
        principal: 'hr',
        roles: ['reader'],
        transport: 'stdio',
        client: {},
        ...restricted,
      },
      approval: {
        supported: true,
        async request(prompt) {
          prompts.push(prompt);
          return 'approved';
        },
      },
      signal: new AbortController().signal,
    });
    expect(code(approved)).toBe('ok');
    expect(prompts.join('\n')).toContain('public.employee.birth_date');
  });

  it('a principal cleared for confidential reads the e-mails (and the record lists the label)', async () => {
    const r = await call("SELECT reverse(email) FROM customer WHERE country = 'Brazil'", {
      attributes: { clearance: 'confidential' },
    });
    expect(code(r)).toBe('ok');
    expect(
      r.kind === 'result' && (r.result.structuredContent as { rows: unknown[] }).rows.length,
    ).toBeGreaterThan(0);
    // Restricted stays out of reach for them.
    const bd = await call('SELECT birth_date FROM employee', {
      attributes: { clearance: 'confidential' },
    });
    expect(code(bd)).toBe('policy_denied');
  });

  // postgres_explain: a plan names the columns it reads (and their statistics), so it is
  // classified like the query it explains, before any plan is built.
  const plansSent = (from: number) =>
    sent.slice(from).filter((t) => t.startsWith('EXPLAIN (FORMAT JSON, VERBOSE false'));

  it.each(REFUSED)(
    'postgres_explain refuses %s, and no plan was built',
    async (_name, sql, column) => {
      const before = sent.length;
      const r = await callTool('postgres_explain', { sql });
      expect(code(r)).toBe('policy_denied');
      expect(text(r)).toContain(column);
      expect(text(r)).toMatch(/above the principal's clearance \(internal\)/);
      expect(sent.slice(before)).not.toContain(sql);
      expect(plansSent(before)).toEqual([]);
    },
  );

  it.each(ALLOWED)('postgres_explain plans %s (no classified column)', async (sql) => {
    const before = sent.length;
    const r = await callTool('postgres_explain', { sql });
    expect(code(r)).toBe('ok');
    expect(plansSent(before)).toHaveLength(1);
  });

  it('saved read queries are classified by the columns they reach, before they run', async () => {
    const emails = SAVED.emails_by_country.sql;
    const before = sent.length;
    const refused = await callTool('postgres_run_saved_query', {
      name: 'emails_by_country',
      params: { country: 'Brazil' },
    });
    expect(code(refused)).toBe('policy_denied');
    expect(text(refused)).toContain('public.customer.email');
    expect(sent.slice(before)).not.toContain(emails);

    const cities = await callTool('postgres_run_saved_query', {
      name: 'cities_by_country',
      params: { country: 'Brazil' },
    });
    expect(code(cities)).toBe('ok');
    expect(sent.slice(before)).toContain(SAVED.cities_by_country.sql);

    const cleared = await callTool(
      'postgres_run_saved_query',
      { name: 'emails_by_country', params: { country: 'Brazil' } },
      { attributes: { clearance: 'confidential' } },
    );
    expect(code(cleared)).toBe('ok');
    expect(
      cleared.kind === 'result' &&
        (cleared.result.structuredContent as { rows: unknown[] }).rows.length,
    ).toBeGreaterThan(0);
    expect(sent.slice(before)).toContain(emails);
  });
});
