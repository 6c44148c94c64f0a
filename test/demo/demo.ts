/**
 * `pnpm demo`: the main job end to end on an embedded default.
 *
 * Starts a real PostgreSQL (embedded PostgreSQL 18 from npm, or DATABASE_URL when set), loads a
 * data set with a least-privilege read role (Chinook when the `../shared` kit sits beside the
 * repository, else the generated sample database of the test kit: see `HMCP_DEMO_DATASET`),
 * starts the built `hardened-mcp-postgres` over stdio and drives it with the MCP SDK client like
 * an agent would: list, describe, a useful query (customer e-mails, phones and, on the generated
 * data, card numbers redacted), the planted API keys (generated data only, redacted), a blocked
 * `COMMIT; DROP TABLE` attempt, a refused write, then prints and verifies the audit trail; last,
 * row-level security: two principals mapped to different database roles (one by a forwarded
 * `country` claim) see different customers.
 *
 * Environment: `HMCP_DEMO_DATASET` = `auto` (default: Chinook if present, else generated),
 * `chinook` (fail when the kit is missing) or `generated`; plus the test kit's `DATABASE_URL`,
 * `HMCP_TEST_PG`, `HMCP_TEST_PG_PORT` and `HMCP_DEBUG`.
 *
 * Any failure ends the demo within a bounded time with one line on stderr and exit code 1, with
 * PostgreSQL stopped (see `run.ts`).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chinookSqlPath,
  createChinookDatabase,
  createSampleDatabase,
  SAMPLE_DATABASE_SEED,
  SAMPLE_DEFAULT_CUSTOMERS,
  startTestPostgres,
} from '@hardened-mcp/test-kit';
import pg from 'pg';
import { queryAs } from '../support/db.ts';
import { startPostgresServer, textOf } from '../support/server.ts';
import { type Defer, runDemo } from './run.ts';
import { demoAuditFile } from './session.ts';
import { indent, printAuditTrail, printTools, step } from './ui.ts';

/** Which data set the demo loads, and the one line that says so. */
interface DatasetChoice {
  readonly kind: 'chinook' | 'generated';
  readonly line: string;
}

/**
 * Reads `HMCP_DEMO_DATASET` (`auto`, `chinook`, `generated`; default `auto`).
 *
 * @throws Error for another value.
 */
function chooseDataset(): DatasetChoice {
  const wanted = process.env.HMCP_DEMO_DATASET?.trim() || 'auto';
  const chinookPresent = existsSync(chinookSqlPath);
  const generated: DatasetChoice = {
    kind: 'generated',
    line: `generated sample data (fixed seed ${SAMPLE_DATABASE_SEED}, ${SAMPLE_DEFAULT_CUSTOMERS} customers)${chinookPresent ? '' : `: no Chinook at ${chinookSqlPath}`}`,
  };
  switch (wanted) {
    case 'auto':
      return chinookPresent ? { kind: 'chinook', line: `Chinook (${chinookSqlPath})` } : generated;
    case 'chinook':
      return { kind: 'chinook', line: `Chinook (${chinookSqlPath})` };
    case 'generated':
      return generated;
    default:
      throw new Error(
        `HMCP_DEMO_DATASET must be "auto", "chinook" or "generated", got ${JSON.stringify(wanted)}.`,
      );
  }
}

