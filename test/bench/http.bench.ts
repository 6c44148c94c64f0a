/**
 * Load benchmark of the HTTP transport (issue 17 §3): requests/s and p50/p99 latency of the HTTP
 * Postgres server, 1 replica and 3 replicas behind HAProxy (one Redis for the rate budgets), as
 * ratios to a bare MCP SDK Streamable HTTP server (`bare-server.ts`) measured in the same run on
 * the same machine, and the memory (Linux VmRSS/VmHWM) of each replica before and after.
 *
 * - Ours: `hardened-mcp-postgres --transport http`, auth api-key (one key and principal per
 *   client), the audit trail to a file (its default durability), on the test kit's PostgreSQL
 *   (embedded PostgreSQL 18, or DATABASE_URL) with the generated sample database (no `../shared`
 *   needed). Also the example connector (`example_list_folders`, in-memory, no upstream) with
 *   the same auth, audit file and rate limiter: the trivial tool. Postgres calls: the catalog tool
 *   `postgres_list_schemas`, and `postgres_query` of `SELECT 1`.
 * - Baseline: the SDK's `McpServer` with one tool that returns "ok", in its own process.
 * - Load: `BENCH_CLIENTS` (16) MCP SDK clients over Streamable HTTP, each with its own session,
 *   call in a loop for `BENCH_SECONDS` (10) per measurement; measurements interleaved (baseline,
 *   ours, baseline, ours, …), `BENCH_ROUNDS` (3) rounds. Printed: medians with min–max, and each
 *   ours/baseline ratio taken against the baseline measured just before it, and the serving
 *   process's CPU time per call (Linux `/proc`, user + system; not PostgreSQL's), which the load
 *   of a shared machine disturbs less than req/s.
 *
 * Loopback only; bounded in count and time; it prints and asserts nothing (no timing thresholds).
 * Without `haproxy` or `redis-server` the 3-replica part is skipped with a line saying so.
 *
 * Run: pnpm bench:http (builds first; 1 and 3 replicas). `pnpm bench` runs the 1-replica part
 * through {@link runHttpBench} in its own suite.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { hashApiKey } from '@hardened-mcp/core';
import { createSampleDatabase, startTestPostgres } from '@hardened-mcp/test-kit';
import {
  connectHttpClient,
  freePort,
  type HttpServerProcess,
  haproxyConfig,
  redisPing,
  startHttpServer,
} from '../support/http.ts';

/** The example connector's bin (the trivial tool without an upstream). */
const EXAMPLE_BIN = new URL('../../servers/example/dist/bin.js', import.meta.url).pathname;
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Unmeasured calls per target before the rounds (ms of load). */
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 2_000);
/** How long one call may take before it counts as an error (ms). */
const CALL_TIMEOUT_MS = 30_000;

const run = randomBytes(4).toString('hex');
const keys = Array.from(
  { length: CLIENTS },
  () => `hmcp_bench_${randomBytes(24).toString('base64url')}`,
);

/** Where load goes: an MCP endpoint, the tool called, and the headers of client `i`. */
interface Target {
  readonly label: string;
  readonly url: string;
  readonly tool: string;
  readonly args: Record<string, unknown>;
  /** The serving process (its CPU time is read around each measurement); for HAProxy, none. */
  readonly pid?: number | undefined;
  headers(i: number): Record<string, string>;
}

/** One measurement: calls completed, errors, and latencies (ms). */
interface Measurement {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  /** CPU time (user + system) of the serving process per completed call, µs; NaN without a pid. */
  readonly cpuUs: number;
}

/** Nearest-rank percentile (`p` in 0–1) of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

/**
 * Opens `CLIENTS` sessions (not timed), then every client calls `target.tool` in a loop for
 * `ms`; the sessions are closed afterwards. Calls that throw or answer `isError` are errors and
 * are not in the latencies.
 */
