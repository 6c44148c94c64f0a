import type { ColumnInfo } from '@hardened-mcp/core';
import { binaryStandIn } from '@hardened-mcp/core';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { typeNamesFor } from './catalog.js';

/** A bound query value: what MCP clients can send as `params`. */
export type SqlValue = string | number | boolean | null;

/** Rows read through a cursor, bounded by rows and bytes. */
export interface CursorResult {
  readonly columns: ColumnInfo[];
  readonly rows: unknown[][];
  /** More rows existed than `maxRows`/`maxBytes` allowed. */
  readonly truncated: boolean;
}

/**
 * Runs one statement through a server-side portal (pg-cursor: extended protocol
 * Parse/Bind/Execute with a row limit — the extended protocol accepts exactly one statement,
 * PostgreSQL docs §55.2.3) and reads `fetchRows` rows per round trip until `maxRows` + 1 rows
 * or `maxBytes` of JSON are seen. Memory is bounded by the caps, not by the table size.
 *
 * Values are made JSON-safe: timestamps → ISO 8601 strings, bytea → `{ binary: true, bytes }`
 * (never its content: hex or base64 of it would carry data past redaction), int8/numeric stay
 * strings as the driver returns them (no precision loss).
 */
export async function readCursor(
  client: pg.PoolClient,
  sql: string,
  params: readonly SqlValue[],
  limits: { maxRows: number; maxBytes: number; fetchRows: number },
): Promise<CursorResult> {
  const cursor = client.query(new Cursor(sql, [...params], { rowMode: 'array' }));
  const rows: unknown[][] = [];
  let truncated = false;
  let fields: { name: string; dataTypeID: number }[] | undefined;
  try {
    let bytes = 2;
    while (!truncated) {
      const want = Math.min(limits.fetchRows, limits.maxRows + 1 - rows.length);
      const batch = await new Promise<unknown[][]>((resolve, reject) => {
        cursor.read(want, (err, batchRows, result) => {
          if (err) return reject(err);
          fields ??= (result as { fields?: { name: string; dataTypeID: number }[] } | undefined)
            ?.fields;
          resolve(batchRows as unknown[][]);
        });
      });
      for (const raw of batch) {
        if (rows.length >= limits.maxRows) {
          truncated = true;
          break;
        }
        const row = raw.map(toJsonValue);
        const size = Buffer.byteLength(JSON.stringify(row), 'utf8') + 1;
        if (bytes + size > limits.maxBytes) {
          truncated = true;
          break;
        }
        bytes += size;
        rows.push(row);
      }
      if (batch.length < want) break;
    }
  } finally {
    // Closing the portal first: the connection runs one query at a time, and a suspended
    // portal would block the type lookup below. A cursor in error has no portal left (and on a
    // dead socket close() would wait for a ReadyForQuery that never comes).
    if ((cursor as unknown as { state?: string }).state !== 'error') await cursor.close();
  }
  const f = fields ?? [];
  const names = await typeNamesFor(
    client,
    f.map((x) => x.dataTypeID),
  );
  const columns = f.map((x) => ({
    name: x.name,
    type: names.get(x.dataTypeID) ?? `oid:${x.dataTypeID}`,
  }));
  return { columns, rows, truncated };
}

/** Converts a driver value to a JSON-safe value. */
export function toJsonValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date)
    return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  if (Buffer.isBuffer(value)) return binaryStandIn(value);
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof value === 'object' && value.constructor !== Object) {
    // e.g. interval objects: use the driver's text form when it has one.
    const toPostgres = (value as { toPostgres?: () => string }).toPostgres;
    return typeof toPostgres === 'function'
      ? toPostgres.call(value)
      : JSON.parse(JSON.stringify(value));
  }
  return value;
}
