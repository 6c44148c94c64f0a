/**
 * Per-principal database roles and row-level security (issue 16 §1), against a real PostgreSQL
 * (`HMCP_TEST_PG=embedded` for PostgreSQL 18, `HMCP_TEST_PG=external` with `DATABASE_URL` for the
 * machine's server) and the Chinook sample data, over stdio (principal from configuration) and
 * HTTP (principal from a verified OAuth token).
 *
 * The database is set up as the Postgres README's "Per-principal roles and row-level security"
 * section describes: a login role that is NOINHERIT and holds nothing itself, a `sales_rep` role
 * whose RLS policy on `customer` shows a rep only the customers they support
 * (`customer.support_rep_id` = the employee whose e-mail is the principal), and a `sales_manager`
 * role that sees every customer.
 */
import { randomBytes } from 'node:crypto';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryAs } from '../support/db.ts';
import {
  connectHttpClient,
  type HttpServerProcess,
  type JwksServer,
  makeSigningKey,
  mintToken,
  type SigningKey,
  startHttpServer,
  startJwksServer,
} from '../support/http.ts';
import {
  runBin,
  type ServerSession,
  startPostgresServer,
  textOf,
  writeTempConfig as writeTempConfigFile,
} from '../support/server.ts';

const ident = pg.escapeIdentifier;

let server: TestPostgres;
let db: ChinookDatabase;
const tag = randomBytes(6).toString('hex');
const LOGIN = `hmcp_login_${tag}`;
const REP = `hmcp_rep_${tag}`;
const MANAGER = `hmcp_mgr_${tag}`;
const BYPASS = `hmcp_bypass_${tag}`;
const REP_WRITER = `hmcp_repw_${tag}`;
const REGIONAL = `hmcp_region_${tag}`;
const LOGIN_PASSWORD = randomBytes(16).toString('hex');
let loginUrl: string;
/** customer_id of each customer, by support_rep_id, as the superuser sees them. */
let customersByRep: Map<number, number[]>;
let allCustomers: number[];
/** customer_id of each customer, by country, as the superuser sees them. */
let customersByCountry: Map<string, number[]>;

const JANE = 'jane@chinookcorp.com'; // employee 3
const STEVE = 'steve@chinookcorp.com'; // employee 5

