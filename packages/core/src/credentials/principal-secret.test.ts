import { type FakeSecretsManager, startFakeSecretsManager } from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principalCredentialsSchema } from '../config.js';
import { defineConnector } from '../connector.js';
import type { Identity } from '../identity.js';
import { createLogger } from '../logger.js';
import { createRedactor } from '../redaction/index.js';
import { secretRegistry } from '../tool.js';
import { createPrincipalClients } from './principal-clients.js';

let sm: FakeSecretsManager;
const savedEnv: Record<string, string | undefined> = {};
const run = Math.random().toString(36).slice(2, 8);

beforeAll(async () => {
  sm = await startFakeSecretsManager();
  for (const [k, v] of Object.entries(sm.env)) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  sm.putSecret(`users-${run}/alice`, JSON.stringify({ token: 'alice-own-token-123' }));
  sm.putSecret(`users-${run}/bob`, JSON.stringify({ token: 'bob-own-token-456' }));
});
afterAll(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await sm?.close();
});

describe('per-principal secret (secretTemplate) against a local Secrets Manager', () => {
  const opened: { source: string; value: string }[] = [];
  const def = defineConnector<Record<string, never>, { value: string }>({
    name: 'fake',
    bin: 'fake',
    version: '0',
    title: 'fake',
    dataSource: 'fake',
    configSection: principalCredentialsSchema as never,
    defaultCredentials: {},
    tools: () => ({ tools: [] }),
    async openClient(_scope, credential) {
      const value = credential?.current().reveal() ?? '';
      opened.push({ source: credential?.source ?? '', value });
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
  const identity = (principal: string): Identity => ({
    principal,
    roles: [],
    transport: 'stdio',
    client: {},
  });
  const make = (fallback: 'refuse' | 'service') =>
    createPrincipalClients(
      def,
      ctx as never,
      principalCredentialsSchema.parse({
        secretTemplate: {
          secretsManager: {
            secretIdTemplate: `users-${run}/{principal}`,
            jsonKey: 'token',
            endpoint: sm.endpoint,
            region: sm.region,
          },
        },
        fallback,
      }),
      { env: process.env, onSecret: () => undefined },
    );

  it("opens each principal's client with its own secret, fetched once", async () => {
    const pc = await make('refuse');
    const shared = { value: 'service' };
    const before = sm.requestCount(`users-${run}/alice`);
    const a = await pc.clientFor('read', identity('alice'), shared);
    const a2 = await pc.clientFor('read', identity('alice'), shared);
    const b = await pc.clientFor('read', identity('bob'), shared);
    expect(a.value).toBe('alice-own-token-123');
    expect(a2).toBe(a);
    expect(b.value).toBe('bob-own-token-456');
    expect(sm.requestCount(`users-${run}/alice`)).toBe(before + 1);
    await pc.close();
  });

  it('a principal without a secret, or whose id could name another path, is refused', async () => {
    const pc = await make('refuse');
    const shared = { value: 'service' };
    await expect(pc.clientFor('read', identity('carol'), shared)).rejects.toMatchObject({
      code: 'forbidden',
    });
    await expect(pc.clientFor('read', identity('../alice'), shared)).rejects.toMatchObject({
      code: 'forbidden',
    });
    expect(opened.map((o) => o.value)).not.toContain('service');
    const service = await make('service');
    expect(await service.clientFor('read', identity('carol'), shared)).toBe(shared);
  });

  it('a template without {principal} is a configuration error', () => {
    expect(() =>
      principalCredentialsSchema.parse({
        secretTemplate: { secretsManager: { secretIdTemplate: 'users/static' } },
      }),
    ).toThrow(/\{principal\}/);
    expect(() => principalCredentialsSchema.parse({})).toThrow(/exactly one/);
  });
});
