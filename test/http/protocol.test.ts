/**
 * `hardened-mcp-postgres --transport http` with API keys: the request checks in front of the MCP
 * transport (Host/Origin, protocol version, bodies), JSON-RPC errors, and the health/metrics
 * listener — all against the real server process.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { type AuditRecord, hashApiKey } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn, waitFor } from '../support/audit.ts';
import {
  connectHttpClient,
  expectSafeBody,
  type HttpServerProcess,
  initializeBody,
  mcpHeaders,
  mcpPost,
  openSession,
  type RawResponse,
  rawRequest,
  rpcMessage,
  startHttpServer,
  toolCallBody,
} from '../support/http.ts';
import { textOf } from '../support/server.ts';

const run = randomBytes(4).toString('hex');
/** API keys as a client holds them; the server config stores only their SHA-256. */
const VALID_KEY = `hmcp_live_${randomBytes(24).toString('base64url')}`;
const EXPIRED_KEY = `hmcp_old_${randomBytes(24).toString('base64url')}`;
const WRONG_KEY = `hmcp_live_${randomBytes(24).toString('base64url')}`;
const PRINCIPAL = `svc-${run}`;
const ALLOWED_ORIGIN = 'http://localhost:5173';

let pgServer: TestPostgres;
let db: ChinookDatabase;
let s: HttpServerProcess;
let session: string;

beforeAll(async () => {
  pgServer = await startTestPostgres();
  db = await createChinookDatabase(pgServer);
  s = await startHttpServer({
    env: { POSTGRES_URL: db.readUrl },
    config: {
      auth: {
        mode: 'api-key',
        apiKeys: [
          { id: 'k-live', sha256: hashApiKey(VALID_KEY), principal: PRINCIPAL, roles: ['reader'] },
          {
            id: 'k-old',
            sha256: hashApiKey(EXPIRED_KEY),
            principal: `old-${run}`,
            roles: ['reader'],
            expiresAt: '2020-01-01T00:00:00Z',
          },
        ],
      },
      http: { allowedOrigins: [ALLOWED_ORIGIN], unauthenticatedAuditIntervalSeconds: 1 },
    },
  });
  session = await openSession(s.url, VALID_KEY);
});
afterAll(async () => {
  await s?.stop();
  await db?.drop();
  await pgServer?.stop();
});

const post = (body: unknown, extra: Record<string, string> = {}) =>
  mcpPost(s.url, body, { token: VALID_KEY, session, extra });

function authAudits(): AuditRecord[] {
  return auditRecordsIn(s.stderr()).filter((a) => a.tool === 'http:authenticate');
}

function expectJsonRpcError(res: RawResponse, status: number, code: number): void {
  expect(res.status, res.text).toBe(status);
  expectSafeBody(res);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(res.text)).toMatchObject({ jsonrpc: '2.0', error: { code } });
}

describe('api-key mode', () => {
  it('a valid key works end to end (SDK client)', async () => {
    const { client } = await connectHttpClient(s.url, { Authorization: `Bearer ${VALID_KEY}` });
    try {
      const r = await client.callTool({
        name: 'postgres_query',
        arguments: { sql: 'SELECT count(*)::int AS n FROM artist' },
      });
      expect(r.isError, textOf(r)).toBeFalsy();
      expect((r.structuredContent as { rows: unknown[][] }).rows).toEqual([[275]]);
    } finally {
      await client.close();
    }
    const rec = auditRecordsIn(s.stderr()).find(
      (a) => a.principal === PRINCIPAL && a.tool === 'postgres_query',
    );
    expect(rec).toMatchObject({ roles: ['reader'], transport: 'http', outcome: 'success' });
  });

  it('a missing key → 401 with a plain Bearer challenge: no OAuth metadata is advertised, none is served', async () => {
    const res = await mcpPost(s.url, initializeBody());
    expect(res.status).toBe(401);
    expectSafeBody(res);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(JSON.parse(res.text)).toEqual({
      error: 'unauthorized',
      message: 'authentication required',
    });
    const meta = await rawRequest(
      `${new URL(s.url).origin}/.well-known/oauth-protected-resource/mcp`,
    );
    expect(meta.status).toBe(404);
    expectSafeBody(meta);
  });

  it.each([
    ['a wrong key', WRONG_KEY, /not valid/],
    ['an expired key', EXPIRED_KEY, /expired/],
  ])('%s → 401 invalid_token, audited, the key never logged', async (_name, key, description) => {
    const before = authAudits().length;
    const res = await mcpPost(s.url, initializeBody(), { token: key });
    expect(res.status).toBe(401);
    expectSafeBody(res);
    expect(res.headers['www-authenticate']).toMatch(
      /^Bearer error="invalid_token", error_description="/,
    );
    expect(JSON.parse(res.text)).toMatchObject({ error: 'invalid_token' });
    expect(JSON.parse(res.text).message).toMatch(description);
    await waitFor(() =>
      authAudits()
        .slice(before)
        .some((a) => a.decision.reason === 'invalid_token'),
    );
    expect(authAudits().slice(before).at(-1)).toMatchObject({
      outcome: 'denied',
      decision: { reason: 'invalid_token' },
    });
    expect(s.stderr()).not.toContain(key);
    expect(s.stderr()).not.toContain(VALID_KEY);
  });
});

