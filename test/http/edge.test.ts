/**
 * The HTTP edge of `hardened-mcp-postgres --transport http` (issue 10 §4, issue 13 §3, issue 17
 * §2), table-driven against the real server process: exactly one credential per request, the
 * Host check with its port (on `/mcp` and on the management listener), the `scope` of the 401
 * challenge, RFC 9728 discovery by the MCP SDK's own client auth flow from the printed URL,
 * `typ: at+jwt` access tokens, oversized bodies cut off at once, per-principal session caps, the
 * aggregated audit of unauthenticated floods, and `/readyz` following Redis.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AuditRecord } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import {
  auth,
  extractWWWAuthenticateParams,
  type OAuthClientProvider,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn, waitFor } from '../support/audit.ts';
import {
  expectSafeBody,
  freePort,
  type HttpServerProcess,
  type JwksServer,
  makeSigningKey,
  mcpPost,
  mintToken,
  rawRequest,
  redisPing,
  type SigningKey,
  socketRequest,
  startHttpServer,
  startJwksServer,
} from '../support/http.ts';

const run = randomBytes(4).toString('hex');
/** Seconds per aggregation interval of unauthenticated refusals, short for the test. */
const REFUSAL_INTERVAL_S = 2;

let pgServer: TestPostgres;
let db: ChinookDatabase;
let jwks: JwksServer;
let key: SigningKey;
let s: HttpServerProcess;

beforeAll(async () => {
  pgServer = await startTestPostgres();
  db = await createChinookDatabase(pgServer);
  key = await makeSigningKey('edge');
  jwks = await startJwksServer([key.publicJwk]);
  s = await startHttpServer({
    env: { POSTGRES_URL: db.readUrl },
    config: {
      auth: {
        mode: 'oauth',
        oauth: { issuer: jwks.origin, jwksUrl: jwks.jwksUrl('edge'), accessTokenType: 'at+jwt' },
      },
      http: {
        maxSessions: 8,
        maxSessionsPerPrincipal: 2,
        unauthenticatedAuditIntervalSeconds: REFUSAL_INTERVAL_S,
      },
    },
  });
});
afterAll(async () => {
  await s?.stop();
  await jwks?.close();
  await db?.drop();
  await pgServer?.stop();
});

function token(sub = `edge-${run}`, typ?: string | null): Promise<string> {
  return mintToken(
    key,
    { sub, iss: jwks.origin, aud: s.resource, scope: 'postgres:read' },
    typ === undefined ? {} : { typ },
  );
}

const initBody = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: LATEST_PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: 'edge-test', version: '1.0.0' },
  },
});

