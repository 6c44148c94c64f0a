/**
 * Startup walls of `hardened-mcp-postgres`: privileged read roles, bad configuration and
 * unreachable databases are refused with one clear stderr line, a non-zero exit, no stack
 * trace and no password.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import {
  auditRecordsIn,
  type ChinookDatabase,
  type CreateRoleOptions,
  createChinookDatabase,
  createRole,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_BIN, runBin, startPostgresServer, writeTempConfig } from '../support/server.ts';

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
        const r = await s.client.callTool({
          name: 'postgres_query',
          arguments: { sql: "SELECT pg_read_file('/etc/passwd')" },
        });
        expect(r.isError).toBe(true);
        // The role checks run while the tool list is served; a call waits for them, so by its
        // answer the warning is on stderr.
        expect(s.stderr()).toMatch(/DANGER: the read role hmcp_\w+ is a superuser/);
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

/**
 * A TCP proxy to the database that holds every connection until {@link HoldingProxy.release}:
 * while it holds, the server's role checks cannot finish (nor can anything reach the database).
 */
interface HoldingProxy {
  /** `url` with its host and port replaced by the proxy's. */
  readonly url: (url: string) => string;
  /** Connections accepted so far (held or forwarded). */
  accepted(): number;
  /** Forwards held and later connections to the database. */
  release(): void;
  close(): Promise<void>;
}

async function holdingProxy(target: string): Promise<HoldingProxy> {
  const { hostname, port } = new URL(target);
  const held: Socket[] = [];
  const sockets = new Set<Socket>();
  let released = false;
  let accepted = 0;
  const forward = (client: Socket) => {
    const upstream = netConnect(Number(port), hostname);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  };
  const server: Server = createServer((client) => {
    accepted++;
    sockets.add(client);
    client.pause(); // the startup message waits in the socket until released
    if (released) forward(client);
    else held.push(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');
  return {
    url(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(address.port);
      return u.toString();
    },
    accepted: () => accepted,
    release() {
      released = true;
      for (const client of held.splice(0)) forward(client);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The bin over raw stdio: JSON-RPC lines in, answers by id out, stderr and the exit kept. */
function rawServer(env: Record<string, string>) {
  // A loaded machine may take seconds to answer tools/list while the proxy holds the
  // connection: the connection timeout must not end the held checks first.
  const config = writeTempConfig({ postgres: { pool: { connectionTimeoutMs: 120_000 } } });
  const args = [POSTGRES_BIN, '--config', config];
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  let buffer = '';
  const answers = new Map<number, (m: Record<string, unknown>) => void>();
  const early = new Map<number, Record<string, unknown>>();
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const m = JSON.parse(buffer.slice(0, i)) as Record<string, unknown>;
      buffer = buffer.slice(i + 1);
      if (typeof m.id !== 'number') continue;
      const waiter = answers.get(m.id);
      if (waiter) waiter(m);
      else early.set(m.id, m);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let nextId = 1;
  return {
    /** Sends a request; resolves with its answer (never, if the process exits first). */
    request(method: string, params: Record<string, unknown> = {}) {
      const id = nextId++;
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
      return new Promise<Record<string, unknown>>((resolve) => {
        const got = early.get(id);
        if (got) resolve(got);
        else answers.set(id, resolve);
      });
    },
    notify(method: string) {
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method })}\n`);
    },
    async initialize() {
      const init = await this.request('initialize', {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'startup-test', version: '0' },
      });
      this.notify('notifications/initialized');
      return init;
    },
    stderr: () => stderr,
    exited,
    end: () => child.stdin.end(),
    kill: () => child.kill('SIGKILL'),
  };
}

describe('the tool list is served while the role checks run; calls wait for them', () => {
  it('tools/list is answered before the database is reached; a call waits, then runs', async () => {
    const proxy = await holdingProxy(db.readUrl);
    const server = rawServer({ POSTGRES_URL: proxy.url(db.readUrl) });
    try {
      await server.initialize();
      const list = await server.request('tools/list');
      // Answered while the proxy holds every connection: no role check can have finished.
      expect(JSON.stringify(list.result)).toContain('postgres_query');
      const answer = server.request('tools/call', {
        name: 'postgres_query',
        arguments: { sql: 'SELECT count(*) AS n FROM genre' },
      });
      proxy.release();
      const result = (await answer).result as { isError?: boolean; content: { text: string }[] };
      expect(result.isError).not.toBe(true);
      expect(result.content[0]?.text).toContain('1 row');
      expect(proxy.accepted()).toBeGreaterThan(0);
      expect(server.stderr()).toMatch(/read credential connected/);
      server.end();
      expect(await server.exited).toBe(0);
    } finally {
      server.kill();
      await proxy.close();
    }
  }, 60_000);

  it('a failed role check refuses the waiting call, runs nothing, and exits 1 with the one refusal line', async () => {
    const role = await createRole(db, { superuser: true });
    const proxy = await holdingProxy(role.url);
    const server = rawServer({ POSTGRES_URL: proxy.url(role.url) });
    try {
      await server.initialize();
      const list = await server.request('tools/list');
      expect(JSON.stringify(list.result)).toContain('postgres_query');
      // A statement a superuser could run: it must never reach the database.
      const answer = server.request('tools/call', {
        name: 'postgres_query',
        arguments: { sql: 'SELECT 1 AS reached' },
      });
      proxy.release();
      const result = (await answer).result as {
        isError?: boolean;
        content: { text: string }[];
      };
      expect(result.isError).toBe(true);
      expect(result.content[0]?.text).toMatch(
        /^upstream_unavailable: the server failed its startup checks/,
      );
      expect(await server.exited).toBe(1);
      const stderr = server.stderr();
      const lines = stderr.trim().split('\n');
      // The refusal is the last line, as when the checks ran before serving; no "ready" line.
      expect(lines.at(-1)).toMatch(
        /^hardened-mcp-postgres: refusing to start: the read credential \(env POSTGRES_URL\) role hmcp_\w+ is a superuser/,
      );
      expect(stderr).not.toMatch(/ready on stdio|read credential connected/);
      expect(stderr).not.toContain(new URL(role.url).password);
      const records = auditRecordsIn(stderr);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        tool: 'postgres_query',
        outcome: 'denied',
        decision: { result: 'denied', reason: 'startup_checks_failed' },
      });
    } finally {
      server.kill();
      await proxy.close();
      await role.drop();
    }
  }, 60_000);
});
