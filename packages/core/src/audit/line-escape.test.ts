import { describe, expect, it } from 'vitest';
import { escapeAuditLine } from './line-escape.js';

describe('escapeAuditLine', () => {
  it('returns a pure-ASCII line without DEL unchanged', () => {
    const line = JSON.stringify({ a: 'plain ascii \t "quoted"', b: [1, 2] });
    expect(escapeAuditLine(line)).toBe(line);
  });

  it('escapes DEL even in an otherwise ASCII line (the fast path does not skip it)', () => {
    expect(escapeAuditLine('{"a":"x\u007fy"}')).toBe('{"a":"x\\u007fy"}');
  });

  it('escapes C1, bidi, zero-width and separators, keeps other non-ASCII text', () => {
    const line = JSON.stringify({ a: 'é\u0085\u202e\u200b\u2028\ufeff☃😀' });
    const out = escapeAuditLine(line);
    expect(out).toBe('{"a":"é\\u0085\\u202e\\u200b\\u2028\\ufeff☃😀"}');
    expect(JSON.parse(out)).toEqual(JSON.parse(line));
  });
});
