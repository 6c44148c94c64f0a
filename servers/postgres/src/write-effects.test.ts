import { describe, expect, it } from 'vitest';
import { type TableCounters, tableChanges } from './write-effects.js';

const counters = (entries: [string, string, string, number][]): TableCounters =>
  new Map(entries.map(([id, schema, table, rows]) => [id, { schema, table, rows }]));

describe('tableChanges', () => {
  it('is the difference of two readings: counts left over from earlier transactions cancel', () => {
    const before = counters([
      ['1', 'public', 'genre', 7],
      ['2', 'public', 'audit_log', 3],
    ]);
    const after = counters([
      ['1', 'public', 'genre', 8],
      ['2', 'public', 'audit_log', 3],
      ['3', 'public', 'child', 2],
    ]);
    expect(tableChanges(before, after)).toEqual([
      { schema: 'public', table: 'child', rows: 2 },
      { schema: 'public', table: 'genre', rows: 1 },
    ]);
  });

  it('sorts by schema, then table', () => {
    const after = counters([
      ['1', 'sales', 'a', 1],
      ['2', 'public', 'z', 1],
      ['3', 'public', 'b', 1],
    ]);
    expect(tableChanges(new Map(), after).map((c) => `${c.schema}.${c.table}`)).toEqual([
      'public.b',
      'public.z',
      'sales.a',
    ]);
  });

  it('reports nothing when nothing moved', () => {
    const same = counters([['1', 'public', 'genre', 4]]);
    expect(tableChanges(same, same)).toEqual([]);
  });
});
