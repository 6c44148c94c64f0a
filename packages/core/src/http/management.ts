import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StartupError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ServerMetrics } from '../metrics.js';
import { plainError, sendJson } from './http-refusal.js';
import {
  createHostAllowlist,
  formatHost,
  hostHeaderLines,
  parseAuthority,
} from './request-guards.js';

/** What the management listener serves. */
export interface ManagementOptions {
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  /** Host names accepted besides IP literals (the `/mcp` listener's `http.allowedHosts`). */
  readonly allowedHosts: readonly string[];
  /** Readiness: every dependency answers (upstream, audit, Redis when configured). */
  readonly ready: () => Promise<boolean>;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
}

/** A running management listener. */
export interface RunningManagement {
  /** `http://host:port` as bound. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `/healthz` (the process answers), `/readyz` (503 until {@link ManagementOptions.ready}
 * holds) and `/metrics` (Prometheus text) on their own listener, GET only. The `Host` header is
 * checked: a configured name on this port (port included, as on `/mcp`), or any IP literal
 * (Kubernetes probes and Prometheus address a pod by IP, a container runtime by a published port;
 * a DNS-rebinding page always carries a DNS name) → else 403.
 *
 * @throws StartupError when the port cannot be bound
 */
export async function serveManagement(opts: ManagementOptions): Promise<RunningManagement> {
  let hostAllowed: (authority: { name: string; port: number }) => boolean = () => false;
  const server: Server = createServer(async (req, res) => {
    try {
      const authority = parseAuthority(req.headers.host ?? '', 80);
      if (!authority || !hostAllowed(authority) || hostHeaderLines(req) > 1)
        return sendJson(res, 403, plainError('forbidden', 'host not allowed'));
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET')
        return sendJson(res, 405, plainError('method_not_allowed', 'use GET'), {
          Allow: 'GET',
        });
      if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
      if (path === '/readyz') {
        const ok = await opts.ready().catch(() => false);
        return sendJson(res, ok ? 200 : 503, {
          status: ok ? 'ready' : 'not_ready',
        });
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
      sendJson(res, 404, plainError('not_found', 'not found'));
    } catch (err) {
      opts.logger.error({ err }, 'management request failed');
      if (!res.headersSent) sendJson(res, 500, plainError('internal_error', 'internal error'));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new StartupError(
          `cannot listen on ${opts.host}:${opts.port} for health/metrics (${err.code ?? 'error'})`,
        ),
      ),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  hostAllowed = createHostAllowlist(opts.allowedHosts, [bound], true);
  return {
    url: `http://${formatHost(opts.host)}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
