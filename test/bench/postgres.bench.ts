/**
 * The Postgres part of `pnpm bench` (issue 14): `postgres_query` of our server against the
 * reference Postgres MCP server (`@modelcontextprotocol/server-postgres`, MIT, unmaintained; a
 * dev dependency of this bench only, never shipped) and raw `pg` in-process, on the same
 * database, interleaved (A, B, A, B, …) for `BENCH_ROUNDS` rounds; medians with their min–max
 * spread and the ratios of the medians. Printed only: no thresholds.
 *
 * 4. `postgres_query` of 100 customer rows (Chinook's column names) over stdio: p50 of
 *    sequential calls, ours vs the reference, and ours vs raw `pg` in-process (the same SELECT in
 *    a READ ONLY transaction on a pooled connection, as the reference does it);
 *    calls/s with 8 calls in flight; server CPU per call (user + system time of the server
 *    process and its children — our SQL checker processes — from /proc/<pid>/stat around each
 *    throughput round, Linux only); startup to the first `tools/list` answer.
 *
 * The database: `DATABASE_URL` (a superuser URL) when set, else an embedded PostgreSQL 18 (the
 * test kit's `startTestPostgres`); a generated sample database (the test kit's
 * `createSampleDatabase`, 120 customers; no `../shared` needed) with a least-privilege read role
 * that both servers use, dropped at the end. Servers run on the repository's Node 24
 * (`node_modules/node/bin/node`, else this process's Node).
 *
 * Tunables: BENCH_ROUNDS (5), BENCH_PG_CALLS (sequential calls per side and round, 300),
 * BENCH_PG_RATE_CALLS (calls per side and round with 8 in flight, 800), BENCH_STARTUPS (5);
 * BENCH_PG_PROFILE_DIR writes a V8 CPU profile (`--cpu-prof`) of each of our server processes
 * there (open it in Chrome DevTools or summarize its self times). BENCH_PG_BASE_BIN (the `bin.js`
 * of another build of our server, e.g. a copy of `servers/postgres/dist` made before a change,
 * kept next to `dist` so it resolves the same packages) adds that build as one more side,
 * interleaved with the others, and prints this build against it: old vs new under the same load.
 * `node test/bench/postgres.bench.ts` runs this part alone.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { createSampleDatabase, startTestPostgres } from '@hardened-mcp/test-kit';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import pg from 'pg';
import { interleaver, median, printSummary, report, type SummaryLine } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CALLS = Number(process.env.BENCH_PG_CALLS ?? 300);
const RATE_CALLS = Number(process.env.BENCH_PG_RATE_CALLS ?? 800);
const STARTUPS = Number(process.env.BENCH_STARTUPS ?? 5);
const IN_FLIGHT = 8;

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '..', '..');
const OURS_BIN = join(REPO_ROOT, 'servers', 'postgres', 'dist', 'bin.js');
const REFERENCE_BIN = createRequire(import.meta.url).resolve(
  '@modelcontextprotocol/server-postgres/dist/index.js',
);
/** The repository's Node 24 (root devDependency `node`), else this process's Node. */
const NODE = existsSync(join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node'))
  ? join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node')
  : process.execPath;

/** 100 rows with Chinook's customer columns (the sample database uses Chinook's names). */
const SQL =
  'SELECT customer_id, first_name, last_name, company, city, country, phone, email FROM customer ORDER BY customer_id LIMIT 100';

/** Interleaved rounds (stats.ts, the suite's format). */
const interleave = interleaver(ROUNDS);

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

interface Side {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: Record<string, string>;
  readonly tool: string;
}

interface Running {
  readonly client: Client;
  readonly pid: number;
}

async function start(side: Side): Promise<Running> {
  const transport = new StdioClientTransport({
    command: NODE,
    args: [...side.args],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...side.env },
    stderr: 'ignore',
  });
  const client = new Client({ name: 'hardened-mcp-bench', version: '0' });
  await client.connect(transport);
  const pid = transport.pid;
  if (pid === null) throw new Error(`${side.name}: no process`);
  return { client, pid };
}

/** One call of `side`'s query tool; throws unless it answered rows. */
async function call(r: Running, side: Side): Promise<void> {
  const res = await r.client.callTool({ name: side.tool, arguments: { sql: SQL } });
  if (res.isError) throw new Error(`${side.name}: ${JSON.stringify(res.content).slice(0, 300)}`);
}

/** p50 (ms) of `CALLS` sequential calls. */
function latency(once: () => Promise<void>): () => Promise<number> {
  return async () => {
    const xs: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      await once();
      xs.push(performance.now() - t0);
    }
    return median(xs);
  };
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** User + system CPU time (ms) of `pid` and its descendants, from /proc (0 where unreadable). */
function cpuMs(pid: number): number {
  const t = cpuTicks(pid);
  return ((t.user + t.system) * 1000) / USER_HZ;
}

