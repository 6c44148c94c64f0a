/**
 * The Postgres server started the way its pod starts it, without a cluster: the configuration file
 * from the rendered ConfigMap of each overlay, the credential as a file of the mode the Secret
 * volume gives it (0440), the built bin on Node 24. Only what cannot exist outside a cluster is
 * replaced: the ports (free ones instead of 3000/9464), the credential's path and the database
 * (the test kit's PostgreSQL), and in `production` the identity provider's JWKS URL (a local JWKS
 * endpoint; the issuer, audience and public URL stay as the manifests say). Redis (production's
 * REDIS_URL) is left out: it is the shared machine's, and the rate budget across replicas is tested
 * in test/http.
 *
 * Then what the kubelet and the gateway would see: `/healthz` and `/readyz` answer 200 on the
 * management listener; in `local` an MCP client without credentials lists the tools and runs a
 * query; in `production` a request without a token gets 401, and a token from the configured
 * issuer for the configured audience with the configured scope runs a query (through the Host name
 * the configuration allows), while another Host is refused.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChinookDatabase, startTestPostgres } from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  connectHttpClient,
  type JwksServer,
  makeSigningKey,
  mcpPost,
  mintToken,
  rawRequest,
  rpcMessage,
  type SigningKey,
  startHttpServer,
  startJwksServer,
  toolCallBody,
} from '../support/http.ts';
import { REPO_ROOT, textOf } from '../support/server.ts';
import { type KubeObject, kustomizeBuild, podSpec } from './kustomize.ts';

/** The parts of the configuration file this test reads or replaces. */
type PodConfigFile = Record<string, unknown> & {
  credentials: { read: { file: string } };
  http: { port: number; allowedHosts: string[]; management: { port: number } };
  auth: {
    oauth?: {
      issuer: string;
      audience: string;
      jwksUrl: string;
      scopeRoles: Record<string, string[]>;
    };
  };
};

const work = mkdtempSync(join(tmpdir(), 'hmcp-k8s-pod-'));
let pg: Awaited<ReturnType<typeof startTestPostgres>>;
let db: Awaited<ReturnType<typeof createChinookDatabase>>;
let jwks: JwksServer;
let key: SigningKey;

beforeAll(async () => {
  pg = await startTestPostgres();
  db = await createChinookDatabase(pg);
  key = await makeSigningKey('k8s-test');
  jwks = await startJwksServer([key.publicJwk]);
});

