import { CursorSealer } from '@hardened-mcp/core';
import { describe, expect, it } from 'vitest';
import type { ListingTarget } from './keys.js';
import { decodeCursor, encodeCursor, outputBudget } from './tools.js';

const target: ListingTarget = {
  ok: true,
  bucket: { name: 'acme-reports', prefixes: ['reports/'] },
  prefix: 'reports/2024/',
};

describe('listing cursors', () => {
  const sealer = new CursorSealer();

  it('round-trips a continuation token or a start-after key for the same principal', () => {
    const t = { v: 1 as const, b: 'acme-reports', p: 'reports/2024/', t: 'opaque+token/==' };
    expect(decodeCursor(sealer, encodeCursor(sealer, t, 'ana'), target, 'ana')).toEqual(t);
    const a = { v: 1 as const, b: 'acme-reports', p: 'reports/2024/', a: 'reports/2024/q3.txt' };
    expect(decodeCursor(sealer, encodeCursor(sealer, a, 'ana'), target, 'ana')).toEqual(a);
  });

  it('does not give back a key the redactor hid (an e-mail in a start-after key)', () => {
    const key = 'reports/2024/ana.lopez@example.com.csv';
    const raw = encodeCursor(
      sealer,
      { v: 1, b: 'acme-reports', p: 'reports/2024/', a: key },
      'ana',
    );
    for (const decoded of [
      raw,
      Buffer.from(raw, 'base64url').toString('utf8'),
      Buffer.from(raw, 'base64url').toString('latin1'),
    ]) {
      expect(decoded).not.toContain('@example.com');
      expect(decoded).not.toContain('ana.lopez');
    }
    expect(decodeCursor(sealer, raw, target, 'ana')?.a).toBe(key);
  });

  it('refuses cursors of another listing, principal or process, forged or malformed cursors', () => {
    const other = encodeCursor(sealer, { v: 1, b: 'acme-reports', p: 'reports/', t: 'x' }, 'ana');
    expect(decodeCursor(sealer, other, target, 'ana')).toBeUndefined();
    const otherBucket = encodeCursor(
      sealer,
      { v: 1, b: 'acme-other', p: 'reports/2024/', t: 'x' },
      'ana',
    );
    expect(decodeCursor(sealer, otherBucket, target, 'ana')).toBeUndefined();
    const mine = encodeCursor(
      sealer,
      { v: 1, b: 'acme-reports', p: 'reports/2024/', t: 'x' },
      'ana',
    );
    expect(decodeCursor(sealer, mine, target, 'bob')).toBeUndefined();
    expect(decodeCursor(new CursorSealer(), mine, target, 'ana')).toBeUndefined();
    // A sealed state of the wrong shape is refused too.
    const binding = {
      tool: 's3_list_objects',
      principal: 'ana',
      resource: ['acme-reports', 'reports/2024/'],
    };
    for (const state of [
      { v: 1, b: 'acme-reports', p: 'reports/2024/' },
      { v: 1, b: 'acme-reports', p: 'reports/2024/', t: 'x', a: 'y' },
      { v: 2, b: 'acme-reports', p: 'reports/2024/', t: 'x' },
      { v: 1, b: 'acme-reports', p: 'reports/2024/', t: 'x', extra: 1 },
    ]) {
      expect(decodeCursor(sealer, sealer.seal(binding, state), target, 'ana')).toBeUndefined();
    }
    for (const raw of [
      'not-a-cursor',
      // The old, unsealed format is no longer accepted.
      Buffer.from('{"v":1,"b":"acme-reports","p":"reports/2024/","t":"x"}').toString('base64url'),
    ]) {
      expect(decodeCursor(sealer, raw, target, 'ana')).toBeUndefined();
    }
  });
});

describe('outputBudget', () => {
  it('leaves room for redaction markers and the envelope', () => {
    expect(outputBudget({ maxRows: 500, maxBytes: 262_144 })).toBe(207_667);
    expect(outputBudget({ maxRows: 500, maxBytes: 1024 })).toBe(512);
  });
});