async function main(defer: Defer): Promise<void> {
  const dataset = chooseDataset();
  step('Starting PostgreSQL and loading the data set');
  console.log(`    data set: ${dataset.line}`);
  const pg = await startTestPostgres();
  defer(() => pg.stop());
  console.log(`    ${pg.kind} PostgreSQL ${pg.version}`);
  const db =
    dataset.kind === 'chinook' ? await createChinookDatabase(pg) : await createSampleDatabase(pg);
  defer(() => db.drop());
  console.log(`    database ${db.database}, least-privilege read role ${db.readRole}`);
  const auditFile = demoAuditFile('postgres');
  let session: Awaited<ReturnType<typeof startPostgresServer>> | undefined;
  defer(async () => session?.close());
  step('Starting hardened-mcp-postgres over stdio (read-only mode)');
  session = await startPostgresServer({
    env: { POSTGRES_URL: db.readUrl },
    config: {
      identity: { principal: 'alice', roles: ['analyst'] },
      roles: { analyst: ['postgres:read'] },
      audit: { stderr: false, file: auditFile },
      log: { level: 'warn' },
    },
    clientName: 'demo-agent',
  });
  const { client } = session;
  await printTools(client);

  step('postgres_list_tables');
  console.log(
    indent(textOf(await client.callTool({ name: 'postgres_list_tables', arguments: {} })), 20),
  );

  step('postgres_describe_table customer');
  const described = await client.callTool({
    name: 'postgres_describe_table',
    arguments: { table: 'customer' },
  });
  const d = described.structuredContent as {
    columns: { name: string; type: string }[];
    primaryKey: string[];
    rowEstimate: number;
  };
  console.log(
    indent(
      `${d.columns.map((c) => `${c.name} ${c.type}`).join(', ')}\nprimary key: ${d.primaryKey.join(', ')}; row estimate: ${d.rowEstimate}`,
    ),
  );

  const contact =
    dataset.kind === 'generated' ? 'c.email, c.phone, c.card_number' : 'c.email, c.phone';
  step('postgres_query: top customers by spend, with contact details (PII is redacted)');
  const top = await client.callTool({
    name: 'postgres_query',
    arguments: {
      sql: `SELECT c.first_name, c.last_name, ${contact}, c.country, sum(i.total) AS spent
              FROM customer c JOIN invoice i USING (customer_id)
             WHERE c.country = ANY($1)
             GROUP BY c.customer_id ORDER BY spent DESC LIMIT 5`,
      params: ['{Brazil,Czech Republic,USA}'],
    },
  });
  console.log(indent(textOf(top)));

  if (dataset.kind === 'generated') {
    step('postgres_query: integration credentials (the planted API keys are redacted)');
    const keys = await client.callTool({
      name: 'postgres_query',
      arguments: {
        sql: 'SELECT service, owner_email, api_key FROM integration_credential ORDER BY integration_id',
      },
    });
    console.log(indent(textOf(keys)));
  }

  step('Attack: stacked statements "SELECT 1; COMMIT; DROP TABLE customer"');
  const attack = await client.callTool({
    name: 'postgres_query',
    arguments: { sql: 'SELECT 1; COMMIT; DROP TABLE customer' },
  });
  console.log(indent(textOf(attack)));

  step('Attack: read a server file with pg_read_file');
  const file = await client.callTool({
    name: 'postgres_query',
    arguments: { sql: "SELECT pg_read_file('/etc/passwd')" },
  });
  console.log(indent(textOf(file)));

  step('Write attempt in read-only mode: postgres_delete_rows');
  try {
    await client.callTool({
      name: 'postgres_delete_rows',
      arguments: { table: 'customer', key: { customer_id: 1 } },
    });
    console.log('    (unexpected: the call was accepted)');
  } catch (err) {
    console.log(
      indent(
        `refused: ${(err as Error).message.replace(/^MCP error -?\d+: /, '')} (write tools do not exist in read-only mode; same answer as for an unknown tool)`,
      ),
    );
  }

  const count = await client.callTool({
    name: 'postgres_query',
    arguments: { sql: 'SELECT count(*) AS customers FROM customer' },
  });
  step('The customer table is intact');
  console.log(indent(textOf(count), 8));

  await session.close();
  session = undefined;

  await rowLevelSecurity(db, defer);
  await printAuditTrail(auditFile);
}

