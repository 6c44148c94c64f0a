import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Server as McpServer } from '@modelcontextprotocol/sdk/server/index.js';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { z } from 'zod';
import type { httpConfigSchema } from '../config.js';
import { StartupError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ServerMetrics } from '../metrics.js';
import type { Pipeline } from '../pipeline.js';
import type { Reloadable } from '../reload.js';
import type { Authenticator, Principal } from './auth.js';
import { readJsonBody } from './body.js';
import { deferHeaderFlush } from './deferred-headers.js';
import { createEdgeAuth, initialScope, withAuthInfo } from './edge-auth.js';
import { HttpRefusal, jsonRpcError, plainError, sendJson } from './http-refusal.js';
import { type RunningManagement, serveManagement } from './management.js';
import type { MtlsServerOptions } from './mtls.js';
import { createRefusalAggregator } from './refusal-audit.js';
import {
  checkProtocolVersion,
  createHostAllowlist,
  createHostCheck,
  createOriginCheck,
  formatHost,
  forwardedHeader,
  hostHeaderLines,
  isLoopback,
} from './request-guards.js';
import {
  challenges,
  metadataDocument,
  type OAuthMetadataOptions,
  type ResourceLocation,
  resourceLocation,
} from './resource-metadata.js';
import { SessionTable } from './sessions.js';

export { jsonDepthExceeds } from './body.js';
export { identityFromAuthInfo } from './edge-auth.js';
export { isLoopback } from './request-guards.js';

/** The `http:` configuration section. */
export type HttpConfig = z.infer<typeof httpConfigSchema>;

/** What {@link serveHttp} needs. */
export interface HttpServeOptions {
  readonly http: HttpConfig;
  readonly authenticator: Authenticator;
  /** Mutual TLS listener options (`auth.mtls`); needs `http.tls`. */
  readonly mtls?: MtlsServerOptions | undefined;
  /**
   * Reads the mutual TLS options again (CA bundle and CRL) for a `SIGHUP` reload; with it the
   * running server lists a reloadable `auth.mtls ca/crl` (see {@link RunningHttpServer.reloadables}).
   */
  readonly reloadMtls?: (() => Promise<MtlsServerOptions>) | undefined;
  /** For the RFC 9728 metadata (oauth mode). */
  readonly oauth?: OAuthMetadataOptions | undefined;
  /** Roles of the anonymous principal (`auth.mode: none`). */
  readonly anonymousRoles: readonly string[];
  /** A new MCP server bound to the pipeline; identity comes from each request's auth info. */
  readonly createServer: () => McpServer;
  /** Also the audit path of edge refusals ({@link Pipeline.recordRefusal}). */
  readonly pipeline: Pipeline;
  readonly metrics: ServerMetrics;
  readonly serverInfo: { readonly name: string; readonly version: string };
  /** Readiness: upstream reachable, credentials loaded, audit and Redis (when configured) healthy. */
  readonly ready: () => Promise<boolean>;
  readonly logger: Logger;
}

/** A running HTTP deployment. */
export interface RunningHttpServer {
  /** `http(s)://host:port/mcp` as bound. */
  readonly url: string;
  /**
   * The canonical resource URL (RFC 8707) tokens must be issued for, and the URL the server
   * announces: `http.publicUrl`, else equal to {@link url}.
   */
  readonly resource: string;
  /** `http://host:port` of the health/metrics listener, if enabled. */
  readonly managementUrl?: string | undefined;
  /** What `SIGHUP` re-reads (see `reload.ts`). */
  readonly reloadables: readonly Reloadable[];
  /** Stops accepting, lets in-flight calls finish (bounded by `shutdownGraceMs`), closes sessions. */
  close(): Promise<void>;
}

/** Distinct peers tracked per interval by the unauthenticated-refusal aggregation. */
const MAX_REFUSAL_PEERS = 10_000;

/**
 * Serves MCP over Streamable HTTP (MCP 2025-11-25 "Transports") on `/mcp`, validating every
 * request before the SDK transport sees it:
 *
 * - `Host` (DNS rebinding; name and port, see {@link createHostAllowlist}) and `Origin` against
 *   allowlists → 403; only `/mcp` and the RFC 9728 metadata paths exist → 404; other methods → 405.
 * - `MCP-Protocol-Version` must be a supported version → 400.
 * - Exactly one credential (one `Authorization` header; never a query or form token) → else 400
 *   `invalid_request` before authentication (RFC 6750 §3.1).
 * - Authentication (`Authorization: Bearer`) → 401 with `WWW-Authenticate: Bearer
 *   resource_metadata="…", scope="…"` (RFC 9728 §5.1; oauth mode, the one mode that serves the
 *   metadata); a token lacking a tool's scope → 403 `insufficient_scope` naming the scope (RFC
 *   6750 §3.1). Both are audited through {@link Pipeline.recordRefusal}, without the token;
 *   refusals before authentication are aggregated per peer and interval.
 * - POST bodies: see {@link readJsonBody} (415, 413 at once with `Connection: close`, depth 400,
 *   −32700, batch 400).
 * - Sessions: 256-bit random ids bound to the principal that created them, capped per process
 *   and per principal ({@link SessionTable}); `stateless: true` issues no session ids.
 * - Every error is a small JSON body: never HTML, a stack trace or a file path.
 *
 * Health and metrics are served on a separate listener ({@link serveManagement}).
 *
 * @throws StartupError when binding beyond loopback without authentication, or the TLS files cannot be read.
 */
