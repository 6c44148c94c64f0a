import { describe, expect, it } from 'vitest';
import type { ListingTarget } from './keys.js';
import { decodeCursor, encodeCursor, outputBudget } from './tools.js';

const target: ListingTarget = {
  ok: true,
  bucket: { name: 'acme-reports', prefixes: ['reports/'] },
  prefix: 'reports/2024/',
};

describe('listing cursors', () => {
  it('round-trips a continuation token or a start-after key', () => {
    const t = { v: 1 as const, b: 'acme-reports', p: 'reports/2024/', t: 'opaque+token/==' };
    expect(decodeCursor(encodeCursor(t), target)).toEqual(t);
    const a = { v: 1 as const, b: 'acme-reports', p: 'reports/2024/', a: 'reports/2024/q3.txt' };
    expect(decodeCursor(encodeCursor(a), target)).toEqual(a);
  });

  it('refuses cursors of another listing, forged or malformed cursors', () => {
    const other = encodeCursor({ v: 1, b: 'acme-reports', p: 'reports/', t: 'x' });
    expect(decodeCursor(other, target)).toBeUndefined();
    const otherBucket = encodeCursor({ v: 1, b: 'acme-other', p: 'reports/2024/', t: 'x' });
    expect(decodeCursor(otherBucket, target)).toBeUndefined();
    for (const raw of [
      'not-a-cursor',
      Buffer.from('{"v":1,"b":"acme-reports","p":"reports/2024/"}').toString('base64url'),
      Buffer.from('{"v":1,"b":"acme-reports","p":"reports/2024/","t":"x","a":"y"}').toString(
        'base64url',
      ),
      Buffer.from('{"v":2,"b":"acme-reports","p":"reports/2024/","t":"x"}').toString('base64url'),
      Buffer.from('{"v":1,"b":"acme-reports","p":"reports/2024/","t":"x","extra":1}').toString(
        'base64url',
      ),
    ]) {
      expect(decodeCursor(raw, target)).toBeUndefined();
    }
  });
});

describe('outputBudget', () => {
  it('leaves room for redaction markers and the envelope', () => {
    expect(outputBudget({ maxRows: 500, maxBytes: 262_144 })).toBe(207_667);
    expect(outputBudget({ maxRows: 500, maxBytes: 1024 })).toBe(512);
  });
});
