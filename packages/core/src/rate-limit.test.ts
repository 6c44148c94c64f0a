import { afterEach, describe, expect, it, vi } from 'vitest';
import { ALLOW, type Decision } from './errors.js';
import { createMemoryRateLimiter, type RateLimiter } from './rate-limit.js';

async function consumeN(
  limiter: RateLimiter,
  principal: string,
  tool: string,
  n: number,
): Promise<Decision[]> {
  const out: Decision[] = [];
  for (let i = 0; i < n; i++) out.push(await limiter.consume(principal, tool));
  return out;
}

function expectRateLimited(d: Decision | undefined, tool: string, windowMs: number): number {
  if (d === undefined || d.ok) throw new Error(`expected a refusal, got ${JSON.stringify(d)}`);
  expect(d.code).toBe('rate_limited');
  expect(d.message).toMatch(new RegExp(`^rate limit exceeded for ${tool}; retry in \\d+ s$`));
  const ms = d.retryAfterMs ?? -1;
  expect(Number.isInteger(ms)).toBe(true);
  expect(ms).toBeGreaterThanOrEqual(1);
  expect(ms).toBeLessThanOrEqual(windowMs);
  expect(d.message).toContain(`retry in ${Math.ceil(ms / 1000)} s`);
  return ms;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('createMemoryRateLimiter', () => {
  it('allows `points` calls per (principal, tool), then refuses', async () => {
    const limiter = createMemoryRateLimiter({ points: 3, durationSeconds: 60 });
    const decisions = await consumeN(limiter, 'alice', 'pg_run_query', 5);
    expect(decisions.slice(0, 3)).toEqual([ALLOW, ALLOW, ALLOW]);
    expect(decisions[0]).toBe(ALLOW);
    expectRateLimited(decisions[3], 'pg_run_query', 60_000);
    expectRateLimited(decisions[4], 'pg_run_query', 60_000);
  });

  it('keeps separate budgets for different principals', async () => {
    const limiter = createMemoryRateLimiter({ points: 2, durationSeconds: 60 });
    await consumeN(limiter, 'alice', 'pg_run_query', 2);
    expect((await limiter.consume('alice', 'pg_run_query')).ok).toBe(false);
    expect(await consumeN(limiter, 'bob', 'pg_run_query', 2)).toEqual([ALLOW, ALLOW]);
    expect((await limiter.consume('bob', 'pg_run_query')).ok).toBe(false);
  });

  it('keeps separate budgets for different tools', async () => {
    const limiter = createMemoryRateLimiter({ points: 1, durationSeconds: 60 });
    expect(await limiter.consume('alice', 'pg_run_query')).toBe(ALLOW);
    expect((await limiter.consume('alice', 'pg_run_query')).ok).toBe(false);
    expect(await limiter.consume('alice', 'pg_list_tables')).toBe(ALLOW);
    expect((await limiter.consume('alice', 'pg_list_tables')).ok).toBe(false);
  });

  it('cannot be confused by separators in principal or tool names', async () => {
    const limiter = createMemoryRateLimiter({ points: 1, durationSeconds: 60 });
    expect(await limiter.consume('a|b', 'c')).toBe(ALLOW);
    expect(await limiter.consume('a', 'b|c')).toBe(ALLOW);
    expect(await limiter.consume('3:a', 'b')).toBe(ALLOW);
    expect(await limiter.consume('', '3:a|b')).toBe(ALLOW);
    expect((await limiter.consume('a|b', 'c')).ok).toBe(false);
  });

  it('applies a per-tool rule instead of the default', async () => {
    const limiter = createMemoryRateLimiter(
      { points: 5, durationSeconds: 60 },
      { pg_update_row: { points: 1, durationSeconds: 10 }, pg_list_tables: undefined },
    );
    expect(await limiter.consume('alice', 'pg_update_row')).toBe(ALLOW);
    expectRateLimited(await limiter.consume('alice', 'pg_update_row'), 'pg_update_row', 10_000);
    // Other tools (and an `undefined` rule) use the default.
    expect(await consumeN(limiter, 'alice', 'pg_run_query', 5)).toEqual(Array(5).fill(ALLOW));
    expect((await limiter.consume('alice', 'pg_run_query')).ok).toBe(false);
    expect(await consumeN(limiter, 'alice', 'pg_list_tables', 5)).toEqual(Array(5).fill(ALLOW));
    expect((await limiter.consume('alice', 'pg_list_tables')).ok).toBe(false);
  });

  it('a per-tool rule can be more generous than the default', async () => {
    const limiter = createMemoryRateLimiter(
      { points: 1, durationSeconds: 60 },
      { pg_run_query: { points: 4, durationSeconds: 60 } },
    );
    expect(await consumeN(limiter, 'alice', 'pg_run_query', 4)).toEqual(Array(4).fill(ALLOW));
    expect((await limiter.consume('alice', 'pg_run_query')).ok).toBe(false);
  });

  it('separate limiter instances do not share budgets', async () => {
    const a = createMemoryRateLimiter({ points: 1, durationSeconds: 60 });
    const b = createMemoryRateLimiter({ points: 1, durationSeconds: 60 });
    expect(await a.consume('alice', 'pg_run_query')).toBe(ALLOW);
    expect(await b.consume('alice', 'pg_run_query')).toBe(ALLOW);
  });

  it('reports how long until the window resets, and allows again after it', async () => {
    vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00Z') });
    const limiter = createMemoryRateLimiter({ points: 2, durationSeconds: 60 });
    await consumeN(limiter, 'alice', 'pg_run_query', 2);
    const first = expectRateLimited(
      await limiter.consume('alice', 'pg_run_query'),
      'pg_run_query',
      60_000,
    );
    expect(first).toBeGreaterThan(59_000);

    vi.advanceTimersByTime(45_000);
    const later = expectRateLimited(
      await limiter.consume('alice', 'pg_run_query'),
      'pg_run_query',
      60_000,
    );
    expect(later).toBeLessThanOrEqual(15_000);
    expect(later).toBeGreaterThan(14_000);

    vi.advanceTimersByTime(15_001);
    expect(await consumeN(limiter, 'alice', 'pg_run_query', 2)).toEqual([ALLOW, ALLOW]);
    expect((await limiter.consume('alice', 'pg_run_query')).ok).toBe(false);
  });
});
