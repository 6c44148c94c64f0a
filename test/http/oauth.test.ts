/**
 * `hardened-mcp-postgres --transport http` as an OAuth 2.1 resource server: tokens signed with
 * keys generated here and published on a local JWKS endpoint, sent to the real server process.
 */
import { randomBytes } from 'node:crypto';
import type { AuditRecord } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { exportSPKI, SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn, waitFor } from '../support/audit.ts';
import {
  b64url,
  connectHttpClient,
  expectSafeBody,
  type HttpServerProcess,
  type JwksServer,
  makeSigningKey,
  mcpPost,
  mintToken,
  openSession,
  type RawResponse,
  rawRequest,
  rpcMessage,
  type SigningKey,
  startHttpServer,
  startJwksServer,
  toolCallBody,
} from '../support/http.ts';
import { textOf } from '../support/server.ts';

/** jose's `createRemoteJWKSet` cooldown as configured in auth.ts: no refetch sooner than this. */
const JWKS_COOLDOWN_MS = 30_000;

let pgServer: TestPostgres;
let db: ChinookDatabase;
let jwks: JwksServer;
let key1: SigningKey;
/** The main server: read-write, scope → role mapping, approval off for inserts. */
let s: HttpServerProcess;
/** A second server on its own JWKS path, for the key-rotation case. */
let rot: HttpServerProcess;
const run = randomBytes(4).toString('hex');

beforeAll(async () => {
  pgServer = await startTestPostgres();
  db = await createChinookDatabase(pgServer);
  key1 = await makeSigningKey('k1');
  jwks = await startJwksServer([key1.publicJwk]);
  const oauthConfig = (path: string) => ({
    mode: 'read-write',
    auth: {
      mode: 'oauth',
      oauth: {
        issuer: jwks.origin,
        jwksUrl: jwks.jwksUrl(path),
        scopeRoles: { 'db.admin': ['writer'] },
        scopesSupported: ['postgres:read', 'postgres:write'],
      },
    },
    tools: { settings: { postgres_insert_rows: { approval: 'none' } } },
    // Refusals before authentication are aggregated per peer and interval: a short interval
    // lets each case below see its record.
    http: { unauthenticatedAuditIntervalSeconds: 1 },
    log: { level: 'info' },
  });
  const env = { POSTGRES_URL: db.readUrl, POSTGRES_WRITE_URL: db.writeUrl };
  [s, rot] = await Promise.all([
    startHttpServer({ env, config: oauthConfig('main') }),
    startHttpServer({ env, config: oauthConfig('rot') }),
  ]);
  // One verified token each: both processes have now fetched and cached the JWKS (the refetch
  // cases at the end of this file wait out jose's cooldown from here).
  for (const p of [s, rot]) {
    const res = await mcpPost(p.url, initialize(), { token: await token({ aud: p.resource }) });
    expect(res.status, res.text).toBe(200);
  }
});
afterAll(async () => {
  await s?.stop();
  await rot?.stop();
  await jwks?.close();
  await db?.drop();
  await pgServer?.stop();
});

function initialize() {
  return {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'raw-http-test', version: '1.0.0' },
    },
  };
}

/** A valid token for the main server (overridable claims). */
function token(
  claims: {
    sub?: string;
    scope?: string;
    aud?: string | string[];
    iss?: string;
    exp?: number;
  } = {},
  key: SigningKey = key1,
): Promise<string> {
  return mintToken(key, {
    sub: claims.sub ?? `alice-${run}`,
    iss: claims.iss ?? jwks.origin,
    aud: claims.aud ?? s.resource,
    scope: claims.scope ?? 'postgres:read',
    ...(claims.exp !== undefined ? { exp: claims.exp } : {}),
  });
}

function metadataUrl(p: HttpServerProcess): string {
  const r = new URL(p.resource);
  return `${r.origin}/.well-known/oauth-protected-resource${r.pathname}`;
}

