/**
 * Memory stays flat on huge results: `SELECT *` over several million rows returns at most the
 * cap with `truncated: true`, and the server's peak RSS (VmHWM) stays far below the table size.
 * The figures are printed; nothing here asserts wall-clock time.
 */

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startPostgresServer } from '../support/server.ts';

const ROWS = Number(process.env.HMCP_BIG_ROWS ?? 3_000_000);
let server: TestPostgres;
let db: ChinookDatabase;

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server, { bigTableRows: ROWS });
}, 600_000);
afterAll(async () => {
  await db?.drop();
  await server?.stop();
});

/** Child pids of a process (Linux /proc; the server forks its SQL guard). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Peak and current resident set size of a process, in MiB (Linux /proc). */
function rssMiB(pid: number): { peak: number; current: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(
      /(\d+) kB/.exec(status.split('\n').find((l) => l.startsWith(field)) ?? '')?.[1] ?? Number.NaN,
    );
  return { peak: kb('VmHWM:') / 1024, current: kb('VmRSS:') / 1024 };
}

it.runIf(process.platform === 'linux')(
  `SELECT * over ${ROWS.toLocaleString('en')} rows returns the cap, truncated, with flat memory`,
  async () => {
    const s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: {
        output: { maxRows: 5000, maxBytes: 4 * 1024 * 1024 },
        postgres: { statementTimeoutMs: 60_000 },
      },
    });
    try {
      const pid = s.pid;
      if (!pid) throw new Error('no server pid');
      await s.client.callTool({ name: 'postgres_query', arguments: { sql: 'SELECT 1' } });
      const before = rssMiB(pid);
      const peaks: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await s.client.callTool({
          name: 'postgres_query',
          arguments: { sql: 'SELECT * FROM big_events', maxRows: 5000 },
        });
        const st = r.structuredContent as {
          rowCount: number;
          truncated: boolean;
          rows: unknown[][];
        };
        expect(r.isError).toBeFalsy();
        expect(st.rowCount).toBe(5000);
        expect(st.truncated).toBe(true);
        expect(st.rows[0]?.[1]).toBe('[REDACTED:email]');
        peaks.push(rssMiB(pid).peak);
      }
      const bytesCapped = await s.client.callTool({
        name: 'postgres_query',
        arguments: { sql: 'SELECT * FROM big_events ORDER BY id DESC', maxRows: 5000 },
      });
      expect((bytesCapped.structuredContent as { truncated: boolean }).truncated).toBe(true);
      const after = rssMiB(pid);
      const guardPeaks = childPids(pid).map((c) => rssMiB(c).peak);
      const tableMiB = (ROWS * 160) / 1024 / 1024;
      console.log(
        `[memory] table ≈ ${tableMiB.toFixed(0)} MiB; server RSS before ${before.current.toFixed(1)} MiB, ` +
          `peak after each call ${peaks.map((p) => p.toFixed(1)).join(' / ')} MiB, final peak ${after.peak.toFixed(1)} MiB; ` +
          `SQL guard process peak ${guardPeaks.map((p) => p.toFixed(1)).join(', ') || 'n/a'} MiB`,
      );
      // The checker pool: two processes on a machine with two cores or more, one otherwise.
      expect(guardPeaks).toHaveLength(Math.min(2, availableParallelism()));
      for (const g of guardPeaks) expect(g).toBeLessThan(tableMiB / 2);
      // Flat: three full-table calls do not grow the peak beyond the first, and it is a fraction of the table.
      expect(after.peak).toBeLessThan(before.peak + 150);
      expect(after.peak).toBeLessThan(tableMiB / 2);
    } finally {
      await s.close();
    }
  },
  300_000,
);
