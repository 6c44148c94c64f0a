/**
 * `pnpm demo`: the main job end to end on an embedded default.
 *
 * Starts a real PostgreSQL (embedded PostgreSQL 18 from npm, or DATABASE_URL when set), loads
 * the Chinook sample database with a least-privilege read role, starts the built
 * `hardened-mcp-postgres` over stdio and drives it with the MCP SDK client like an agent would:
 * list, describe, a useful query (customer e-mails and phones redacted), a blocked
 * `COMMIT; DROP TABLE` attempt, a refused write, then prints and verifies the audit trail.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChinookDatabase, startTestPostgres } from '@hardened-mcp/test-kit';
import { startPostgresServer, textOf } from '../support/server.ts';
import { indent, printAuditTrail, printTools, step } from './ui.ts';

async function main(): Promise<void> {
  step('Starting PostgreSQL and loading Chinook');
  const pg = await startTestPostgres();
  console.log(`    ${pg.kind} PostgreSQL ${pg.version}`);
  const db = await createChinookDatabase(pg);
  console.log(`    database ${db.database}, least-privilege read role ${db.readRole}`);
  const auditFile = join(mkdtempSync(join(tmpdir(), 'hmcp-demo-')), 'audit.jsonl');
  let session: Awaited<ReturnType<typeof startPostgresServer>> | undefined;
  try {
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

    step('postgres_query: top customers by spend, with contact details (PII is redacted)');
    const top = await client.callTool({
      name: 'postgres_query',
      arguments: {
        sql: `SELECT c.first_name, c.last_name, c.email, c.phone, c.country, sum(i.total) AS spent
                FROM customer c JOIN invoice i USING (customer_id)
               WHERE c.country = ANY($1)
               GROUP BY c.customer_id ORDER BY spent DESC LIMIT 5`,
        params: ['{Brazil,Czech Republic,USA}'],
      },
    });
    console.log(indent(textOf(top)));

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

    await printAuditTrail(auditFile);
  } finally {
    await session?.close().catch(() => undefined);
    await db.drop().catch(() => undefined);
    await pg.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
