import { describe, expect, it } from 'vitest';
import { interleaver, median, roundOrder } from './stats.ts';

describe('bench statistics', () => {
  it('rotates the order of the sides each round, so no side always runs first', async () => {
    expect([0, 1, 2, 3].map((r) => roundOrder(r, 2))).toEqual([
      [0, 1],
      [1, 0],
      [0, 1],
      [1, 0],
    ]);
    expect(roundOrder(1, 3)).toEqual([1, 2, 0]);
    const ran: string[] = [];
    const side = (name: string, value: number) => async () => {
      ran.push(name);
      return value;
    };
    const out = await interleaver(3)([side('a', 1), side('b', 2)]);
    expect(ran).toEqual(['a', 'b', 'b', 'a', 'a', 'b']);
    expect(out).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
  });

  it('takes the median of an odd and an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(Number.isNaN(median([]))).toBe(true);
  });
});
