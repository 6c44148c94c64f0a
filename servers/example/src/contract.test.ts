/**
 * The shared connector contract, run against this connector's built bin over stdio with the MCP
 * SDK client (build first: `pnpm build`). A connector made with `pnpm new-connector` keeps this
 * file: it passes untouched.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStdioServer } from '@hardened-mcp/test-kit';
import { configArgs, describeConnectorContract } from '@hardened-mcp/test-kit/contract';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');
const ENV = { EXAMPLE_READ_TOKEN: 'read-token-0001', EXAMPLE_WRITE_TOKEN: 'write-token-0001' };
const CONFIG = { identity: { principal: 'contract', roles: ['writer'] } };

describeConnectorContract({
  connector: 'example',
  start: ({ mode, capabilities }) =>
    startStdioServer(BIN, { env: ENV, config: { ...CONFIG, mode }, capabilities }),
  rawCommand: async () => ({ args: [BIN, ...configArgs(CONFIG)], env: ENV }),
  // A seeded note whose body holds an e-mail address (the demo seed).
  readCall: {
    name: 'example_get_note',
    arguments: { id: 'n-0002' },
    pii: 'maria.jensen@example.com',
  },
  failingCall: { name: 'example_get_note', arguments: { id: 'n-9999' } },
  writeCall: {
    name: 'example_create_note',
    arguments: { folder: 'support', title: 'Contract', body: 'Written by the contract suite.' },
    // Looked up through the refused server itself: its in-memory store has no such note.
    unchanged: async (session) => {
      const r = await session.client.callTool({
        name: 'example_list_notes',
        arguments: { folder: 'support', limit: 500 },
      });
      const notes = (r.structuredContent as { notes: { title: string }[] }).notes;
      return notes.length > 0 && !notes.some((n) => n.title === 'Contract');
    },
  },
});
