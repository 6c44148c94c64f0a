/**
 * `hardened-mcp-postgres --transport http` lifecycle: stateless mode, readiness, refusing an
 * unauthenticated public bind, and draining in-flight calls on SIGTERM — real processes, real
 * PostgreSQL.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditRecord, verifyAuditChain } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  createRole,
  startTestPostgres,
  type TestPostgres,
  type TestRole,
} from '@hardened-mcp/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryAs } from '../support/db.ts';
import {
  connectHttpClient,
  expectSafeBody,
  freePort,
  type HttpServerProcess,
  initializeBody,
  mcpPost,
  openSession,
  type RawResponse,
  rawRequest,
  rpcMessage,
  startHttpServer,
  toolCallBody,
} from '../support/http.ts';
import { runBin, textOf, writeTempConfig } from '../support/server.ts';

let pgServer: TestPostgres;
let db: ChinookDatabase;

beforeAll(async () => {
  pgServer = await startTestPostgres();
  db = await createChinookDatabase(pgServer);
});
afterAll(async () => {
  await db?.drop();
  await pgServer?.stop();
});

/** A statement as the test database's superuser. */
const adminQuery = <T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) =>
  queryAs<T>(db.adminUrl, sql, values);

describe('stateless mode (http.stateless: true)', () => {
  let s: HttpServerProcess;
  let role: TestRole;
  beforeAll(async () => {
    // A role of its own, so the readiness case can take its login away.
    role = await createRole(db);
    s = await startHttpServer({
      env: { POSTGRES_URL: role.url },
      config: { http: { stateless: true } },
    });
  });
  afterAll(async () => {
    await s?.stop();
    await role?.drop();
  });

  it('issues no mcp-session-id and answers plain JSON', async () => {
    const res = await mcpPost(s.url, initializeBody());
    expect(res.status, res.text).toBe(200);
    expect(res.headers['mcp-session-id']).toBeUndefined();
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(rpcMessage(res)).toMatchObject({
      id: 1,
      result: { serverInfo: { name: 'hardened-mcp-postgres' } },
    });
  });

  it('every POST stands alone: tools/list and tools/call work without a session', async () => {
    const list = await mcpPost(s.url, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    expect(list.status, list.text).toBe(200);
    expect(list.headers['mcp-session-id']).toBeUndefined();
    const call = await mcpPost(
      s.url,
      toolCallBody('postgres_query', { sql: 'SELECT count(*)::int AS n FROM genre' }, 3),
    );
    expect(call.status, call.text).toBe(200);
    expect(call.headers['mcp-session-id']).toBeUndefined();
    const msg = rpcMessage(call) as { result: { structuredContent: { rows: unknown[][] } } };
    expect(msg.result.structuredContent.rows).toEqual([[25]]);
  });

  it('the SDK client works against it', async () => {
    const { client, transport } = await connectHttpClient(s.url);
    try {
      expect(transport.sessionId).toBeUndefined();
      const r = await client.callTool({ name: 'postgres_list_schemas', arguments: {} });
      expect(r.isError, textOf(r)).toBeFalsy();
    } finally {
      await client.close();
    }
  });

  it('GET (SSE) and DELETE are 405', async () => {
    const get = await rawRequest(s.url, { headers: { Accept: 'text/event-stream' } });
    expect(get.status).toBe(405);
    expectSafeBody(get);
    const del = await rawRequest(s.url, { method: 'DELETE' });
    expect(del.status).toBe(405);
    expectSafeBody(del);
    expect(del.headers.allow).toBe('POST');
  });

  it('/readyz turns 503 when the database refuses the read credential (and /healthz stays 200)', async () => {
    expect((await rawRequest(`${s.managementUrl}/readyz`)).status).toBe(200);
    await adminQuery(`ALTER ROLE ${pg.escapeIdentifier(role.role)} NOLOGIN`);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
      role.role,
    ]);
    const ready = await rawRequest(`${s.managementUrl}/readyz`);
    expect(ready.status).toBe(503);
    expectSafeBody(ready);
    expect(JSON.parse(ready.text)).toEqual({ status: 'not_ready' });
    expect((await rawRequest(`${s.managementUrl}/healthz`)).status).toBe(200);
    await adminQuery(`ALTER ROLE ${pg.escapeIdentifier(role.role)} LOGIN`);
    expect((await rawRequest(`${s.managementUrl}/readyz`)).status).toBe(200);
  });
});