describe('DNS rebinding and cross-origin requests', () => {
  it('Host evil.example → 403 before authentication', async () => {
    const port = new URL(s.url).port;
    const res = await rawRequest(s.url, {
      method: 'POST',
      headers: { ...mcpHeaders({ token: VALID_KEY }), Host: `evil.example:${port}` },
      body: JSON.stringify(initializeBody()),
    });
    expect(res.status).toBe(403);
    expectSafeBody(res);
    expect(JSON.parse(res.text)).toEqual({ error: 'forbidden', message: 'host not allowed' });
    expect(res.headers['www-authenticate']).toBeUndefined();
    // Not even the metadata path answers to a rebound name.
    const meta = await rawRequest(
      `${new URL(s.url).origin}/.well-known/oauth-protected-resource/mcp`,
      {
        headers: { Host: 'evil.example' },
      },
    );
    expect(meta.status).toBe(403);
  });

  it('X-Forwarded-Host from a peer that is not a trusted proxy is ignored', async () => {
    const port = new URL(s.url).port;
    const res = await rawRequest(s.url, {
      method: 'POST',
      headers: {
        ...mcpHeaders({ token: VALID_KEY }),
        Host: `evil.example:${port}`,
        'X-Forwarded-Host': `localhost:${port}`,
      },
      body: JSON.stringify(initializeBody()),
    });
    expect(res.status).toBe(403);
    expectSafeBody(res);
  });

  it('an Origin that is not allowlisted → 403', async () => {
    const res = await mcpPost(s.url, initializeBody(), {
      token: VALID_KEY,
      extra: { Origin: 'http://evil.example' },
    });
    expect(res.status).toBe(403);
    expectSafeBody(res);
    expect(JSON.parse(res.text)).toEqual({ error: 'forbidden', message: 'origin not allowed' });
    const nullOrigin = await mcpPost(s.url, initializeBody(), {
      token: VALID_KEY,
      extra: { Origin: 'null' },
    });
    expect(nullOrigin.status).toBe(403);
  });

  it('the configured Origin is accepted', async () => {
    const res = await mcpPost(s.url, initializeBody(), {
      token: VALID_KEY,
      extra: { Origin: ALLOWED_ORIGIN },
    });
    expect(res.status, res.text).toBe(200);
    expect(rpcMessage(res)).toMatchObject({ id: 1, result: { serverInfo: expect.any(Object) } });
  });
});

