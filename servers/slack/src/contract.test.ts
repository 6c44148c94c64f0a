/**
 * The shared connector contract, run against this connector's built bin over stdio with the MCP
 * SDK client (build first: `pnpm build`), with the test kit's Slack fake as the upstream.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAKE_SLACK_BOT_SCOPES, startSlackFake, startStdioServer } from '@hardened-mcp/test-kit';
import { configArgs, describeConnectorContract } from '@hardened-mcp/test-kit/contract';
import { afterAll } from 'vitest';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');
// A read token with the read scopes only (a read-only server refuses a token that can post),
// and a write token for read-write mode.
const ENV = {
  SLACK_BOT_TOKEN: 'xoxb-contract-read-0001',
  SLACK_WRITE_TOKEN: 'xoxb-contract-write-0001',
};
const fake = await startSlackFake({
  tokens: [
    {
      token: ENV.SLACK_BOT_TOKEN,
      scopes: FAKE_SLACK_BOT_SCOPES.filter((s) => s !== 'chat:write'),
      kind: 'bot',
    },
    { token: ENV.SLACK_WRITE_TOKEN, scopes: FAKE_SLACK_BOT_SCOPES, kind: 'bot' },
  ],
});
afterAll(() => fake.stop());
const CONFIG = {
  identity: { principal: 'contract', roles: ['writer'] },
  credentials: { read: { env: 'SLACK_BOT_TOKEN' }, write: { env: 'SLACK_WRITE_TOKEN' } },
  slack: {
    apiUrl: fake.url,
    channels: { read: ['C0SUPPORT1', 'C0INCIDNT1'], write: ['C0SUPPORT1'] },
  },
};

describeConnectorContract({
  connector: 'slack',
  start: ({ mode, capabilities }) =>
    startStdioServer(BIN, { env: ENV, config: { ...CONFIG, mode }, capabilities }),
  rawCommand: async () => ({ args: [BIN, ...configArgs(CONFIG)], env: ENV }),
  // The thread's parent holds a customer's e-mail address (the fake's seed).
  readCall: {
    name: 'slack_read_thread',
    arguments: { channel: 'C0SUPPORT1', ts: '1760000000.000100' },
    pii: 'maria.jensen@example.com',
  },
  failingCall: {
    name: 'slack_read_thread',
    arguments: { channel: 'C0SUPPORT1', ts: '1111111111.000100' },
  },
  writeCall: {
    name: 'slack_post_message',
    arguments: { channel: 'C0SUPPORT1', text: 'Written by the contract suite.' },
    // Looked up in the fake itself: nothing of the suite was posted.
    unchanged: async () => !fake.posts.some((p) => (p.text ?? '').includes('contract suite')),
  },
});
