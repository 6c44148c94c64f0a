import { PassThrough, type Readable } from 'node:stream';

/** Longest stdio message line accepted, in bytes (newline excluded). */
export const STDIO_MAX_LINE_BYTES = 8 * 1024 * 1024;

/** Deepest JSON nesting (arrays and objects) accepted in one stdio message. */
export const STDIO_MAX_JSON_DEPTH = 64;

/** A JSON-RPC 2.0 error response for a message refused before it reached the protocol layer. */
export interface LineRefusal {
  readonly jsonrpc: '2.0';
  /** The request's id when it could be read, else `null` (JSON-RPC 2.0 §5). */
  readonly id: string | number | null;
  readonly error: { readonly code: number; readonly message: string };
}

/** Options of {@link guardStdioLines}. */
export interface StdioLineGuardOptions {
  /** Default {@link STDIO_MAX_LINE_BYTES}. */
  readonly maxLineBytes?: number;
  /** Default {@link STDIO_MAX_JSON_DEPTH}. */
  readonly maxDepth?: number;
}

/**
 * Puts a bounded line filter in front of an MCP stdio stream (newline-delimited JSON-RPC, MCP
 * spec "Transports: stdio"). Returns the stream to hand to the SDK's `StdioServerTransport`.
 *
 * - A line longer than `maxLineBytes` is never buffered whole: its bytes are dropped as they
 *   arrive up to the next newline, and `refuse` gets a JSON-RPC `-32600` error with id `null`.
 * - A line nested deeper than `maxDepth` (counted in one linear pass outside strings) is not
 *   passed on: `refuse` gets `-32600` with the request's id when it is readable (`JSON.parse` is
 *   iterative in V8; the SDK's schema validation and later steps are not).
 *
 * Memory is bounded by `maxLineBytes` plus one chunk. Everything else passes unchanged.
 */
export function guardStdioLines(
  input: Readable,
  refuse: (response: LineRefusal) => void,
  options: StdioLineGuardOptions = {},
): PassThrough {
  const maxLine = options.maxLineBytes ?? STDIO_MAX_LINE_BYTES;
  const maxDepth = options.maxDepth ?? STDIO_MAX_JSON_DEPTH;
  const out = new PassThrough();
  let parts: Buffer[] = [];
  let length = 0;
  let discarding = false;

  const tooLarge = (): LineRefusal => ({
    jsonrpc: '2.0',
    id: null,
    error: { code: -32600, message: `Invalid Request: message larger than ${maxLine} bytes` },
  });
  const tooDeep = (line: Buffer): LineRefusal => ({
    jsonrpc: '2.0',
    id: idOf(line),
    error: { code: -32600, message: `Invalid Request: JSON nested deeper than ${maxDepth}` },
  });

  input.on('data', (chunk: Buffer | string) => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    // Complete, accepted lines of this chunk are passed on together, as one zero-copy slice
    // (newlines included): one write per chunk instead of one copy and write per line. A
    // refusal first passes on the lines before it, so the order of answers is kept.
    let runStart = -1;
    const passRun = (end: number) => {
      if (runStart !== -1) out.write(buf.subarray(runStart, end));
      runStart = -1;
    };
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(10, pos);
      const end = nl === -1 ? buf.length : nl;
      if (!discarding && length + (end - pos) > maxLine) {
        discarding = true;
        parts = [];
        length = 0;
      }
      if (nl === -1) {
        if (!discarding) {
          parts.push(buf.subarray(pos));
          length += end - pos;
        }
        break;
      }
      if (discarding) {
        discarding = false;
        passRun(pos);
        refuse(tooLarge());
      } else if (parts.length > 0) {
        // The line began in an earlier chunk (so no run is pending): the one copy it needs.
        const line = Buffer.concat([...parts, buf.subarray(pos, nl)]);
        parts = [];
        length = 0;
        if (depthOf(line) > maxDepth) refuse(tooDeep(line));
        else out.write(Buffer.concat([line, NEWLINE]));
      } else {
        const line = buf.subarray(pos, nl);
        if (depthOf(line) > maxDepth) {
          passRun(pos);
          refuse(tooDeep(line));
        } else if (runStart === -1) runStart = pos;
      }
      pos = nl + 1;
    }
    passRun(pos);
  });
  input.on('end', () => out.end());
  input.on('error', (err) => out.destroy(err));
  return out;
}

const NEWLINE = Buffer.from('\n');

/** Deepest `[`/`{` nesting of a JSON text, ignoring brackets inside strings; linear time. */
export function depthOf(line: Buffer): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** The `id` of a JSON-RPC request line, when it parses and has a string or number id. */
function idOf(line: Buffer): string | number | null {
  try {
    const message = JSON.parse(line.toString('utf8')) as { id?: unknown };
    const id = message?.id;
    return typeof id === 'string' || typeof id === 'number' ? id : null;
  } catch {
    return null;
  }
}