async function measure(target: Target, ms: number): Promise<Measurement> {
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, (_, i) =>
      connectHttpClient(target.url, target.headers(i), 'hardened-mcp-http-bench'),
    ),
  );
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const cpuBefore = cpuMs(target.pid);
  const started = performance.now();
  const endAt = started + ms;
  await Promise.all(
    clients.map(async ({ client }) => {
      while (performance.now() < endAt) {
        const t0 = performance.now();
        try {
          const r = await client.callTool(
            { name: target.tool, arguments: target.args },
            undefined,
            {
              timeout: CALL_TIMEOUT_MS,
            },
          );
          if (r.isError) {
            errors++;
            firstError ??= JSON.stringify(r.content).slice(0, 200);
          } else latencies.push(performance.now() - t0);
        } catch (err) {
          errors++;
          firstError ??= String(err).slice(0, 200);
        }
      }
    }),
  );
  const elapsed = performance.now() - started;
  const cpu = cpuMs(target.pid) - cpuBefore;
  await Promise.all(
    clients.map(({ transport }) => transport.terminateSession().catch(() => undefined)),
  );
  await Promise.all(clients.map(({ client }) => client.close().catch(() => undefined)));
  latencies.sort((a, b) => a - b);
  return {
    rps: (latencies.length / elapsed) * 1000,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors,
    firstError,
    cpuUs: (cpu * 1000) / Math.max(1, latencies.length),
  };
}

/** CPU time (user + system, ms) of a process so far (Linux /proc, clock ticks of 10 ms); NaN if unreadable. */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Resident set of a process (MiB, Linux /proc): current (VmRSS) and peak (VmHWM). */
function memory(pid: number | undefined): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: Number.NaN, hwm: Number.NaN };
  }
}