/** `http:authenticate` audit records written so far. */
function authAudits(p: HttpServerProcess): AuditRecord[] {
  return auditRecordsIn(p.stderr()).filter((a) => a.tool === 'http:authenticate');
}

/**
 * Sends `init` with `headers`, expects a 401 refused with `error` (or none) and one new
 * `http:authenticate` audit record, and that no part of `secret` reached stderr.
 */
async function expect401(
  send: () => Promise<RawResponse>,
  error: 'invalid_token' | undefined,
  secret: string,
  description?: RegExp,
): Promise<RawResponse> {
  const before = authAudits(s).length;
  const res = await send();
  expect(res.status, res.text).toBe(401);
  expectSafeBody(res);
  const www = String(res.headers['www-authenticate']);
  expect(www).toMatch(/^Bearer /);
  expect(www).toContain(`resource_metadata="${metadataUrl(s)}"`);
  if (error) {
    expect(www).toContain(`error="${error}"`);
    expect(JSON.parse(res.text)).toMatchObject({ error });
  } else {
    expect(www).not.toContain('error=');
  }
  if (description) expect(JSON.parse(res.text).message).toMatch(description);
  const reason = error ?? 'unauthenticated';
  await waitFor(() =>
    authAudits(s)
      .slice(before)
      .some((a) => a.decision.reason === reason),
  );
  const rec = authAudits(s)
    .slice(before)
    .find((a) => a.decision.reason === reason);
  expect(rec).toMatchObject({
    principal: 'unauthenticated',
    transport: 'http',
    tool: 'http:authenticate',
    outcome: 'denied',
    decision: { result: 'denied', reason: error ?? 'unauthenticated' },
  });
  // Neither the token nor its signature appear anywhere on stderr (logs or audit).
  const stderr = s.stderr();
  for (const part of secret.split('.').filter((p) => p.length >= 16))
    expect(stderr).not.toContain(part);
  return res;
}

describe('discovery', () => {
  it('a request without a token gets 401 with WWW-Authenticate pointing at the RFC 9728 metadata', async () => {
    const res = await expect401(() => mcpPost(s.url, initialize()), undefined, '');
    // The challenge also names the scopes to ask for (MCP 2025-11-25 Authorization §"Scope
    // Selection Strategy"): here the configured scopes_supported.
    expect(res.headers['www-authenticate']).toBe(
      `Bearer resource_metadata="${metadataUrl(s)}", scope="postgres:read postgres:write"`,
    );
    expect(metadataUrl(s)).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp$/,
    );
  });

  it('the protected resource metadata names the canonical resource and the issuer', async () => {
    const res = await rawRequest(metadataUrl(s));
    expect(res.status).toBe(200);
    expectSafeBody(res);
    const body = JSON.parse(res.text);
    expect(body.resource).toBe(s.resource);
    // The canonical resource is the URL the server announced (and bound): 127.0.0.1, not a
    // different spelling a client's resource check would refuse.
    expect(body.resource).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(body.resource).toBe(s.announcedUrl);
    expect(body.authorization_servers).toEqual([jwks.origin]);
    expect(body.bearer_methods_supported).toEqual(['header']);
    expect(body.scopes_supported).toEqual(['postgres:read', 'postgres:write']);
    // Also without the /mcp suffix.
    const root = await rawRequest(
      `${new URL(s.resource).origin}/.well-known/oauth-protected-resource`,
    );
    expect(JSON.parse(root.text).resource).toBe(s.resource);
  });
});

