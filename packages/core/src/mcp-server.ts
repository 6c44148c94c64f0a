import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { Protocol } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema,
  ErrorCode as JsonRpcErrorCode,
  ListToolsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import {
  APPROVAL_FORM_SCHEMA,
  type ApprovalChannel,
  type ApprovalResult,
  approvalFromElicitation,
} from './approval.js';
import type { ClientInfo, Identity } from './identity.js';
import type { Logger } from './logger.js';
import type { Pipeline } from './pipeline.js';
import { guardStdioLines, STDIO_MAX_LINE_BYTES } from './stdio-line-guard.js';

/** The member of a pipeline result holding its JSON text (see {@link answerLine}). */
const RESULT_JSON = Symbol('hardened-mcp.resultJson');

/** How long a human has to answer an approval request, in ms. */
export const APPROVAL_TIMEOUT_MS = 5 * 60 * 1000;

/** Options of {@link createMcpServer}. */
export interface McpServerOptions {
  readonly info: { readonly name: string; readonly version: string; readonly title?: string };
  /** Shown to the model in `initialize` (MCP `instructions`). */
  readonly instructions?: string | undefined;
  readonly pipeline: Pipeline;
  /**
   * The effective identity of a call, given the client's self-description and, over HTTP, the
   * request's auth info (set by the HTTP server after authentication). Called per call.
   */
  readonly identity: (client: ClientInfo, auth: AuthInfo | undefined) => Identity;
  readonly logger: Logger;
}

/**
 * Binds the pipeline to an MCP server (SDK low-level `Server`): `tools/list` returns the
 * enabled tools; `tools/call` runs the pipeline. Unknown and disabled tools both get the same
 * JSON-RPC error (-32602 `Unknown tool`, MCP 2025-11-25 "Tools › Error Handling"). Tools are
 * never registered any other way, so nothing bypasses the pipeline.
 */
export function createMcpServer(options: McpServerOptions): Server {
  const server = new Server(
    { name: options.info.name, version: options.info.version, title: options.info.title },
    {
      capabilities: { tools: { listChanged: false } },
      instructions: options.instructions,
    },
  );
  let stdioIdentity: Identity | undefined;
  const identityFor = (auth: AuthInfo | undefined): Identity => {
    // Over stdio the identity is resolved once per connection: later calls build nothing.
    if (!auth && stdioIdentity) return stdioIdentity;
    const version = server.getClientVersion();
    const client = { name: version?.name, version: version?.version };
    if (auth) return options.identity(client, auth);
    stdioIdentity = options.identity(client, undefined);
    return stdioIdentity;
  };
  const approval: ApprovalChannel = {
    get supported() {
      // Form mode: declared as `elicitation: { form: {} }`, or `elicitation: {}` (MCP 2025-11-25 back-compat).
      const e = server.getClientCapabilities()?.elicitation as Record<string, unknown> | undefined;
      return e !== undefined && (Object.keys(e).length === 0 || e.form !== undefined);
    },
    async request(message, signal): Promise<ApprovalResult> {
      try {
        const result = await server.elicitInput(
          { mode: 'form', message, requestedSchema: APPROVAL_FORM_SCHEMA as never },
          { signal, timeout: APPROVAL_TIMEOUT_MS },
        );
        return approvalFromElicitation(result);
      } catch (err) {
        options.logger.warn({ err }, 'approval request failed; treating as cancelled');
        return 'cancelled';
      }
    },
  };
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: options.pipeline.listTools().map((t) => ({ ...t })) as never,
  }));
  // tools/call goes to the SDK's base `Protocol` registration, not `Server`'s override of it: the
  // override parses the request a second time and parses our answer against CallToolResultSchema
  // again (a zod pass per call). The base still parses the request against CallToolRequestSchema;
  // a task-augmented call is refused by the base before any handler runs (no tasks capability);
  // and the answer is built by the pipeline alone (shapeOutput or errorResult), in the shape every
  // client-side test validates.
  const setBaseHandler = Protocol.prototype.setRequestHandler as Server['setRequestHandler'];
  setBaseHandler.call(server, CallToolRequestSchema, async (request, extra) => {
    const response = await options.pipeline.callTool({
      name: request.params.name,
      arguments: request.params.arguments,
      identity: identityFor(extra.authInfo),
      approval,
      signal: extra.signal,
      origin: {
        mcpSessionId: extra.sessionId,
        requestId: extra.requestId,
        meta: request.params._meta,
      },
    });
    if (response.kind === 'unknown_tool') {
      // JSON-RPC error -32602 with a plain message (the SDK's McpError would prefix "MCP error
      // -32602:"). The name is not echoed, so disabled and unknown tools get byte-identical answers.
      throw Object.assign(new Error('Unknown tool'), { code: JsonRpcErrorCode.InvalidParams });
    }
    // The result's JSON rides along, invisible to JSON.stringify, spread and Object.keys (a
    // non-enumerable symbol member), for the stdio transport's send (answerLine).
    if (response.json !== undefined)
      Object.defineProperty(response.result, RESULT_JSON, { value: response.json });
    return response.result as never;
  });
  return server;
}

