import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as NodeHttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import type { Server as McpServer } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { NO_APPROVAL_CHANNEL } from '../approval.js';
import type { AuditEntry } from '../audit/index.js';
import type { httpConfigSchema } from '../config.js';
import { StartupError } from '../errors.js';
import type { Identity } from '../identity.js';
import type { Logger } from '../logger.js';
import type { ServerMetrics } from '../metrics.js';
import type { Pipeline } from '../pipeline.js';
import type { Authenticator, Principal } from './auth.js';

/** The `http:` configuration section. */
export type HttpConfig = z.infer<typeof httpConfigSchema>;

/** What {@link serveHttp} needs. */
export interface HttpServeOptions {
  readonly http: HttpConfig;
  readonly authenticator: Authenticator;
  /** For the RFC 9728 metadata (oauth mode). */
  readonly oauth?:
    | { readonly issuer: string; readonly scopesSupported?: readonly string[] | undefined }
    | undefined;
  /** Roles of the anonymous principal (`auth.mode: none`). */
  readonly anonymousRoles: readonly string[];
  /** A new MCP server bound to the pipeline; identity comes from each request's auth info. */
  readonly createServer: () => McpServer;
  readonly pipeline: Pipeline;
  readonly metrics: ServerMetrics;
  /** Records audit entries for refusals before the pipeline (authentication failures). */
  readonly audit: (entry: AuditEntry) => void;
  readonly serverInfo: { readonly name: string; readonly version: string };
  /** Readiness: upstream reachable and credentials loaded. */
  readonly ready: () => Promise<boolean>;
  readonly logger: Logger;
}

/** A running HTTP deployment. */
export interface RunningHttpServer {
  /** `http(s)://host:port/mcp` as bound. */
  readonly url: string;
  /** The canonical resource URL (RFC 8707) tokens must be issued for. */
  readonly resource: string;
  /** `http://host:port` of the health/metrics listener, if enabled. */
  readonly managementUrl?: string | undefined;
  /** Stops accepting, lets in-flight calls finish (bounded by `shutdownGraceMs`), closes sessions. */
  close(): Promise<void>;
}

/** The principal stored with a session, and its transport. */
interface Session {
  readonly transport: StreamableHTTPServerTransport;
  readonly server: McpServer;
  readonly principal: string;
  lastSeen: number;
}

const JSON_TYPE = 'application/json';
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** True when `host` is a loopback bind address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A refusal carried through the handler. */
class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly body: unknown,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(reason);
  }
}

const jsonRpcError = (code: number, message: string) => ({
  jsonrpc: '2.0',
  id: null,
  error: { code, message },
});
const plainError = (error: string, message: string) => ({ error, message });

/**
 * Serves MCP over Streamable HTTP (MCP 2025-11-25 "Transports") on `/mcp`, validating every
 * request before the SDK transport sees it:
 *
 * - `Host` (DNS rebinding) and `Origin` against allowlists → 403; only `/mcp` and the RFC 9728
 *   metadata paths exist → 404; other methods → 405.
 * - `MCP-Protocol-Version` must be a supported version → 400.
 * - Authentication (`Authorization: Bearer`, never the query string) → 401 with
 *   `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728 §5.1; in oauth mode only, the one
 *   mode that serves the metadata); a token lacking a tool's scope → 403 `insufficient_scope`
 *   naming the scope (RFC 6750 §3.1). Both are audited, without the token.
 * - POST bodies: `Content-Type: application/json` → else 415; size limit → 413 (sent after the
 *   rest of the body is discarded, so the client still uploading receives it); nesting depth
 *   limit → 400; malformed JSON → 400 with JSON-RPC −32700; a JSON array (batch) → 400.
 * - Sessions: 256-bit random ids bound to the principal that created them; another principal or an
 *   unknown/expired id → 404; idle sessions expire. `stateless: true` issues no session ids.
 * - Every error is a small JSON body: never HTML, a stack trace or a file path.
 *
 * Health and metrics are served on a separate listener (`/healthz`, `/readyz`, `/metrics`).
 *
 * @throws StartupError when binding beyond loopback without authentication, or the TLS files cannot be read.
 */
