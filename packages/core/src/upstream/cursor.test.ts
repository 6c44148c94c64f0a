import { describe, expect, it } from 'vitest';
import { Secret } from '../credentials.js';
import { StartupError } from '../errors.js';
import { type CursorBinding, CursorSealer } from './cursor.js';

const binding: CursorBinding = {
  tool: 's3_list_objects',
  principal: 'ana',
  resource: ['acme-reports', 'reports/2024/'],
};
const state = { a: 'reports/2024/ana.lopez@example.com.csv' };

describe('CursorSealer', () => {
  it('round-trips the state for the same tool, resource and principal', () => {
    const sealer = new CursorSealer();
    const cursor = sealer.seal(binding, state);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(sealer.open(cursor, binding)).toEqual({ ok: true, state });
  });

  it('carries no readable upstream data (the e-mail in a key does not come back when decoded)', () => {
    const cursor = new CursorSealer().seal(binding, state);
    for (const decoded of [
      Buffer.from(cursor, 'base64url').toString('utf8'),
      Buffer.from(cursor, 'base64url').toString('latin1'),
      Buffer.from(cursor, 'base64').toString('utf8'),
      cursor,
    ]) {
      expect(decoded).not.toContain('example.com');
      expect(decoded).not.toContain('ana.lopez');
      expect(decoded).not.toContain('reports');
    }
  });

  it('refuses a cursor for another tool, resource or principal', () => {
    const sealer = new CursorSealer();
    const cursor = sealer.seal(binding, state);
    for (const other of [
      { ...binding, tool: 's3_get_object' },
      { ...binding, principal: 'bob' },
      { ...binding, resource: ['acme-reports', 'reports/'] },
      { ...binding, resource: ['acme-other', 'reports/2024/'] },
      // The encoding is unambiguous: moving a character between parts changes the binding.
      { ...binding, resource: ['acme-reportsr', 'eports/2024/'] },
      { ...binding, resource: 'acme-reportsreports/2024/' },
    ]) {
      expect(sealer.open(cursor, other)).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('refuses a cursor of another key (another process) and tampered or malformed cursors', () => {
    const sealer = new CursorSealer();
    const cursor = sealer.seal(binding, state);
    expect(new CursorSealer().open(cursor, binding)).toEqual({ ok: false, reason: 'invalid' });
    const bytes = Buffer.from(cursor, 'base64url');
    for (let i = 0; i < bytes.length; i += 7) {
      const flipped = Buffer.from(bytes);
      flipped[i] = (flipped[i] ?? 0) ^ 0x01;
      expect(sealer.open(flipped.toString('base64url'), binding).ok).toBe(false);
    }
    for (const raw of [
      '',
      'not a cursor!',
      'AAAA',
      cursor.slice(0, -4),
      `${cursor}AAAA`,
      Buffer.from(JSON.stringify(state)).toString('base64url'),
      'A'.repeat(20_000),
    ]) {
      expect(sealer.open(raw, binding)).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('refuses an expired cursor with its own reason', () => {
    let now = 1_000_000;
    const sealer = new CursorSealer({ ttlMs: 60_000, now: () => now });
    const cursor = sealer.seal(binding, state);
    now += 60_000;
    expect(sealer.open(cursor, binding).ok).toBe(true);
    now += 1;
    expect(sealer.open(cursor, binding)).toEqual({ ok: false, reason: 'expired' });
  });

  it('derives its key from a configured secret, so cursors survive a restart and work across replicas', () => {
    const secret = new Secret(`${'k'.repeat(16)}Zq8s1fP0x9Lr2mVw`, 'env HMCP_CURSOR_KEY');
    const cursor = CursorSealer.from(secret).seal(binding, state);
    expect(CursorSealer.from(secret).open(cursor, binding)).toEqual({ ok: true, state });
    expect(
      CursorSealer.from(new Secret('x'.repeat(32), 'env OTHER')).open(cursor, binding).ok,
    ).toBe(false);
    expect(CursorSealer.from(undefined).open(cursor, binding).ok).toBe(false);
  });

  it('refuses a short configured secret and a non-positive ttl at startup', () => {
    expect(() => new CursorSealer({ secret: new Secret('short', 'env K') })).toThrow(StartupError);
    expect(() => new CursorSealer({ ttlMs: 0 })).toThrow(StartupError);
  });

  it('gives two different cursors for the same state (random IV)', () => {
    const sealer = new CursorSealer();
    expect(sealer.seal(binding, state)).not.toBe(sealer.seal(binding, state));
  });
});
