import { startTokenEndpoint, type TokenEndpoint } from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principalCredentialsSchema, tokenExchangeSchema } from '../config.js';
import { defineConnector } from '../connector.js';
import { Secret } from '../credentials.js';
import { ToolError } from '../errors.js';
import type { Identity } from '../identity.js';
import { createLogger } from '../logger.js';
import { createRedactor } from '../redaction/index.js';
import { secretRegistry } from '../tool.js';
import { createPrincipalClients } from './principal-clients.js';
import { attachSubjectToken } from './subject-token.js';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT, TokenExchanger } from './token-exchange.js';

const AUDIENCE = 'https://notes.example.test';
let endpoint: TokenEndpoint;

beforeAll(async () => {
  endpoint = await startTokenEndpoint({
    clientId: 'hmcp-example',
    clientSecret: 'client secret: with + and %',
    audience: AUDIENCE,
    refuse: (t) => t.startsWith('revoked-'),
  });
});
afterAll(async () => endpoint?.close());

const settings = (extra: Record<string, unknown> = {}) =>
  tokenExchangeSchema.parse({
    issuer: endpoint.issuer,
    tokenEndpoint: endpoint.url,
    audience: AUDIENCE,
    scope: 'notes.read',
    clientId: 'hmcp-example',
    clientSecret: { env: 'UNUSED' },
    expirySkewSeconds: 5,
    ...extra,
  });
const clientSecret = new Secret('client secret: with + and %', 'test');

