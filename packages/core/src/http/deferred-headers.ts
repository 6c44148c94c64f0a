import { ServerResponse } from 'node:http';

/** Longest time the headers of a POST's SSE answer are held back waiting for its first event (ms). */
export const MAX_HEADER_HOLD_MS = 1_000;

/**
 * Lets the headers of a streamed (SSE) answer leave with its first bytes of body instead of in
 * a system call of their own. The SDK's HTTP adapter (`@hono/node-server`) calls
 * `res.flushHeaders()` as soon as the SDK returns a stream, before the tool has run; the answer's
 * event and the stream's end then follow in a second write. Here `flushHeaders` only arms a
 * timer: Node sends pending headers together with the first body write (and corks the socket for
 * the rest of that tick, so an event and the end written in the same tick leave in one `writev`).
 * An event written mid-call (an approval's elicitation, progress) goes out at once with the
 * headers; if nothing is written within `maxHoldMs` the headers are flushed then, so a slow tool
 * still opens its stream in bounded time.
 *
 * Used for POSTs only (a GET's standalone SSE stream must open at once: it may stay silent).
 * Relies on the adapter calling `flushHeaders` through the response object (an own property
 * shadows the prototype's) and on Node's `_send` prepending unsent headers to the first body
 * write; `deferred-headers.test.ts` checks both on a real server.
 *
 * @param res - the response of a POST about to be handed to the SDK transport
 * @param maxHoldMs - bound of the hold (ms), default {@link MAX_HEADER_HOLD_MS}
 */
export function deferHeaderFlush(res: ServerResponse, maxHoldMs = MAX_HEADER_HOLD_MS): void {
  let timer: NodeJS.Timeout | undefined;
  // `headersSent` is already true once `writeHead` ran (the header is built, not yet written);
  // flushing headers that already left writes nothing (Node's `_send('')`).
  const flushNow = () => {
    if (!res.writableEnded && !res.destroyed) ServerResponse.prototype.flushHeaders.call(res);
  };
  res.flushHeaders = () => {
    if (timer !== undefined) return;
    timer = setTimeout(flushNow, maxHoldMs);
    timer.unref();
    res.once('close', () => clearTimeout(timer));
  };
}