/** Resolves once `check` holds (polled every 50 ms); throws after `ms`. */
async function waitUntil(check: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what} did not happen in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts the bare SDK server (`bare-server.ts`) on this Node and resolves with its URL. */
async function startBaseline(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [new URL('./bare-server.ts', import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const m = /listening (\d+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`the baseline server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}/mcp`, child };
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};
/** `median (min–max)` of values. */
const spread = (xs: readonly number[], digits = 1) =>
  `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`;

/** Options of {@link runHttpBench}; defaults from the environment as documented above. */
export interface HttpBenchOptions {
  /** Also measure 3 replicas behind HAProxy (needs `haproxy` and `redis-server`); default true. */
  readonly replicas?: boolean | undefined;
  /** Seconds per measurement (default `BENCH_SECONDS`, 10). */
  readonly seconds?: number | undefined;
  /** Interleaved rounds (default `BENCH_ROUNDS`, 3). */
  readonly rounds?: number | undefined;
  /** Unmeasured load per target before the rounds, ms (default `BENCH_WARMUP_MS`, 2000). */
  readonly warmupMs?: number | undefined;
}

/** One of our targets against the bare SDK server: per-round req/s ratios and both sides' req/s. */
export interface HttpBenchRatio {
  readonly label: string;
  /** ours / baseline req/s of each round, each against the baseline measured just before it. */
  readonly rps: readonly number[];
  readonly oursRps: readonly number[];
  readonly baselineRps: readonly number[];
}

/**
 * Runs the HTTP load benchmark (see the module comment), prints its tables and returns the
 * req/s ratios of each target. Starts and stops everything it needs (PostgreSQL: `DATABASE_URL`
 * when set, else an embedded one, with the generated sample database; the servers; HAProxy and
 * Redis for the replicas).
 *
 * @throws Error when a server or PostgreSQL cannot be started (everything started is stopped).
 */
export async function runHttpBench(options: HttpBenchOptions = {}): Promise<HttpBenchRatio[]> {
  const seconds = options.seconds ?? SECONDS;
  const rounds = options.rounds ?? ROUNDS;
  const warmupMs = options.warmupMs ?? WARMUP_MS;
  const missing = ['haproxy', 'redis-server'].filter(
    (bin) => spawnSync(bin, ['-v'], { stdio: 'ignore' }).error !== undefined,
  );
  const withReplicas = options.replicas !== false && missing.length === 0;

  const dir = mkdtempSync(join(tmpdir(), 'hmcp-bench-http-'));
  const pgServer = await startTestPostgres();
  const db = await createSampleDatabase(pgServer);
  const children: ChildProcess[] = [];
  const replicas: HttpServerProcess[] = [];
  try {
    const baseline = await startBaseline();
    children.push(baseline.child);

    let redisUrl: string | undefined;
    let lbUrl: string | undefined;
    if (withReplicas) {
      const redisPort = await freePort();
      const redis = spawn(
        'redis-server',
        ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' },
      );
      children.push(redis);
      await waitUntil(
        async () => (await redisPing('127.0.0.1', redisPort)).ok,
        'redis-server start',
      );
      redisUrl = `redis://127.0.0.1:${redisPort}`;
      lbUrl = `http://127.0.0.1:${await freePort()}/mcp`;
    }
    const config = (i: number) => ({
      auth: {
        mode: 'api-key',
        apiKeys: keys.map((key, k) => ({
          id: `b${k}`,
          sha256: hashApiKey(key),
          principal: `bench-${k}-${run}`,
          roles: ['reader'],
        })),
      },
      // The rate limiter runs on every call; its budget is set out of reach of the load.
      rateLimit: { points: 1_000_000, durationSeconds: 1 },
      audit: { stderr: false, file: join(dir, `audit-${i}.jsonl`) },
      ...(redisUrl ? { redis: { url: { env: 'HMCP_BENCH_REDIS_URL' } } } : {}),
      ...(lbUrl ? { http: { publicUrl: lbUrl } } : {}),
    });
    const env = {
      POSTGRES_URL: db.readUrl,
      ...(redisUrl ? { HMCP_BENCH_REDIS_URL: redisUrl } : {}),
    };
    for (const i of withReplicas ? [0, 1, 2] : [0])
      replicas.push(await startHttpServer({ env, config: config(i) }));
    // The trivial tool without an upstream: the example connector (in-memory notes), same auth,
    // audit file and rate limiter, so the pair measures the transport and the pipeline only.
    const example = await startHttpServer({
      env: { EXAMPLE_READ_TOKEN: 'read-token-0001' },
      config: { ...config(9), redis: undefined, http: undefined },
      bin: EXAMPLE_BIN,
    });
    replicas.push(example);
    const before = replicas.map((r) => memory(r.child.pid));
    const baselineBefore = memory(baseline.child.pid);

    if (lbUrl) {
      const lbPort = Number(new URL(lbUrl).port);
      const cfg = join(dir, 'haproxy.cfg');
      writeFileSync(
        cfg,
        haproxyConfig(
          lbPort,
          replicas.map((r) => r.url),
        ),
      );
      const haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
      children.push(haproxy);
      await waitUntil(
        () =>
          fetch(lbUrl, { method: 'GET' }).then(
            () => true,
            () => false,
          ),
        'haproxy start',
      );
    }

    const bearer = (i: number) => ({ Authorization: `Bearer ${keys[i]}` });
    const bare: Target = {
      label: 'baseline: bare SDK server, echo',
      url: baseline.url,
      pid: baseline.child.pid,
      tool: 'echo',
      args: {},
      headers: () => ({}),
    };
    const ours: Target[] = [
      {
        label: '1 replica, example_list_folders (trivial)',
        url: example.url,
        pid: example.child.pid,
        tool: 'example_list_folders',
        args: {},
        headers: bearer,
      },
    ];
    const calls: [string, Record<string, unknown>][] = [
      ['postgres_list_schemas', {}],
      ['postgres_query', { sql: 'SELECT 1' }],
    ];
    for (const [tool, args] of calls)
      ours.push({
        label: `1 replica, ${tool === 'postgres_query' ? 'SELECT 1' : tool}`,
        url: replicas[0]?.url ?? '',
        pid: replicas[0]?.child.pid,
        tool,
        args,
        headers: bearer,
      });
    if (lbUrl)
      for (const [tool, args] of calls)
        ours.push({
          label: `3 replicas + HAProxy, ${tool === 'postgres_query' ? 'SELECT 1' : tool}`,
          url: lbUrl,
          tool,
          args,
          headers: bearer,
        });

    console.log(
      `http bench: ${CLIENTS} concurrent clients (one session each), ${seconds} s per measurement, ${rounds} rounds interleaved (baseline, ours, baseline, ours, …); loopback; Node ${process.version}; ${availableParallelism()} CPUs shared by everything here (load generator, servers, HAProxy, Redis, PostgreSQL)`,
    );
    if (options.replicas === false)
      console.log('3 replicas: not run here (pnpm bench:http runs them); 1 replica only');
    else if (!withReplicas)
      console.log(`3 replicas: SKIPPED (not installed: ${missing.join(', ')}); 1 replica only`);

    for (const t of [bare, ...ours]) await measure(t, warmupMs);

    const results = new Map<Target, Measurement[]>([
      [bare, []],
      ...ours.map((t) => [t, []] as [Target, Measurement[]]),
    ]);
    const ratios = new Map<
      Target,
      { rps: number[]; p50: number[]; p99: number[]; baseline: number[] }
    >(ours.map((t) => [t, { rps: [], p50: [], p99: [], baseline: [] }]));
    for (let round = 1; round <= rounds; round++)
      for (const t of ours) {
        const b = await measure(bare, seconds * 1000);
        const o = await measure(t, seconds * 1000);
        results.get(bare)?.push(b);
        results.get(t)?.push(o);
        const r = ratios.get(t);
        r?.rps.push(o.rps / b.rps);
        r?.baseline.push(b.rps);
        r?.p50.push(o.p50 / b.p50);
        r?.p99.push(o.p99 / b.p99);
        console.error(
          `  round ${round}: ${t.label}: ${fmt(o.rps, 0)} req/s vs baseline ${fmt(b.rps, 0)} req/s`,
        );
      }

    const pad = (s: string, n: number) => s.padEnd(n);
    console.log('');
    console.log(
      `${pad('target', 46)}${pad('req/s', 24)}${pad('p50 ms', 22)}${pad('p99 ms', 22)}${pad('server CPU µs/call', 22)}errors`,
    );
    for (const [t, ms] of results) {
      const errors = ms.reduce((n, m) => n + m.errors, 0);
      const first = ms.find((m) => m.firstError)?.firstError;
      console.log(
        `${pad(t.label, 46)}${pad(
          spread(
            ms.map((m) => m.rps),
            0,
          ),
          24,
        )}${pad(
          spread(
            ms.map((m) => m.p50),
            2,
          ),
          22,
        )}${pad(
          spread(
            ms.map((m) => m.p99),
            2,
          ),
          22,
        )}${pad(
          spread(
            ms.map((m) => m.cpuUs),
            0,
          ),
          22,
        )}${errors}${first ? ` (first: ${first})` : ''}`,
      );
    }
    console.log('');
    console.log(
      'server CPU: user + system time of the serving process (not of PostgreSQL) per completed call, from /proc in 10 ms ticks; less sensitive to the machine load than req/s',
    );
    console.log('');
    console.log('ours / baseline, each against the baseline just before it: median (min–max)');
    console.log(`${pad('target', 46)}${pad('req/s ratio', 24)}${pad('p50 ratio', 22)}p99 ratio`);
    for (const [t, r] of ratios)
      console.log(
        `${pad(t.label, 46)}${pad(spread(r.rps, 3), 24)}${pad(spread(r.p50, 2), 22)}${spread(r.p99, 2)}`,
      );

    console.log('');
    console.log('memory (MiB, Linux VmRSS; peak = VmHWM): before the load → after it');
    const after = replicas.map((r) => memory(r.child.pid));
    for (const [i, r] of replicas.entries())
      console.log(
        `  ${r === example ? 'example server' : `replica ${i}`} (pid ${r.child.pid}): ${fmt(before[i]?.rss ?? Number.NaN)} → ${fmt(after[i]?.rss ?? Number.NaN)}, peak ${fmt(after[i]?.hwm ?? Number.NaN)}`,
      );
    const baselineAfter = memory(baseline.child.pid);
    console.log(
      `  baseline (pid ${baseline.child.pid}): ${fmt(baselineBefore.rss)} → ${fmt(baselineAfter.rss)}, peak ${fmt(baselineAfter.hwm)}`,
    );
    return [...ratios].map(([t, r]) => ({
      label: t.label,
      rps: r.rps,
      oursRps: results.get(t)?.map((m) => m.rps) ?? [],
      baselineRps: r.baseline,
    }));
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    for (const c of children.reverse()) c.kill('SIGTERM');
    await db.drop();
    await pgServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await runHttpBench();