describe('request validation', () => {
  it('an unsupported MCP-Protocol-Version → 400', async () => {
    const res = await post(
      { jsonrpc: '2.0', id: 5, method: 'tools/list', params: {} },
      { 'MCP-Protocol-Version': '1999-01-01' },
    );
    expectJsonRpcError(res, 400, -32000);
    expect(JSON.parse(res.text).error.message).toMatch(/Unsupported MCP-Protocol-Version/);
  });

  it('a JSON-RPC batch (array) → 400', async () => {
    const res = await post([
      { jsonrpc: '2.0', id: 6, method: 'tools/list', params: {} },
      { jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} },
    ]);
    expectJsonRpcError(res, 400, -32600);
  });

  it('malformed JSON → 400 with JSON-RPC -32700', async () => {
    const res = await post('{"jsonrpc":"2.0","id":8,"method":');
    expectJsonRpcError(res, 400, -32700);
    expect(JSON.parse(res.text)).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32700, message: 'Parse error' },
    });
  });

  it('a 10 MB body → 413 (declared Content-Length)', async () => {
    const big = JSON.stringify({
      ...toolCallBody('postgres_query', { sql: `SELECT '${'x'.repeat(10 * 1024 * 1024)}'` }),
    });
    const res = await post(big);
    expectJsonRpcError(res, 413, -32000);
    // A keep-alive client (fetch) gets the same answer.
    const viaFetch = await fetch(s.url, {
      method: 'POST',
      headers: mcpHeaders({ token: VALID_KEY, session }),
      body: big,
    });
    expect(viaFetch.status).toBe(413);
    expect(await viaFetch.json()).toMatchObject({ error: { code: -32000 } });
  });

  it('a 10 MB chunked body (no Content-Length) → 413', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 0x20);
    const res = await rawRequest(s.url, {
      method: 'POST',
      headers: {
        ...mcpHeaders({ token: VALID_KEY, session }),
        'Transfer-Encoding': 'chunked',
      },
      body: big,
    });
    expect(res.status).toBe(413);
    expectSafeBody(res);
  });

  it('10,000-deep nesting → 400 without reaching the parser', async () => {
    const deep = `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"postgres_query","arguments":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`;
    const res = await post(deep);
    expectJsonRpcError(res, 400, -32600);
    expect(JSON.parse(res.text).error.message).toMatch(/nested deeper than 64/);
  });

  it('a wrong Content-Type → 415', async () => {
    const res = await rawRequest(s.url, {
      method: 'POST',
      headers: { ...mcpHeaders({ token: VALID_KEY, session }), 'Content-Type': 'text/plain' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 10, method: 'tools/list', params: {} }),
    });
    expectJsonRpcError(res, 415, -32000);
  });

  it('GET without Accept: text/event-stream → 405', async () => {
    const res = await rawRequest(s.url, {
      headers: {
        Authorization: `Bearer ${VALID_KEY}`,
        'Mcp-Session-Id': session,
        Accept: 'application/json',
      },
    });
    expectJsonRpcError(res, 405, -32000);
    expect(res.headers.allow).toBe('POST, DELETE');
  });

  it('other methods → 405 and other paths → 404, as JSON', async () => {
    const put = await rawRequest(s.url, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${VALID_KEY}` },
    });
    expectJsonRpcError(put, 405, -32000);
    expect(put.headers.allow).toBe('GET, POST, DELETE');
    const other = await rawRequest(`${new URL(s.url).origin}/admin`);
    expect(other.status).toBe(404);
    expectSafeBody(other);
    expect(JSON.parse(other.text)).toEqual({ error: 'not_found', message: 'not found' });
  });

  it('a malformed HTTP request gets a JSON 400, not an HTML page', async () => {
    const port = Number(new URL(s.url).port);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      let data = '';
      socket.on('data', (d: Buffer) => {
        data += d.toString('utf8');
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(data));
      socket.write('GET /mcp HTTP/1.1\r\nHost: localhost\r\nBad Header Line\r\n\r\n');
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).toMatch(/Content-Type: application\/json/i);
    expect(reply.split('\r\n\r\n')[1]).toBe('{"error":"bad_request"}');
  });

  it('a POST that is neither initialize nor in a session → 400', async () => {
    const res = await mcpPost(
      s.url,
      { jsonrpc: '2.0', id: 11, method: 'tools/list', params: {} },
      { token: VALID_KEY },
    );
    expectJsonRpcError(res, 400, -32000);
  });
});

describe('JSON-RPC errors inside a session', () => {
  it('an unknown method → -32601', async () => {
    const res = await post({ jsonrpc: '2.0', id: 20, method: 'resources/list', params: {} });
    expect(res.status).toBe(200);
    expectSafeBody(res);
    expect(rpcMessage(res)).toMatchObject({ id: 20, error: { code: -32601 } });
  });

  it('an unknown tool → -32602 without echoing the name', async () => {
    const res = await post(toolCallBody('postgres_drop_database', {}, 21));
    expect(res.status).toBe(200);
    expectSafeBody(res);
    const msg = rpcMessage(res);
    expect(msg).toMatchObject({ id: 21, error: { code: -32602, message: 'Unknown tool' } });
    expect(JSON.stringify(msg)).not.toContain('postgres_drop_database');
  });

  it('extra argument keys → a tool error invalid_input', async () => {
    const res = await post(
      toolCallBody('postgres_query', { sql: 'SELECT 1', sneaky: 'DROP TABLE track' }, 22),
    );
    expect(res.status).toBe(200);
    expectSafeBody(res);
    const msg = rpcMessage(res) as {
      result: { isError: boolean; content: { text: string }[]; _meta: Record<string, unknown> };
    };
    expect(msg.result.isError).toBe(true);
    expect(msg.result.content[0]?.text).toMatch(/^invalid_input: .*unknown key sneaky/);
    expect(msg.result._meta['hardened-mcp/error']).toMatchObject({ code: 'invalid_input' });
  });
});

describe('health and metrics listener', () => {
  it('/healthz → 200 and /readyz → 200', async () => {
    const health = await rawRequest(`${s.managementUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text)).toEqual({ status: 'ok' });
    const ready = await rawRequest(`${s.managementUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({ status: 'ready' });
  });

  it('/metrics counts tool calls by tool and refusals by reason', async () => {
    const call = await post(toolCallBody('postgres_list_schemas', {}, 30));
    expect(call.status).toBe(200);
    const res = await rawRequest(`${s.managementUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toMatch(
      /^hmcp_tool_calls_total\{tool="postgres_list_schemas",outcome="success"\} [1-9]/m,
    );
    expect(res.text).toMatch(
      /^hmcp_tool_calls_total\{tool="postgres_query",outcome="success"\} [1-9]/m,
    );
    expect(res.text).toMatch(/^hmcp_http_refusals_total\{reason="bad_host"\} [1-9]/m);
    expect(res.text).toMatch(/^hmcp_active_sessions [1-9]/m);
    expect(res.text).not.toContain(VALID_KEY);
  });

  it('health and metrics are not served on the /mcp port, and /mcp is not on the management port', async () => {
    const origin = new URL(s.url).origin;
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      const res = await rawRequest(`${origin}${path}`);
      expect(res.status, path).toBe(404);
      expectSafeBody(res);
    }
    const mcp = await rawRequest(`${s.managementUrl}/mcp`);
    expect(mcp.status).toBe(404);
    expectSafeBody(mcp);
    expect(new URL(s.managementUrl!).port).not.toBe(new URL(s.url).port);
  });
});
