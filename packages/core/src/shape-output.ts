import { createHash } from 'node:crypto';
import { ErrorCode, ToolError } from './errors.js';
import { capRowsByBytes, fenceUntrusted, jsonBytes, renderTable } from './output.js';
import type { Redactor } from './redaction/index.js';
import type { OutputLimits, Tool, ToolOutput } from './tool.js';

/** MCP content blocks the pipeline produces (spec 2025-11-25 `TextContent`, `EmbeddedResource`). */
export type ContentBlock =
  | { type: 'text'; text: string }
  | { type: 'resource'; resource: { uri: string; mimeType: string; blob: string } };

/** A shaped result: what the client gets, and what the audit record counts. */
export interface ShapedOutput {
  readonly content: ContentBlock[];
  readonly structuredContent?: Record<string, unknown> | undefined;
  readonly rows?: number | undefined;
  readonly bytes: number;
  readonly truncated: boolean;
  /**
   * Exactly `JSON.stringify({ content, structuredContent })` (the `CallToolResult` the pipeline
   * returns on success), when it could be built from texts already serialized (table output
   * whose rows fit the byte cap); undefined otherwise. Lets the audit digest reuse those bytes.
   */
  readonly json?: string | undefined;
  /** Set when the tool returned its declared bearer credential field. */
  readonly bearerCredential?: { readonly field: string; readonly sha256: string } | undefined;
}

/** What {@link shapeOutput} needs besides the output. */
export interface ShapeContext {
  readonly tool: Tool<unknown>;
  readonly redactor: Redactor;
  readonly limits: OutputLimits;
  /** Names the data source in the fence. */
  readonly dataSource: string;
  /** Redaction counts of the call (mutated). */
  readonly counts: Record<string, number>;
}

/** The stand-in for binary values inside table or JSON output (never rendered as text). */
export function binaryStandIn(bytes: Uint8Array): { binary: true; bytes: number } {
  return { binary: true, bytes: bytes.byteLength };
}

/** Replaces every `Uint8Array`/`Buffer` in a JSON-like value by {@link binaryStandIn} (copying only what changes). */
export function withoutBinary(value: unknown, depth = 0): unknown {
  if (value instanceof Uint8Array) return binaryStandIn(value);
  if (value === null || typeof value !== 'object' || depth > 64) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const w = withoutBinary(v, depth + 1);
      if (w !== v) {
        out ??= value.slice();
        out[i] = w;
      }
    }
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const w = withoutBinary(v, depth + 1);
    if (w !== v) {
      out ??= { ...(value as Record<string, unknown>) };
      out[k] = w;
    }
  }
  return out ?? value;
}

function summary(rows: number, truncated: boolean): string {
  return `${rows} row${rows === 1 ? '' : 's'}${truncated ? ' (truncated: more rows exist than the row/byte cap allows)' : ''}.`;
}

/** The fenced text: the (redacted) note first, then the body, both inside the fence. */
function fenced(ctx: ShapeContext, note: string | undefined, body: string): string {
  const redactedNote =
    note === undefined ? undefined : (ctx.redactor.redactValue(note, ctx.counts) as string);
  return fenceUntrusted(ctx.dataSource, redactedNote ? `${redactedNote}\n${body}` : body);
}

/**
 * Output controls (pipeline step 9): every string that came from the tool — cell values, object
 * keys, column names, the note, a binary resource's URI and metadata — is redacted; rows are
 * capped by count and serialized bytes; the text rendering sits inside the untrusted-data fence.
 * Binary values in table/JSON output become `{ binary: true, bytes }`; `binary` output is only
 * accepted from a tool declaring `binaryOutput`.
 *
 * MCP `structuredContent` carries the same redacted data but cannot be fenced: it is JSON, not
 * text the model reads as prose (see the core README).
 *
 * @throws ToolError `limit_exceeded` when JSON or binary output exceeds `maxBytes`.
 * @throws Error when a tool returns binary output without declaring it, or a bearer field that is
 *   not a string (connector bugs; answered as `internal_error`).
 */