describe('a valid token', () => {
  it('works end to end with the SDK client: initialize, tools/list, tools/call with redaction', async () => {
    const sub = `e2e-${run}`;
    const t = await token({ sub });
    const { client } = await connectHttpClient(s.url, { Authorization: `Bearer ${t}` });
    try {
      expect(client.getServerVersion()?.name).toBe('hardened-mcp-postgres');
      const { tools } = await client.listTools();
      expect(tools.map((x) => x.name)).toEqual(
        expect.arrayContaining(['postgres_query', 'postgres_insert_rows']),
      );
      const r = await client.callTool({
        name: 'postgres_query',
        arguments: {
          sql: 'SELECT first_name, email, phone FROM customer WHERE country = $1 ORDER BY customer_id',
          params: ['Brazil'],
        },
      });
      expect(r.isError).toBeFalsy();
      const st = r.structuredContent as { rows: unknown[][]; rowCount: number };
      expect(st.rowCount).toBe(5);
      expect(st.rows[0]).toEqual(['Luís', '[REDACTED:email]', '[REDACTED:phone]']);
      expect(textOf(r)).not.toMatch(/@embraer\.com\.br/);
    } finally {
      await client.close();
    }
    await waitFor(() =>
      auditRecordsIn(s.stderr()).some((a) => a.principal === sub && a.tool === 'postgres_query'),
    );
    const rec = auditRecordsIn(s.stderr()).find(
      (a) => a.principal === sub && a.tool === 'postgres_query',
    );
    expect(rec).toMatchObject({
      transport: 'http',
      outcome: 'success',
      rows: 5,
      client: { name: 'hardened-mcp-http-e2e' },
    });
    expect(rec?.redactions).toMatchObject({ email: 5, phone: 5 });
    expect(s.stderr()).not.toContain(t.split('.')[2]!);
    expect(s.stdout()).toBe('');
  });
});

