/**
 * Bounded reading and text/binary classification of object bodies. Pure except for consuming
 * (and then destroying) the body stream.
 */

/** What a body stream must offer: async iteration of byte chunks; `destroy` when it is a Node stream. */
export type BodyStream = AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => unknown };

/** The first `limit` bytes of a stream and whether more followed. */
export interface BoundedRead {
  readonly bytes: Buffer;
  /** True when the stream had more than `limit` bytes (it was then abandoned). */
  readonly more: boolean;
}

/**
 * Reads at most `limit + 1` bytes from `body` (the extra byte only proves that more exist),
 * then stops and destroys the stream so the rest is never downloaded. Memory is bounded by
 * `limit + 1` plus one network chunk, whatever the object's size.
 *
 * @param limit - bytes to keep, ≥ 0
 */
export async function readBounded(body: BodyStream, limit: number): Promise<BoundedRead> {
  const chunks: Buffer[] = [];
  let total = 0;
  let more = false;
  try {
    for await (const chunk of body) {
      const room = limit + 1 - total;
      const piece = Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(chunk.byteLength, room));
      chunks.push(Buffer.from(piece));
      total += piece.byteLength;
      if (total > limit) {
        more = true;
        break;
      }
    }
  } finally {
    body.destroy?.();
  }
  const all = Buffer.concat(chunks, total);
  return { bytes: more ? all.subarray(0, limit) : all, more };
}

/** How a content type tells us to treat an object. */
export type ContentClass = 'text' | 'binary' | 'unknown';

/** Content types that are text whatever their subtype says (RFC 6838 structured suffixes). */
const TEXT_TYPES =
  /^(text\/|application\/(json|xml|yaml|x-yaml|toml|csv|javascript|ecmascript|x-ndjson|ndjson|jsonl|x-jsonlines|sql|graphql|x-sh|x-www-form-urlencoded|ld\+json)$)|\+(json|xml|yaml)$/;
/** Content types that are binary (media, archives, documents, executables). */
const BINARY_TYPES =
  /^(image|audio|video|font|model)\/|^application\/(pdf|zip|gzip|x-gzip|x-tar|x-7z-compressed|x-bzip2|x-xz|zstd|octet-stream-binary|x-executable|x-sharedlib|vnd\.|msword|x-protobuf|protobuf|wasm|java-archive)/;

/**
 * Classifies a `Content-Type` header value: `text` (text/*, JSON, XML, YAML, CSV, … and
 * `+json`/`+xml` suffixes), `binary` (images, audio, video, archives, PDF, vendor formats) or
 * `unknown` (absent, `application/octet-stream`, anything else: decided by content).
 */
export function classifyContentType(contentType: string | undefined): ContentClass {
  const mime = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mime === '') return 'unknown';
  if (TEXT_TYPES.test(mime)) return 'text';
  if (BINARY_TYPES.test(mime)) return 'binary';
  return 'unknown';
}

/** The `charset` parameter of a content type, lower-cased, if any. */
export function charsetOf(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([A-Za-z0-9._:-]{1,40})"?/i.exec(contentType ?? '');
  return m?.[1]?.toLowerCase();
}

/**
 * Decodes bytes as text when they are text: valid UTF-8 (or the declared `charset`, when it is
 * not UTF-8 and the runtime knows it) without NUL bytes. With `truncated`, an incomplete
 * UTF-8 sequence at the very end is dropped instead of failing.
 *
 * @returns the text and how many bytes it covers, or `undefined` for binary content.
 */
export function decodeText(
  bytes: Uint8Array,
  options: { readonly truncated: boolean; readonly charset?: string | undefined },
): { readonly text: string; readonly bytes: number } | undefined {
  if (bytes.includes(0)) return undefined;
  const charset = options.charset;
  if (charset && !/^(utf-?8|us-ascii|ascii)$/.test(charset)) {
    try {
      const text = new TextDecoder(charset, { fatal: true }).decode(bytes);
      return { text, bytes: bytes.byteLength };
    } catch {
      // unknown label or invalid for it: fall through to UTF-8
    }
  }
  let end = bytes.byteLength;
  if (options.truncated) end = utf8Boundary(bytes);
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(
      bytes.subarray(0, end),
    );
    return { text, bytes: end };
  } catch {
    return undefined;
  }
}

/**
 * The largest `n ≤ bytes.length` such that `bytes[0, n)` does not end inside a UTF-8 sequence
 * (RFC 3629 §3): steps back over at most three continuation bytes to the lead byte and drops
 * the sequence if it is incomplete.
 */
export function utf8Boundary(bytes: Uint8Array): number {
  const n = bytes.byteLength;
  let i = n - 1;
  let back = 0;
  while (i >= 0 && back < 3 && (bytes[i]! & 0xc0) === 0x80) {
    i--;
    back++;
  }
  if (i < 0) return n;
  const lead = bytes[i]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return n - i >= need ? n : i;
}

/** A parsed byte range, inclusive, as in RFC 9110 §14.1.2. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Resolves a `bytes=a-b`, `bytes=a-` or `bytes=-n` range (RFC 9110 §14.1.2, one range only)
 * against an object of `size` bytes.
 *
 * @returns the inclusive range, or `undefined` when it is not satisfiable (RFC 9110 §15.5.17)
 */
export function resolveRange(spec: string, size: number): ByteRange | undefined {
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(spec);
  if (!m) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return undefined;
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || (b !== '' && Number(b) < start)) return undefined;
  return { start, end };
}
