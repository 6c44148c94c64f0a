import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_AUDIT_INTENT_CHARS } from './audit-record.js';
import { AUDIT_INTENT_META_KEY, auditIntentFromMeta, resultDigest } from './forensics.js';

const redact = (s: string) => s.replace(/[\w.]+@[\w.]+/g, '[REDACTED:email]');

describe('resultDigest', () => {
  it('is the SHA-256 of the JSON text the client received', () => {
    const result = { content: [{ type: 'text', text: 'héllo' }], isError: false };
    const wire = JSON.stringify(result);
    expect(resultDigest(result)).toBe(createHash('sha256').update(wire, 'utf8').digest('hex'));
    expect(resultDigest(JSON.parse(wire))).toBe(resultDigest(result));
    expect(resultDigest({ ...result, isError: true })).not.toBe(resultDigest(result));
  });

  it('throws for what cannot be sent as JSON', () => {
    expect(() => resultDigest(undefined)).toThrow(TypeError);
    expect(() => resultDigest({ n: 1n })).toThrow(TypeError);
  });
});

describe('auditIntentFromMeta', () => {
  it('reads the documented key, redacted', () => {
    expect(AUDIT_INTENT_META_KEY).toBe('io.hardened-mcp/intent');
    expect(
      auditIntentFromMeta({ [AUDIT_INTENT_META_KEY]: 'refund for bob@example.com' }, redact),
    ).toBe('refund for [REDACTED:email]');
  });

  it('ignores absent, empty and non-string values and non-object metas', () => {
    for (const meta of [undefined, null, 'x', 7, {}, { [AUDIT_INTENT_META_KEY]: 5 }]) {
      expect(auditIntentFromMeta(meta, redact)).toBeUndefined();
    }
    expect(auditIntentFromMeta({ [AUDIT_INTENT_META_KEY]: '   ' }, redact)).toBeUndefined();
  });

  it('caps the size without splitting a surrogate pair', () => {
    const long = '😀'.repeat(MAX_AUDIT_INTENT_CHARS);
    const out = auditIntentFromMeta({ [AUDIT_INTENT_META_KEY]: long }, redact) ?? '';
    expect(out.length).toBeLessThanOrEqual(MAX_AUDIT_INTENT_CHARS);
    expect(out.endsWith('…')).toBe(true);
    expect(out.isWellFormed()).toBe(true);
  });
});