export async function serveHttp(opts: HttpServeOptions): Promise<RunningHttpServer> {
  const { http, logger, metrics, authenticator } = opts;
  if (!isLoopback(http.host) && authenticator.mode === 'none') {
    throw new StartupError(
      `refusing to listen on ${http.host} without authentication: set auth.mode to oauth or api-key, or bind to 127.0.0.1`,
    );
  }
  const allowedHosts = new Set(http.allowedHosts.map((h) => h.toLowerCase()));
  const allowedOrigins = http.allowedOrigins
    ? new Set(http.allowedOrigins.map((o) => new URL(o).origin))
    : undefined;
  /** Configured origins exactly; by default loopback origins only (a DNS-rebinding page has a foreign origin). */
  const originAllowed = (origin: string): boolean => {
    if (allowedOrigins) return allowedOrigins.has(origin);
    try {
      const u = new URL(origin);
      return (u.protocol === 'http:' || u.protocol === 'https:') && isLoopback(u.hostname);
    } catch {
      return false;
    }
  };
  const trustedProxies = new Set(http.trustedProxies);
  const sessions = new Map<string, Session>();
  let inFlight = 0;
  let draining = false;
  let resource = '';
  let metadataUrl = '';
  let metadataPath = '/.well-known/oauth-protected-resource/mcp';

  const node = http.tls
    ? createHttpsServer({ ...(await readTls(http.tls)), minVersion: 'TLSv1.3' })
    : createHttpServer();
  node.requestTimeout = 60_000;
  node.headersTimeout = 20_000;
  node.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // In-flight calls are POSTs; GET is a long-lived SSE stream that shutdown simply ends.
    if (req.method === 'POST') {
      inFlight++;
      res.once('close', () => {
        inFlight--;
      });
    }
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'HTTP request failed');
      if (!res.headersSent) send(res, 500, jsonRpcError(-32603, 'Internal error'));
      else res.end();
    });
  });
  node.on('clientError', (_err, socket) => {
    if (socket.writable)
      socket.end(
        'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"bad_request"}',
      );
  });

  /** Forwarded headers count only from configured proxies. */
  const forwarded = (req: IncomingMessage, name: string): string | undefined => {
    const peer = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
    if (!trustedProxies.has(peer)) return undefined;
    const v = req.headers[name];
    return typeof v === 'string' ? v.split(',')[0]?.trim() : undefined;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await route(req, res);
    } catch (err) {
      if (!(err instanceof HttpRefusal)) throw err;
      metrics.observeHttpRefusal(err.reason);
      if (!res.headersSent) send(res, err.status, err.body, err.headers);
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Host and Origin first: a DNS-rebound browser must learn nothing, not even the paths.
    const hostHeader = forwarded(req, 'x-forwarded-host') ?? req.headers.host ?? '';
    if (!allowedHosts.has(hostname(hostHeader)))
      throw new HttpRefusal(403, 'bad_host', plainError('forbidden', 'host not allowed'));
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin))
      throw new HttpRefusal(403, 'bad_origin', plainError('forbidden', 'origin not allowed'));
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (
      // RFC 9728 §3.1: the well-known path followed by the resource's path (behind a proxy,
      // e.g. /.well-known/oauth-protected-resource/postgres/mcp).
      path === '/.well-known/oauth-protected-resource' ||
      path === '/.well-known/oauth-protected-resource/mcp' ||
      path === metadataPath
    ) {
      if (req.method !== 'GET')
        throw new HttpRefusal(405, 'method', plainError('method_not_allowed', 'use GET'), {
          Allow: 'GET',
        });
      if (!opts.oauth)
        throw new HttpRefusal(404, 'not_found', plainError('not_found', 'not found'));
      send(res, 200, {
        resource,
        authorization_servers: [opts.oauth.issuer],
        bearer_methods_supported: ['header'],
        ...(opts.oauth.scopesSupported ? { scopes_supported: opts.oauth.scopesSupported } : {}),
        resource_name: opts.serverInfo.name,
      });
      return;
    }
    if (path !== '/mcp')
      throw new HttpRefusal(404, 'not_found', plainError('not_found', 'not found'));
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
      throw new HttpRefusal(405, 'method', jsonRpcError(-32000, 'Method not allowed'), {
        Allow: 'GET, POST, DELETE',
      });
    }
    if (draining)
      throw new HttpRefusal(503, 'draining', jsonRpcError(-32000, 'Server is shutting down'), {
        'Retry-After': '1',
        Connection: 'close',
      });
    const version = req.headers['mcp-protocol-version'];
    if (
      version !== undefined &&
      (typeof version !== 'string' || !SUPPORTED_PROTOCOL_VERSIONS.includes(version))
    ) {
      throw new HttpRefusal(
        400,
        'bad_protocol_version',
        jsonRpcError(
          -32000,
          `Unsupported MCP-Protocol-Version; supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`,
        ),
      );
    }
    const principal = await authenticate(req);
    if (req.method === 'GET') {
      if (http.stateless || !String(req.headers.accept ?? '').includes('text/event-stream')) {
        throw new HttpRefusal(
          405,
          'no_sse',
          jsonRpcError(-32000, 'Method not allowed: no SSE stream is offered here'),
          { Allow: 'POST, DELETE' },
        );
      }
      const session = sessionFor(req, principal);
      await session.transport.handleRequest(withAuth(req, principal), res);
      return;
    }
    if (req.method === 'DELETE') {
      if (http.stateless)
        throw new HttpRefusal(
          405,
          'method',
          jsonRpcError(-32000, 'Method not allowed: stateless server'),
          { Allow: 'POST' },
        );
      const session = sessionFor(req, principal);
      await session.transport.handleRequest(withAuth(req, principal), res);
      return;
    }
    const body = await readJsonBody(req);
    await checkToolScope(body, principal);
    if (http.stateless) {
      const server = opts.createServer();
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      res.once('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(withAuth(req, principal), res, body);
      return;
    }
    const sessionHeader = req.headers['mcp-session-id'];
    if (sessionHeader === undefined) {
      if (!isInitialize(body))
        throw new HttpRefusal(
          400,
          'no_session',
          jsonRpcError(-32000, 'Bad Request: no valid session; send initialize first'),
        );
      if (sessions.size >= http.maxSessions)
        throw new HttpRefusal(503, 'too_many_sessions', jsonRpcError(-32000, 'Too many sessions'), {
          'Retry-After': '5',
        });
      const server = opts.createServer();
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        // 256 bits from the CSPRNG (MCP 2025-11-25 "Session Management": globally unique, cryptographically secure).
        sessionIdGenerator: () => randomBytes(32).toString('base64url'),
        onsessioninitialized: (id) => {
          sessions.set(id, {
            transport,
            server,
            principal: principal.principal,
            lastSeen: Date.now(),
          });
          metrics.setActiveSessions(sessions.size);
        },
        onsessionclosed: (id) => {
          sessions.delete(id);
          metrics.setActiveSessions(sessions.size);
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
        metrics.setActiveSessions(sessions.size);
      };
      await server.connect(transport);
      await transport.handleRequest(withAuth(req, principal), res, body);
      return;
    }
    const session = sessionFor(req, principal);
    await session.transport.handleRequest(withAuth(req, principal), res, body);
  }

  async function authenticate(req: IncomingMessage): Promise<Principal> {
    const header = req.headers.authorization;
    const result = await authenticator.authenticate(
      typeof header === 'string' ? header : undefined,
    );
    if (result.ok) {
      return authenticator.mode === 'none'
        ? { ...result.principal, roles: opts.anonymousRoles }
        : result.principal;
    }
    opts.audit({
      server: opts.serverInfo,
      principal: 'unauthenticated',
      roles: [],
      client: {},
      transport: 'http',
      tool: 'http:authenticate',
      access: 'none',
      arguments: { method: req.method ?? '', path: '/mcp' },
      decision: { result: 'denied', reason: result.error ?? 'unauthenticated' },
      outcome: 'denied',
      durationMs: 0,
      redactions: {},
      errorClass: 'unauthenticated',
      correlationId: randomBytes(16).toString('hex'),
    });
    const params = metadataParam();
    if (result.error)
      params.push(`error="${result.error}"`, `error_description="${result.description}"`);
    throw new HttpRefusal(
      401,
      'unauthenticated',
      plainError(result.error ?? 'unauthorized', result.description),
      {
        'WWW-Authenticate': params.length > 0 ? `Bearer ${params.join(', ')}` : 'Bearer',
      },
    );
  }

  /** `resource_metadata="…"` when the metadata is served (oauth mode), else nothing. */
  function metadataParam(): string[] {
    return opts.oauth ? [`resource_metadata="${metadataUrl}"`] : [];
  }

  /** RFC 6750 §3.1 `insufficient_scope` at the HTTP layer, after auditing the refusal through the pipeline. */
  async function checkToolScope(body: unknown, principal: Principal): Promise<void> {
    if (!isToolCall(body)) return;
    const identity = identityOf(principal, {});
    const missing = opts.pipeline.missingScopes(body.params.name, identity);
    if (!missing || missing.length === 0) return;
    await opts.pipeline.callTool({
      name: body.params.name,
      arguments: body.params.arguments,
      identity,
      approval: NO_APPROVAL_CHANNEL,
      signal: AbortSignal.timeout(1000),
    });
    const scope = missing.join(' ');
    throw new HttpRefusal(
      403,
      'insufficient_scope',
      {
        jsonrpc: '2.0',
        id: body.id ?? null,
        error: { code: -32001, message: `insufficient_scope: ${scope} required` },
      },
      {
        'WWW-Authenticate': `Bearer ${[
          'error="insufficient_scope"',
          `scope="${scope}"`,
          ...metadataParam(),
          'error_description="the token lacks a scope this tool requires"',
        ].join(', ')}`,
      },
    );
  }

  function sessionFor(req: IncomingMessage, principal: Principal): Session {
    const id = req.headers['mcp-session-id'];
    const session = typeof id === 'string' ? sessions.get(id) : undefined;
    // Unknown, ended, expired, or created by another principal: all the same 404 (MCP: start a new session).
    if (!session || session.principal !== principal.principal)
      throw new HttpRefusal(404, 'unknown_session', jsonRpcError(-32001, 'Session not found'));
    session.lastSeen = Date.now();
    return session;
  }

  async function readJsonBody(req: IncomingMessage): Promise<unknown> {
    const type = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim()
      .toLowerCase();
    if (type !== JSON_TYPE)
      throw new HttpRefusal(
        415,
        'content_type',
        jsonRpcError(-32000, 'Content-Type must be application/json'),
      );
    const tooLarge = () =>
      new HttpRefusal(
        413,
        'too_large',
        jsonRpcError(-32000, `Request body larger than ${http.maxBodyBytes} bytes`),
        { Connection: 'close' },
      );
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > DRAIN_MAX_BYTES) {
      // Too large even to discard: answer at once (best effort) and close.
      req.resume();
      throw tooLarge();
    }
    const received = await readBody(req, http.maxBodyBytes);
    if (!received) throw tooLarge();
    const text = received.toString('utf8');
    if (jsonDepthExceeds(text, http.maxJsonDepth))
      throw new HttpRefusal(
        400,
        'too_deep',
        jsonRpcError(-32600, `Invalid Request: JSON nested deeper than ${http.maxJsonDepth}`),
      );
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new HttpRefusal(400, 'parse_error', jsonRpcError(-32700, 'Parse error'));
    }
    if (Array.isArray(body))
      throw new HttpRefusal(
        400,
        'batch',
        jsonRpcError(-32600, 'Invalid Request: batch requests are not supported'),
      );
    if (
      body === null ||
      typeof body !== 'object' ||
      (body as { jsonrpc?: unknown }).jsonrpc !== '2.0'
    ) {
      throw new HttpRefusal(400, 'invalid_request', jsonRpcError(-32600, 'Invalid Request'));
    }
    return body;
  }

  const sweep = setInterval(
    () => {
      const cutoff = Date.now() - http.sessionIdleSeconds * 1000;
      for (const [id, s] of sessions) {
        if (s.lastSeen < cutoff) {
          sessions.delete(id);
          void s.transport.close();
          void s.server.close();
        }
      }
      metrics.setActiveSessions(sessions.size);
    },
    Math.min(30_000, (http.sessionIdleSeconds * 1000) / 2),
  );
  sweep.unref();

  await new Promise<void>((resolve, reject) => {
    node.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new StartupError(`cannot listen on ${http.host}:${http.port} (${err.code ?? 'error'})`),
      ),
    );
    node.listen(http.port, http.host, () => resolve());
  });
  const port = (node.address() as AddressInfo).port;
  const scheme = http.tls ? 'https' : 'http';
  const url = `${scheme}://${formatHost(http.host)}:${port}/mcp`;
  resource =
    http.publicUrl ??
    `${scheme}://${isLoopback(http.host) ? 'localhost' : formatHost(http.host)}:${port}/mcp`;
  const resourceUrl = new URL(resource);
  metadataPath = `/.well-known/oauth-protected-resource${resourceUrl.pathname === '/' ? '' : resourceUrl.pathname}`;
  metadataUrl = `${resourceUrl.origin}${metadataPath}`;

  const management = http.management.enabled
    ? await serveManagement(opts, http.management.host, http.management.port)
    : undefined;

  let closing: Promise<void> | undefined;
  return {
    url,
    resource,
    managementUrl: management?.url,
    close() {
      closing ??= (async () => {
        draining = true;
        clearInterval(sweep);
        node.close();
        const deadline = Date.now() + http.shutdownGraceMs;
        // Open sessions keep SSE streams; in-flight POSTs are what must finish.
        while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        await Promise.allSettled(
          [...sessions.values()].map(async (s) => {
            await s.transport.close();
            await s.server.close();
          }),
        );
        sessions.clear();
        node.closeAllConnections();
        await management?.close();
      })();
      return closing;
    },
  };

  function identityOf(principal: Principal, client: { name?: string; version?: string }): Identity {
    return {
      principal: principal.principal,
      roles: principal.roles,
      scopes: principal.scopes,
      transport: 'http',
      client,
    };
  }

  function withAuth(req: IncomingMessage, principal: Principal): IncomingMessage {
    // The client's token is never handed on: the SDK and tools see only who the caller is.
    (req as IncomingMessage & { auth?: unknown }).auth = {
      token: '[not forwarded]',
      clientId: principal.clientId ?? principal.principal,
      scopes: [...principal.scopes],
      expiresAt: principal.expiresAt,
      extra: { principal: principal.principal, roles: [...principal.roles] },
    };
    return req;
  }
}

