import type { Server as McpServer } from '@modelcontextprotocol/sdk/server/index.js';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { HttpRefusal } from './http-refusal.js';
import { type Session, SessionTable } from './sessions.js';

const closable = { close: async () => undefined };
const session = (principal: string): Session => ({
  transport: closable as unknown as StreamableHTTPServerTransport,
  server: closable as unknown as McpServer,
  principal,
  lastSeen: Date.now(),
});

function refusal(fn: () => unknown): HttpRefusal {
  try {
    fn();
  } catch (err) {
    if (err instanceof HttpRefusal) return err;
    throw err;
  }
  throw new Error('no refusal');
}

describe('SessionTable caps', () => {
  it('one principal cannot take more than its share; others still get in', async () => {
    const sizes: number[] = [];
    const t = new SessionTable(
      { maxSessions: 5, maxSessionsPerPrincipal: 2, idleSeconds: 60 },
      (n) => sizes.push(n),
    );
    t.reserve('mallory').commit('m1', session('mallory'));
    t.reserve('mallory').commit('m2', session('mallory'));
    // Reservations count too: concurrent initializations cannot overshoot.
    expect(refusal(() => t.reserve('mallory'))).toMatchObject({
      status: 429,
      reason: 'too_many_sessions_for_principal',
    });
    t.reserve('alice').commit('a1', session('alice'));
    const pending = t.reserve('alice');
    t.reserve('bob').commit('b1', session('bob'));
    expect(refusal(() => t.reserve('carol'))).toMatchObject({
      status: 503,
      reason: 'too_many_sessions',
    });
    pending.release();
    t.reserve('carol').commit('c1', session('carol'));
    expect(t.size).toBe(5);
    // Ending a session gives the place back to its principal.
    t.delete('m1');
    t.reserve('mallory').commit('m3', session('mallory'));
    expect(sizes.at(-1)).toBe(5);
    await t.closeAll();
    expect(t.size).toBe(0);
  });

  it('a session answers only to its principal', async () => {
    const t = new SessionTable(
      { maxSessions: 5, maxSessionsPerPrincipal: 5, idleSeconds: 60 },
      () => undefined,
    );
    t.reserve('alice').commit('a1', session('alice'));
    expect(t.get('a1', 'alice')?.principal).toBe('alice');
    expect(t.get('a1', 'mallory')).toBeUndefined();
    expect(t.get('nope', 'alice')).toBeUndefined();
    expect(t.get(undefined, 'alice')).toBeUndefined();
    await t.closeAll();
  });

  it('idle sessions are swept and their places freed', async () => {
    const t = new SessionTable(
      { maxSessions: 5, maxSessionsPerPrincipal: 1, idleSeconds: 10 },
      () => undefined,
    );
    t.reserve('alice').commit('a1', session('alice'));
    t.sweep(Date.now() + 11_000);
    expect(t.size).toBe(0);
    t.reserve('alice').commit('a2', session('alice'));
    await t.closeAll();
  });
});