describe('rejected tokens: 401 invalid_token, audited, never logged', () => {
  it('an expired token', async () => {
    const t = await token({ exp: Math.floor(Date.now() / 1000) - 3600 });
    await expect401(
      () => mcpPost(s.url, initialize(), { token: t }),
      'invalid_token',
      t,
      /expired/,
    );
  });

  it('a token for another resource (aud)', async () => {
    const t = await token({ aud: 'http://localhost:1/mcp' });
    await expect401(() => mcpPost(s.url, initialize(), { token: t }), 'invalid_token', t, /aud/);
  });

  it('a token without exp', async () => {
    const t = await new SignJWT({ scope: 'postgres:read' })
      .setProtectedHeader({ alg: 'RS256', kid: key1.kid })
      .setSubject(`alice-${run}`)
      .setIssuer(jwks.origin)
      .setAudience(s.resource)
      .sign(key1.privateKey);
    await expect401(() => mcpPost(s.url, initialize(), { token: t }), 'invalid_token', t, /exp/);
  });

  it('a token not valid yet (nbf an hour ahead)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = await new SignJWT({ scope: 'postgres:read' })
      .setProtectedHeader({ alg: 'RS256', kid: key1.kid })
      .setSubject(`alice-${run}`)
      .setIssuer(jwks.origin)
      .setAudience(s.resource)
      .setNotBefore(now + 3600)
      .setExpirationTime(now + 7200)
      .sign(key1.privateKey);
    await expect401(() => mcpPost(s.url, initialize(), { token: t }), 'invalid_token', t, /nbf/);
  });

  it('a token from another issuer (iss)', async () => {
    const t = await token({ iss: 'https://evil.example' });
    await expect401(() => mcpPost(s.url, initialize(), { token: t }), 'invalid_token', t, /iss/);
  });

  it('an unsigned token (alg: none)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({
      sub: `alice-${run}`,
      iss: jwks.origin,
      aud: s.resource,
      exp: now + 300,
      scope: 'postgres:read postgres:write',
    })}.`;
    await expect401(() => mcpPost(s.url, initialize(), { token: t }), 'invalid_token', t);
  });

  it('an HS256 token keyed with the public key material (algorithm confusion)', async () => {
    const pem = await exportSPKI(key1.publicKey);
    const now = Math.floor(Date.now() / 1000);
    const t = await new SignJWT({ scope: 'postgres:read postgres:write' })
      .setProtectedHeader({ alg: 'HS256', kid: key1.kid })
      .setSubject(`alice-${run}`)
      .setIssuer(jwks.origin)
      .setAudience(s.resource)
      .setExpirationTime(now + 300)
      .sign(new TextEncoder().encode(pem));
    await expect401(
      () => mcpPost(s.url, initialize(), { token: t }),
      'invalid_token',
      t,
      /algorithm/,
    );
  });

  it('a token only in the query string (?access_token=) is refused: 400 invalid_request, not read', async () => {
    const t = await token();
    const res = await mcpPost(`${s.url}?access_token=${encodeURIComponent(t)}`, initialize());
    expect(res.status, res.text).toBe(400);
    expectSafeBody(res);
    expect(JSON.parse(res.text)).toMatchObject({ error: 'invalid_request' });
    expect(String(res.headers['www-authenticate'])).toContain('error="invalid_request"');
    for (const part of t.split('.').filter((p) => p.length >= 16))
      expect(s.stderr()).not.toContain(part);
  });

  it('a malformed Authorization header is invalid_request', async () => {
    const res = await mcpPost(s.url, initialize(), {
      extra: { Authorization: 'Basic YWxpY2U6c2VjcmV0' },
    });
    expect(res.status).toBe(401);
    expectSafeBody(res);
    expect(res.headers['www-authenticate']).toContain('error="invalid_request"');
  });
});

describe('scopes', () => {
  it('a read-scoped token calling a write tool gets 403 insufficient_scope naming postgres:write', async () => {
    const sub = `reader-${run}`;
    const t = await token({ sub, scope: 'postgres:read' });
    const session = await openSession(s.url, t);
    const res = await mcpPost(
      s.url,
      toolCallBody('postgres_insert_rows', {
        table: 'genre',
        rows: [{ genre_id: 900, name: 'nope' }],
      }),
      { token: t, session },
    );
    expect(res.status, res.text).toBe(403);
    expectSafeBody(res);
    const www = String(res.headers['www-authenticate']);
    expect(www).toMatch(/^Bearer error="insufficient_scope", scope="postgres:write"/);
    expect(www).toContain(`resource_metadata="${metadataUrl(s)}"`);
    expect(JSON.parse(res.text)).toMatchObject({
      jsonrpc: '2.0',
      id: 2,
      error: { code: -32001, message: 'insufficient_scope: postgres:write required' },
    });
    await waitFor(() =>
      auditRecordsIn(s.stderr()).some(
        (a) => a.principal === sub && a.tool === 'postgres_insert_rows',
      ),
    );
    expect(
      auditRecordsIn(s.stderr()).find(
        (a) => a.principal === sub && a.tool === 'postgres_insert_rows',
      ),
    ).toMatchObject({ outcome: 'denied', decision: { result: 'denied', reason: 'forbidden' } });
    expect(await genreRows(900)).toBe(0);
  });

  it('auth.oauth.scopeRoles maps a token scope to a role (db.admin → writer) that may write', async () => {
    const sub = `admin-${run}`;
    const t = await token({ sub, scope: 'db.admin' });
    const { client } = await connectHttpClient(s.url, { Authorization: `Bearer ${t}` });
    try {
      const r = await client.callTool({
        name: 'postgres_insert_rows',
        arguments: { table: 'genre', rows: [{ genre_id: 901, name: `http ${run}` }] },
      });
      expect(r.isError, textOf(r)).toBeFalsy();
      expect(r.structuredContent).toMatchObject({ table: 'public.genre', affectedRows: 1 });
    } finally {
      await client.close();
    }
    expect(await genreRows(901)).toBe(1);
    const rec = auditRecordsIn(s.stderr()).find(
      (a) => a.principal === sub && a.tool === 'postgres_insert_rows',
    );
    expect(rec).toMatchObject({ roles: ['writer'], outcome: 'success', access: 'write' });
  });
});

async function genreRows(id: number): Promise<number> {
  const c = new pg.Client({ connectionString: db.adminUrl });
  await c.connect();
  try {
    return (await c.query('SELECT 1 FROM genre WHERE genre_id = $1', [id])).rowCount ?? 0;
  } finally {
    await c.end();
  }
}

describe('sessions are bound to their principal', () => {
  const listTools = { jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} };

  it('a forged session id → 404', async () => {
    const t = await token();
    const res = await mcpPost(s.url, listTools, {
      token: t,
      session: randomBytes(32).toString('base64url'),
    });
    expect(res.status).toBe(404);
    expectSafeBody(res);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: -32001 } });
  });

  it("another principal's valid session id → 404, while its owner still gets through", async () => {
    const a = await token({ sub: `owner-${run}` });
    const b = await token({ sub: `intruder-${run}` });
    const session = await openSession(s.url, a);
    const stolen = await mcpPost(s.url, listTools, { token: b, session });
    expect(stolen.status).toBe(404);
    expectSafeBody(stolen);
    expect(JSON.parse(stolen.text)).toMatchObject({ error: { code: -32001 } });
    const own = await mcpPost(s.url, listTools, { token: a, session });
    expect(own.status).toBe(200);
    expect(rpcMessage(own)).toMatchObject({ id: 3, result: { tools: expect.any(Array) } });
  });

  it('an ended session (DELETE, then reuse) → 404', async () => {
    const t = await token({ sub: `ender-${run}` });
    const session = await openSession(s.url, t);
    const del = await rawRequest(s.url, {
      method: 'DELETE',
      headers: {
        Authorization: `Bearer ${t}`,
        'Mcp-Session-Id': session,
        'MCP-Protocol-Version': '2025-11-25',
      },
    });
    expect(del.status).toBe(200);
    const reuse = await mcpPost(s.url, listTools, { token: t, session });
    expect(reuse.status).toBe(404);
    expectSafeBody(reuse);
  });
});

describe('JWKS refresh (jose refetches an unknown kid at most once per 30 s cooldown)', () => {
  /** Waits until `cooldown` has passed since the last fetch of `path`. */
  async function afterCooldown(path: string): Promise<void> {
    const last = jwks.fetches(path).at(-1) ?? 0;
    const wait = last + JWKS_COOLDOWN_MS + 1_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  it('a token whose kid is unknown makes the server refetch the JWKS, then fail', async () => {
    await afterCooldown('main');
    const fetchesBefore = jwks.fetches('main').length;
    const ghost = await makeSigningKey('ghost');
    const t = await token({}, ghost);
    await expect401(() => mcpPost(s.url, initialize(), { token: t }), 'invalid_token', t, /kid/);
    expect(jwks.fetches('main').length).toBe(fetchesBefore + 1);
  }, 60_000);

  it('key rotation: a token signed with a key added to the JWKS after startup is accepted', async () => {
    await afterCooldown('rot');
    const fetchesBefore = jwks.fetches('rot').length;
    const key2 = await makeSigningKey(`k2-${run}`);
    jwks.addKey(key2.publicJwk);
    const t = await mintToken(key2, {
      sub: `rotated-${run}`,
      iss: jwks.origin,
      aud: rot.resource,
      scope: 'postgres:read',
    });
    const res = await mcpPost(rot.url, initialize(), { token: t });
    expect(res.status, res.text).toBe(200);
    expect(rpcMessage(res)).toMatchObject({ id: 1, result: { protocolVersion: '2025-11-25' } });
    expect(jwks.fetches('rot').length).toBe(fetchesBefore + 1);
    // The old key keeps working.
    const old = await mintToken(key1, {
      sub: `rotated-${run}`,
      iss: jwks.origin,
      aud: rot.resource,
    });
    expect((await mcpPost(rot.url, initialize(), { token: old })).status).toBe(200);
  }, 60_000);
});