/**
 * Serves MCP over stdio. stdout carries only protocol messages: `console.log`/`info`/`debug`
 * are redirected to stderr first, so a stray call in a dependency cannot corrupt the stream.
 * Resolves when the client closes stdin or on SIGINT/SIGTERM, after `onClose`. `onReady` runs once
 * the transport is connected and the signal handlers are installed (the bin logs "ready" there).
 *
 * stdin passes a bounded line filter first ({@link guardStdioLines}): a message line over
 * `STDIO_MAX_LINE_BYTES` (8 MiB) or nested deeper than `STDIO_MAX_JSON_DEPTH` (64) is answered
 * with a JSON-RPC `-32600` error and dropped, and the server keeps serving (the SDK's own buffer
 * limit would close the transport, and deep nesting would overflow its schema validation).
 */
export async function serveStdio(
  server: Server,
  onClose: () => Promise<void>,
  onReady?: () => void,
): Promise<void> {
  guardStdout();
  let transport: StdioServerTransport | undefined;
  const stdin = guardStdioLines(process.stdin, (refusal) => {
    void transport?.send(refusal as never).catch(() => undefined);
  });
  transport = new StdioServerTransport(stdin, process.stdout, {
    maxBufferSize: 2 * STDIO_MAX_LINE_BYTES,
  });
  coalesceWrites(transport, process.stdout);
  let closing: Promise<void> | undefined;
  const close = () => {
    // Deferred by one tick: server.close() closes the transport, whose onclose calls close() again.
    closing ??= Promise.resolve().then(async () => {
      try {
        await server.close();
      } finally {
        // The line guard reads process.stdin itself: stop reading, or an open pipe keeps the
        // process alive after a signal.
        process.stdin.pause();
        process.stdin.removeAllListeners('data');
        stdin.destroy();
        await onClose();
      }
    });
    return closing;
  };
  await new Promise<void>((resolve, reject) => {
    transport.onclose = () => void close().then(resolve, reject);
    process.stdin.once('end', () => void close().then(resolve, reject));
    for (const sig of ['SIGINT', 'SIGTERM'] as const)
      process.once(sig, () => void close().then(resolve, reject));
    // "Ready" only once a signal is handled: a supervisor that signals right after it is told
    // the server is ready gets a clean shutdown, not the default (fatal) signal action.
    server.connect(transport).then(() => onReady?.(), reject);
  });
}

/**
 * Messages sent in the same turn of the event loop (the answers of concurrent calls that finish
 * together) leave in one `writev(2)` instead of one `write(2)` each: the first `send` of a turn
 * corks `out` and the uncork is queued with `setImmediate`, which runs in the loop's check phase,
 * right after the I/O callbacks of this turn (and their ticks and microtasks) are done, so the
 * answers to every request of a stdin chunk and of the audit writes that completed in the same
 * poll go out together. A lone answer is delayed by no I/O: with an immediate pending, the loop
 * does not wait in poll. Each message is still written whole and in send order (a corked stream
 * keeps its chunks in order).
 */
function coalesceWrites(transport: StdioServerTransport, out: NodeJS.WritableStream): void {
  const send = transport.send.bind(transport);
  let corked = false;
  const uncork = () => {
    corked = false;
    (out as NodeJS.WriteStream).uncork();
  };
  transport.send = (message) => {
    if (!corked) {
      corked = true;
      (out as NodeJS.WriteStream).cork();
      setImmediate(uncork);
    }
    const line = answerLine(message);
    if (line === undefined) return send(message);
    // What the SDK's StdioServerTransport.send does with its own serialization: resolve once
    // the stream took the line, or on 'drain' when it asked to wait.
    return new Promise<void>((done) => {
      if (out.write(line)) done();
      else out.once('drain', done);
    });
  };
}

/**
 * The stdio line of a `tools/call` answer whose result the pipeline already serialized
 * (`CallResponse.json`, attached to the result by the `tools/call` handler), byte-identical to
 * the SDK's `JSON.stringify(message) + '\n'`: the SDK answers a request with
 * `{ result, jsonrpc: '2.0', id }` (members in that order), and
 * `JSON.stringify` writes a nested object exactly as it writes it alone (no indentation; our
 * results hold plain data, so no `toJSON` sees a different key). Undefined for any other message
 * (the SDK then serializes it): requests, notifications, errors, other results, or a message
 * whose members differ from that shape. `mcp-server.test.ts` compares both serializations.
 */
export function answerLine(message: unknown): string | undefined {
  const m = message as { result?: unknown; jsonrpc?: unknown; id?: unknown };
  if (typeof m.result !== 'object' || m.result === null || m.jsonrpc !== '2.0') return undefined;
  const json = (m.result as { [RESULT_JSON]?: unknown })[RESULT_JSON];
  if (typeof json !== 'string' || (typeof m.id !== 'string' && typeof m.id !== 'number'))
    return undefined;
  const keys = Object.keys(m);
  if (keys.length !== 3 || keys[0] !== 'result' || keys[1] !== 'jsonrpc' || keys[2] !== 'id')
    return undefined;
  return `{"result":${json},"jsonrpc":"2.0","id":${JSON.stringify(m.id)}}\n`;
}

function guardStdout(): void {
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
}