describe('TokenExchanger (RFC 8693) against a real local token endpoint', () => {
  it('sends the grant, the subject token and its type, the audience and scope, with client_secret_basic', async () => {
    const x = new TokenExchanger(settings(), clientSecret);
    const before = endpoint.requests.length;
    const got = await x.tokenFor('alice', new Secret('alice-access-token', 'caller'));
    const req = endpoint.requests[before];
    expect(req).toMatchObject({
      grantType: TOKEN_EXCHANGE_GRANT,
      subjectToken: 'alice-access-token',
      subjectTokenType: ACCESS_TOKEN_TYPE,
      requestedTokenType: ACCESS_TOKEN_TYPE,
      audience: AUDIENCE,
      scope: 'notes.read',
      clientId: 'hmcp-example',
      clientAuthenticated: true,
      status: 200,
    });
    expect(got.token.reveal()).toBe(req?.issued);
    expect(got.token.reveal()).not.toBe('alice-access-token');
  });

  it('caches per principal until expires_in minus the skew, then exchanges again', async () => {
    let now = 1_000_000;
    endpoint.setExpiresIn(60);
    const x = new TokenExchanger(settings(), clientSecret, { now: () => now });
    const alice = new Secret('alice-token-2', 'caller');
    const before = endpoint.requests.length;
    const first = await x.tokenFor('alice', alice);
    const again = await x.tokenFor('alice', alice);
    expect(again.token.reveal()).toBe(first.token.reveal());
    expect(endpoint.requests.length).toBe(before + 1);
    // Another principal gets its own token.
    const bob = await x.tokenFor('bob', new Secret('bob-token', 'caller'));
    expect(bob.token.reveal()).not.toBe(first.token.reveal());
    expect(endpoint.requests.length).toBe(before + 2);
    // 54 s later (60 − 5 skew − 1) the token is still used; at 55 s it is exchanged again.
    now += 54_000;
    expect((await x.tokenFor('alice', alice)).token.reveal()).toBe(first.token.reveal());
    now += 1_000;
    const renewed = await x.tokenFor('alice', alice);
    expect(renewed.token.reveal()).not.toBe(first.token.reveal());
    expect(endpoint.requests.length).toBe(before + 3);
    endpoint.setExpiresIn(300);
  });

  it('concurrent calls for one principal share one request', async () => {
    const x = new TokenExchanger(settings(), clientSecret);
    const before = endpoint.requests.length;
    const t = new Secret('carol-token', 'caller');
    const all = await Promise.all([1, 2, 3, 4].map(() => x.tokenFor('carol', t)));
    expect(new Set(all.map((a) => a.token.reveal())).size).toBe(1);
    expect(endpoint.requests.length).toBe(before + 1);
  });

  it('a refused exchange is forbidden; a wrong client secret or audience too; nothing is cached', async () => {
    const x = new TokenExchanger(settings(), clientSecret);
    await expect(x.tokenFor('mallory', new Secret('revoked-1', 'caller'))).rejects.toMatchObject({
      code: 'forbidden',
      message: expect.stringContaining('invalid_grant'),
    });
    const wrongSecret = new TokenExchanger(settings(), new Secret('nope', 'test'));
    await expect(wrongSecret.tokenFor('alice', new Secret('t', 'c'))).rejects.toMatchObject({
      code: 'forbidden',
      message: expect.stringContaining('invalid_client'),
    });
    const wrongAudience = new TokenExchanger(settings({ audience: 'other' }), clientSecret);
    const err = await wrongAudience.tokenFor('alice', new Secret('t', 'c')).catch((e) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect(String(err.message)).toContain('invalid_target');
    // The caller's token never appears in the error.
    expect(JSON.stringify({ m: err.message, c: String(err.cause) })).not.toContain('revoked-1');
  });

  it('an unreachable endpoint is upstream_unavailable', async () => {
    const x = new TokenExchanger(
      settings({ tokenEndpoint: 'http://127.0.0.1:9/token', timeoutMs: 1000 }),
      clientSecret,
    );
    await expect(x.tokenFor('alice', new Secret('t', 'c'))).rejects.toMatchObject({
      code: 'upstream_unavailable',
    });
  });
});

describe('per-principal clients', () => {
  const opened: { scope: string; source: string; value: string }[] = [];
  const def = defineConnector<Record<string, never>, { value: string }>({
    name: 'fake',
    bin: 'fake',
    version: '0',
    title: 'fake',
    dataSource: 'fake',
    configSection: principalCredentialsSchema as never,
    defaultCredentials: {},
    tools: () => ({ tools: [] }),
    async openClient(scope, credential) {
      const value = credential?.current().reveal() ?? '';
      opened.push({ scope, source: credential?.source ?? '', value });
      return { value };
    },
    closeClient() {},
  });
  const redactor = createRedactor({ pii: [], keyRules: [] } as never);
  const ctx = {
    config: {} as never,
    settings: {},
    flags: {},
    logger: createLogger('silent', redactor),
    secrets: secretRegistry(redactor),
    redactor,
  };
  const identity = (principal: string, token?: string): Identity => {
    const id: Identity = { principal, roles: [], transport: 'http', client: {} };
    return token ? attachSubjectToken(id, new Secret(token, 'caller')) : id;
  };
  const make = (fallback: 'refuse' | 'service') =>
    createPrincipalClients(
      def,
      ctx as never,
      principalCredentialsSchema.parse({
        tokenExchange: { ...settings(), clientSecret: { env: 'TX_SECRET' } },
        fallback,
      }),
      { env: { TX_SECRET: 'client secret: with + and %' }, onSecret: () => undefined },
    );

  it('opens one client per principal with its exchanged token, never the caller token', async () => {
    const pc = await make('refuse');
    const shared = { value: 'service' };
    const a1 = await pc.clientFor('read', identity('alice', 'alice-at'), shared);
    const a2 = await pc.clientFor('read', identity('alice', 'alice-at'), shared);
    const b = await pc.clientFor('read', identity('bob', 'bob-at'), shared);
    expect(a1).toBe(a2);
    expect(b).not.toBe(a1);
    expect(a1.value).toMatch(/^xt-/);
    expect(opened.map((o) => o.value)).not.toContain('alice-at');
    expect(opened.at(-1)?.source).toBe(`token exchange for ${AUDIENCE} (principal bob)`);
    await pc.close();
  });

  it('no caller token or a refused exchange: refused, unless fallback is service', async () => {
    const refuse = await make('refuse');
    const shared = { value: 'service' };
    await expect(refuse.clientFor('read', identity('stdio-user'), shared)).rejects.toMatchObject({
      code: 'forbidden',
    });
    await expect(
      refuse.clientFor('read', identity('mallory', 'revoked-2'), shared),
    ).rejects.toMatchObject({ code: 'forbidden' });
    const service = await make('service');
    expect(await service.clientFor('read', identity('stdio-user'), shared)).toBe(shared);
    expect(await service.clientFor('read', identity('mallory', 'revoked-3'), shared)).toBe(shared);
  });
});