/** Builds the stdio-or-HTTP identity from SDK auth info (set by {@link serveHttp}). */
export function identityFromAuthInfo(
  auth: { clientId?: string; scopes?: string[]; extra?: Record<string, unknown> } | undefined,
  client: { name?: string | undefined; version?: string | undefined },
): Identity | undefined {
  const principal = auth?.extra?.principal;
  if (typeof principal !== 'string') return undefined;
  const roles = Array.isArray(auth?.extra?.roles) ? (auth.extra.roles as string[]) : [];
  return { principal, roles, scopes: auth?.scopes ?? [], transport: 'http', client };
}

async function serveManagement(
  opts: HttpServeOptions,
  host: string,
  port: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: NodeHttpServer = createHttpServer(async (req, res) => {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET')
        return send(res, 405, plainError('method_not_allowed', 'use GET'), { Allow: 'GET' });
      if (path === '/healthz') return send(res, 200, { status: 'ok' });
      if (path === '/readyz') {
        const ok = await opts.ready().catch(() => false);
        return send(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not_ready' });
      }
      if (path === '/metrics') {
        const text = await opts.metrics.registry.metrics();
        res.writeHead(200, {
          'Content-Type': opts.metrics.registry.contentType,
          'Cache-Control': 'no-store',
        });
        res.end(text);
        return;
      }
      send(res, 404, plainError('not_found', 'not found'));
    } catch (err) {
      opts.logger.error({ err }, 'management request failed');
      if (!res.headersSent) send(res, 500, plainError('internal_error', 'internal error'));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new StartupError(
          `cannot listen on ${host}:${port} for health/metrics (${err.code ?? 'error'})`,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${formatHost(host)}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': JSON_TYPE,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

/** The host name of a Host header, lower-case, without the port. */
function hostname(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  return h.split(':')[0] ?? '';
}

/** An oversized body is read and discarded up to this many bytes, so its 413 can be delivered. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/** …and for at most this long. */
const DRAIN_MAX_MS = 5_000;

/**
 * Reads a request body of at most `max` bytes. Past `max` it keeps reading and discarding until
 * the client has sent everything and resolves `undefined` (answer 413): a response written while
 * the client is still uploading is lost when the socket closes under it (EPIPE/ECONNRESET). A
 * body beyond {@link DRAIN_MAX_BYTES}, or still arriving after {@link DRAIN_MAX_MS}, is cut off by
 * destroying the connection.
 */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const cutOff = () => {
      req.destroy();
      resolve(undefined);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
      else if (size > DRAIN_MAX_BYTES) cutOff();
      else if (!timer) {
        chunks.length = 0;
        timer = setTimeout(cutOff, DRAIN_MAX_MS);
        timer.unref();
      }
    });
    req.once('end', () => {
      clearTimeout(timer);
      resolve(size > max ? undefined : Buffer.concat(chunks));
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('close', () => {
      clearTimeout(timer);
      // Aborted by the client (or cut off): nothing is waiting for an answer.
      if (!req.complete) resolve(undefined);
    });
  });
}

function formatHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function isInitialize(body: unknown): boolean {
  return (body as { method?: unknown }).method === 'initialize';
}

function isToolCall(
  body: unknown,
): body is { id?: string | number; params: { name: string; arguments?: unknown } } {
  const b = body as { method?: unknown; params?: { name?: unknown } };
  return b.method === 'tools/call' && typeof b.params?.name === 'string';
}

/**
 * True when the JSON text nests objects/arrays deeper than `max`. A linear scan that skips string
 * contents, run before `JSON.parse` so hostile nesting never reaches the recursive parser.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

async function readTls(
  tls: NonNullable<HttpConfig['tls']>,
): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    return { cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) };
  } catch (err) {
    throw new StartupError(
      `cannot read TLS files (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}
