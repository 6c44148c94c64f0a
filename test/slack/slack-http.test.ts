/**
 * Black-box over Streamable HTTP: the Slack connector assembled in-process (as the bin does with
 * `--transport http`), listening on a free loopback port, driven by the MCP SDK client over
 * HTTP against the test kit's Slack fake. The walls of the stdio test hold on this transport too:
 * allowlists on inputs, mass mentions, redaction, approval declined → nothing posted, the
 * approved post's flags as Slack receives them.
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
  FAKE_SLACK_PASTED_SECRET,
  type SlackFake,
  startSlackFake,
  textOf,
} from '@hardened-mcp/test-kit';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ENV = { SLACK_BOT_TOKEN: 'xoxb-http-bot-token-0001' };
let fake: SlackFake;
let server: AssembledServer;
let running: RunningHttpServer;
let client: Client;
const asked: string[] = [];
let answer: 'accept' | 'decline' = 'decline';

beforeAll(async () => {
  fake = await startSlackFake({
    tokens: [{ token: ENV.SLACK_BOT_TOKEN, scopes: FAKE_SLACK_BOT_SCOPES, kind: 'bot' }],
  });
  const config = parseConfig(defineConfigSchema('slack', slackSectionSchema), {
    transport: 'http',
    http: { port: 0, management: { enabled: false } },
    audit: {
      stderr: false,
      file: join(mkdtempSync(join(tmpdir(), 'hmcp-slack-http-')), 'a.jsonl'),
    },
    log: { level: 'silent' },
    mode: 'read-write',
    // Loopback without authentication: every HTTP caller gets these roles.
    defaultRoles: ['writer'],
    slack: {
      apiUrl: fake.url,
      channels: { read: ['C0SUPPORT1', 'C0INCIDNT1'], write: ['C0SUPPORT1'] },
    },
  });
  server = await assemble(slackConnector, config as never, { env: ENV });
  running = await server.serveHttp();
  client = new Client(
    { name: 'slack-http-test', version: '1.0.0' },
    { capabilities: { elicitation: {} } },
  );
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    asked.push(String(req.params.message));
    return answer === 'accept'
      ? { action: 'accept', content: { approve: true } }
      : { action: 'decline' };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(running.url)));
}, 60_000);
afterAll(async () => {
  await client?.close();
  await running?.close();
  await server?.close();
  await fake?.stop();
});

const call = (name: string, args: Record<string, unknown>) =>
  client.callTool({ name, arguments: args });

describe('slack over Streamable HTTP', () => {
  it('reads an allowlisted thread redacted and fenced; refuses a DM and a non-listed channel', async () => {
    const r = await call('slack_read_thread', { channel: '#support', ts: '1760000000.000100' });
    expect(r.isError).toBeFalsy();
    const all = JSON.stringify(r);
    expect(all).not.toContain('maria.jensen@example.com');
    expect(all).not.toContain(FAKE_SLACK_PASTED_SECRET);
    expect(textOf(r)).toMatch(/UNTRUSTED-DATA/);
    for (const channel of ['D0DMMARIA1', '#payroll', 'C0RANDOM01']) {
      const denied = await call('slack_read_history', { channel });
      expect(denied.isError).toBe(true);
      expect(textOf(denied)).toMatch(/^policy_denied:/);
    }
  });

  it('refuses @channel before asking; a declined post sends nothing; an approved one goes out with unfurling off', async () => {
    const mass = await call('slack_post_message', {
      channel: 'C0SUPPORT1',
      text: 'all: ＠ｃｈａｎｎｅｌ',
    });
    expect(textOf(mass)).toMatch(/^policy_denied:/);
    expect(asked).toEqual([]);
    answer = 'decline';
    const declined = await call('slack_post_message', {
      channel: 'C0SUPPORT1',
      text: 'Status: green',
    });
    expect(textOf(declined)).toMatch(/^approval_declined:/);
    expect(fake.posts).toEqual([]);
    answer = 'accept';
    const posted = await call('slack_post_message', { channel: '#support', text: 'Status: green' });
    expect(posted.isError).toBeFalsy();
    expect(asked.at(-1)).toContain('"#support" "C0SUPPORT1"');
    expect(fake.posts).toHaveLength(1);
    expect(fake.posts[0]).toMatchObject({
      channel: 'C0SUPPORT1',
      text: 'Status: green',
      unfurl_links: 'false',
      unfurl_media: 'false',
      link_names: 'false',
    });
  });
});