/** System CPU time (ms) alone, as {@link cpuMs} counts it (kernel work: system calls, sockets). */
function systemMs(pid: number): number {
  return (cpuTicks(pid).system * 1000) / USER_HZ;
}

/** utime and stime ticks of `pid` and its descendants (/proc/<pid>/stat fields 14 and 15). */
function cpuTicks(pid: number): { user: number; system: number } {
  let user = 0;
  let system = 0;
  const seen = new Set<number>();
  const visit = (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after the command name (which may contain spaces) start at state (field 3).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(fields[11]); // utime (14)
      system += Number(fields[12]); // stime (15)
    } catch {
      return;
    }
    try {
      for (const task of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').split(' '))
        if (task.trim() !== '') visit(Number(task));
    } catch {
      // no children file: the process alone
    }
  };
  visit(pid);
  return { user, system };
}

/** calls/s with {@link IN_FLIGHT} in flight; `cpu` gets the server's CPU ms per call. */
function throughput(
  r: Running,
  side: Side,
  cpu: number[],
  sys: number[] = [],
): () => Promise<number> {
  return async () => {
    let left = RATE_CALLS;
    const cpu0 = cpuMs(r.pid);
    const sys0 = systemMs(r.pid);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (left > 0) {
          left--;
          await call(r, side);
        }
      }),
    );
    const rate = (RATE_CALLS / (performance.now() - t0)) * 1000;
    cpu.push((cpuMs(r.pid) - cpu0) / RATE_CALLS);
    sys.push((systemMs(r.pid) - sys0) / RATE_CALLS);
    return rate;
  };
}

/** ms from spawn to the first `tools/list` answer (the process is then closed). */
function startup(side: Side): () => Promise<number> {
  return async () => {
    const t0 = performance.now();
    const r = await start(side);
    const tools = await r.client.listTools();
    const ms = performance.now() - t0;
    if (!tools.tools.some((t) => t.name === side.tool)) throw new Error(`${side.name}: no tool`);
    await r.client.close();
    return ms;
  };
}

// ---------------------------------------------------------------------------------------------
// The bench
// ---------------------------------------------------------------------------------------------

