import { describe, expect, it } from 'vitest';
import type { AuditEntry } from './audit-record.js';
import { createRefusalAggregator } from './refusal-aggregator.js';
import { entry } from './test-support/fixtures.js';

const refusal = (reason = 'invalid_token'): AuditEntry =>
  entry(0, {
    principal: 'unauthenticated',
    tool: 'http:authenticate',
    access: 'none',
    arguments: { method: 'POST', path: '/mcp' },
    decision: { result: 'denied', reason },
    outcome: 'denied',
  });

describe('createRefusalAggregator', () => {
  it('writes the first refusal per peer and reason at once, then one record with the count', async () => {
    const written: AuditEntry[] = [];
    const agg = createRefusalAggregator({
      record: async (e) => written.push(e),
      intervalMs: 60_000,
    });
    for (let i = 0; i < 1000; i++) agg.add(refusal(), '203.0.113.7');
    agg.add(refusal(), '198.51.100.1');
    agg.add(refusal('expired'), '203.0.113.7');
    expect(written).toHaveLength(3);
    await agg.close();
    expect(written).toHaveLength(4);
    expect(written[3]?.arguments).toMatchObject({
      aggregated: true,
      peer: '203.0.113.7',
      count: 999,
      sample: { method: 'POST', path: '/mcp' },
    });
    expect(written.every((e) => e.decision.result === 'denied')).toBe(true);
  });

  it('bounds the keys: peers beyond maxKeys share the key "other"', async () => {
    const written: AuditEntry[] = [];
    const agg = createRefusalAggregator({ record: async (e) => written.push(e), maxKeys: 2 });
    for (let p = 0; p < 50; p++) agg.add(refusal(), `10.0.0.${p}`);
    await agg.close();
    const peers = written.map((e) => (e.arguments as { peer: string }).peer);
    expect(new Set(peers)).toEqual(new Set(['10.0.0.0', '10.0.0.1', 'other']));
    expect(written.length).toBeLessThanOrEqual(4);
  });
});