/**
 * Per-principal database roles and row-level security (Postgres README, "Per-principal roles and
 * row-level security"): a NOINHERIT login role holding nothing, a regional role whose policy reads
 * the forwarded `country` claim from `hardened_mcp.claims`, a manager role that sees all.
 */
async function rowLevelSecurity(
  db: { adminUrl: string; readUrl: string; database: string },
  defer: Defer,
): Promise<void> {
  step('Row-level security: each principal runs as its own database role');
  const ident = pg.escapeIdentifier;
  const tag = randomBytes(4).toString('hex');
  const login = `hmcp_demo_login_${tag}`;
  const regional = `hmcp_demo_region_${tag}`;
  const manager = `hmcp_demo_mgr_${tag}`;
  const password = randomBytes(16).toString('hex');
  // Roles are cluster-wide: dropped (with their grants and policies) before the database goes.
  defer(async () => {
    for (const role of [login, regional, manager])
      await queryAs(db.adminUrl, `DROP OWNED BY ${ident(role)}; DROP ROLE ${ident(role)}`).catch(
        () => undefined,
      );
  });
  await queryAs(
    db.adminUrl,
    [
      `CREATE ROLE ${ident(login)} LOGIN NOINHERIT PASSWORD '${password}' CONNECTION LIMIT 8`,
      `GRANT CONNECT ON DATABASE ${ident(db.database)} TO ${ident(login)}`,
      `CREATE ROLE ${ident(regional)} NOLOGIN`,
      `CREATE ROLE ${ident(manager)} NOLOGIN`,
      `GRANT USAGE ON SCHEMA public TO ${ident(regional)}, ${ident(manager)}`,
      `GRANT SELECT ON customer TO ${ident(regional)}, ${ident(manager)}`,
      `GRANT ${ident(regional)}, ${ident(manager)} TO ${ident(login)}`,
      'ALTER TABLE customer ENABLE ROW LEVEL SECURITY',
      `CREATE POLICY region_own_country ON customer FOR SELECT TO ${ident(regional)}
         USING (country = current_setting('hardened_mcp.claims', true)::jsonb ->> 'country')`,
      `CREATE POLICY manager_all ON customer FOR SELECT TO ${ident(manager)} USING (true)`,
    ].join(';\n'),
  );
  const url = new URL(db.readUrl);
  url.username = login;
  url.password = password;
  const sql =
    'SELECT country, count(*) AS customers FROM customer GROUP BY country ORDER BY 2 DESC, 1 LIMIT 5';
  for (const [principal, identity, note] of [
    [
      'bruna',
      { roles: ['regional'], claims: { country: 'Brazil' } },
      `role ${regional}, claim country=Brazil`,
    ],
    ['max', { roles: ['manager'] }, `role ${manager}`],
  ] as const) {
    const s = await startPostgresServer({
      env: { POSTGRES_URL: url.toString() },
      config: {
        identity: { principal, ...identity },
        roles: { regional: ['postgres:read'], manager: ['postgres:read'] },
        postgres: {
          databaseRoles: {
            rules: [
              { identityRole: 'regional', read: regional },
              { identityRole: 'manager', read: manager },
            ],
          },
        },
        audit: {
          stderr: false,
          file: demoAuditFile('rls'),
        },
        log: { level: 'warn' },
      },
      clientName: 'demo-agent',
    });
    try {
      const r = await s.client.callTool({ name: 'postgres_query', arguments: { sql } });
      if (r.isError) throw new Error(`RLS step failed for ${principal}: ${textOf(r)}`);
      const countries = (r.structuredContent as { rows: unknown[][] }).rows.map((row) => row[0]);
      if (principal === 'bruna' && countries.some((c) => c !== 'Brazil'))
        throw new Error(`RLS step: bruna saw customers outside Brazil (${countries.join(', ')})`);
      console.log(`    ${principal} (${note}):`);
      console.log(indent(textOf(r), 8));
    } finally {
      await s.close();
    }
  }
}

await runDemo(main);