describe('binding beyond loopback without authentication', () => {
  const run = async () => {
    const port = await freePort();
    const config = writeTempConfig({
      transport: 'http',
      http: { host: '0.0.0.0', port, management: { port: 0 } },
      auth: { mode: 'none' },
    });
    const result = await runBin({ POSTGRES_URL: db.readUrl }, ['--config', config]);
    return { ...result, port };
  };

  it('refuses to start: exit 1, a one-line reason, nothing listening', async () => {
    const result = await run();
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines.at(-1)).toBe(
      'hardened-mcp-postgres: refusing to listen on 0.0.0.0 without authentication: set auth.mode to oauth or api-key, or bind to 127.0.0.1',
    );
    // Anything before it is a pino JSON log line, never a stack trace.
    for (const line of lines.slice(0, -1)) expect(line.startsWith('{')).toBe(true);
    expect(result.stderr).not.toMatch(/\n\s+at |Error:/);
    expect(result.stderr).not.toContain(new URL(db.readUrl).password);
    await expect(rawRequest(`http://127.0.0.1:${result.port}/mcp`)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  // Regression: the check used to run only after connecting to PostgreSQL.
  it('refuses before connecting to the database: exactly one stderr line', async () => {
    const result = await run();
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('SIGTERM while a call is in flight', () => {
  it('the call gets its (timeout) answer, new connections are refused, audit is flushed, exit 0', async () => {
    const auditFile = join(mkdtempSync(join(tmpdir(), 'hmcp-audit-')), 'audit.jsonl');
    const s = await startHttpServer({
      env: { POSTGRES_URL: db.readUrl },
      config: {
        http: { shutdownGraceMs: 10_000 },
        postgres: { statementTimeoutMs: 3_000 },
        audit: { file: auditFile, stderr: true },
      },
    });
    try {
      const session = await openSession(s.url);
      const slowSql = 'SELECT count(*) FROM track a, track b, track c';
      let answeredAt = 0;
      const slow = mcpPost(s.url, toolCallBody('postgres_query', { sql: slowSql }, 7), {
        session,
      }).then((r) => {
        answeredAt = Date.now();
        return r;
      });
      // Wait until PostgreSQL is really running it.
      const until = Date.now() + 10_000;
      while (
        (
          await adminQuery(
            "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%track c%' AND query NOT LIKE '%pg_stat_activity%'",
          )
        ).length === 0
      ) {
        if (Date.now() > until) throw new Error('the slow query never started');
        await new Promise((r) => setTimeout(r, 25));
      }
      s.child.kill('SIGTERM');
      // New connections are refused while the call is still running. (A connection that races
      // the signal may still be answered 503, or be reset from the closing listener's backlog.)
      let refused: unknown;
      const seen: string[] = [];
      const refuseUntil = Date.now() + 2_000;
      while (Date.now() < refuseUntil) {
        try {
          const r = await rawRequest(s.url, { method: 'POST' });
          seen.push(String(r.status));
        } catch (err) {
          seen.push(String((err as NodeJS.ErrnoException).code));
          if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
            refused = err;
            break;
          }
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      const refusedAt = Date.now();
      expect(refused, seen.join(', ')).toMatchObject({ code: 'ECONNREFUSED' });
      expect(answeredAt).toBe(0);

      const res: RawResponse = await slow;
      expect(answeredAt).toBeGreaterThan(refusedAt);
      expect(res.status).toBe(200);
      expectSafeBody(res);
      const msg = rpcMessage(res) as {
        id: number;
        result: { isError: boolean; content: { text: string }[] };
      };
      expect(msg.id).toBe(7);
      expect(msg.result.isError).toBe(true);
      expect(msg.result.content[0]?.text).toMatch(/^timeout: the statement was cancelled/);

      const exit = await s.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(s.stderr()).toContain('shutting down: draining in-flight calls');

      const lines = readFileSync(auditFile, 'utf8').split('\n').filter(Boolean);
      expect(await verifyAuditChain(lines)).toMatchObject({ ok: true });
      const last = JSON.parse(lines.at(-1)!) as AuditRecord;
      expect(last).toMatchObject({
        tool: 'postgres_query',
        transport: 'http',
        outcome: 'error',
        errorClass: 'timeout',
        arguments: { sql: slowSql },
      });
    } finally {
      await s.stop('SIGKILL');
    }
  });
});
