/**
 * Peak memory of the Postgres server under worst-case calls at the default caps, against the
 * stated ceiling (README "Memory ceiling"). Four calls run at once, several rounds:
 *
 * 1. 100 rows of 15 MB each (15 one-MB `repeat`s aggregated once; the guard refuses a single
 *    `repeat` above 1 MiB): the byte cap per result, as rows arrive;
 * 2. `SELECT *` over a large table (`big_events`): the row and byte caps through the cursor;
 * 3. a data error whose server message embeds a 15 MB value: the error text cap;
 * 4. `postgres_explain` of a 90,000-character statement: the plan cap and the SQL checkers.
 *
 * Baseline in the same run: the server's resident set after start-up and one small query.
 * Prints peak RSS (Linux VmHWM) of the server and of its SQL checker processes, and the ceiling.
 * No thresholds and no timings: it prints.
 *
 * Run: pnpm bench:memory (builds first). Embedded PostgreSQL 18, or DATABASE_URL (test-kit).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createChinookDatabase, startTestPostgres } from '@hardened-mcp/test-kit';

/** The stated ceiling for the server process with four concurrent worst-case calls (MiB). */
const SERVER_CEILING_MIB = 300;
/** The stated ceiling per SQL checker process (MiB). */
const CHECKER_CEILING_MIB = 256;

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BIG_ROWS = Number(process.env.BENCH_BIG_ROWS ?? 300_000);
const BIN = new URL('../dist/bin.js', import.meta.url).pathname;

/** Peak and current resident set size of a process in MiB (Linux /proc). */
function rss(pid: number): { peak: number; current: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(/(\d+) kB/.exec(status.split('\n').find((l) => l.startsWith(field)) ?? '')?.[1] ?? 0);
  return { peak: kb('VmHWM:') / 1024, current: kb('VmRSS:') / 1024 };
}

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

/** A newline-delimited JSON-RPC client over the server's stdio (MCP stdio transport). */
function rpc(child: ChildProcess) {
  let nextId = 1;
  let buffer = '';
  const waiting = new Map<number, (message: unknown) => void>();
  child.stdout?.on('data', (d: Buffer) => {
    buffer += d.toString('utf8');
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const message = JSON.parse(buffer.slice(0, nl)) as { id?: number };
      buffer = buffer.slice(nl + 1);
      if (message.id !== undefined) waiting.get(message.id)?.(message);
      nl = buffer.indexOf('\n');
    }
  });
  child.once('exit', (code) => {
    for (const resolve of waiting.values())
      resolve({ error: { code: -1, message: `the server exited (${code})` } });
    waiting.clear();
  });
  const send = (message: object) => child.stdin?.write(`${JSON.stringify(message)}\n`);
  return {
    notify: (method: string, params: object = {}) => send({ jsonrpc: '2.0', method, params }),
    call(method: string, params: object): Promise<unknown> {
      const id = nextId++;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        send({ jsonrpc: '2.0', id, method, params });
      });
    },
  };
}

const pg = await startTestPostgres();
const db = await createChinookDatabase(pg, { bigTableRows: BIG_ROWS });
const server = spawn(process.execPath, [BIN], {
  env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', POSTGRES_URL: db.readUrl },
  // The server's log (stderr) is not part of the measure; only its last lines are kept.
  stdio: ['pipe', 'pipe', 'pipe'],
});
let stderrTail = '';
server.stderr?.on('data', (d: Buffer) => {
  stderrTail = (stderrTail + d.toString('utf8')).slice(-4_000);
});
server.once('exit', (code) => {
  if (code !== null && code !== 0) console.error(`server exited (${code}):\n${stderrTail}`);
});
try {
  const client = rpc(server);
  const init = (await client.call('initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'memory-bench', version: '1' },
  })) as { error?: unknown };
  if (init.error) throw new Error(`initialize failed: ${JSON.stringify(init.error)}`);
  client.notify('notifications/initialized');
  const tool = (name: string, args: object) =>
    client.call('tools/call', { name, arguments: args }) as Promise<{
      result?: { isError?: boolean; content?: { text?: string }[] };
    }>;
  await tool('postgres_query', { sql: 'SELECT 1 AS one' });
  const pid = server.pid ?? 0;
  const baseline = rss(pid).current;

  // 1,500 output columns (PostgreSQL allows 1,664) and an IN list of 8,000 values: ~90,000 characters.
  const longSql = `SELECT ${Array.from({ length: 1_500 }, (_, i) => `(genre_id + ${i}) * 2 AS c${i}`).join(', ')} FROM genre WHERE genre_id IN (${Array.from({ length: 8_000 }, (_, i) => i).join(', ')})`;
  // A 15 MB value: one repeat() may build at most 1 MiB (src/uninterruptible.ts), an aggregate more.
  const mb15 = "(SELECT string_agg(repeat('x', 1000000), '') FROM generate_series(1, 15))";
  const worst: [string, object][] = [
    ['postgres_query', { sql: `SELECT ${mb15} AS big FROM generate_series(1, 100)` }],
    ['postgres_query', { sql: 'SELECT * FROM big_events', maxRows: 500 }],
    ['postgres_query', { sql: `SELECT ${mb15}::int AS n` }],
    ['postgres_explain', { sql: longSql }],
  ];
  const outcomes: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const results = await Promise.all(worst.map(([name, args]) => tool(name, args)));
    if (round === 1)
      for (const [i, r] of results.entries())
        outcomes.push(
          `  ${worst[i]?.[0]} #${i + 1}: ${r.result?.isError ? (r.result.content?.[0]?.text ?? '').split('\n')[0]?.slice(0, 100) : r.result ? 'ok' : 'no answer'}`,
        );
  }
  const served = await tool('postgres_query', { sql: 'SELECT count(*) AS n FROM genre' });
  const server_ = rss(pid);
  const checkers = childPids(pid).map((c) => ({ pid: c, ...rss(c) }));
  const checkerPeak = Math.max(0, ...checkers.map((c) => c.peak));

  console.log(`memory bench: ${ROUNDS} rounds of ${worst.length} concurrent worst-case calls`);
  console.log(outcomes.join('\n'));
  console.log(
    `  server still serving afterwards: ${served.result && !served.result.isError ? 'yes' : `NO (${JSON.stringify(served).slice(0, 200)})`}`,
  );
  console.log(`baseline (server after start-up):   ${baseline.toFixed(1)} MiB`);
  console.log(
    `server peak RSS:                    ${server_.peak.toFixed(1)} MiB (${(server_.peak / baseline).toFixed(2)}× baseline)   ceiling ${SERVER_CEILING_MIB} MiB   ${server_.peak <= SERVER_CEILING_MIB ? 'within' : 'OVER'}`,
  );
  console.log(
    `SQL checker peak RSS (${checkers.length} processes): ${checkerPeak.toFixed(1)} MiB each at most   ceiling ${CHECKER_CEILING_MIB} MiB   ${checkerPeak <= CHECKER_CEILING_MIB ? 'within' : 'OVER'}`,
  );
} finally {
  server.stdin?.end();
  if (server.exitCode === null) await new Promise((r) => server.once('exit', r));
  await db.drop();
  await pg.stop();
}
