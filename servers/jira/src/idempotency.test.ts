/**
 * `jira_create_issue`'s idempotency stores. The Redis store runs against the real Redis at
 * 127.0.0.1:6379 (`HMCP_TEST_REDIS_URL` overrides); without one the Redis cases are skipped,
 * saying so. Two stores on the same Redis stand for two replicas.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ApprovalChannel,
  assemble,
  defineConfigSchema,
  parseConfig,
} from '@hardened-mcp/core';
import { type JiraFake, startJiraFake } from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jiraSectionSchema } from './config.js';
import { jiraConnector } from './connector.js';
import {
  type CreatedIssue,
  type IdempotencyStore,
  memoryIdempotencyStore,
  redisIdempotencyStore,
} from './idempotency.js';

const REDIS_URL = process.env.HMCP_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomBytes(4).toString('hex');

async function redisReachable(): Promise<boolean> {
  const u = new URL(REDIS_URL);
  return new Promise((resolve) => {
    const s = createConnection({ host: u.hostname, port: Number(u.port || 6379) });
    s.setTimeout(1000);
    s.once('connect', () => {
      s.end();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}
const HAVE_REDIS = await redisReachable();
if (!HAVE_REDIS) console.warn(`[idempotency] Redis cases SKIPPED: nothing answers at ${REDIS_URL}`);

/** A create that counts its calls and takes a little while (so concurrent calls overlap). */
function counter() {
  let n = 0;
  return {
    calls: () => n,
    create: async (): Promise<CreatedIssue> => {
      n += 1;
      await new Promise((r) => setTimeout(r, 150));
      return { key: `SUP-${100 + n}`, id: String(50_000 + n) };
    },
  };
}

function sharedCases(name: string, make: () => [IdempotencyStore, IdempotencyStore]) {
  describe.skipIf(name === 'redis' && !HAVE_REDIS)(`${name} idempotency store`, () => {
    let a: IdempotencyStore;
    let b: IdempotencyStore;
    beforeAll(() => {
      [a, b] = make();
    });
    afterAll(async () => {
      await a?.close();
      if (b !== a) await b?.close();
    });

    it('creates once for concurrent calls with one key, and replays the first result', async () => {
      const c = counter();
      const key = `key-${run}-1`;
      const [x, y] = await Promise.all([
        a.run('ana', key, 'f1', c.create),
        b.run('ana', key, 'f1', c.create),
      ]);
      expect(c.calls()).toBe(1);
      expect(x.result).toEqual(y.result);
      expect([x.replayed, y.replayed].sort()).toEqual([false, true]);
      expect(await b.check('ana', key, 'f1')).toBe('ok');
      expect(await b.check('ana', key, 'other')).toBe('mismatch');
      await expect(b.run('ana', key, 'other', c.create)).rejects.toThrow(/different issue/);
      // Another principal's key of the same name is another key.
      expect((await b.run('bo', key, 'f2', c.create)).replayed).toBe(false);
      expect(c.calls()).toBe(2);
    });

    it('forgets a failed create so the key can be tried again', async () => {
      const c = counter();
      const key = `key-${run}-2`;
      await expect(
        a.run('ana', key, 'f1', async () => {
          throw new Error('Jira failed');
        }),
      ).rejects.toThrow('Jira failed');
      expect((await b.run('ana', key, 'f1', c.create)).replayed).toBe(false);
      expect(c.calls()).toBe(1);
    });
  });
}

sharedCases('memory', () => {
  const m = memoryIdempotencyStore(60_000);
  return [m, m];
});
sharedCases('redis', () => [
  redisIdempotencyStore(REDIS_URL, 60_000),
  redisIdempotencyStore(REDIS_URL, 60_000),
]);

describe.skipIf(!HAVE_REDIS)('jira_create_issue on two replicas sharing Redis', () => {
  let fake: JiraFake;
  beforeAll(async () => {
    fake = await startJiraFake({ tokens: ['jira-idem-read-01', 'jira-idem-write-01'] });
  });
  afterAll(async () => {
    await fake?.stop();
  });

  async function replica() {
    const config = parseConfig(defineConfigSchema('jira', jiraSectionSchema), {
      audit: { stderr: false, file: join(mkdtempSync(join(tmpdir(), 'hmcp-jira-')), 'a.jsonl') },
      log: { level: 'silent' },
      mode: 'read-write',
      identity: { principal: `ana-${run}`, roles: ['writer'] },
      redis: { url: { env: 'HMCP_IDEM_REDIS_URL' } },
      jira: {
        site: fake.url,
        auth: { email: 'bot@example.com' },
        projects: { read: ['SUP'], write: ['SUP'] },
      },
    });
    return assemble(jiraConnector, config as never, {
      env: {
        JIRA_API_TOKEN: 'jira-idem-read-01',
        JIRA_WRITE_API_TOKEN: 'jira-idem-write-01',
        HMCP_IDEM_REDIS_URL: REDIS_URL,
      },
    });
  }

  it('a retried call through another replica returns the first issue', {
    timeout: 60_000,
  }, async () => {
    const [one, two] = [await replica(), await replica()];
    try {
      const approve: ApprovalChannel = { supported: true, request: async () => 'approved' };
      const args = {
        project: 'SUP',
        issueType: 'Task',
        summary: `Replicated create ${run}`,
        idempotencyKey: `replica-${run}`,
      };
      const call = (s: typeof one) =>
        s.pipeline.callTool({
          name: 'jira_create_issue',
          arguments: args,
          // A principal of this run: rate limits live in the same (shared) Redis.
          identity: { principal: `ana-${run}`, roles: ['writer'], transport: 'stdio', client: {} },
          approval: approve,
          signal: new AbortController().signal,
        });
      // The core's Redis rate limiter refuses calls until its connection is up (it does not
      // queue offline): wait for both replicas' first answer that is not that refusal.
      const connected = async (s: typeof one) => {
        for (let i = 0; i < 50; i += 1) {
          const r = await s.pipeline.callTool({
            name: 'jira_list_projects',
            arguments: {},
            identity: {
              principal: `ana-${run}`,
              roles: ['writer'],
              transport: 'stdio',
              client: {},
            },
            approval: approve,
            signal: new AbortController().signal,
          });
          if (r.kind === 'result' && !r.result.isError) return;
          await new Promise((res) => setTimeout(res, 100));
        }
        throw new Error('the replica never got its Redis connection');
      };
      await connected(one);
      await connected(two);
      const first = await call(one);
      if (first.kind === 'result' && first.result.isError)
        throw new Error(JSON.stringify(first.result.content));
      const again = await call(two);
      const data = (r: typeof first) =>
        r.kind === 'result'
          ? (r.result.structuredContent as { key: string; replayed: boolean })
          : undefined;
      expect(data(first)?.replayed).toBe(false);
      expect(data(again)).toMatchObject({ key: data(first)?.key, replayed: true });
      expect(
        [...fake.issues.values()].filter((i) => i.summary === `Replicated create ${run}`),
      ).toHaveLength(1);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