type Table = { columns: { name: string }[]; rows: unknown[][] };

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
  const database = ident(db.database);
  await queryAs(
    db.adminUrl,
    [
      // The login role: a member of the mapped roles, NOINHERIT, holding nothing itself.
      `CREATE ROLE ${ident(LOGIN)} LOGIN NOINHERIT PASSWORD '${LOGIN_PASSWORD}' CONNECTION LIMIT 32`,
      `GRANT CONNECT ON DATABASE ${database} TO ${ident(LOGIN)}`,
      `CREATE ROLE ${ident(REP)} NOLOGIN`,
      `CREATE ROLE ${ident(MANAGER)} NOLOGIN`,
      `CREATE ROLE ${ident(BYPASS)} NOLOGIN BYPASSRLS`,
      `GRANT USAGE ON SCHEMA public TO ${ident(REP)}, ${ident(MANAGER)}, ${ident(BYPASS)}`,
      `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${ident(REP)}, ${ident(MANAGER)}, ${ident(BYPASS)}`,
      `GRANT ${ident(REP)}, ${ident(MANAGER)}, ${ident(BYPASS)} TO ${ident(LOGIN)}`,
      // A rep's write role: may change the company of the customers they support, nothing else.
      `CREATE ROLE ${ident(REP_WRITER)} NOLOGIN`,
      `GRANT USAGE ON SCHEMA public TO ${ident(REP_WRITER)}`,
      `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${ident(REP_WRITER)}`,
      `GRANT UPDATE (company) ON customer TO ${ident(REP_WRITER)}`,
      `GRANT ${ident(REP_WRITER)} TO ${ident(LOGIN)}`,
      // The policy of the README: a rep sees the customers they support.
      'ALTER TABLE customer ENABLE ROW LEVEL SECURITY',
      `CREATE POLICY rep_own_customers ON customer FOR SELECT TO ${ident(REP)}
         USING (support_rep_id = (SELECT e.employee_id FROM employee e
                                   WHERE e.email = current_setting('hardened_mcp.principal', true)))`,
      `CREATE POLICY manager_all_customers ON customer FOR SELECT TO ${ident(MANAGER)} USING (true)`,
      `CREATE POLICY rep_writes_own_customers ON customer FOR ALL TO ${ident(REP_WRITER)}
         USING (support_rep_id = (SELECT e.employee_id FROM employee e
                                   WHERE e.email = current_setting('hardened_mcp.principal', true)))`,
      // A policy on a forwarded claim: a regional analyst sees the customers of their country.
      `CREATE ROLE ${ident(REGIONAL)} NOLOGIN`,
      `GRANT USAGE ON SCHEMA public TO ${ident(REGIONAL)}`,
      `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${ident(REGIONAL)}`,
      `GRANT ${ident(REGIONAL)} TO ${ident(LOGIN)}`,
      `CREATE POLICY region_own_country ON customer FOR SELECT TO ${ident(REGIONAL)}
         USING (country = current_setting('hardened_mcp.claims', true)::jsonb ->> 'country')`,
      // A SECURITY DEFINER function owned by the superuser that would read past the policy.
      `CREATE FUNCTION public.all_customer_ids() RETURNS SETOF int LANGUAGE sql SECURITY DEFINER
         AS 'SELECT customer_id FROM public.customer'`,
      `GRANT EXECUTE ON FUNCTION public.all_customer_ids() TO ${ident(REP)}`,
    ].join(';\n'),
  );
  const url = new URL(db.readUrl);
  url.username = LOGIN;
  url.password = LOGIN_PASSWORD;
  loginUrl = url.toString();
  const rows = await queryAs<{ customer_id: number; support_rep_id: number; country: string }>(
    db.adminUrl,
    'SELECT customer_id, support_rep_id, country FROM customer ORDER BY customer_id',
  );
  customersByCountry = new Map();
  for (const r of rows)
    customersByCountry.set(r.country, [
      ...(customersByCountry.get(r.country) ?? []),
      r.customer_id,
    ]);
  customersByRep = new Map();
  for (const r of rows)
    customersByRep.set(r.support_rep_id, [
      ...(customersByRep.get(r.support_rep_id) ?? []),
      r.customer_id,
    ]);
  allCustomers = rows.map((r) => r.customer_id);
});

afterAll(async () => {
  await db?.drop();
  if (server) {
    for (const role of [LOGIN, REP, MANAGER, BYPASS, REP_WRITER, REGIONAL])
      await queryAs(server.adminUrl, `DROP ROLE IF EXISTS ${ident(role)}`).catch(() => undefined);
  }
  await server?.stop();
});

/** The `postgres.databaseRoles` of these tests. */
function databaseRoles(extra: Record<string, unknown> = {}) {
  return {
    rules: [
      { identityRole: 'manager', read: MANAGER },
      { identityRole: 'regional', read: REGIONAL },
      { principal: JANE, read: REP },
      { principal: STEVE, read: REP },
    ],
    ...extra,
  };
}

const CUSTOMERS_SQL = 'SELECT customer_id FROM customer ORDER BY customer_id';

function idsOf(result: unknown): number[] {
  const t = (result as { structuredContent: Table }).structuredContent;
  return t.rows.map((r) => Number(r[0]));
}

