/**
 * Chained tools cannot become an exfiltration pipeline: once a session has read confidential
 * data, the example connector's egress tool (`example_send_note`, a post to a fake outbound
 * channel) is refused for the rest of that session and allowed in a fresh one; with a shared
 * Redis (real, 127.0.0.1:6379) and a conversation id in `_meta`, the taint spans servers.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assemble,
  type CallResponse,
  CONVERSATION_META_KEY,
  defineConfigSchema,
  NO_APPROVAL_CHANNEL,
  parseConfig,
} from '@hardened-mcp/core';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exampleSectionSchema } from './config.js';
import { exampleConnector } from './connector.js';

const REDIS_URL = process.env.HMCP_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ENV = { EXAMPLE_READ_TOKEN: 'read-token-0001', EXAMPLE_WRITE_TOKEN: 'write-token-0001' };
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** The example server, read-write, `finance` labelled confidential, the analyst cleared for it. */
async function server(env: Record<string, string> = {}) {
  const config = parseConfig(defineConfigSchema('example', exampleSectionSchema), {
    mode: 'read-write',
    audit: { stderr: false, file: join(mkdtempSync(join(tmpdir(), 'hmcp-taint-')), 'audit.jsonl') },
    log: { level: 'silent' },
    example: { folders: { read: ['general', 'support', 'finance'], write: ['support'] } },
    tools: { settings: { example_send_note: { approval: 'none' } } },
    classification: { labels: { finance: 'confidential' }, clearance: { default: 'confidential' } },
  });
  const s = await assemble(exampleConnector, config as never, { env: { ...ENV, ...env } });
  closers.push(() => s.close());
  return (name: string, args: unknown, origin: { mcpSessionId?: string; meta?: unknown }) =>
    s.pipeline.callTool({
      name,
      arguments: args,
      identity: { principal: 'ana', roles: ['writer'], transport: 'http', client: {} },
      approval: NO_APPROVAL_CHANNEL,
      signal: new AbortController().signal,
      origin,
    });
}

const code = (r: CallResponse) =>
  r.kind === 'result'
    ? ((r.result._meta?.['hardened-mcp/error'] as { code?: string } | undefined)?.code ?? 'ok')
    : 'unknown';
const text = (r: CallResponse) => (r.kind === 'result' ? JSON.stringify(r.result.content) : '');
const post = { channel: 'team-chat', text: 'summary for the team' };

describe('session taint (in-process)', () => {
  it('read confidential, then egress: refused in the same session, allowed in a fresh one', async () => {
    const call = await server();
    const s1 = { mcpSessionId: 'session-1' };
    expect(code(await call('example_send_note', post, s1))).toBe('ok');
    expect(code(await call('example_list_notes', { folder: 'finance' }, s1))).toBe('ok');
    const refused = await call('example_send_note', post, s1);
    expect(code(refused)).toBe('policy_denied');
    expect(text(refused)).toContain('has received confidential data (finance)');
    // Reading stays possible; only egress is closed for this session.
    expect(code(await call('example_list_notes', { folder: 'general' }, s1))).toBe('ok');
    expect(code(await call('example_send_note', post, { mcpSessionId: 'session-2' }))).toBe('ok');
  });

  it('internal data does not taint', async () => {
    const call = await server();
    const s = { mcpSessionId: 'session-3' };
    await call('example_list_notes', { folder: 'general' }, s);
    expect(code(await call('example_send_note', post, s))).toBe('ok');
  });
});

describe('session taint across servers (real Redis)', () => {
  let redis: Redis | undefined;
  let reachable = false;
  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    reachable = await redis.connect().then(
      () => true,
      () => false,
    );
    if (!reachable)
      console.warn(`taint.test: Redis at ${REDIS_URL} is not reachable; cross-server case skipped`);
  });
  afterAll(() => redis?.disconnect());

  it('the same conversation id taints a second server sharing Redis; another conversation is clean', async (ctx) => {
    if (!reachable) ctx.skip();
    const a = await server({ REDIS_URL });
    const b = await server({ REDIS_URL });
    // The shared rate-limit store refuses calls until its connection is up: wait for it.
    for (const call of [a, b])
      for (let i = 0; i < 100; i++) {
        if (code(await call('example_list_folders', {}, {})) !== 'rate_limited') break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    const conversation = `conv-${process.pid}-${Date.now()}`;
    const meta = { [CONVERSATION_META_KEY]: conversation };
    expect(
      code(await a('example_list_notes', { folder: 'finance' }, { mcpSessionId: 'a-1', meta })),
    ).toBe('ok');
    const refused = await b('example_send_note', post, { mcpSessionId: 'b-1', meta });
    expect(code(refused)).toBe('policy_denied');
    expect(text(refused)).toContain('finance');
    const other = { [CONVERSATION_META_KEY]: `${conversation}-other` };
    expect(code(await b('example_send_note', post, { mcpSessionId: 'b-2', meta: other }))).toBe(
      'ok',
    );
    await redis?.del(`hmcp:taint:conversation:ana:${conversation}`);
  });
});
