/**
 * Reading a `fetch` response body with a byte bound: the stream is consumed chunk by chunk and
 * cancelled as soon as the bound is passed, so an upstream cannot make us buffer more than
 * `maxBytes` plus one chunk. The bound applies to the decoded body (after `Content-Encoding`),
 * which also bounds a compression bomb.
 */
import { UpstreamCallError, UpstreamFailure } from './errors.js';

/**
 * Reads `response`'s body in full, at most `maxBytes` bytes.
 *
 * @throws UpstreamCallError `response_too_large` when `Content-Length` announces more than
 *   `maxBytes` or the stream delivers more (the stream is cancelled either way). Stream errors
 *   (abort, reset) propagate unchanged for the caller to map.
 */
export async function readBodyBounded(response: Response, maxBytes: number): Promise<Buffer> {
  const body = response.body;
  if (!body) return Buffer.alloc(0);
  const announced = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(announced) && announced > maxBytes) {
    await body.cancel().catch(() => undefined);
    throw new UpstreamCallError(UpstreamFailure.ResponseTooLarge, {
      status: response.status,
    });
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new UpstreamCallError(UpstreamFailure.ResponseTooLarge, {
          status: response.status,
        });
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks, total);
}

/** Discards a body we will not read (a redirect, a `401`), freeing the connection. */
export async function discardBody(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}
