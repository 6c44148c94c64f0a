/**
 * Two `hardened-mcp-postgres --transport http` processes sharing the machine's Redis
 * (`REDIS_URL=redis://127.0.0.1:6379`, or `HMCP_TEST_REDIS_URL`) share one rate-limit budget per principal and tool.
 * Skipped, with the reason shown, when no Redis answers there.
 */
import { randomBytes } from 'node:crypto';
import { hashApiKey } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn, waitFor } from '../support/audit.ts';
import {
  type HttpServerProcess,
  mcpPost,
  openSession,
  redisPing,
  rpcMessage,
  startHttpServer,
  toolCallBody,
} from '../support/http.ts';

/** The machine's Redis (no password); `HMCP_TEST_REDIS_URL` points elsewhere. */
const REDIS_URL = process.env.HMCP_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const redisAt = new URL(REDIS_URL);
const redis = await redisPing(redisAt.hostname, Number(redisAt.port || 6379));
const skipReason = redis.ok ? undefined : `Redis unreachable at ${redisAt.host} (${redis.reason})`;
if (skipReason) console.warn(`[redis-rate-limit] SKIPPED: ${skipReason}`);

// A principal unique to this run: the limiter keys are `hmcp:<tool>` + principal, and Redis
// outlives the test, so a fixed name would share budgets with earlier runs.
const run = randomBytes(6).toString('hex');
const PRINCIPAL = `rl-${run}`;
const KEY = `hmcp_rl_${randomBytes(24).toString('base64url')}`;

let pgServer: TestPostgres | undefined;
let db: ChinookDatabase | undefined;

beforeAll(async () => {
  if (skipReason) return;
  pgServer = await startTestPostgres();
  db = await createChinookDatabase(pgServer);
});
afterAll(async () => {
  await db?.drop();
  await pgServer?.stop();
});

describe(`shared Redis rate limit${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('calls alternating between two processes: the 4th of 3 allowed is rate_limited with retryAfterMs', async (ctx) => {
    ctx.skip(skipReason !== undefined, skipReason);
    const config = {
      auth: {
        mode: 'api-key',
        apiKeys: [{ id: 'rl', sha256: hashApiKey(KEY), principal: PRINCIPAL, roles: ['reader'] }],
      },
      rateLimit: { points: 3, durationSeconds: 60 },
    };
    const env = { POSTGRES_URL: db!.readUrl, REDIS_URL };
    const servers: HttpServerProcess[] = await Promise.all([
      startHttpServer({ env, config }),
      startHttpServer({ env, config }),
    ]);
    try {
      for (const s of servers) expect(s.stderr()).toMatch(/"rateLimitStore":"redis"/);
      const sessions = await Promise.all(servers.map((s) => openSession(s.url, KEY)));
      const results: Record<string, unknown>[] = [];
      for (let i = 0; i < 4; i++) {
        const n = i % 2;
        const res = await mcpPost(
          servers[n]!.url,
          toolCallBody('postgres_list_schemas', {}, 100 + i),
          { token: KEY, session: sessions[n]! },
        );
        expect(res.status, res.text).toBe(200);
        results.push(rpcMessage(res));
      }
      type Msg = {
        result: { isError?: boolean; content: { text: string }[]; _meta?: Record<string, unknown> };
      };
      for (const r of results.slice(0, 3)) expect((r as Msg).result.isError).toBeFalsy();
      const fourth = (results[3] as Msg).result;
      expect(fourth.isError).toBe(true);
      expect(fourth.content[0]?.text).toMatch(
        /^rate_limited: rate limit exceeded for postgres_list_schemas/,
      );
      const meta = fourth._meta?.['hardened-mcp/error'] as { code: string; retryAfterMs: number };
      expect(meta.code).toBe('rate_limited');
      expect(meta.retryAfterMs).toBeGreaterThan(50_000);
      expect(meta.retryAfterMs).toBeLessThanOrEqual(60_000);
      // The refusal came from the second process, which alone had seen only one call.
      const ofPrincipal = () =>
        auditRecordsIn(servers[1]!.stderr()).filter(
          (a) => a.principal === PRINCIPAL && a.tool === 'postgres_list_schemas',
        );
      await waitFor(() => ofPrincipal().length === 2);
      const secondAudit = ofPrincipal();
      expect(secondAudit.map((a) => a.outcome)).toEqual(['success', 'denied']);
      expect(secondAudit[1]?.decision).toMatchObject({ result: 'denied', reason: 'rate_limited' });
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });
});
