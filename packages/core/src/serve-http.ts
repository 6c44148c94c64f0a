import type { HttpServeOptions, RunningHttpServer } from './http/http-server.js';

/**
 * {@link import('./http/http-server.js').serveHttp}, with the HTTP server module (Node's
 * `http`/`https`, the listener, sessions and management endpoints) loaded on the first call, so a
 * stdio server never loads it (startup cost, issue 14). Same options, result and errors: it
 * resolves once listening and rejects (a `StartupError` for a listener that cannot start) as
 * the loaded function does.
 */
export async function serveHttp(opts: HttpServeOptions): Promise<RunningHttpServer> {
  const http = await import('./http/http-server.js');
  return http.serveHttp(opts);
}