describe('stdio: the principal from configuration', () => {
  const sessions: ServerSession[] = [];
  afterAll(async () => {
    for (const s of sessions) await s.close();
  });
  const start = async (principal: string, roles: string[] = ['rep']) => {
    const s = await startPostgresServer({
      env: { POSTGRES_URL: loginUrl },
      config: {
        identity: { principal, roles },
        roles: { rep: ['postgres:read'], manager: ['postgres:read'] },
        postgres: { databaseRoles: databaseRoles() },
      },
    });
    sessions.push(s);
    return s;
  };

  it('a sales rep sees only the customers they support; another rep sees theirs', async () => {
    const jane = await start(JANE);
    const steve = await start(STEVE);
    const mine = await jane.client.callTool({
      name: 'postgres_query',
      arguments: { sql: CUSTOMERS_SQL, maxRows: 1000 },
    });
    expect(mine.isError, textOf(mine)).toBeFalsy();
    expect(idsOf(mine)).toEqual(customersByRep.get(3));
    const theirs = await steve.client.callTool({
      name: 'postgres_query',
      arguments: { sql: CUSTOMERS_SQL, maxRows: 1000 },
    });
    expect(idsOf(theirs)).toEqual(customersByRep.get(5));
    expect(customersByRep.get(3)?.length).toBeGreaterThan(0);
    expect(idsOf(theirs)).not.toEqual(idsOf(mine));
    // The role and the principal the transaction ran with.
    const who = await jane.client.callTool({
      name: 'postgres_query',
      arguments: { sql: 'SELECT current_user::text AS u, session_user::text AS s' },
    });
    expect((who.structuredContent as Table).rows).toEqual([[REP, LOGIN]]);
  });

  it('a principal matched by an identity role (manager) sees every customer', async () => {
    const boss = await start('nancy@chinookcorp.com', ['manager']);
    const r = await boss.client.callTool({
      name: 'postgres_query',
      arguments: { sql: CUSTOMERS_SQL, maxRows: 1000 },
    });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(idsOf(r)).toEqual(allCustomers);
  });

  it('a principal with no mapping is refused, never run as the login role', async () => {
    const stranger = await start('mallory@example.com');
    for (const [name, args] of [
      ['postgres_query', { sql: CUSTOMERS_SQL }],
      ['postgres_list_tables', {}],
      ['postgres_describe_table', { table: 'customer' }],
    ] as const) {
      const r = await stranger.client.callTool({ name, arguments: args });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/^forbidden: no database role is mapped for this principal/);
    }
  });

  it('a default role serves unmapped principals only when configured', async () => {
    const s = await startPostgresServer({
      env: { POSTGRES_URL: loginUrl },
      config: {
        identity: { principal: 'michael@chinookcorp.com', roles: ['rep'] },
        roles: { rep: ['postgres:read'] },
        postgres: { databaseRoles: databaseRoles({ default: { read: REP } }) },
      },
    });
    sessions.push(s);
    const r = await s.client.callTool({
      name: 'postgres_query',
      arguments: { sql: CUSTOMERS_SQL },
    });
    expect(r.isError, textOf(r)).toBeFalsy();
    // Michael (employee 6) supports no customer: the policy shows him none.
    expect(idsOf(r)).toEqual([]);
  });

  it('a policy reads a configured claim (identity.claims.country) from hardened_mcp.claims', async () => {
    const startRegional = async (country: string) => {
      const s = await startPostgresServer({
        env: { POSTGRES_URL: loginUrl },
        config: {
          identity: { principal: 'analyst@example.com', roles: ['regional'], claims: { country } },
          roles: { regional: ['postgres:read'] },
          postgres: { databaseRoles: databaseRoles() },
        },
      });
      sessions.push(s);
      return s;
    };
    const brazil = await startRegional('Brazil');
    const canada = await startRegional('Canada');
    for (const [s, country] of [
      [brazil, 'Brazil'],
      [canada, 'Canada'],
    ] as const) {
      const r = await s.client.callTool({
        name: 'postgres_query',
        arguments: { sql: CUSTOMERS_SQL, maxRows: 1000 },
      });
      expect(r.isError, textOf(r)).toBeFalsy();
      expect(customersByCountry.get(country)?.length).toBeGreaterThan(0);
      expect(idsOf(r)).toEqual(customersByCountry.get(country));
    }
  });

  it('refuses to start with a reserved or oversized identity claim', async () => {
    for (const claims of [{ principal: 'steve@chinookcorp.com' }, { country: 'x'.repeat(257) }]) {
      const r = await runBin({ POSTGRES_URL: loginUrl }, [
        '--config',
        writeConfig({ identity: { principal: JANE, roles: ['rep'], claims } }),
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/identity\.claims/);
    }
  });

  describe('the caller cannot read or change the settings, nor escape the role', () => {
    let jane: ServerSession;
    beforeAll(async () => {
      jane = await start(JANE);
    });
    const attacks = [
      "SELECT current_setting('hardened_mcp.principal')",
      "SELECT current_setting('hardened_mcp.claims', true)",
      "SELECT pg_catalog.current_setting('hardened_mcp.principal')",
      "SELECT set_config('hardened_mcp.principal', 'steve@chinookcorp.com', true)",
      "SELECT pg_catalog.set_config('hardened_mcp.principal', 'steve@chinookcorp.com', false)",
      `SELECT "set_config"('role', '${MANAGER}', true)`,
      `SELECT PG_CATALOG.SET_CONFIG('role', '${MANAGER}', true)`,
      `SELECT * FROM customer WHERE set_config('role', '${MANAGER}', true) IS NOT NULL`,
      `WITH x AS (SELECT set_config('role', '${MANAGER}', true)) SELECT * FROM x, customer`,
      `SET ROLE ${MANAGER}`,
      'RESET ROLE',
      `SET LOCAL ROLE ${MANAGER}`,
      "SET hardened_mcp.principal = 'steve@chinookcorp.com'",
      `SET SESSION AUTHORIZATION ${MANAGER}`,
      'SHOW hardened_mcp.principal',
      "SELECT setting FROM pg_settings WHERE name = 'hardened_mcp.principal'",
      "SELECT setting FROM pg_catalog.pg_settings WHERE name LIKE 'hardened%'",
      'SELECT * FROM public.all_customer_ids()',
      'SELECT all_customer_ids()',
      `SELECT * FROM customer; SET ROLE ${MANAGER}`,
      "SELECT * FROM customer; SELECT set_config('hardened_mcp.principal', 'x', false)",
      `DO $$ BEGIN EXECUTE 'SET ROLE ${MANAGER}'; END $$`,
      `SELECT query_to_xml('SELECT * FROM customer', true, true, '')`,
      "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(x int)",
    ];
    for (const sql of attacks) {
      it(`refused: ${sql.slice(0, 90)}`, async () => {
        const r = await jane.client.callTool({ name: 'postgres_query', arguments: { sql } });
        expect(r.isError).toBe(true);
        // The SQL guard is the wall here: a mapped role can always RESET ROLE to the login role
        // (PostgreSQL docs, SET ROLE), so no statement that changes or reads settings may run.
        expect(textOf(r)).toMatch(/^policy_denied:/);
        expect(textOf(r)).not.toContain(STEVE);
      });
    }
    it('after every attack the rep still sees only their own customers', async () => {
      const r = await jane.client.callTool({
        name: 'postgres_query',
        arguments: { sql: CUSTOMERS_SQL, maxRows: 1000 },
      });
      expect(idsOf(r)).toEqual(customersByRep.get(3));
    });
    it('the explain tool runs as the mapped role too (no plan across the policy)', async () => {
      const r = await jane.client.callTool({
        name: 'postgres_explain',
        arguments: { sql: CUSTOMERS_SQL },
      });
      expect(r.isError, textOf(r)).toBeFalsy();
      // The plan of a rep's query carries the policy's filter (its subplan on employee).
      expect(JSON.stringify(r.structuredContent)).toMatch(/employee/);
    });
  });
});

