/**
 * Per-principal credentials by RFC 8693 token exchange (issue 16 §1), black-box: the built
 * example server over HTTP with OAuth, a local JWKS, and a local RFC 8693 token endpoint (a real
 * HTTP server, `startTokenEndpoint`). Each caller's access token is exchanged for a downstream
 * token; the example connector's `openClient` gets that token (it logs a SHA-256 fingerprint of
 * the credential it was opened with), never the caller's own.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startTokenEndpoint, type TokenEndpoint } from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { REPO_ROOT, textOf } from '../support/server.ts';

const EXAMPLE_BIN = join(REPO_ROOT, 'servers', 'example', 'dist', 'bin.js');
const AUDIENCE = 'https://notes.internal.test';
const CLIENT_SECRET = 'tx-client-secret-9f3c1a';
const SERVICE_TOKEN = 'shared-service-token-7d2e';

let jwks: JwksServer;
let key: SigningKey;
let endpoint: TokenEndpoint;
let server: HttpServerProcess;

/** The `sub` of a JWT (the token endpoint refuses mallory's). */
function subOf(jwt: string): string {
  const payload = jwt.split('.')[1] ?? '';
  return String(
    (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub?: unknown }).sub,
  );
}

const fingerprint = (value: string) =>
  createHash('sha256').update(value).digest('hex').slice(0, 16);

/** `{source, fingerprint}` of every `read client opened` log line so far. */
function clientsOpened(): { source: string; fingerprint: string }[] {
  return server
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.msg === 'read client opened')
    .map((r) => ({ source: String(r.source), fingerprint: String(r.fingerprint) }));
}

beforeAll(async () => {
  key = await makeSigningKey('tx');
  jwks = await startJwksServer([key.publicJwk]);
  endpoint = await startTokenEndpoint({
    clientId: 'hardened-mcp-example',
    clientSecret: CLIENT_SECRET,
    audience: AUDIENCE,
    refuse: (t) => subOf(t) === 'mallory',
  });
  server = await startHttpServer({
    bin: EXAMPLE_BIN,
    env: { EXAMPLE_READ_TOKEN: SERVICE_TOKEN, TX_CLIENT_SECRET: CLIENT_SECRET },
    config: {
      auth: { mode: 'oauth', oauth: { issuer: jwks.origin, jwksUrl: jwks.jwksUrl('tx') } },
      principalCredentials: {
        scopes: ['read'],
        tokenExchange: {
          issuer: endpoint.issuer,
          tokenEndpoint: endpoint.url,
          audience: AUDIENCE,
          scope: 'notes.read',
          clientId: 'hardened-mcp-example',
          clientSecret: { env: 'TX_CLIENT_SECRET' },
          expirySkewSeconds: 0,
        },
      },
      log: { level: 'info' },
    },
  });
});
afterAll(async () => {
  await server?.stop();
  await endpoint?.close();
  await jwks?.close();
});

async function call(sub: string) {
  const token = await mintToken(key, {
    sub,
    iss: jwks.origin,
    aud: server.resource,
    scope: 'example:read',
  });
  const { client } = await connectHttpClient(server.url, { Authorization: `Bearer ${token}` });
  try {
    return {
      token,
      result: await client.callTool({ name: 'example_list_folders', arguments: {} }),
    };
  } finally {
    await client.close();
  }
}

describe('RFC 8693 token exchange per principal', () => {
  it("each principal's client is opened with its own exchanged token, cached between calls", async () => {
    const before = endpoint.requests.length;
    const a1 = await call('alice');
    expect(a1.result.isError, textOf(a1.result)).toBeFalsy();
    const a2 = await call('alice');
    expect(a2.result.isError).toBeFalsy();
    const b = await call('bob');
    expect(b.result.isError).toBeFalsy();

    const made = endpoint.requests.slice(before);
    // One exchange per principal: alice's second call used the cached token.
    expect(made.map((r) => subOf(r.subjectToken ?? ''))).toEqual(['alice', 'bob']);
    expect(made[0]).toMatchObject({
      grantType: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subjectToken: a1.token,
      subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      audience: AUDIENCE,
      scope: 'notes.read',
      clientAuthenticated: true,
      status: 200,
    });
    const opened = clientsOpened();
    const alice = opened.filter(
      (o) => o.source === `token exchange for ${AUDIENCE} (principal alice)`,
    );
    const bob = opened.filter((o) => o.source === `token exchange for ${AUDIENCE} (principal bob)`);
    expect(alice).toEqual([
      { source: alice[0]?.source, fingerprint: fingerprint(made[0]?.issued ?? '') },
    ]);
    expect(bob).toEqual([
      { source: bob[0]?.source, fingerprint: fingerprint(made[1]?.issued ?? '') },
    ]);
    // The caller's own token never reached a client, nor the log.
    const all = opened.map((o) => o.fingerprint);
    for (const t of [a1.token, a2.token, b.token]) {
      expect(all).not.toContain(fingerprint(t));
      expect(server.stderr()).not.toContain(t);
    }
    expect(server.stderr()).not.toContain(made[0]?.issued ?? 'never');
  });

  it('an expired downstream token is exchanged again and the client reopened', async () => {
    endpoint.setExpiresIn(1);
    try {
      const before = endpoint.requests.length;
      expect((await call('carol')).result.isError).toBeFalsy();
      // Past the 1-second lifetime (no skew): the next call exchanges again.
      await new Promise((r) => setTimeout(r, 1_500));
      expect((await call('carol')).result.isError).toBeFalsy();
      const made = endpoint.requests.slice(before);
      expect(made.map((r) => subOf(r.subjectToken ?? ''))).toEqual(['carol', 'carol']);
      const carol = clientsOpened().filter((o) => o.source.endsWith('(principal carol)'));
      expect(carol.map((o) => o.fingerprint)).toEqual(made.map((r) => fingerprint(r.issued ?? '')));
    } finally {
      endpoint.setExpiresIn(300);
    }
  });

  it('a refused exchange is forbidden, with no fallback to the service credential', async () => {
    const openedBefore = clientsOpened().length;
    const m = await call('mallory');
    expect(m.result.isError).toBe(true);
    expect(textOf(m.result)).toMatch(
      /^forbidden: the authorization server refused to issue a token/,
    );
    expect(endpoint.requests.at(-1)).toMatchObject({ status: 400 });
    expect(clientsOpened().length).toBe(openedBefore);
    expect(server.stderr()).not.toContain(m.token);
  });
});