export async function serveHttp(opts: HttpServeOptions): Promise<RunningHttpServer> {
  const { http, logger, metrics, authenticator, pipeline } = opts;
  // The SDK's HTTP transport (and its HTTP framework) is loaded only when HTTP is served: a stdio
  // server never needs it (startup cost, issue 14).
  const { StreamableHTTPServerTransport: Transport } = await import(
    '@modelcontextprotocol/sdk/server/streamableHttp.js'
  );
  if (!isLoopback(http.host) && authenticator.mode === 'none') {
    throw new StartupError(
      `refusing to listen on ${http.host} without authentication: set auth.mode to oauth or api-key, or bind to 127.0.0.1`,
    );
  }
  if (opts.mtls && !http.tls)
    throw new StartupError('auth.mtls needs in-process TLS: set http.tls (certFile, keyFile)');
  const scheme = http.tls ? 'https' : 'http';
  const originAllowed = createOriginCheck(http.allowedOrigins);
  const trustedProxies: ReadonlySet<string> = new Set(http.trustedProxies);
  /** The scheme clients use to reach this server (of `http.publicUrl`, else the listener's). */
  let publicScheme: 'http' | 'https' = scheme;
  let hostAllowed: (value: string, defaultPort: number) => boolean = () => false;
  let location: ResourceLocation | undefined;
  const challenge = challenges(
    () => (opts.oauth ? location?.metadataUrl : undefined),
    opts.oauth ? initialScope(pipeline, opts.oauth) : undefined,
  );
  const sessions = new SessionTable(
    {
      maxSessions: http.maxSessions,
      maxSessionsPerPrincipal: http.maxSessionsPerPrincipal,
      idleSeconds: http.sessionIdleSeconds,
    },
    (n) => metrics.setActiveSessions(n),
  );
  const refusals = createRefusalAggregator({
    intervalMs: http.unauthenticatedAuditIntervalSeconds * 1000,
    maxPeers: MAX_REFUSAL_PEERS,
    record: (r) => pipeline.recordRefusal(r),
  });
  const edgeAuth = createEdgeAuth({
    authenticator,
    anonymousRoles: opts.anonymousRoles,
    pipeline,
    challenge,
    refusals,
    trustedProxies,
    maxBodyBytes: http.maxBodyBytes,
  });
  let inFlight = 0;
  let draining = false;

  const node = http.tls
    ? createHttpsServer({ ...(await readTls(http.tls)), ...opts.mtls, minVersion: 'TLSv1.3' })
    : createHttpServer();
  const reloadables: Reloadable[] = [];
  const { tls } = http;
  if (tls && opts.mtls && opts.reloadMtls && node instanceof HttpsServer) {
    const reloadMtls = opts.reloadMtls;
    reloadables.push({
      name: 'auth.mtls ca/crl',
      // setSecureContext builds the whole context first (an unparsable CA or CRL throws, and
      // the old context stays); new handshakes use the new one, open connections keep theirs.
      reload: async () => {
        const { ca, crl } = await reloadMtls();
        node.setSecureContext({ ...(await readTls(tls)), ca, crl, minVersion: 'TLSv1.3' });
      },
    });
  }
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
      if (!res.headersSent) sendJson(res, 500, jsonRpcError(-32603, 'Internal error'));
      else res.end();
    });
  });
  node.on('clientError', (_err, socket) => {
    if (socket.writable)
      socket.end(
        'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"bad_request"}',
      );
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await route(req, res);
    } catch (err) {
      if (!(err instanceof HttpRefusal)) throw err;
      metrics.observeHttpRefusal(err.reason);
      if (!res.headersSent) sendJson(res, err.status, err.body, err.headers);
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Host and Origin first: a DNS-rebound browser must learn nothing, not even the paths.
    checkHost(req);
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin))
      throw new HttpRefusal(403, 'bad_origin', plainError('forbidden', 'origin not allowed'));
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (location?.metadataPaths.has(path)) {
      if (req.method !== 'GET')
        throw new HttpRefusal(405, 'method', plainError('method_not_allowed', 'use GET'), {
          Allow: 'GET',
        });
      if (!opts.oauth)
        throw new HttpRefusal(404, 'not_found', plainError('not_found', 'not found'));
      sendJson(res, 200, metadataDocument(location, opts.oauth, opts.serverInfo.name));
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
    checkProtocolVersion(req);
    const principal = await edgeAuth.authenticate(req, res);
    if (req.method === 'GET') {
      if (http.stateless || !String(req.headers.accept ?? '').includes('text/event-stream')) {
        throw new HttpRefusal(
          405,
          'no_sse',
          jsonRpcError(-32000, 'Method not allowed: no SSE stream is offered here'),
          { Allow: 'POST, DELETE' },
        );
      }
      await sessionFor(req, principal).transport.handleRequest(withAuthInfo(req, principal), res);
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
      await sessionFor(req, principal).transport.handleRequest(withAuthInfo(req, principal), res);
      return;
    }
    const body = await readJsonBody(req, res, http);
    edgeAuth.checkToolScope(body, principal);
    // The answer's headers leave with its first event (one write instead of two; bounded hold).
    deferHeaderFlush(res);
    if (http.stateless) {
      const server = opts.createServer();
      const transport = new Transport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      res.once('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(withAuthInfo(req, principal), res, body);
      return;
    }
    if (req.headers['mcp-session-id'] === undefined) {
      await initializeSession(req, res, body, principal);
      return;
    }
    await sessionFor(req, principal).transport.handleRequest(
      withAuthInfo(req, principal),
      res,
      body,
    );
  }

  /** `Host` (or a trusted proxy's `X-Forwarded-Host`) must be an allowed name on an allowed port. */
  function checkHost(req: IncomingMessage): void {
    const forwardedHost = forwardedHeader(req, 'x-forwarded-host', trustedProxies);
    // A Host without a port means the default port of the scheme the client used: the public
    // URL's (a TLS-terminating gateway forwards https requests as http with `Host: name`).
    const proto = forwardedHost
      ? (forwardedHeader(req, 'x-forwarded-proto', trustedProxies) ?? publicScheme)
      : publicScheme;
    if (
      hostHeaderLines(req) > 1 ||
      !hostAllowed(forwardedHost ?? req.headers.host ?? '', proto === 'https' ? 443 : 80)
    )
      throw new HttpRefusal(403, 'bad_host', plainError('forbidden', 'host not allowed'));
  }

  async function initializeSession(
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
    principal: Principal,
  ): Promise<void> {
    if (body.method !== 'initialize')
      throw new HttpRefusal(
        400,
        'no_session',
        jsonRpcError(-32000, 'Bad Request: no valid session; send initialize first'),
      );
    const ticket = sessions.reserve(principal.principal);
    try {
      const server = opts.createServer();
      const transport: StreamableHTTPServerTransport = new Transport({
        // 256 bits from the CSPRNG (MCP 2025-11-25 "Session Management": globally unique, cryptographically secure).
        sessionIdGenerator: () => randomBytes(32).toString('base64url'),
        onsessioninitialized: (id) =>
          ticket.commit(id, {
            transport,
            server,
            principal: principal.principal,
            lastSeen: Date.now(),
          }),
        onsessionclosed: (id) => sessions.delete(id),
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await server.connect(transport);
      await transport.handleRequest(withAuthInfo(req, principal), res, body);
    } finally {
      // A failed initialize leaves no reservation behind (a committed ticket ignores this).
      ticket.release();
    }
  }

  function sessionFor(req: IncomingMessage, principal: Principal) {
    const id = req.headers['mcp-session-id'];
    const session = sessions.get(typeof id === 'string' ? id : undefined, principal.principal);
    // Unknown, ended, expired, or created by another principal: all the same 404 (MCP: start a new session).
    if (!session)
      throw new HttpRefusal(404, 'unknown_session', jsonRpcError(-32001, 'Session not found'));
    return session;
  }

  await new Promise<void>((resolve, reject) => {
    node.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new StartupError(`cannot listen on ${http.host}:${http.port} (${err.code ?? 'error'})`),
      ),
    );
    node.listen(http.port, http.host, () => resolve());
  });
  const port = (node.address() as AddressInfo).port;
  const url = `${scheme}://${formatHost(http.host)}:${port}/mcp`;
  location = resourceLocation(http.publicUrl, scheme, http.host, port);
  const publicUrl = new URL(location.resource);
  const publicPort = Number(publicUrl.port || (publicUrl.protocol === 'https:' ? 443 : 80));
  publicScheme = publicUrl.protocol === 'https:' ? 'https' : 'http';
  hostAllowed = createHostCheck(
    createHostAllowlist(http.allowedHosts, [...new Set([port, publicPort])]),
  );

  let management: RunningManagement | undefined;
  if (http.management.enabled) {
    try {
      management = await serveManagement({
        host: http.management.host,
        port: http.management.port,
        allowedHosts: http.allowedHosts,
        ready: opts.ready,
        metrics,
        logger,
      });
    } catch (err) {
      node.close();
      await sessions.closeAll();
      refusals.close();
      throw err;
    }
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    resource: location.resource,
    managementUrl: management?.url,
    reloadables,
    close() {
      closing ??= (async () => {
        draining = true;
        node.close();
        const deadline = Date.now() + http.shutdownGraceMs;
        // Open sessions keep SSE streams; in-flight POSTs are what must finish.
        while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        await sessions.closeAll();
        node.closeAllConnections();
        refusals.close();
        await management?.close();
      })();
      return closing;
    },
  };
}

async function readTls(
  tls: NonNullable<HttpConfig['tls']>,
): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    return {
      cert: await readFile(tls.certFile),
      key: await readFile(tls.keyFile),
    };
  } catch (err) {
    throw new StartupError(
      `cannot read TLS files (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}