/** Runs section 4 of `pnpm bench` (see the module comment) and prints it. */
export async function postgresBench(): Promise<SummaryLine[]> {
  const lines: SummaryLine[] = [];
  const ratio = (measure: string, ours: number[], ref: number[], target: string) =>
    lines.push({ measure, value: `${(median(ours) / median(ref)).toFixed(2)}×`, target });
  const server = await startTestPostgres();
  const db = await createSampleDatabase(server).catch(async (err: unknown) => {
    await server.stop();
    throw err;
  });
  const configDir = mkdtempSync(join(tmpdir(), 'hmcp-bench-pg-'));
  const config = join(configDir, 'postgres.json');
  // The defaults (redaction, caps, audit, SQL guard, READ ONLY transactions) except a rate
  // limit the bench cannot exhaust.
  writeFileSync(
    config,
    JSON.stringify({
      identity: { principal: 'bench', roles: ['analyst'] },
      roles: { analyst: ['postgres:read'] },
      rateLimit: { points: 1_000_000, durationSeconds: 1 },
    }),
    { mode: 0o600 },
  );
  const OURS: Side = {
    name: 'ours (hardened-mcp-postgres)',
    // BENCH_PG_PROFILE_DIR: a V8 CPU profile of our server (written when it exits).
    args: [
      ...(process.env.BENCH_PG_PROFILE_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PG_PROFILE_DIR}`]
        : []),
      OURS_BIN,
      '--config',
      config,
    ],
    env: { POSTGRES_URL: db.readUrl },
    tool: 'postgres_query',
  };
  const REFERENCE: Side = {
    name: 'reference server-postgres',
    args: [REFERENCE_BIN, db.readUrl],
    env: {},
    tool: 'query',
  };
  const baseBin = process.env.BENCH_PG_BASE_BIN;
  const BASE: Side | undefined = baseBin
    ? { ...OURS, name: 'ours, base build', args: [resolve(baseBin), '--config', config] }
    : undefined;
  const raw = new pg.Pool({ connectionString: db.readUrl, max: IN_FLIGHT });
  const rawQuery = async () => {
    const c = await raw.connect();
    try {
      await c.query('BEGIN TRANSACTION READ ONLY');
      const r = await c.query(SQL);
      if (r.rows.length !== 100) throw new Error('raw pg: not 100 rows');
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
  };
  let ours: Running | undefined;
  let reference: Running | undefined;
  let base: Running | undefined;
  try {
    console.log(
      `\n5. postgres_query, 100 customer rows over stdio (PostgreSQL ${server.version}, ${server.kind}; ${CALLS} sequential / ${RATE_CALLS} concurrent calls per round)`,
    );
    ours = await start(OURS);
    reference = await start(REFERENCE);
    base = BASE ? await start(BASE) : undefined;
    const o = ours;
    const ref = reference;
    const b = base;
    for (let i = 0; i < 100; i++) {
      await call(o, OURS);
      await call(ref, REFERENCE);
      await rawQuery();
      if (b && BASE) await call(b, BASE);
    }
    const [refP50 = [], oursP50 = [], rawP50 = [], baseP50 = []] = await interleave([
      latency(() => call(ref, REFERENCE)),
      latency(() => call(o, OURS)),
      latency(rawQuery),
      ...(b && BASE ? [latency(() => call(b, BASE))] : []),
    ]);
    report(
      'p50 latency, one call at a time (target: ours ≤ 1.5× the reference)',
      { name: REFERENCE.name, xs: refP50 },
      { name: OURS.name, xs: oursP50 },
      'ms',
      3,
    );
    if (BASE)
      report(
        'p50 latency, this build vs the base build (BENCH_PG_BASE_BIN)',
        { name: BASE.name, xs: baseP50 },
        { name: OURS.name, xs: oursP50 },
        'ms',
        3,
      );
    ratio('postgres_query 100 rows, p50, ours / reference', oursP50, refP50, '≤ 1.5×');
    report(
      'p50 latency vs raw pg in-process (same SELECT in a READ ONLY transaction)',
      { name: 'raw pg in-process', xs: rawP50 },
      { name: OURS.name, xs: oursP50 },
      'ms',
      3,
    );
    const refCpu: number[] = [];
    const oursCpu: number[] = [];
    const refSys: number[] = [];
    const oursSys: number[] = [];
    const baseCpu: number[] = [];
    const [refRate = [], oursRate = [], baseRate = []] = await interleave([
      throughput(ref, REFERENCE, refCpu, refSys),
      throughput(o, OURS, oursCpu, oursSys),
      ...(b && BASE ? [throughput(b, BASE, baseCpu)] : []),
    ]);
    report(
      `calls/s with ${IN_FLIGHT} in flight (target: ours ≥ 0.8× the reference)`,
      { name: REFERENCE.name, xs: refRate },
      { name: OURS.name, xs: oursRate },
      'calls/s',
      0,
    );
    report(
      'server CPU per call, process and children, during the calls/s rounds (target: ours ≤ 1.3×)',
      { name: REFERENCE.name, xs: refCpu },
      { name: OURS.name, xs: oursCpu },
      'ms',
      3,
    );
    ratio(
      `postgres_query 100 rows, calls/s with ${IN_FLIGHT} in flight, ours / reference`,
      oursRate,
      refRate,
      '≥ 0.8×',
    );
    ratio(
      'postgres_query 100 rows, server CPU per call, ours / reference',
      oursCpu,
      refCpu,
      '≤ 1.3×',
    );
    if (BASE) {
      report(
        `calls/s with ${IN_FLIGHT} in flight, this build vs the base build`,
        { name: BASE.name, xs: baseRate },
        { name: OURS.name, xs: oursRate },
        'calls/s',
        0,
      );
      report(
        'server CPU per call, this build vs the base build',
        { name: BASE.name, xs: baseCpu },
        { name: OURS.name, xs: oursCpu },
        'ms',
        3,
      );
    }
    report(
      'of which system (kernel) CPU per call',
      { name: REFERENCE.name, xs: refSys },
      { name: OURS.name, xs: oursSys },
      'ms',
      3,
    );
  } finally {
    await Promise.allSettled([
      ours?.client.close(),
      reference?.client.close(),
      base?.client.close(),
    ]);
  }
  try {
    const startups = await interleaver(STARTUPS)([startup(REFERENCE), startup(OURS)]);
    report(
      'startup: spawn to the first tools/list answer (target: ours ≤ 2× the reference)',
      { name: REFERENCE.name, xs: startups[0] ?? [] },
      { name: OURS.name, xs: startups[1] ?? [] },
      'ms',
      0,
    );
    ratio(
      'Postgres server startup to the first tools/list, ours / reference',
      startups[1] ?? [],
      startups[0] ?? [],
      '≤ 2×',
    );
  } finally {
    await raw.end().catch(() => undefined);
    rmSync(configDir, { recursive: true, force: true });
    await db.drop().catch(() => undefined);
    await server.stop().catch(() => undefined);
  }
  return lines;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(
    `hardened-mcp Postgres benchmark, Node ${process.version}, ${ROUNDS} interleaved rounds; medians (min–max). The machine may be shared: compare ratios.`,
  );
  printSummary(await postgresBench());
}
