/**
 * The supported multi-replica mode for sessions (issue 17 §2, packages/core/README.md "HTTP
 * transport"): sticky routing on `Mcp-Session-Id`. Two `hardened-mcp-postgres --transport http`
 * replicas behind a real HAProxy (Debian's package), round-robin, with the session id learned
 * from the `initialize` response. MCP SDK clients with elicitation open sessions, call tools and
 * answer an approval prompt (a new POST on the same session) through the balancer; a frontend
 * without the stickiness rule is the control that shows why it is needed.
 *
 * Skipped, with the reason shown, when no `haproxy` binary is installed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn } from '../support/audit.ts';
import { freePort, type HttpServerProcess, startHttpServer } from '../support/http.ts';
import { textOf } from '../support/server.ts';

const haproxyMissing = spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status !== 0;
if (haproxyMissing)
  console.warn('[sticky-sessions] SKIPPED: no haproxy binary (apt-get install haproxy)');

const run = randomBytes(4).toString('hex');
const KEYS = {
  alice: `hmcp_a_${randomBytes(24).toString('base64url')}`,
  bob: `hmcp_b_${randomBytes(24).toString('base64url')}`,
  carol: `hmcp_c_${randomBytes(24).toString('base64url')}`,
};

let pgServer: TestPostgres;
let db: ChinookDatabase;
let replicas: HttpServerProcess[] = [];
let haproxy: ChildProcess | undefined;
let stickyUrl = '';
let plainUrl = '';

/** Waits until something accepts TCP connections on 127.0.0.1:port. */
async function listening(port: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      () => true,
      () => false,
    );
    if (ok) return;
    if (Date.now() > until || haproxy?.exitCode !== null) throw new Error('haproxy did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (haproxyMissing) return;
  pgServer = await startTestPostgres();
  db = await createChinookDatabase(pgServer);
  const [stickyPort, plainPort] = [await freePort(), await freePort()];
  stickyUrl = `http://127.0.0.1:${stickyPort}/mcp`;
  plainUrl = `http://127.0.0.1:${plainPort}/mcp`;
  const config = {
    mode: 'read-write',
    auth: {
      mode: 'api-key',
      apiKeys: Object.entries(KEYS).map(([name, key]) => ({
        id: name,
        sha256: hashApiKey(key),
        principal: `${name}-${run}`,
        roles: ['writer'],
      })),
    },
    http: {
      // The canonical URL is the balancer's; the control frontend's port is allowed explicitly.
      publicUrl: stickyUrl,
      allowedHosts: ['127.0.0.1', `127.0.0.1:${plainPort}`],
    },
  };
  const env = { POSTGRES_URL: db.readUrl, POSTGRES_WRITE_URL: db.writeUrl };
  replicas = await Promise.all([
    startHttpServer({ env, config }),
    startHttpServer({ env, config }),
  ]);
  const servers = replicas
    .map((r, i) => `  server r${i + 1} 127.0.0.1:${new URL(r.url).port}`)
    .join('\n');
  const cfg = join(mkdtempSync(join(tmpdir(), 'hmcp-haproxy-')), 'haproxy.cfg');
  writeFileSync(
    cfg,
    `global
  maxconn 512
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend sticky
  bind 127.0.0.1:${stickyPort}
  default_backend sticky
frontend plain
  bind 127.0.0.1:${plainPort}
  default_backend plain
# The supported mode: round-robin for new sessions, then every request carrying a session id
# goes to the replica whose initialize response issued it.
backend sticky
  balance roundrobin
  stick-table type string len 64 size 100k expire 30m
  stick match req.hdr(mcp-session-id)
  stick store-response res.hdr(mcp-session-id)
${servers}
# The control: plain round-robin.
backend plain
  balance roundrobin
${servers}
`,
  );
  haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  await listening(stickyPort);
  await listening(plainPort);
});

afterAll(async () => {
  haproxy?.kill('SIGTERM');
  await Promise.all(replicas.map((r) => r.stop()));
  await db?.drop();
  await pgServer?.stop();
});

async function connect(url: string, key: string, approve: boolean) {
  const client = new Client(
    { name: 'sticky-test', version: '1.0.0' },
    { capabilities: { elicitation: {} } },
  );
  const prompts: string[] = [];
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    prompts.push(String(req.params.message));
    return approve ? { action: 'accept', content: { approve: true } } : { action: 'decline' };
  });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return { client, transport, prompts };
}

async function genreRows(id: number): Promise<number> {
  const c = new pg.Client({ connectionString: db.adminUrl });
  await c.connect();
  try {
    return (await c.query('SELECT 1 FROM genre WHERE genre_id = $1', [id])).rowCount ?? 0;
  } finally {
    await c.end();
  }
}

/** Index of the replica whose audit trail has a record of `principal` calling `tool`. */
function servedBy(principal: string, tool: string): number[] {
  return replicas
    .map((r, i) =>
      auditRecordsIn(r.stderr()).some((a) => a.principal === principal && a.tool === tool) ? i : -1,
    )
    .filter((i) => i >= 0);
}

describe.skipIf(haproxyMissing)('sticky routing on Mcp-Session-Id behind HAProxy', () => {
  it('sessions spread over both replicas and each stays on its own; approvals cross the balancer', async () => {
    const a = await connect(stickyUrl, KEYS.alice, true);
    const b = await connect(stickyUrl, KEYS.bob, true);
    try {
      for (let i = 0; i < 4; i++) {
        for (const s of [a, b]) {
          const r = await s.client.callTool({
            name: 'postgres_query',
            arguments: { sql: 'SELECT count(*)::int AS n FROM artist' },
          });
          expect(r.isError, textOf(r)).toBeFalsy();
        }
      }
      // The elicitation answer is a new POST on the session: it must reach the replica whose
      // call is waiting for it.
      const id = 9_000 + Number.parseInt(run.slice(0, 3), 16);
      const w = await b.client.callTool({
        name: 'postgres_insert_rows',
        arguments: { table: 'genre', rows: [{ genre_id: id, name: `sticky ${run}` }] },
      });
      expect(w.isError, textOf(w)).toBeFalsy();
      expect(b.prompts).toHaveLength(1);
      expect(await genreRows(id)).toBe(1);
    } finally {
      await a.transport.terminateSession().catch(() => undefined);
      await b.transport.terminateSession().catch(() => undefined);
      await a.client.close();
      await b.client.close();
    }
    const alice = servedBy(`alice-${run}`, 'postgres_query');
    const bob = servedBy(`bob-${run}`, 'postgres_query');
    // Each session was served by exactly one replica, and round-robin used both.
    expect(alice).toHaveLength(1);
    expect(bob).toHaveLength(1);
    expect(alice[0]).not.toBe(bob[0]);
    expect(servedBy(`bob-${run}`, 'postgres_insert_rows')).toEqual(bob);
  });

  it('the control: without the stickiness rule the next request lands on the other replica (404)', async () => {
    const attempt = (async () => {
      const c = await connect(plainUrl, KEYS.carol, true);
      try {
        await c.client.callTool({
          name: 'postgres_query',
          arguments: { sql: 'SELECT 1 AS one' },
        });
      } finally {
        await c.client.close();
      }
    })();
    await expect(attempt).rejects.toThrow(/404|Session not found/);
  });
});
