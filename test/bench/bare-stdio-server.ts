/**
 * The stdio baseline of `pnpm bench`: a bare MCP SDK server (`McpServer` with one trivial tool,
 * `echo`, returning "ok") on the SDK's `StdioServerTransport`. No authentication, no policy, no
 * redaction, no audit: what the SDK itself costs per call and at startup on this machine.
 *
 * Run by `suite.bench.ts` as its own process, like the server it is compared with.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

const server = new McpServer({ name: 'bare-sdk-baseline', version: '1.0.0' });
server.registerTool('echo', { description: 'Returns "ok".' }, async () => ({
  content: [{ type: 'text', text: 'ok' }],
}));
await server.connect(new StdioServerTransport());
