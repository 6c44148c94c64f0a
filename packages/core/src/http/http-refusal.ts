import type { ServerResponse } from 'node:http';

/** The only media type of request and error bodies. */
export const JSON_TYPE = 'application/json';

/**
 * A refusal carried through the request handler to one place that answers it: `status`, a small
 * JSON `body`, extra `headers`, and `reason`, the stable label counted in
 * `hmcp_http_refusals_total{reason}`.
 */
export class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly body: unknown,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(reason);
  }
}

/** A JSON-RPC 2.0 error response without a request id (JSON-RPC 2.0 §5.1). */
export const jsonRpcError = (code: number, message: string) => ({
  jsonrpc: '2.0',
  id: null,
  error: { code, message },
});

/** The body of refusals outside JSON-RPC (metadata, health, authentication): `{ error, message }`. */
export const plainError = (error: string, message: string) => ({
  error,
  message,
});

/**
 * Writes `body` as JSON with `status`, `Cache-Control: no-store` and `nosniff`, plus `headers`.
 * Never HTML, never a stack trace.
 */
export function sendJson(
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
