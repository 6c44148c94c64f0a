import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from './retry-after.js';

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 5 ', now)).toBe(5_000);
  });

  it('reads an HTTP-date in the three forms of RFC 9110 §5.6.7', () => {
    expect(parseRetryAfter('Mon, 07 Dec 2026 12:01:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Monday, 07-Dec-26 12:01:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Mon Dec  7 12:01:30 2026', now)).toBe(90_000);
  });

  it('gives 0 for a date in the past', () => {
    expect(parseRetryAfter('Mon, 07 Dec 2026 11:00:00 GMT', now)).toBe(0);
  });

  it('gives undefined for anything else', () => {
    for (const v of [
      null,
      undefined,
      '',
      '-1',
      '1.5',
      'soon',
      '2026-12-07T12:01:30Z',
      '1e3',
      '99999999999999999999',
    ])
      expect(parseRetryAfter(v, now), String(v)).toBeUndefined();
  });
});