describe('writes run as the principal write role, under its policy', () => {
  const sessions: ServerSession[] = [];
  afterAll(async () => {
    for (const s of sessions) await s.close();
  });
  const start = async (principal: string) => {
    const s = await startPostgresServer({
      env: { POSTGRES_URL: loginUrl, POSTGRES_WRITE_URL: loginUrl },
      config: {
        mode: 'read-write',
        identity: { principal, roles: ['rep'] },
        roles: { rep: ['postgres:read', 'postgres:write'] },
        tools: { settings: { postgres_update_rows: { approval: 'none' } } },
        postgres: {
          tables: { writable: ['customer'] },
          databaseRoles: {
            rules: [
              { principal: JANE, read: REP, write: REP_WRITER },
              { principal: STEVE, read: REP },
            ],
          },
        },
      },
    });
    sessions.push(s);
    return s;
  };
  const companyOf = async (id: number) =>
    (
      await queryAs<{ company: string | null }>(
        db.adminUrl,
        'SELECT company FROM customer WHERE customer_id = $1',
        [id],
      )
    )[0]?.company;

  it("a rep changes their own customer; another rep's customer is out of reach", async () => {
    const jane = await start(JANE);
    const own = customersByRep.get(3)?.[0] ?? 0;
    const theirs = customersByRep.get(5)?.[0] ?? 0;
    const before = await companyOf(theirs);
    const mine = await jane.client.callTool({
      name: 'postgres_update_rows',
      arguments: { table: 'customer', key: { customer_id: own }, set: { company: `Jane ${tag}` } },
    });
    expect(mine.isError, textOf(mine)).toBeFalsy();
    expect(await companyOf(own)).toBe(`Jane ${tag}`);
    const other = await jane.client.callTool({
      name: 'postgres_update_rows',
      arguments: { table: 'customer', key: { customer_id: theirs }, set: { company: 'hijacked' } },
    });
    // The policy hides the row from the write role: nothing matches, nothing changes.
    expect(JSON.stringify(other.structuredContent ?? textOf(other))).not.toMatch(
      /"affectedRows":1/,
    );
    expect(await companyOf(theirs)).toBe(before);
    // A column the write role holds no privilege on is refused by the database.
    const email = await jane.client.callTool({
      name: 'postgres_update_rows',
      arguments: { table: 'customer', key: { customer_id: own }, set: { email: 'x@example.com' } },
    });
    expect(email.isError).toBe(true);
    expect(textOf(email)).toMatch(/^policy_denied: permission denied by the database/);
  });

  it('a principal mapped without a write role cannot write', async () => {
    const steve = await start(STEVE);
    const r = await steve.client.callTool({
      name: 'postgres_update_rows',
      arguments: {
        table: 'customer',
        key: { customer_id: customersByRep.get(5)?.[0] ?? 0 },
        set: { company: 'x' },
      },
    });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(
      /^forbidden: no database role is mapped for this principal \(write\)/,
    );
  });
});

