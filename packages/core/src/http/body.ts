import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpRefusal, JSON_TYPE, jsonRpcError } from './http-refusal.js';
import { mediaType } from './request-guards.js';

/** After a 413 is sent, at most this many further bytes of the body are read and discarded… */
export const TAIL_MAX_BYTES = 64 * 1024;
/** …for at most this long (ms), so the client can read the 413 before the connection closes. */
export const TAIL_MAX_MS = 1_000;

/** Limits of {@link readJsonBody}. */
export interface BodyLimits {
  /** Body limit in bytes (`http.maxBodyBytes`). */
  readonly maxBodyBytes: number;
  /** Maximum nesting depth of objects and arrays (`http.maxJsonDepth`). */
  readonly maxJsonDepth: number;
}

/**
 * Reads a request body of at most `max` bytes. The moment the body is known to be larger (a
 * declared `Content-Length` above `max`, or the byte past `max` arriving) it answers `413` with
 * `Connection: close` at once, then reads and discards at most {@link TAIL_MAX_BYTES} more and
 * closes the connection after at most {@link TAIL_MAX_MS}: the bounded wait lets a client that is
 * still uploading read the answer instead of a reset, and nothing more is read.
 *
 * @returns the body; never more than `max` bytes are buffered
 * @throws HttpRefusal 413 (already answered: `res.headersSent` is true) when the body is too large;
 *   the stream's error when the client aborts
 */
export function readBody(req: IncomingMessage, res: ServerResponse, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    const overflow = () => {
      over = true;
      chunks.length = 0;
      // Built only when needed: an Error captures a stack trace, which every request would pay.
      const tooLarge = new HttpRefusal(
        413,
        'too_large',
        jsonRpcError(-32000, `Request body larger than ${max} bytes`),
        { Connection: 'close' },
      );
      answerThenCut(req, res, tooLarge);
      reject(tooLarge);
    };
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > max) {
      overflow();
      return;
    }
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > max) overflow();
      else chunks.push(chunk);
    });
    req.once('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.once('error', (err) => {
      if (!over) reject(err);
    });
    req.once('close', () => {
      // Aborted by the client: nothing is waiting for an answer.
      if (!over && !req.complete) reject(new Error('request aborted'));
    });
  });
}

/**
 * Writes `refusal` (headers and the complete body, which carries a `Content-Length`) without
 * ending the response, then reads and discards at most {@link TAIL_MAX_BYTES} of the upload and
 * stops reading (TCP flow control then holds the client, which can read the answer meanwhile).
 * The response ends when the upload ends or after {@link TAIL_MAX_MS}; with `Connection: close`
 * Node then closes the socket, dropping whatever was not read.
 */
function answerThenCut(req: IncomingMessage, res: ServerResponse, refusal: HttpRefusal): void {
  const text = JSON.stringify(refusal.body);
  res.writeHead(refusal.status, {
    'Content-Type': JSON_TYPE,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...refusal.headers,
  });
  res.write(text);
  let tail = 0;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    req.removeListener('data', discard);
    res.end();
  };
  const discard = (chunk: Buffer) => {
    tail += chunk.length;
    if (tail > TAIL_MAX_BYTES) {
      req.removeListener('data', discard);
      req.pause();
    }
  };
  const timer = setTimeout(finish, TAIL_MAX_MS);
  timer.unref();
  req.on('data', discard);
  req.once('end', finish);
  req.once('close', finish);
  req.resume();
}

/**
 * Reads a JSON-RPC request body: `Content-Type: application/json` → else 415; size (see
 * {@link readBody}) → 413; nesting deeper than `maxJsonDepth` → 400 before the parser sees it;
 * malformed JSON → 400 with JSON-RPC −32700; a batch (array) → 400; not a JSON-RPC 2.0 object →
 * 400 −32600 (MCP 2025-11-25 "Transports": one message per POST).
 *
 * @returns the parsed message object
 * @throws HttpRefusal as above
 */
export async function readJsonBody(
  req: IncomingMessage,
  res: ServerResponse,
  limits: BodyLimits,
): Promise<Record<string, unknown>> {
  if (mediaType(req) !== JSON_TYPE)
    throw new HttpRefusal(
      415,
      'content_type',
      jsonRpcError(-32000, 'Content-Type must be application/json'),
    );
  const text = (await readBody(req, res, limits.maxBodyBytes)).toString('utf8');
  if (jsonDepthExceeds(text, limits.maxJsonDepth))
    throw new HttpRefusal(
      400,
      'too_deep',
      jsonRpcError(-32600, `Invalid Request: JSON nested deeper than ${limits.maxJsonDepth}`),
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
  )
    throw new HttpRefusal(400, 'invalid_request', jsonRpcError(-32600, 'Invalid Request'));
  return body as Record<string, unknown>;
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
