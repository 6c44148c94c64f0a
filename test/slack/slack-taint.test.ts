/**
 * Chained tools cannot become an exfiltration pipeline (issue 15), Slack over Streamable HTTP:
 * the connector assembled in-process, the MCP SDK client over HTTP (one client = one MCP
 * session) against the test kit's Slack fake. `C0INCIDNT1` is labelled confidential (the label
 * is keyed by conversation id; the history is read by `#incidents`, its name): once a session
 * has read it, `slack_post_message` and `slack_reply_thread` (egress) are refused in that
 * session, nothing reaches Slack, and a fresh session may post.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AssembledServer,
  assemble,
  defineConfigSchema,
  parseConfig,
  type RunningHttpServer,
} from '@hardened-mcp/core';
import { slackConnector, slackSectionSchema } from '@hardened-mcp/slack';
import {
  FAKE_SLACK_BOT_SCOPES,
  type SlackFake,
  startSlackFake,
  textOf,
} from '@hardened-mcp/test-kit';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ENV = { SLACK_BOT_TOKEN: 'xoxb-taint-bot-token-0001' };
let fake: SlackFake;
let server: AssembledServer;
let running: RunningHttpServer;
const clients: Client[] = [];

beforeAll(async () => {
  fake = await startSlackFake({
    tokens: [{ token: ENV.SLACK_BOT_TOKEN, scopes: FAKE_SLACK_BOT_SCOPES, kind: 'bot' }],
  });
  const config = parseConfig(defineConfigSchema('slack', slackSectionSchema), {
    transport: 'http',
    http: { port: 0, management: { enabled: false } },
    audit: {
      stderr: false,
      file: join(mkdtempSync(join(tmpdir(), 'hmcp-slack-taint-')), 'a.jsonl'),
    },
    log: { level: 'silent' },
    mode: 'read-write',
    defaultRoles: ['writer'],
    slack: {
      apiUrl: fake.url,
      channels: { read: ['C0SUPPORT1', 'C0INCIDNT1'], write: ['C0SUPPORT1'] },
    },
    classification: {
      labels: { C0INCIDNT1: 'confidential' },
      clearance: { default: 'confidential' },
    },
  });
  server = await assemble(slackConnector, config as never, { env: ENV });
  running = await server.serveHttp();
}, 60_000);
afterAll(async () => {
  for (const c of clients) await c.close();
  await running?.close();
  await server?.close();
  await fake?.stop();
});

/** A new MCP session whose human approves every elicitation. */
async function session() {
  const client = new Client(
    { name: 'slack-taint-test', version: '1.0.0' },
    { capabilities: { elicitation: {} } },
  );
  client.setRequestHandler(ElicitRequestSchema, async () => ({
    action: 'accept',
    content: { approve: true },
  }));
  await client.connect(new StreamableHTTPClientTransport(new URL(running.url)));
  clients.push(client);
  return (name: string, args: Record<string, unknown>) =>
    client.callTool({ name, arguments: args });
}

describe('slack session taint', () => {
  it('a post after reading a confidential channel is refused in that session and allowed in a fresh one', async () => {
    const call = await session();
    expect((await call('slack_read_history', { channel: '#support' })).isError).toBeFalsy();
    const first = await call('slack_post_message', { channel: '#support', text: 'Status: green' });
    expect(first.isError).toBeFalsy();
    expect(fake.posts).toHaveLength(1);

    const read = await call('slack_read_history', { channel: '#incidents' });
    expect(read.isError).toBeFalsy();
    const refused = await call('slack_post_message', { channel: '#support', text: 'Summary' });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/^policy_denied:/);
    expect(textOf(refused)).toContain('confidential');
    const reply = await call('slack_reply_thread', {
      channel: 'C0SUPPORT1',
      threadTs: '1760000000.000100',
      text: 'Summary',
    });
    expect(textOf(reply)).toMatch(/^policy_denied:/);
    expect(fake.posts).toHaveLength(1);
    // Reading stays open in the tainted session.
    expect((await call('slack_read_history', { channel: '#support' })).isError).toBeFalsy();

    const fresh = await session();
    const posted = await fresh('slack_post_message', {
      channel: '#support',
      text: 'Status: green',
    });
    expect(posted.isError).toBeFalsy();
    expect(fake.posts).toHaveLength(2);
  });

  it('a caller cleared below the label cannot read the channel at all', async () => {
    // The same rule, one level down: an identity cleared `internal` is refused the read.
    const config = parseConfig(defineConfigSchema('slack', slackSectionSchema), {
      audit: {
        stderr: false,
        file: join(mkdtempSync(join(tmpdir(), 'hmcp-slack-cl-')), 'a.jsonl'),
      },
      log: { level: 'silent' },
      mode: 'read-write',
      slack: {
        apiUrl: fake.url,
        channels: { read: ['C0SUPPORT1', 'C0INCIDNT1'], write: ['C0SUPPORT1'] },
      },
      classification: {
        labels: { C0INCIDNT1: 'confidential' },
        clearance: { default: 'internal' },
      },
    });
    const s = await assemble(slackConnector, config as never, { env: ENV });
    try {
      const ask = (channel: string) =>
        s.pipeline.callTool({
          name: 'slack_read_history',
          arguments: { channel },
          identity: { principal: 'ana', roles: ['writer'], transport: 'stdio', client: {} },
          approval: { supported: false, request: async () => 'declined' },
          signal: new AbortController().signal,
        });
      const denied = await ask('#incidents');
      expect(denied.kind === 'result' && denied.result.isError).toBe(true);
      expect(denied.kind === 'result' && JSON.stringify(denied.result.content)).toContain(
        'policy_denied',
      );
      const ok = await ask('#support');
      expect(ok.kind === 'result' && ok.result.isError).toBeFalsy();
    } finally {
      await s.close();
    }
  });
});
