import type { ColumnInfo } from '@hardened-mcp/core';
import { binaryStandIn } from '@hardened-mcp/core';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { typeNamesFor } from './catalog.js';
import { abandonConnection } from './database.js';

/** A bound query value: what MCP clients can send as `params`. */
export type SqlValue = string | number | boolean | null;

/** Rows read through a cursor, bounded by rows and bytes. */
export interface CursorResult {
  readonly columns: ColumnInfo[];
  readonly rows: unknown[][];
  /** More rows existed than `maxRows`/`maxBytes` allowed. */
  readonly truncated: boolean;
}

/** The parts of pg-cursor's instance that {@link readCursor} hooks (pg-cursor 2.x, index.js). */
interface CursorInternals {
  handleDataRow(msg: { fields: unknown[] }): void;
  _result: {
    parseRow(fields: unknown[]): unknown[];
    fields: { name: string; dataTypeID: number }[];
  };
  _rows: unknown[][];
}

/**
 * Makes `cursor` read its one batch in one round trip: Parse/Bind/Describe/Execute(`rows`)/Sync
 * go out together when the client submits it. The portal is not closed (a portal lives until
 * its transaction ends, which the caller's ROLLBACK does). Hooks pg-cursor 2.x's handlers
 * (index.js) like {@link readCursor} does; `read`/`close` must not be called afterwards.
 *
 * @returns a promise settled at the statement's ReadyForQuery (or its error).
 */
function singleBatch(cursor: Cursor, rows: number): Promise<void> {
  const inner = cursor as unknown as SingleBatchInternals;
  return new Promise<void>((resolve, reject) => {
    const submit = inner.submit;
    inner.submit = (con) => {
      con.stream?.cork?.();
      try {
        submit.call(cursor, con);
        con.execute({ portal: inner._portal, rows }, true);
        con.sync();
      } finally {
        con.stream?.uncork?.();
      }
      inner._rows = [];
    };
    inner.handlePortalSuspended = () => undefined;
    inner.handleCommandComplete = () => undefined;
    inner.handleReadyForQuery = () => {
      inner.state = 'done';
      resolve();
    };
    const handleError = inner.handleError;
    inner.handleError = (msg) => {
      // The Sync is already sent: pg-cursor's own Sync after an error would be answered by a
      // second ReadyForQuery that belongs to no query.
      const con = inner.connection;
      const sync = con?.sync;
      if (con) con.sync = () => undefined;
      try {
        handleError.call(cursor, msg);
      } finally {
        if (con && sync) con.sync = sync;
      }
      reject(msg);
    };
  });
}

/** pg's Connection methods {@link singleBatch} sends with (pg/lib/connection.js). */
interface PortalConnection {
  stream?: { cork?(): void; uncork?(): void };
  execute(msg: { portal: string; rows: number }, more: boolean): void;
  sync(): void;
}

/** pg-cursor's members {@link singleBatch} replaces or reads (pg-cursor 2.x, index.js). */
interface SingleBatchInternals {
  submit(con: PortalConnection): void;
  handlePortalSuspended(): void;
  handleCommandComplete(msg: unknown): void;
  handleReadyForQuery(): void;
  handleError(msg: unknown): void;
  _portal: string;
  _rows: unknown[][] | null;
  state: string;
  connection: PortalConnection | null;
}

