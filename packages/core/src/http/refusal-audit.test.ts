import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { type AuditEntry, auditEntrySchema } from '../audit/index.js';
import { ErrorCode } from '../errors.js';
import { createLogger } from '../logger.js';
import type { EdgeRefusal } from '../pipeline.js';
import { createPipeline } from '../pipeline.js';
import { createMemoryRateLimiter } from '../rate-limit.js';
import { createRedactor } from '../redaction/index.js';
import { toolKit } from '../tool.js';
import { AUTHENTICATE_TOOL, createRefusalAggregator } from './refusal-audit.js';

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

afterEach(() => {
  vi.useRealTimers();
});

function pipelineWith(entries: AuditEntry[], observed: AuditEntry[]) {
  const write = toolKit<string>('test').write({
    name: 'insert_rows',
    title: 'Insert rows',
    description: 'Inserts rows.',
    output: 'json',
    input: z.strictObject({ note: z.string() }),
    describeChange: () => 'Insert rows.',
    execute: async () => ({ kind: 'json', data: {} }),
  });
  return createPipeline<string>({
    server: { name: 'test-server', version: '1.0.0' },
    dataSource: 'the test store',
    tools: [write],
    mode: 'read-write',
    roles: {},
    clients: { read: 'R', write: 'W' },
    limits: { maxRows: 10, maxBytes: 10_000 },
    redactor: createRedactor(),
    audit: { record: (e) => entries.push(e) },
    rateLimiter: createMemoryRateLimiter({ points: 100, durationSeconds: 60 }),
    logger: createLogger('silent', createRedactor(), sink()),
    observer: (e) => observed.push(e),
  });
}

describe('Pipeline.recordRefusal: the edge records through the pipeline', () => {
  it('an authentication refusal: principal unauthenticated, pseudo-tool, schema-valid entry, observed', () => {
    const entries: AuditEntry[] = [];
    const observed: AuditEntry[] = [];
    const ok = pipelineWith(entries, observed).recordRefusal({
      tool: AUTHENTICATE_TOOL,
      code: 'unauthenticated',
      reason: 'invalid_token',
      arguments: { peer: '192.0.2.7', count: 1, intervalMs: 60_000 },
    });
    expect(ok).toBe(true);
    expect(entries).toHaveLength(1);
    expect(observed).toEqual(entries);
    expect(auditEntrySchema.safeParse(entries[0]).success).toBe(true);
    expect(entries[0]).toMatchObject({
      server: { name: 'test-server', version: '1.0.0' },
      principal: 'unauthenticated',
      roles: [],
      transport: 'http',
      tool: 'http:authenticate',
      access: 'none',
      arguments: { peer: '192.0.2.7', count: 1 },
      decision: { result: 'denied', reason: 'invalid_token' },
      outcome: 'denied',
      errorClass: 'unauthenticated',
    });
  });

  it('a scope refusal of a known tool: its access, and arguments redacted like a call', () => {
    const entries: AuditEntry[] = [];
    pipelineWith(entries, []).recordRefusal({
      identity: {
        principal: 'bob',
        roles: ['reader'],
        scopes: ['test:read'],
        transport: 'http',
        client: { name: 'c', version: '1' },
      },
      tool: 'test_insert_rows',
      code: ErrorCode.Forbidden,
      arguments: { note: 'mail jane.doe@example.com' },
    });
    expect(entries[0]).toMatchObject({
      principal: 'bob',
      roles: ['reader'],
      tool: 'test_insert_rows',
      access: 'write',
      decision: { result: 'denied', reason: 'forbidden' },
      errorClass: 'forbidden',
    });
    expect(JSON.stringify(entries[0]?.arguments)).not.toContain('jane.doe@example.com');
  });

  it('a recorder that throws: false, nothing escapes', () => {
    const p = createPipeline<string>({
      ...({} as object),
      server: { name: 's', version: '1' },
      dataSource: 'x',
      tools: [],
      mode: 'read-only',
      roles: {},
      clients: { read: 'R' },
      limits: { maxRows: 1, maxBytes: 100 },
      redactor: createRedactor(),
      audit: {
        record: () => {
          throw new Error('disk full');
        },
      },
      rateLimiter: createMemoryRateLimiter({ points: 1, durationSeconds: 1 }),
      logger: createLogger('silent', createRedactor(), sink()),
    });
    expect(p.recordRefusal({ tool: AUTHENTICATE_TOOL, code: 'unauthenticated' })).toBe(false);
  });
});

describe('createRefusalAggregator: one record per peer, reason and interval', () => {
  function aggregator(maxPeers = 100) {
    vi.useFakeTimers();
    const records: EdgeRefusal[] = [];
    const agg = createRefusalAggregator({
      intervalMs: 10_000,
      maxPeers,
      record: (r) => records.push(r),
    });
    const counts = () =>
      records.map((r) => ({
        reason: r.reason,
        ...(r.arguments as { peer: string; count: number }),
      }));
    return { agg, records, counts };
  }

  it('a flood of 10,000 refusals from one peer → the first at once, the rest as one count', () => {
    const { agg, records, counts } = aggregator();
    for (let i = 0; i < 10_000; i++) agg.refuse('198.51.100.1', 'invalid_token');
    expect(counts()).toEqual([
      { reason: 'invalid_token', peer: '198.51.100.1', count: 1, intervalMs: 10_000 },
    ]);
    vi.advanceTimersByTime(10_000);
    expect(records).toHaveLength(2);
    expect(counts()[1]).toMatchObject({ peer: '198.51.100.1', count: 9_999 });
    // A quiet interval writes nothing; the next refusal is recorded at once again.
    vi.advanceTimersByTime(10_000);
    expect(records).toHaveLength(2);
    agg.refuse('198.51.100.1', 'invalid_token');
    expect(counts()[2]).toMatchObject({ count: 1 });
    agg.close();
  });

  it('peers and reasons are kept apart', () => {
    const { agg, counts } = aggregator();
    agg.refuse('198.51.100.1', 'unauthenticated');
    agg.refuse('198.51.100.2', 'unauthenticated');
    agg.refuse('198.51.100.1', 'invalid_request');
    agg.refuse('198.51.100.1', 'invalid_request');
    agg.close();
    expect(counts()).toEqual([
      { reason: 'unauthenticated', peer: '198.51.100.1', count: 1, intervalMs: 10_000 },
      { reason: 'unauthenticated', peer: '198.51.100.2', count: 1, intervalMs: 10_000 },
      { reason: 'invalid_request', peer: '198.51.100.1', count: 1, intervalMs: 10_000 },
      { reason: 'invalid_request', peer: '198.51.100.1', count: 1, intervalMs: 10_000 },
    ]);
  });

  it('memory is bounded: past maxPeers, new peers share the `*` key; every refusal is counted', () => {
    const { agg, records, counts } = aggregator(50);
    for (let i = 0; i < 5_000; i++) agg.refuse(`10.0.${i >> 8}.${i & 255}`, 'unauthenticated');
    expect(records).toHaveLength(50);
    vi.advanceTimersByTime(10_000);
    const star = counts().filter((c) => c.peer === '*');
    expect(star).toEqual([
      { reason: 'unauthenticated', peer: '*', count: 4_950, intervalMs: 10_000 },
    ]);
    expect(counts().reduce((n, c) => n + c.count, 0)).toBe(5_000);
    agg.close();
  });
});
