/**
 * Startup walls of `hardened-mcp-postgres`: privileged read roles, bad configuration and
 * unreachable databases are refused with one clear stderr line, a non-zero exit, no stack
 * trace and no password.
 */
import {
  type ChinookDatabase,
  type CreateRoleOptions,
  createChinookDatabase,
  createRole,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBin, startPostgresServer, writeTempConfig } from '../support/server.ts';

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

/** One line on stderr, exit 1, no stack trace, no password. */
function expectCleanRefusal(
  result: { code: number | null; stdout: string; stderr: string },
  pattern: RegExp,
  secret?: string,
) {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at |Error:/);
  if (secret) expect(result.stderr).not.toContain(secret);
}

describe('privileged read credentials are refused', () => {
  const cases: { what: string; opts: CreateRoleOptions; reason: RegExp }[] = [
    { what: 'superuser', opts: { superuser: true }, reason: /is a superuser/ },
    { what: 'BYPASSRLS', opts: { bypassrls: true }, reason: /has BYPASSRLS/ },
    {
      what: 'write grant',
      opts: { grantWriteOn: 'invoice' },
      reason: /can write to public\.invoice/,
    },
    {
      what: 'pg_read_server_files member',
      opts: { memberOf: ['pg_read_server_files'] },
      reason: /is a member of pg_read_server_files/,
    },
    {
      what: 'pg_write_server_files member',
      opts: { memberOf: ['pg_write_server_files'] },
      reason: /is a member of pg_write_server_files/,
    },
    {
      what: 'pg_execute_server_program member',
      opts: { memberOf: ['pg_execute_server_program'] },
      reason: /is a member of pg_execute_server_program/,
    },
  ];
  it.each(cases)('$what', async ({ opts, reason }) => {
    const role = await createRole(db, opts);
    try {
      const r = await runBin({ POSTGRES_URL: role.url });
      expectCleanRefusal(
        r,
        /^hardened-mcp-postgres: refusing to start: the read credential \(env POSTGRES_URL\) role hmcp_\w+ /,
        new URL(role.url).password,
      );
      expect(r.stderr).toMatch(reason);
    } finally {
      await role.drop();
    }
  });

  it('the write role used as the read credential is refused', async () => {
    const r = await runBin({ POSTGRES_URL: db.writeUrl });
    expectCleanRefusal(
      r,
      /refusing to start: .* can write to public\./,
      new URL(db.writeUrl).password,
    );
  });

  it('--allow-privileged-role starts with a loud warning, and the SQL walls still hold', async () => {
    const role = await createRole(db, { superuser: true });
    try {
      const s = await startPostgresServer({
        env: { POSTGRES_URL: role.url },
        args: ['--allow-privileged-role'],
      });
      try {
        expect(s.stderr()).toMatch(/DANGER: the read role hmcp_\w+ is a superuser/);
        const r = await s.client.callTool({
          name: 'postgres_query',
          arguments: { sql: "SELECT pg_read_file('/etc/passwd')" },
        });
        expect(r.isError).toBe(true);
        const drop = await s.client.callTool({
          name: 'postgres_query',
          arguments: { sql: 'SELECT 1; DROP TABLE invoice_line' },
        });
        expect(drop.isError).toBe(true);
      } finally {
        await s.close();
      }
    } finally {
      await role.drop();
    }
  });
});

describe('bad configuration', () => {
  it('no read credential', async () => {
    expectCleanRefusal(
      await runBin({}),
      /^hardened-mcp-postgres: no read credential: set POSTGRES_URL$/,
    );
  });

  it('unknown config key', async () => {
    const cfg = writeTempConfig({
      mode: 'read-only',
      postgres: { schemas: ['public'], statment_timeout: 5 },
    });
    expectCleanRefusal(
      await runBin({ POSTGRES_URL: db.readUrl }, ['--config', cfg]),
      /^hardened-mcp-postgres: invalid configuration: postgres: unknown key statment_timeout$/,
    );
  });

  it('invalid value', async () => {
    const cfg = writeTempConfig({ mode: 'yolo' });
    expectCleanRefusal(
      await runBin({ POSTGRES_URL: db.readUrl }, ['--config', cfg]),
      /^hardened-mcp-postgres: invalid configuration: mode: /,
    );
  });

  it('missing config file', async () => {
    expectCleanRefusal(
      await runBin({ POSTGRES_URL: db.readUrl }, ['--config', '/nonexistent/hmcp.yaml']),
      /^hardened-mcp-postgres: cannot read config file \/nonexistent\/hmcp\.yaml \(ENOENT\)$/,
    );
  });

  it('unknown flag is a usage error (exit 2)', async () => {
    const r = await runBin({ POSTGRES_URL: db.readUrl }, ['--read-write-please']);
    expect(r.code).toBe(2);
  });
});

describe('unreachable or rejecting databases', () => {
  it('connection refused', async () => {
    const url = 'postgres://reader:Sup3r-Secret-Pw@127.0.0.1:1/chinook';
    expectCleanRefusal(
      await runBin({ POSTGRES_URL: url }),
      /^hardened-mcp-postgres: cannot connect to PostgreSQL at 127\.0\.0\.1:1 \(database chinook\) with the read credential \(env POSTGRES_URL\): connection refused$/,
      'Sup3r-Secret-Pw',
    );
  });

  it('unknown role or wrong password', async () => {
    const url = new URL(db.readUrl);
    url.username = 'hmcp_no_such_role';
    url.password = 'Wr0ng-Password-123';
    const r = await runBin({ POSTGRES_URL: url.toString() });
    expectCleanRefusal(
      r,
      /^hardened-mcp-postgres: cannot connect to PostgreSQL at .* with the read credential \(env POSTGRES_URL\): (password authentication failed|authentication rejected)$/,
      'Wr0ng-Password-123',
    );
  });

  it.runIf(process.env.HMCP_TEST_PG !== 'external' && !process.env.DATABASE_URL)(
    'wrong password for a real role (embedded server uses password auth)',
    async () => {
      const url = new URL(db.readUrl);
      url.password = 'Wr0ng-Password-456';
      expectCleanRefusal(
        await runBin({ POSTGRES_URL: url.toString() }),
        /password authentication failed$/,
        'Wr0ng-Password-456',
      );
    },
  );

  it('unknown database', async () => {
    const url = new URL(db.readUrl);
    url.pathname = '/hmcp_no_such_db';
    expectCleanRefusal(
      await runBin({ POSTGRES_URL: url.toString() }),
      /database does not exist$/,
      new URL(db.readUrl).password,
    );
  });
});
