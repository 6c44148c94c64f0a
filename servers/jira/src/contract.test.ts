/**
 * The shared connector contract, run against this connector's built bin over stdio with the MCP
 * SDK client (build first: `pnpm build`), with the test kit's Jira fake as the upstream.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startJiraFake, startStdioServer } from '@hardened-mcp/test-kit';
import { configArgs, describeConnectorContract } from '@hardened-mcp/test-kit/contract';
import { afterAll } from 'vitest';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');
const ENV = {
  JIRA_API_TOKEN: 'jira-read-token-0001',
  JIRA_WRITE_API_TOKEN: 'jira-write-token-0001',
};
const fake = await startJiraFake({ tokens: Object.values(ENV) });
afterAll(() => fake.stop());
const CONFIG = {
  identity: { principal: 'contract', roles: ['writer'] },
  jira: {
    site: fake.url,
    auth: { email: 'bot@example.com' },
    projects: { read: ['SUP', 'OPS'], write: ['SUP'] },
  },
};

describeConnectorContract({
  connector: 'jira',
  start: ({ mode, capabilities }) =>
    startStdioServer(BIN, { env: ENV, config: { ...CONFIG, mode }, capabilities }),
  rawCommand: async () => ({ args: [BIN, ...configArgs(CONFIG)], env: ENV }),
  // SUP-1's description holds a customer's e-mail address (the fake's seed).
  readCall: {
    name: 'jira_get_issue',
    arguments: { key: 'SUP-1' },
    pii: 'maria.jensen@example.com',
  },
  failingCall: { name: 'jira_get_issue', arguments: { key: 'SUP-999' } },
  writeCall: {
    name: 'jira_add_comment',
    arguments: { key: 'SUP-3', body: 'Written by the contract suite.' },
    // Looked up in the fake itself: no comment of the suite reached it.
    unchanged: async () =>
      !JSON.stringify(fake.issue('SUP-3')?.comments ?? []).includes('contract suite'),
  },
});