/** The request head of a POST to `path` with `extra` header lines, as sent on the wire. */
function postHead(path: string, extra: readonly string[], contentType = 'application/json') {
  const port = new URL(s.url).port;
  return (length: number) => [
    `POST ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    `Content-Type: ${contentType}`,
    'Accept: application/json, text/event-stream',
    `Content-Length: ${length}`,
    'Connection: close',
    ...extra,
  ];
}

function authAudits(): AuditRecord[] {
  return auditRecordsIn(s.stderr()).filter((a) => a.tool === 'http:authenticate');
}

function expectNoSecret(t: string): void {
  for (const part of t.split('.').filter((p) => p.length >= 16))
    expect(s.stderr()).not.toContain(part);
}

describe('exactly one credential per request → 400 invalid_request before authentication', () => {
  type Case = readonly [string, (t: string) => { path: string; lines: string[]; form?: string }];
  const cases: readonly Case[] = [
    [
      'two Authorization headers, the same valid token',
      (t) => ({
        path: '/mcp',
        lines: [`Authorization: Bearer ${t}`, `Authorization: Bearer ${t}`],
      }),
    ],
    [
      'two Authorization headers, valid then bogus',
      (t) => ({ path: '/mcp', lines: [`Authorization: Bearer ${t}`, 'Authorization: Bearer x'] }),
    ],
    [
      'Authorization and AUTHORIZATION',
      (t) => ({
        path: '/mcp',
        lines: [`Authorization: Bearer ${t}`, `AUTHORIZATION: Bearer ${t}`],
      }),
    ],
    [
      'one header listing two credentials',
      (t) => ({ path: '/mcp', lines: [`Authorization: Bearer ${t}, Bearer ${t}`] }),
    ],
    [
      'the header and ?access_token=',
      (t) => ({ path: `/mcp?access_token=${t}`, lines: [`Authorization: Bearer ${t}`] }),
    ],
    [
      'the header and ?ACCESS_TOKEN=',
      (t) => ({ path: `/mcp?x=1&ACCESS_TOKEN=${t}`, lines: [`Authorization: Bearer ${t}`] }),
    ],
    [
      'the header and ?access%5Ftoken= (percent-encoded name)',
      (t) => ({ path: `/mcp?access%5Ftoken=${t}`, lines: [`Authorization: Bearer ${t}`] }),
    ],
    [
      'the header and a form body access_token (RFC 6750 §2.2)',
      (t) => ({ path: '/mcp', lines: [`Authorization: Bearer ${t}`], form: `access_token=${t}` }),
    ],
    [
      'two query tokens, no header',
      (t) => ({ path: `/mcp?access_token=${t}&access_token=${t}`, lines: [] }),
    ],
  ];

  it.each(cases)('%s', async (_name, build) => {
    const t = await token();
    const { path, lines, form } = build(t);
    const body = form ?? initBody;
    const head = postHead(
      path,
      lines,
      form ? 'application/x-www-form-urlencoded' : 'application/json',
    )(Buffer.byteLength(body));
    const res = await socketRequest(s.url, head, body);
    res.socket.destroy();
    expect(res.status, res.text).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ error: 'invalid_request' });
    expect(res.headers['www-authenticate']).toMatch(/^Bearer resource_metadata="[^"]+", scope=/);
    expect(res.headers['www-authenticate']).toContain('error="invalid_request"');
    // Refused before authentication: no session was opened with the valid token.
    expect(res.headers['mcp-session-id']).toBeUndefined();
    expectNoSecret(t);
  });

  it('the same token once, in the header alone, is accepted (the control)', async () => {
    const t = await token();
    const res = await socketRequest(
      s.url,
      postHead('/mcp', [`Authorization: Bearer ${t}`])(Buffer.byteLength(initBody)),
      initBody,
    );
    res.socket.destroy();
    expect(res.status, res.text).toBe(200);
  });

  it('each refusal is in the audit trail (aggregated per peer and interval), without the token', async () => {
    await waitFor(
      () =>
        authAudits()
          .filter((a) => a.decision.reason === 'invalid_request')
          .reduce((n, a) => n + (a.arguments as { count: number }).count, 0) >= cases.length,
      (REFUSAL_INTERVAL_S + 3) * 1000,
    );
    const recs = authAudits().filter((a) => a.decision.reason === 'invalid_request');
    expect(recs.length).toBeLessThan(cases.length);
    for (const r of recs)
      expect(r).toMatchObject({
        principal: 'unauthenticated',
        outcome: 'denied',
        errorClass: 'unauthenticated',
        arguments: { peer: '127.0.0.1' },
      });
  });
});

describe('an unauthenticated flood does not fill the audit trail', () => {
  it('200 refusals from one peer → at most a few records whose counts add up to 200', async () => {
    // Start on a fresh interval: earlier refusals of this reason are flushed first.
    await new Promise((r) => setTimeout(r, (REFUSAL_INTERVAL_S + 0.5) * 1000));
    const before = authAudits().length;
    const N = 200;
    for (let i = 0; i < N; i += 20)
      await Promise.all(
        Array.from({ length: 20 }, () => mcpPost(s.url, JSON.parse(initBody), { token: 'bogus.' })),
      );
    const fresh = () =>
      authAudits()
        .slice(before)
        .filter((a) => a.decision.reason === 'invalid_token');
    await waitFor(
      () => fresh().reduce((n, a) => n + (a.arguments as { count: number }).count, 0) >= N,
      (REFUSAL_INTERVAL_S * 3 + 3) * 1000,
    );
    expect(fresh().reduce((n, a) => n + (a.arguments as { count: number }).count, 0)).toBe(N);
    // One immediate record plus one aggregate per interval the flood spanned, not one per request.
    expect(fresh().length).toBeLessThanOrEqual(10);
  });
});

describe('the Host check includes the port', () => {
  const port = () => Number(new URL(s.url).port);
  it.each([
    ['127.0.0.1:PORT', 401],
    ['localhost:PORT', 401],
    ['LOCALHOST:PORT', 401],
    ['[::1]:PORT', 401],
    ['localhost:OTHER', 403],
    ['127.0.0.1:OTHER', 403],
    ['localhost', 403],
    ['localhost:80', 403],
    ['localhost.:PORT', 403],
    ['evil.example:PORT', 403],
    ['user@localhost:PORT', 403],
    ['localhost:PORT:PORT', 403],
  ])('Host %s → %i', async (spelling, status) => {
    const host = spelling
      .replaceAll('OTHER', String(port() + 1))
      .replaceAll('PORT', String(port()));
    const res = await rawRequest(s.url, {
      method: 'POST',
      headers: {
        Host: host,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
      },
      body: initBody,
    });
    expect(res.status, res.text).toBe(status);
    expectSafeBody(res);
    if (status === 403)
      expect(JSON.parse(res.text)).toEqual({ error: 'forbidden', message: 'host not allowed' });
  });

  it.each([
    ['the same allowed value twice', 'Host: 127.0.0.1:PORT'],
    ['an allowed value, then a foreign one', 'host: evil.example:PORT'],
  ])('two Host lines (%s) → 403 (RFC 9112 §3.2; Node keeps only the first)', async (_, line) => {
    const extra = [line.replaceAll('PORT', String(port()))];
    const res = await socketRequest(
      s.url,
      postHead('/mcp', extra)(Buffer.byteLength(initBody)),
      initBody,
    );
    expect(res.status, res.text).toBe(403);
    expect(JSON.parse(res.text)).toEqual({ error: 'forbidden', message: 'host not allowed' });
  });

  it('management listener: two Host lines → 403; one → 200 (the control)', async () => {
    const mport = new URL(String(s.managementUrl)).port;
    const head = (hosts: number) => [
      'GET /healthz HTTP/1.1',
      ...Array.from({ length: hosts }, () => `Host: 127.0.0.1:${mport}`),
      'Connection: close',
    ];
    expect((await socketRequest(String(s.managementUrl), head(1))).status).toBe(200);
    const res = await socketRequest(String(s.managementUrl), head(2));
    expect(res.status, res.text).toBe(403);
    expect(JSON.parse(res.text)).toEqual({ error: 'forbidden', message: 'host not allowed' });
  });

  it.each([
    ['localhost:PORT', 200],
    ['127.0.0.1:PORT', 200],
    ['10.1.2.3:PORT', 200],
    ['[fd00::1]:PORT', 200],
    // IP literals on any port (a published container port): rebinding needs a DNS name.
    ['127.0.0.1:OTHER', 200],
    ['localhost:OTHER', 403],
    ['localhost', 403],
    ['evil.example:PORT', 403],
    ['evil.example', 403],
  ])('management listener: Host %s → %i', async (spelling, status) => {
    const mport = Number(new URL(String(s.managementUrl)).port);
    const host = spelling.replaceAll('OTHER', String(mport + 1)).replaceAll('PORT', String(mport));
    for (const path of ['/healthz', '/metrics']) {
      const res = await rawRequest(`${s.managementUrl}${path}`, { headers: { Host: host } });
      expect(res.status, `${path} ${res.text}`).toBe(status);
      if (status === 403) {
        expectSafeBody(res);
        expect(res.text).not.toContain('hmcp_');
      }
    }
  });
});

describe('the 401 challenge and RFC 9728 discovery', () => {
  it('the challenge names the metadata and the scope to request', async () => {
    const res = await mcpPost(s.url, JSON.parse(initBody));
    expect(res.status).toBe(401);
    const meta = `${new URL(s.resource).origin}/.well-known/oauth-protected-resource/mcp`;
    expect(res.headers['www-authenticate']).toBe(
      `Bearer resource_metadata="${meta}", scope="postgres:read"`,
    );
  });

  it('the printed URL is the canonical resource, and the SDK client auth flow accepts it', async () => {
    expect(s.announcedUrl).toBe(s.resource);
    const redirects: URL[] = [];
    const provider: OAuthClientProvider = {
      get redirectUrl() {
        return 'http://127.0.0.1:1/callback';
      },
      get clientMetadata() {
        return { redirect_uris: ['http://127.0.0.1:1/callback'], client_name: 'edge-test' };
      },
      clientInformation: () => ({ client_id: 'edge-test-client' }),
      tokens: () => undefined,
      saveTokens: () => undefined,
      redirectToAuthorization: (url) => {
        redirects.push(url);
      },
      saveCodeVerifier: () => undefined,
      codeVerifier: () => 'unused',
    };
    // The client only knows the printed URL: the 401 challenge leads it to the metadata, whose
    // `resource` it checks against that URL (selectResourceURL) before asking for a token.
    const unauthenticated = await fetch(s.announcedUrl, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
      },
      body: initBody,
    });
    expect(unauthenticated.status).toBe(401);
    const params = extractWWWAuthenticateParams(unauthenticated);
    const result = await auth(provider, {
      serverUrl: s.announcedUrl,
      resourceMetadataUrl: params.resourceMetadataUrl,
      scope: params.scope,
    });
    expect(result).toBe('REDIRECT');
    expect(redirects).toHaveLength(1);
    const authorize = redirects[0]!;
    expect(authorize.origin).toBe(jwks.origin);
    expect(authorize.searchParams.get('resource')).toBe(s.resource);
    expect(authorize.searchParams.get('scope')).toBe('postgres:read');
  });
});

describe('access tokens typed at+jwt (RFC 9068), auth.oauth.accessTokenType: at+jwt', () => {
  it.each([
    ['at+jwt', 200],
    ['application/at+jwt', 200],
    ['AT+JWT', 200],
    ['JWT', 401],
    ['jwt', 401],
    ['application/jwt', 401],
    ['id_token+jwt', 401],
    [null, 401],
  ] as const)('typ %s → %i', async (typ, status) => {
    const t = await token(`typ-${run}`, typ);
    const res = await mcpPost(s.url, JSON.parse(initBody), { token: t });
    expect(res.status, res.text).toBe(status);
    if (status === 401) {
      expect(JSON.parse(res.text)).toEqual({
        error: 'invalid_token',
        message: 'the token is not an access token (typ must be at+jwt)',
      });
    } else {
      // Close the session again so the per-principal cap is not spent here.
      await rawRequest(s.url, {
        method: 'DELETE',
        headers: {
          Authorization: `Bearer ${t}`,
          'Mcp-Session-Id': String(res.headers['mcp-session-id']),
          'MCP-Protocol-Version': LATEST_PROTOCOL_VERSION,
        },
      });
    }
    expectNoSecret(t);
  });
});

describe('an oversized body is cut off at once: 413, Connection: close, a bounded tail', () => {
  const MAX = 1024 * 1024; // the default http.maxBodyBytes
  const bearer = async () => [`Authorization: Bearer ${await token(`big-${run}`)}`];

  const expect413 = async (res: Awaited<ReturnType<typeof socketRequest>>) => {
    expect(res.status, res.text).toBe(413);
    expect(res.headers.connection).toBe('close');
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: -32000 } });
    // The server closes the connection by itself, though the client never finishes the body.
    await res.closed;
  };

  it.each([
    ['a declared Content-Length of 10 MB, nothing sent yet', 10 * MAX, 0],
    ['a declared Content-Length of max + 1, nothing sent yet', MAX + 1, 0],
    ['a declared Content-Length of 10 MB, 2 MB sent then a pause', 10 * MAX, 2 * MAX],
  ])('%s → 413 before the client finishes', async (_name, declared, sent) => {
    const head = postHead('/mcp', await bearer())(declared);
    await expect413(await socketRequest(s.url, head, Buffer.alloc(sent, 0x20)));
  });

  it('a chunked body past the limit, then a pause → 413 before the client finishes', async () => {
    const head = postHead('/mcp', await bearer())(0).filter((l) => !l.startsWith('Content-Length'));
    head.push('Transfer-Encoding: chunked');
    const chunk = Buffer.concat([
      Buffer.from(`${(2 * MAX).toString(16)}\r\n`),
      Buffer.alloc(2 * MAX, 0x20),
      Buffer.from('\r\n'),
    ]);
    await expect413(await socketRequest(s.url, head, chunk));
  });

  it('a client that keeps uploading after the 413 is cut off long before 64 MB', async () => {
    const head = postHead('/mcp', await bearer())(0).filter((l) => !l.startsWith('Content-Length'));
    head.push('Transfer-Encoding: chunked');
    const piece = Buffer.concat([
      Buffer.from(`${(64 * 1024).toString(16)}\r\n`),
      Buffer.alloc(64 * 1024, 0x20),
      Buffer.from('\r\n'),
    ]);
    const res = await socketRequest(s.url, head, Buffer.concat([piece, ...Array(20).fill(piece)]));
    expect(res.status).toBe(413);
    let written = 0;
    let open = true;
    void res.closed.then(() => {
      open = false;
    });
    res.socket.on('error', () => {
      open = false;
    });
    while (open && written < 64 * MAX) {
      const ok = res.socket.write(piece);
      written += piece.length;
      if (!ok)
        await Promise.race([
          new Promise((r) => res.socket.once('drain', r)),
          res.closed,
          new Promise((r) => setTimeout(r, 200)),
        ]);
    }
    await res.closed;
    // Bounded by the kernel's socket buffers plus the server's small tail, not by the upload.
    expect(written).toBeLessThan(32 * MAX);
  });

  it('the server still answers afterwards', async () => {
    const res = await mcpPost(s.url, JSON.parse(initBody), { token: await token(`after-${run}`) });
    expect(res.status, res.text).toBe(200);
  });
});

describe('per-principal session caps (http.maxSessionsPerPrincipal: 2 of maxSessions: 8)', () => {
  const open = async (t: string) => mcpPost(s.url, JSON.parse(initBody), { token: t });

  it('one principal is held to its share; other principals still get sessions', async () => {
    const mallory = await token(`mallory-${run}`);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await open(mallory);
      expect(res.status, res.text).toBe(200);
      ids.push(String(res.headers['mcp-session-id']));
    }
    for (let i = 0; i < 3; i++) {
      const refused = await open(mallory);
      expect(refused.status).toBe(429);
      expectSafeBody(refused);
      expect(refused.headers['retry-after']).toBe('5');
      expect(JSON.parse(refused.text)).toMatchObject({
        jsonrpc: '2.0',
        error: {
          code: -32000,
          message: expect.stringMatching(/Too many sessions for this principal/),
        },
      });
    }
    const alice = await open(await token(`alice-${run}`));
    expect(alice.status, alice.text).toBe(200);
    // Ending a session gives the place back.
    const del = await rawRequest(s.url, {
      method: 'DELETE',
      headers: {
        Authorization: `Bearer ${mallory}`,
        'Mcp-Session-Id': ids[0]!,
        'MCP-Protocol-Version': LATEST_PROTOCOL_VERSION,
      },
    });
    expect(del.status, del.text).toBe(200);
    expect((await open(mallory)).status).toBe(200);
  });

  it('concurrent initializations cannot overshoot the cap', async () => {
    const t = await token(`burst-${run}`);
    const results = await Promise.all(Array.from({ length: 6 }, () => open(t)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429, 429, 429, 429]);
  });
});

/** A `redis-server` this test starts on a free port (no persistence) and kills. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  await waitFor(() => child.exitCode === null, 1000);
  const until = Date.now() + 10_000;
  while (!(await redisPing('127.0.0.1', port)).ok) {
    if (Date.now() > until || child.exitCode !== null)
      throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

const redisServerMissing = await new Promise<boolean>((resolve) => {
  const probe = spawn('redis-server', ['--version'], { stdio: 'ignore' });
  probe.once('error', () => resolve(true));
  probe.once('exit', (code) => resolve(code !== 0));
});
if (redisServerMissing) console.warn('[edge] /readyz-with-Redis SKIPPED: no redis-server binary');

describe.skipIf(redisServerMissing)('/readyz follows Redis when Redis is configured', () => {
  let redis: ChildProcess | undefined;
  let r: HttpServerProcess | undefined;
  let redisPort = 0;
  afterAll(async () => {
    await r?.stop();
    redis?.kill('SIGKILL');
  });

  it('200 with Redis up, 503 while it is down, 200 again once it is back', async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    r = await startHttpServer({
      // redis.url defaults to the REDIS_URL credential source.
      env: { POSTGRES_URL: db.readUrl, REDIS_URL: `redis://127.0.0.1:${redisPort}` },
      config: {},
    });
    const readyz = async () => (await rawRequest(`${r!.managementUrl}/readyz`)).status;
    const poll = async (want: number) => {
      const until = Date.now() + 15_000;
      let status = await readyz();
      while (status !== want && Date.now() < until) {
        await new Promise((res) => setTimeout(res, 100));
        status = await readyz();
      }
      return status;
    };
    expect(await poll(200)).toBe(200);
    redis.kill('SIGKILL');
    await new Promise((res) => redis!.once('exit', res));
    expect(await poll(503)).toBe(503);
    const down = await rawRequest(`${r.managementUrl}/readyz`);
    expect(JSON.parse(down.text)).toEqual({ status: 'not_ready' });
    redis = await startRedis(redisPort);
    expect(await poll(200)).toBe(200);
  });
});
