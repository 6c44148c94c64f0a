/** Test helpers for the audit trail (excluded from the build). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { AuditEntry, AuditRecord } from '../audit-record.js';
import { canonicalJson, computeRecordHash } from '../hash-chain.js';
import type { AuditSink } from '../sinks.js';

/** A realistic entry; `i` varies the content so every record differs. */
export function entry(i = 0, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    server: { name: 'hardened-mcp-postgres', version: '0.1.0' },
    principal: `user-${i}`,
    roles: ['analyst'],
    client: { name: 'test-client', version: '1.0.0' },
    transport: 'stdio',
    tool: 'query',
    access: 'read',
    arguments: { sql: `select ${i}`, limit: 10 },
    decision: { result: 'allowed', approval: 'not_required' },
    outcome: 'success',
    durationMs: 1.5 + i,
    rows: i,
    bytes: 100 + i,
    truncated: false,
    redactions: { email: i % 2 },
    correlationId: `corr-${i}`,
    ...overrides,
  };
}

/** A sink that keeps lines in memory, optionally slow (random delay per write). */
export function memorySink(options: { maxDelayMs?: number } = {}): AuditSink & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    async write(line: string) {
      const max = options.maxDelayMs ?? 0;
      if (max > 0) await new Promise((r) => setTimeout(r, Math.random() * max));
      lines.push(line);
    },
  };
}

/** A PassThrough that collects everything written to it. */
export function captureStream(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** Returns a copy of `record` with `hash` recomputed over its content (a forger's re-signing). */
export function resign(record: Record<string, unknown>): Record<string, unknown> {
  const copy = { ...record };
  delete copy.hash;
  return { ...copy, hash: computeRecordHash(copy) };
}

/** Parses a line into a mutable record object. */
export function parse(line: string): Record<string, unknown> & AuditRecord {
  return JSON.parse(line) as Record<string, unknown> & AuditRecord;
}

/** Serializes a record object back to a line. */
export function line(record: object): string {
  return canonicalJson(record);
}

/** Creates a temp directory; call the returned cleanup in afterEach. */
export async function tempDir(): Promise<{
  dir: string;
  file: (name: string) => string;
  cleanup: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'hmcp-audit-'));
  return {
    dir,
    file: (name) => join(dir, name),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