afterAll(async () => {
  await jwks?.close();
  await db?.drop();
  await pg?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The overlay's configuration as the pod reads it, and the mode of the credential Secret volume. */
function podConfig(overlay: string): { config: PodConfigFile; secretMode: number } {
  const objects = kustomizeBuild(
    join(REPO_ROOT, 'servers', 'postgres', 'deploy', 'kubernetes', 'overlays', overlay),
  );
  const cm = objects.find((o) => o.kind === 'ConfigMap') as KubeObject;
  const config = parseYaml(
    String((cm.data as Record<string, string>)['config.yaml']),
  ) as PodConfigFile;
  const deployment = objects.find((o) => o.kind === 'Deployment') as KubeObject;
  const volumes = (podSpec(deployment)?.volumes ?? []) as { secret?: { defaultMode?: number } }[];
  const secretMode = Number(volumes.find((v) => v.secret)?.secret?.defaultMode);
  return { config, secretMode };
}

/** Writes the read URL where the test can put it, with the Secret volume's mode. */
function credentialFile(name: string, mode: number): string {
  const file = join(work, name);
  writeFileSync(file, db.readUrl);
  chmodSync(file, mode);
  return file;
}

/** `http://127.0.0.1:<port><path>` of a listener the server reported as bound on any address. */
function loopbackUrl(url: string, path: string): string {
  const u = new URL(url);
  return `http://127.0.0.1:${u.port}${path}`;
}

describe('postgres pod configuration', () => {
  it('local: healthy and ready, and an MCP client without credentials runs a query (loopback)', async () => {
    const { config, secretMode } = podConfig('local');
    expect(secretMode).toBe(0o440);
    config.credentials.read.file = credentialFile('local-read-url', secretMode);
    config.http.port = 0;
    config.http.management.port = 0;
    const server = await startHttpServer({ env: {}, config });
    try {
      expect(server.managementUrl).toBeDefined();
      const management = server.managementUrl as string;
      expect((await rawRequest(loopbackUrl(management, '/healthz'))).status).toBe(200);
      expect((await rawRequest(loopbackUrl(management, '/readyz'))).status).toBe(200);
      expect(new URL(server.url).hostname).toMatch(/^(localhost|127\.0\.0\.1)$/);
      const { client } = await connectHttpClient(server.url);
      try {
        const tools = (await client.listTools()).tools.map((t) => t.name);
        expect(tools).toContain('postgres_query');
        const r = await client.callTool({
          name: 'postgres_query',
          arguments: { sql: 'SELECT name FROM artist WHERE artist_id = 1' },
        });
        expect(r.isError, textOf(r)).toBeFalsy();
        expect(textOf(r)).toContain('AC/DC');
      } finally {
        await client.close();
      }
      expect(server.stdout()).toBe('');
    } finally {
      expect((await server.stop()).code).toBe(0);
    }
  });

  it('production: healthy and ready, 401 without a token, a query with a token of the configured issuer, audience and scope', async () => {
    const { config, secretMode } = podConfig('production');
    expect(secretMode).toBe(0o440);
    config.credentials.read.file = credentialFile('production-read-url', secretMode);
    config.http.port = 0;
    config.http.management.port = 0;
    const oauth = config.auth.oauth;
    if (!oauth) throw new Error('production has no auth.oauth');
    oauth.jwksUrl = jwks.jwksUrl('k8s-production');
    const host = String(config.http.allowedHosts[0]);
    const scope = Object.keys(oauth.scopeRoles)[0] as string;
    const server = await startHttpServer({ env: {}, config });
    try {
      const management = server.managementUrl as string;
      expect((await rawRequest(loopbackUrl(management, '/healthz'))).status).toBe(200);
      expect((await rawRequest(loopbackUrl(management, '/readyz'))).status).toBe(200);
      const mcp = loopbackUrl(server.url, '/mcp');
      const call = toolCallBody('postgres_query', {
        sql: 'SELECT name FROM artist WHERE artist_id = 1',
      });

      const anonymous = await mcpPost(mcp, call, { extra: { Host: host } });
      expect(anonymous.status).toBe(401);
      expect(String(anonymous.headers['www-authenticate'])).toContain('resource_metadata=');

      const token = await mintToken(key, {
        sub: 'analyst@example.com',
        iss: String(oauth.issuer),
        aud: String(oauth.audience),
        scope,
      });
      const ok = await mcpPost(mcp, call, { token, extra: { Host: host } });
      expect(ok.status, ok.text).toBe(200);
      const result = rpcMessage(ok).result as { isError?: boolean; content?: unknown };
      expect(result.isError, JSON.stringify(result)).toBeFalsy();
      expect(JSON.stringify(result.content)).toContain('AC/DC');

      const otherHost = await mcpPost(mcp, call, { token, extra: { Host: 'evil.example.net' } });
      expect(otherHost.status).toBeGreaterThanOrEqual(400);

      const unscoped = await mintToken(key, {
        sub: 'analyst@example.com',
        iss: String(oauth.issuer),
        aud: String(oauth.audience),
        scope: 'openid',
      });
      const forbidden = await mcpPost(mcp, call, { token: unscoped, extra: { Host: host } });
      expect(forbidden.status).toBe(403);
      expect(server.stdout()).toBe('');
    } finally {
      expect((await server.stop()).code).toBe(0);
    }
  });
});
