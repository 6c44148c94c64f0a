/**
 * Streaming search and export of audit files (incident response, GDPR access requests): one
 * line in memory at a time, whatever the file size.
 *
 * @module
 */
import { open } from 'node:fs/promises';
import type { AuditRecord } from './audit-record.js';
import { escapeAuditLine } from './line-escape.js';

/** Which records to keep; every given field must match (AND). */
export interface AuditFilter {
  /** Exact principal id. */
  readonly principal?: string | undefined;
  /** Exact tool name. */
  readonly tool?: string | undefined;
  /** `allowed` or `denied` (`decision.result`). */
  readonly decision?: 'allowed' | 'denied' | undefined;
  /** Records stamped at or after this instant (ms since the epoch). */
  readonly sinceMs?: number | undefined;
  /** Records stamped before this instant (ms since the epoch; exclusive). */
  readonly untilMs?: number | undefined;
  /** Exact MCP session id (`session.mcpSessionId`). */
  readonly session?: string | undefined;
}

/** Output format of {@link exportAuditRecords}. */
export type AuditExportFormat = 'jsonl' | 'csv';

/** Columns of the CSV export, in order (nested fields flattened; `arguments` as JSON). */
export const AUDIT_CSV_COLUMNS = [
  'time',
  'seq',
  'auditId',
  'principal',
  'roles',
  'tool',
  'access',
  'decision',
  'reason',
  'approval',
  'outcome',
  'errorClass',
  'rows',
  'bytes',
  'truncated',
  'durationMs',
  'transport',
  'clientName',
  'clientVersion',
  'mcpSessionId',
  'requestId',
  'intent',
  'resultSha256',
  'correlationId',
  'arguments',
  'hash',
] as const;

/** True when `record` passes `filter`. */
export function matchesAuditFilter(record: AuditRecord, filter: AuditFilter): boolean {
  if (filter.principal !== undefined && record.principal !== filter.principal) return false;
  if (filter.tool !== undefined && record.tool !== filter.tool) return false;
  if (filter.decision !== undefined && record.decision?.result !== filter.decision) return false;
  if (filter.session !== undefined && record.session?.mcpSessionId !== filter.session) {
    return false;
  }
  if (filter.sinceMs !== undefined || filter.untilMs !== undefined) {
    const at = Date.parse(record.time);
    if (Number.isNaN(at)) return false;
    if (filter.sinceMs !== undefined && at < filter.sinceMs) return false;
    if (filter.untilMs !== undefined && at >= filter.untilMs) return false;
  }
  return true;
}

/** Counts of {@link exportAuditRecords}. */
export interface AuditExportSummary {
  /** Lines read (non-empty). */
  readonly scanned: number;
  /** Records written out. */
  readonly matched: number;
  /** Lines that were not JSON objects (skipped; run `verify` to see why). */
  readonly unparseable: number;
}

/** Where output goes: a `write` that may return false for backpressure, and `once('drain')`. */
export interface AuditOutput {
  write(text: string): unknown;
  once?(event: 'drain', listener: () => void): unknown;
}

/** Bytes read from the file per `read` into one reused buffer (1 MiB). */
const READ_CHUNK_BYTES = 1 << 20;

/** Output is handed to `out.write` in pieces of about this many characters (64 Ki). */
const WRITE_BATCH_CHARS = 1 << 16;

/**
 * Streams the audit file at `path`, writing the records that match `filter` to `out` as JSON
 * Lines (each line exactly as in the file, so its hash still verifies) or CSV (RFC 4180 via
 * `csv-stringify`, header row first, columns {@link AUDIT_CSV_COLUMNS}).
 *
 * Memory is bounded and independent of the file size: the file is read with `FileHandle.read`
 * into one reused 1 MiB buffer and split at `\n` (a trailing `\r` is dropped) in a synchronous
 * loop, so each line's strings die young (a stream plus `readline` queued chunks and lines across
 * awaits, and the process's peak RSS grew with the file: 171 MB on 256 MB against 135 MB on
 * 64 MB). A line longer than the buffer is joined from its pieces (memory then grows with the
 * longest line, not the file). Output is written in batches of about 64 Ki characters and
 * honours backpressure (`write` returning false waits for `drain`). Measured peak RSS and the
 * test that holds it: `audit-cli.search.test.ts`.
 *
 * @throws Rejects with the `fs` error if the file cannot be opened or read.
 */