export function shapeOutput(output: ToolOutput, ctx: ShapeContext): ShapedOutput {
  const { redactor, limits, counts } = ctx;
  if (output.kind === 'table') {
    // Display names are redacted (a column alias can carry data); the key rules test the originals.
    const names = output.columns.map((c) => c.name);
    const shown = redactor.redactColumnNames(names, counts);
    const columns = output.columns.map((c, i) => ({ name: shown[i] ?? '', type: c.type }));
    const overRows = output.rows.length > limits.maxRows;
    const rows = (overRows ? output.rows.slice(0, limits.maxRows) : output.rows).map(
      (row) => withoutBinary(row) as readonly unknown[],
    );
    const redacted = redactor.redactTable(names, rows, counts);
    const capped = capRowsByBytes(redacted, limits.maxBytes);
    const truncated = output.truncated || overRows || capped.truncated;
    const text = `${summary(capped.rows.length, truncated)}\n${fenced(ctx, output.note, renderTable(columns, capped.rows))}`;
    // The result's JSON from the rows' JSON the byte cap already wrote: members in the order of
    // the objects below (content, then structuredContent's columns, rows, rowCount, truncated),
    // which is the order JSON.stringify writes them in.
    const json =
      capped.json === undefined || typeof truncated !== 'boolean'
        ? undefined
        : `{"content":[{"type":"text","text":${JSON.stringify(text)}}],"structuredContent":{"columns":${JSON.stringify(columns)},"rows":${capped.json},"rowCount":${capped.rows.length},"truncated":${truncated}}}`;
    return {
      content: [{ type: 'text', text }],
      structuredContent: { columns, rows: capped.rows, rowCount: capped.rows.length, truncated },
      json,
      rows: capped.rows.length,
      bytes: capped.bytes,
      truncated,
    };
  }
  if (output.kind === 'binary') {
    if (ctx.tool.binaryOutput !== true)
      throw new Error(`tool ${ctx.tool.name} returned binary output without declaring it`);
    if (output.data.byteLength > limits.maxBytes)
      throw new ToolError(
        ErrorCode.LimitExceeded,
        `the result (${output.data.byteLength} bytes) exceeds the ${limits.maxBytes}-byte cap`,
      );
    const metadata = redactor.redactValue(withoutBinary(output.metadata ?? {}), counts) as Record<
      string,
      unknown
    >;
    const uri = redactor.redactValue(output.uri, counts) as string;
    const text = fenced(ctx, output.note, JSON.stringify({ uri, ...metadata }, null, 2));
    return {
      content: [
        { type: 'text', text },
        {
          type: 'resource',
          resource: {
            uri,
            mimeType: output.mimeType,
            blob: Buffer.from(output.data).toString('base64'),
          },
        },
      ],
      structuredContent: {
        uri,
        mimeType: output.mimeType,
        bytes: output.data.byteLength,
        ...metadata,
      },
      bytes: output.data.byteLength,
      truncated: output.truncated ?? false,
    };
  }
  // MCP 2025-11-25 "Structured content": structuredContent is a JSON object. The transport no
  // longer re-validates our result (mcp-server.ts), so the shape is enforced here.
  const proto: unknown =
    typeof output.data === 'object' && output.data !== null && !Array.isArray(output.data)
      ? Object.getPrototypeOf(output.data)
      : undefined;
  if (proto !== Object.prototype && proto !== null)
    throw new Error(`tool ${ctx.tool.name} returned JSON output that is not a plain object`);
  let source = withoutBinary(output.data) as Record<string, unknown>;
  let bearer: { field: string; value: string } | undefined;
  const field = ctx.tool.bearerField;
  if (field !== undefined && Object.hasOwn(source, field)) {
    const value = source[field];
    if (typeof value !== 'string')
      throw new Error(`tool ${ctx.tool.name} returned a non-string bearer field`);
    bearer = { field, value };
    const { [field]: _omitted, ...rest } = source;
    source = rest;
  }
  const redactedData = redactor.redactValue(source, counts) as Record<string, unknown>;
  const data = bearer ? { ...redactedData, [bearer.field]: bearer.value } : redactedData;
  const bytes = jsonBytes(data);
  if (bytes > limits.maxBytes)
    throw new ToolError(
      ErrorCode.LimitExceeded,
      `the result (${bytes} bytes) exceeds the ${limits.maxBytes}-byte cap`,
    );
  return {
    content: [{ type: 'text', text: fenced(ctx, output.note, JSON.stringify(data, null, 2)) }],
    structuredContent: data,
    rows: output.rowCount,
    bytes,
    truncated: output.truncated ?? false,
    bearerCredential: bearer && {
      field: bearer.field,
      sha256: createHash('sha256').update(bearer.value).digest('hex'),
    },
  };
}
