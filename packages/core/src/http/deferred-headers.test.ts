import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { deferHeaderFlush } from './deferred-headers.js';

/** What a raw client received: each chunk as it arrived, and when (ms after the request). */
interface Received {
  readonly chunks: { text: string; at: number }[];
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise((r) => s.close(r));
    }),
  );
});

/** Listens on loopback with `handler` and resolves with the port. */
async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** Sends `request` over a raw socket and records each chunk until the chunked body's end. */
function rawExchange(port: number, request: string): Promise<Received> {
  return new Promise((resolve, reject) => {
    const chunks: { text: string; at: number }[] = [];
    const started = performance.now();
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      chunks.push({ text, at: performance.now() - started });
      if (text.endsWith('0\r\n\r\n')) {
        socket.destroy();
        resolve({ chunks });
      }
    });
    socket.once('error', reject);
  });
}

const GET = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

describe('deferHeaderFlush: what the optimization relies on (Node http)', () => {
  /** An SSE-like answer: headers flushed at once, one event after `delayMs`, then the end. */
  const sse =
    (defer: boolean, delayMs: number) =>
    (_req: IncomingMessage, res: ServerResponse): void => {
      if (defer) deferHeaderFlush(res);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.flushHeaders();
      setTimeout(() => {
        res.write('event: message\ndata: {"ok":true}\n\n');
        res.end();
      }, delayMs);
    };

  it('control: without it, flushHeaders sends the headers alone, before the event', async () => {
    const port = await listen(sse(false, 50));
    const { chunks } = await rawExchange(port, GET);
    expect(chunks[0]?.text).toMatch(/^HTTP\/1\.1 200/);
    expect(chunks[0]?.text).not.toContain('event: message');
  });

  it('with it, headers, the event and the end leave together (one write)', async () => {
    const port = await listen(sse(true, 50));
    const { chunks } = await rawExchange(port, GET);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.text).toMatch(/^HTTP\/1\.1 200/);
    expect(chunks[0]?.text).toContain('event: message');
    expect(chunks[0]?.text.endsWith('0\r\n\r\n')).toBe(true);
  });

  it('an event written mid-answer (e.g. an elicitation) goes out at once with the headers', async () => {
    const port = await listen((_req, res) => {
      deferHeaderFlush(res);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.flushHeaders();
      setTimeout(() => res.write('event: message\ndata: {"elicit":true}\n\n'), 20);
      setTimeout(() => res.end(), 400);
    });
    const { chunks } = await rawExchange(port, GET);
    expect(chunks[0]?.text).toMatch(/^HTTP\/1\.1 200/);
    expect(chunks[0]?.text).toContain('elicit');
    expect(chunks[0]?.text).not.toContain('0\r\n\r\n');
    expect(chunks[0]?.at).toBeLessThan(350);
  });

  it('a silent answer still sends its headers after the bound', async () => {
    const port = await listen((_req, res) => {
      deferHeaderFlush(res, 50);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.flushHeaders();
      setTimeout(() => res.end(), 600);
    });
    const { chunks } = await rawExchange(port, GET);
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks[0]?.text).toMatch(/^HTTP\/1\.1 200/);
    expect(chunks[0]?.text).not.toContain('0\r\n\r\n');
    expect(chunks[0]?.at).toBeLessThan(500);
  });
});

describe('deferHeaderFlush with the SDK transport (the adapter flushes through the response)', () => {
  /** A stateless SDK server whose one tool answers after 20 ms (so the stream opens first). */
  async function sdkServer(defer: boolean): Promise<number> {
    return listen((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        const server = new McpServer({ name: 't', version: '1' });
        server.registerTool('slow', { description: 'answers after 20 ms' }, async () => {
          await new Promise((r) => setTimeout(r, 20));
          return { content: [{ type: 'text', text: 'ok' }] };
        });
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
        await server.connect(transport);
        if (defer) deferHeaderFlush(res);
        await transport.handleRequest(req, res, body);
      })();
    });
  }

  const call = (port: number) => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'slow', arguments: {} },
    });
    return rawExchange(
      port,
      `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  };

  it('control: the SDK opens the SSE stream (headers) before the tool answers', async () => {
    const { chunks } = await call(await sdkServer(false));
    expect(chunks[0]?.text).toMatch(/^HTTP\/1\.1 200/);
    expect(chunks[0]?.text).toContain('text/event-stream');
    expect(chunks[0]?.text).not.toContain('event: message');
  });

  it('deferred: the answer arrives in one write with its headers, unchanged', async () => {
    const { chunks } = await call(await sdkServer(true));
    expect(chunks).toHaveLength(1);
    const text = chunks[0]?.text ?? '';
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain('text/event-stream');
    expect(text).toContain('event: message');
    expect(text).toContain('"text":"ok"');
    expect(text.endsWith('0\r\n\r\n')).toBe(true);
  });
});