describe('startup checks the shape of the roles', () => {
  it('refuses a mapping to a role the login role is not a member of', async () => {
    const r = await runBin({ POSTGRES_URL: db.readUrl }, [
      '--config',
      writeConfig({ postgres: { databaseRoles: databaseRoles() } }),
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /refusing to start: postgres\.databaseRoles: the login role cannot SET ROLE to/,
    );
    expect(r.stderr).not.toContain(new URL(db.readUrl).password);
  });

  it('refuses a login role that holds privileges itself', async () => {
    // The stock read role of the test database holds SELECT itself; make it a member too.
    await queryAs(
      db.adminUrl,
      `GRANT ${ident(REP)}, ${ident(MANAGER)}, ${ident(REGIONAL)} TO ${ident(db.readRole)}`,
    );
    try {
      const r = await runBin({ POSTGRES_URL: db.readUrl }, [
        '--config',
        writeConfig({ postgres: { databaseRoles: databaseRoles() } }),
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/holds privileges itself on public\./);
    } finally {
      await queryAs(
        db.adminUrl,
        `REVOKE ${ident(REP)}, ${ident(MANAGER)}, ${ident(REGIONAL)} FROM ${ident(db.readRole)}`,
      );
    }
  });

  it('refuses a mapped role with BYPASSRLS (it would switch the policies off)', async () => {
    const r = await runBin({ POSTGRES_URL: loginUrl }, [
      '--config',
      writeConfig({
        postgres: { databaseRoles: { rules: [{ principal: JANE, read: BYPASS }] } },
      }),
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`maps principals to role ${BYPASS}, which has BYPASSRLS`));
  });
});

describe('HTTP: the principal from the token', () => {
  let jwks: JwksServer;
  let key: SigningKey;
  let http: HttpServerProcess;
  beforeAll(async () => {
    key = await makeSigningKey('rls');
    jwks = await startJwksServer([key.publicJwk]);
    http = await startHttpServer({
      env: { POSTGRES_URL: loginUrl },
      config: {
        auth: {
          mode: 'oauth',
          oauth: {
            issuer: jwks.origin,
            jwksUrl: jwks.jwksUrl('rls'),
            scopeRoles: {
              'sales.manager': ['manager'],
              'postgres:read': ['rep'],
              'sales.regional': ['regional'],
            },
            forwardClaims: ['country', 'department'],
          },
        },
        roles: {
          rep: ['postgres:read'],
          manager: ['postgres:read'],
          regional: ['postgres:read'],
        },
        // One pooled connection: every call below reuses the connection of the one before,
        // so nothing of one principal's transaction may survive into the next.
        postgres: { databaseRoles: databaseRoles(), pool: { max: 1 } },
      },
    });
  });
  afterAll(async () => {
    await http?.stop();
    await jwks?.close();
  });

  const clientFor = async (
    sub: string,
    scope = 'postgres:read',
    claims: Record<string, unknown> = {},
  ) => {
    const token = await mintToken(key, {
      sub,
      iss: jwks.origin,
      aud: http.resource,
      scope,
      ...claims,
    });
    return (await connectHttpClient(http.url, { Authorization: `Bearer ${token}` })).client;
  };

  it('a policy reads an allowlisted token claim (country); other claims are not forwarded', async () => {
    const scope = 'postgres:read sales.regional';
    const brazil = await clientFor('ana-br', scope, {
      country: 'Brazil',
      secret_note: 'never forwarded',
    });
    const canada = await clientFor('bob-ca', scope, { country: 'Canada' });
    const nowhere = await clientFor('eve-none', scope);
    try {
      // Alternating on one pooled connection: no claim survives into the next transaction.
      for (let round = 0; round < 2; round++) {
        for (const [c, expected] of [
          [brazil, customersByCountry.get('Brazil')],
          [canada, customersByCountry.get('Canada')],
          [nowhere, []],
        ] as const) {
          const r = await c.callTool({
            name: 'postgres_query',
            arguments: { sql: CUSTOMERS_SQL, maxRows: 1000 },
          });
          expect(r.isError, textOf(r)).toBeFalsy();
          expect(idsOf(r)).toEqual(expected);
        }
      }
      expect(customersByCountry.get('Brazil')?.length).toBeGreaterThan(0);
      // Only the allowlisted claims reach hardened_mcp.claims: a view owned by the superuser
      // shows the document to the test (the caller's own SQL cannot read settings).
      await queryAs(
        db.adminUrl,
        `CREATE OR REPLACE VIEW public.claims_doc_${tag} AS
           SELECT current_setting('hardened_mcp.claims', true) AS doc;
         GRANT SELECT ON public.claims_doc_${tag} TO ${ident(REGIONAL)}`,
      );
      const doc = await brazil.callTool({
        name: 'postgres_query',
        arguments: { sql: `SELECT doc FROM claims_doc_${tag}` },
      });
      expect(doc.isError, textOf(doc)).toBeFalsy();
      const parsed = JSON.parse(String((doc.structuredContent as Table).rows[0]?.[0]));
      expect(parsed).toEqual({
        country: 'Brazil',
        principal: 'ana-br',
        roles: ['rep', 'regional'],
        scopes: ['postgres:read', 'sales.regional'],
        transport: 'http',
      });
    } finally {
      for (const c of [brazil, canada, nowhere]) await c.close();
    }
  });

  it('a token whose forwarded claim has another shape is refused', async () => {
    const token = await mintToken(key, {
      sub: 'ana-br',
      iss: jwks.origin,
      aud: http.resource,
      scope: 'postgres:read sales.regional',
      country: { name: 'Brazil' },
    });
    await expect(
      connectHttpClient(http.url, { Authorization: `Bearer ${token}` }),
    ).rejects.toThrow();
  });

  it('each token subject sees its own customers on one shared connection', async () => {
    const jane = await clientFor(JANE);
    const steve = await clientFor(STEVE);
    const boss = await clientFor('nancy@chinookcorp.com', 'postgres:read sales.manager');
    try {
      for (let round = 0; round < 2; round++) {
        for (const [c, expected] of [
          [jane, customersByRep.get(3)],
          [steve, customersByRep.get(5)],
          [boss, allCustomers],
        ] as const) {
          const r = await c.callTool({
            name: 'postgres_query',
            arguments: { sql: CUSTOMERS_SQL, maxRows: 1000 },
          });
          expect(r.isError, textOf(r)).toBeFalsy();
          expect(idsOf(r)).toEqual(expected);
        }
      }
    } finally {
      for (const c of [jane, steve, boss]) await c.close();
    }
  });

  it('a token subject with no mapping is refused', async () => {
    const mallory = await clientFor('mallory@example.com');
    try {
      const r = await mallory.callTool({
        name: 'postgres_query',
        arguments: { sql: CUSTOMERS_SQL },
      });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/^forbidden: no database role is mapped for this principal/);
    } finally {
      await mallory.close();
    }
  });
});

/** Writes a config file for {@link runBin} (stdio, principal jane). */
function writeConfig(config: Record<string, unknown>): string {
  return writeTempConfigFile({
    identity: { principal: JANE, roles: ['rep'] },
    roles: { rep: ['postgres:read'] },
    ...config,
  });
}
