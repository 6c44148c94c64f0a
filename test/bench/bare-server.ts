/**
 * The baseline of `pnpm bench:http`: a bare MCP SDK Streamable HTTP server (`McpServer` with one
 * trivial tool, `echo`, and the SDK's `StreamableHTTPServerTransport` in stateful mode, one
 * transport per session) on `127.0.0.1` and a free port. No authentication, no policy, no audit:
 * what the SDK itself costs per call on this machine.
 *
 * Run by `http.bench.ts` as its own process (like the servers it is compared with); prints one
 * line `listening PORT` on stdout and serves until SIGTERM.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

/** The open sessions: `Mcp-Session-Id` → its transport. */
const sessions = new Map<string, StreamableHTTPServerTransport>();

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** A new session: its own `McpServer` with the one tool, as the SDK's examples do. */
function newSession(): StreamableHTTPServerTransport {
  const server = new McpServer({ name: 'bare-sdk-baseline', version: '1.0.0' });
  server.registerTool('echo', { description: 'Returns "ok".' }, async () => ({
    content: [{ type: 'text', text: 'ok' }],
  }));
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (id) => {
      sessions.set(id, transport);
    },
  });
  transport.onclose = () => {
    if (transport.sessionId) sessions.delete(transport.sessionId);
  };
  void server.connect(transport);
  return transport;
}

const http = createServer((req, res) => {
  void (async () => {
    try {
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const id = req.headers['mcp-session-id'];
      const existing = typeof id === 'string' ? sessions.get(id) : undefined;
      const transport =
        existing ?? (req.method === 'POST' && isInitializeRequest(body) ? newSession() : undefined);
      if (!transport) {
        res.writeHead(404, { 'Content-Type': 'application/json' }).end(
          JSON.stringify({
            jsonrpc: '2.0',
            error: { code: -32001, message: 'Session not found' },
            id: null,
          }),
        );
        return;
      }
      await transport.handleRequest(req, res, body);
    } catch {
      if (!res.headersSent) res.writeHead(400).end();
    }
  })();
});

http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.once('SIGTERM', () => {
  for (const t of sessions.values()) void t.close();
  http.close(() => process.exit(0));
  http.closeAllConnections();
});