/**
 * Runs one statement through a server-side portal (pg-cursor: extended protocol
 * Parse/Bind/Execute with a row limit — the extended protocol accepts exactly one statement,
 * PostgreSQL docs §55.2.3) and reads up to `fetchRows` rows per round trip until `maxRows` + 1
 * rows or `maxBytes` of JSON are seen. When `maxRows` + 1 ≤ `fetchRows` (the steady state), the
 * one batch goes out with its Sync: one round trip in all, the portal left to the transaction's
 * end (see `singleBatch`).
 *
 * Memory is bounded by bytes as rows arrive, not per batch: each DataRow is converted and
 * measured the moment the driver parses it, and once the row or byte cap is reached every
 * further row of the batch is dropped unparsed (a batch of 100 rows of 15 MB each never sits in
 * memory; at most one backend message, ≤ `postgres.maxMessageBytes`, is held at a time). When the
 * byte cap is reached while the backend is still sending a batch, the connection is abandoned
 * ({@link abandonConnection}: the rest is never transferred, the connection is destroyed after
 * the call); column types then come from the process's cache of built-in type names
 * (`oid:<n>` for others). Later batches ask for no more rows than the bytes left can hold at
 * the largest row size seen.
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
  // Steady state (everything asked for fits one batch): one round trip for the whole statement.
  const single = limits.maxRows + 1 <= limits.fetchRows;
  const cursor = new Cursor(sql, [...params], { rowMode: 'array' });
  const rows: unknown[][] = [];
  let truncated = false;
  let bytes = 2;
  let largestRow = 0;
  /** DataRow messages received in the current batch (kept or dropped), and its size. */
  let received = 0;
  let want = single ? limits.maxRows + 1 : 0;
  let gaveUp = false;
  const internals = cursor as unknown as CursorInternals;
  internals.handleDataRow = (msg) => {
    received++;
    if (truncated) return; // dropped unparsed: the caps are reached
    if (rows.length >= limits.maxRows) {
      truncated = true;
      return;
    }
    // Converted in place: parseRow returns a fresh array per row (pg 8, result.js).
    const row = internals._result.parseRow(msg.fields);
    for (let i = 0; i < row.length; i++) row[i] = toJsonValue(row[i]);
    const size = Buffer.byteLength(JSON.stringify(row), 'utf8') + 1;
    if (size > largestRow) largestRow = size;
    if (bytes + size > limits.maxBytes) {
      truncated = true;
      if (received < want) {
        // More of this batch is on its way (up to maxMessageBytes per row): stop it now.
        gaveUp = true;
        abandonConnection(client);
      }
      return;
    }
    bytes += size;
    rows.push(row);
  };
  if (single) {
    const done = singleBatch(cursor, limits.maxRows + 1);
    client.query(cursor);
    try {
      await done;
    } catch (err) {
      if (!gaveUp) throw err;
    }
  } else {
    client.query(cursor);
    try {
      while (!truncated) {
        want = Math.min(limits.fetchRows, limits.maxRows + 1 - rows.length);
        if (largestRow > 0)
          want = Math.min(
            want,
            Math.max(1, Math.floor((limits.maxBytes - bytes) / largestRow) + 1),
          );
        received = 0;
        const ended = await new Promise<boolean>((resolve, reject) => {
          cursor.read(want, (err) => {
            if (err && !gaveUp) return reject(err);
            resolve(gaveUp);
          });
        });
        if (ended || received < want) break;
      }
    } finally {
      // Closing the portal first: the connection runs one query at a time, and a suspended
      // portal would block the type lookup below. A cursor in error has no portal left (and on a
      // dead socket close() would wait for a ReadyForQuery that never comes).
      if (!gaveUp && (cursor as unknown as { state?: string }).state !== 'error')
        await cursor.close();
    }
  }
  const f = internals._result.fields ?? [];
  // An abandoned connection cannot be asked: the cache of built-in type names only.
  const names = await typeNamesFor(client, gaveUp ? [] : f.map((x) => x.dataTypeID));
  const columns = f.map((x) => ({
    name: x.name,
    type: names.get(x.dataTypeID) ?? `oid:${x.dataTypeID}`,
  }));
  return { columns, rows, truncated };
}

/** Converts a driver value to a JSON-safe value. */
export function toJsonValue(value: unknown): unknown {
  // Most cells: text (and int8/numeric, which the driver returns as strings), numbers, booleans.
  const type = typeof value;
  if (type === 'string' || type === 'number' || type === 'boolean') return value;
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