export async function exportAuditRecords(
  path: string,
  filter: AuditFilter,
  format: AuditExportFormat,
  out: AuditOutput,
): Promise<AuditExportSummary> {
  // Loaded here, by the audit CLI's export only: servers never load the CSV writer at startup.
  const { stringify } = await import('csv-stringify/sync');
  const file = await open(path, 'r');
  let pending: string[] = [];
  let pendingChars = 0;
  const flush = async () => {
    if (rows.length > 0) {
      pending.push(stringify(rows));
      rows = [];
    }
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    pendingChars = 0;
    if (out.write(text) === false && out.once) {
      await new Promise<void>((resolve) => out.once?.('drain', resolve));
    }
  };
  /** CSV rows not yet stringified: one `stringify` call per batch, not per row. */
  let rows: unknown[][] = [];
  const emit = (text: string) => {
    pending.push(text);
    pendingChars += text.length;
  };
  let scanned = 0;
  let matched = 0;
  let unparseable = 0;
  const onLine = (line: string) => {
    if (line.trim() === '') return;
    scanned += 1;
    let record: AuditRecord;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new TypeError('not an object');
      }
      record = parsed as AuditRecord;
    } catch {
      unparseable += 1;
      return;
    }
    if (!matchesAuditFilter(record, filter)) return;
    matched += 1;
    if (format === 'jsonl') emit(`${line}\n`);
    else {
      rows.push(csvRow(record));
      pendingChars += line.length;
    }
  };
  if (format === 'csv') emit(stringify([[...AUDIT_CSV_COLUMNS]]));
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    /** Pieces of a line that started in an earlier chunk (copies: `buf` is reused). */
    let carry: Buffer[] = [];
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      let start = 0;
      for (
        let nl = buf.indexOf(10, start);
        nl !== -1 && nl < bytesRead;
        nl = buf.indexOf(10, start)
      ) {
        let line: string;
        if (carry.length > 0) {
          carry.push(buf.subarray(start, nl));
          line = Buffer.concat(carry).toString('utf8');
          carry = [];
        } else {
          line = buf.toString('utf8', start, nl);
        }
        onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
        start = nl + 1;
        if (pendingChars >= WRITE_BATCH_CHARS) await flush();
      }
      if (start < bytesRead) carry.push(Buffer.from(buf.subarray(start, bytesRead)));
    }
    if (carry.length > 0) {
      const line = Buffer.concat(carry).toString('utf8');
      onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    await flush();
  } finally {
    await file.close();
  }
  return { scanned, matched, unparseable };
}

function csvRow(r: AuditRecord): unknown[] {
  const opt = (v: unknown) => (v === undefined || v === null ? '' : v);
  return [
    r.time,
    r.seq,
    r.auditId,
    r.principal,
    Array.isArray(r.roles) ? r.roles.join(' ') : '',
    r.tool,
    r.access,
    opt(r.decision?.result),
    opt(r.decision?.reason),
    opt(r.decision?.approval),
    r.outcome,
    opt(r.errorClass),
    opt(r.rows),
    opt(r.bytes),
    opt(r.truncated),
    r.durationMs,
    r.transport,
    opt(r.client?.name),
    opt(r.client?.version),
    opt(r.session?.mcpSessionId),
    opt(r.session?.requestId),
    opt(r.session?.intent),
    opt(r.resultSha256),
    r.correlationId,
    r.arguments === undefined ? '' : escapeAuditLine(JSON.stringify(r.arguments)),
    r.hash,
  ].map((v) => (typeof v === 'string' ? neutralizeFormula(v) : v));
}

/**
 * Cells starting with `=`, `+`, `-`, `@`, tab or CR are prefixed with `'` so a spreadsheet does
 * not evaluate them (OWASP "CSV Injection"). Negative numbers are numbers, not strings, here.
 */
function neutralizeFormula(cell: string): string {
  return /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
}
