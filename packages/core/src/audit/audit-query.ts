/**
 * Streaming search and export of audit files (incident response, GDPR access requests): one
 * line in memory at a time, whatever the file size.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { stringify } from 'csv-stringify/sync';
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

/**
 * Streams the audit file at `path`, writing the records that match `filter` to `out` as JSON
 * Lines (each line exactly as in the file, so its hash still verifies) or CSV (RFC 4180 via
 * `csv-stringify`, header row first, columns {@link AUDIT_CSV_COLUMNS}). Memory is bounded by the
 * longest line; output honours backpressure (`write` returning false waits for `drain`).
 *
 * @throws Rejects with the `fs` error if the file cannot be read.
 */
export async function exportAuditRecords(
  path: string,
  filter: AuditFilter,
  format: AuditExportFormat,
  out: AuditOutput,
): Promise<AuditExportSummary> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  await opened;
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  const emit = async (text: string) => {
    if (out.write(text) === false && out.once) {
      await new Promise<void>((resolve) => out.once?.('drain', resolve));
    }
  };
  let scanned = 0;
  let matched = 0;
  let unparseable = 0;
  if (format === 'csv') await emit(stringify([[...AUDIT_CSV_COLUMNS]]));
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
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
        continue;
      }
      if (!matchesAuditFilter(record, filter)) continue;
      matched += 1;
      await emit(format === 'jsonl' ? `${line}\n` : stringify([csvRow(record)]));
    }
  } finally {
    lines.close();
    input.destroy();
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
