/**
 * `pnpm bench`: what the hardened pipeline costs, as ratios to baselines measured in the same
 * run (issue 14). Every pair runs interleaved (A, B, then B, A: the order rotates each round) for `BENCH_ROUNDS` rounds (default
 * 5); each line prints the median of the rounds with its min–max spread, and the ratio of the
 * medians. The machine may be shared and loaded: read the ratios, not the absolute numbers.
 *
 * 1. In-process, per call (CPU time; the audit-file pairs in wall time): the pipeline (identity, enablement, scopes, strict zod input,
 *    policy, rate limit, execute, caps, redaction, fence, hash-chained audit record) on a
 *    trivial tool vs the bare tool call (execute + JSON of its result); the same on a 20-row
 *    table tool; and the audit durability modes: audit to a file with group commit and with
 *    fsync per record, vs audit to an in-memory stream (issue 13: durable before the answer).
 * 2. Over stdio, a trivial tool: our example server (`example_list_folders`) vs a bare MCP SDK
 *    server (`bare-stdio-server.ts`, one `echo` tool): p50 latency of sequential calls, and
 *    calls/s with 8 calls in flight.
 * 3. Startup: spawn to the first `tools/list` answer, ours vs the bare SDK server.
 * 3b. The Cedar policy step (cedar-section.ts): one decision with 50 policies, uncached and
 *    cached, old (whole set) vs sliced path, and the pipeline with Cedar vs without (issue 15).
 * 4. Streamable HTTP: req/s of 16 concurrent clients (api-key auth, audit file): the example
 *    server's trivial tool, and the Postgres server's `postgres_list_schemas` and `postgres_query`
 *    of `SELECT 1`, vs
 *    a bare SDK Streamable HTTP server (`runHttpBench` of `http.bench.ts`, 1 replica; PostgreSQL
 *    from DATABASE_URL when set, else embedded, with the generated sample database).
 * 5. Postgres (postgres.bench.ts): `postgres_query` of 100 rows over stdio vs the reference
 *    Postgres MCP server and raw `pg` in-process (p50, calls/s with 8 in flight, server CPU per
 *    call), startup vs the reference. `BENCH_POSTGRES=0` skips it.
 * 6. Redaction MB/s per core and its ratio to the targets (`redaction.bench-part.ts`).
 *
 * It ends with a summary: every ratio of issue 14's targets, from this one run.
 *
 * `pnpm bench --profile`: instead, profiles the in-process hot path (trivial and table tool,
 * audit in memory) with the V8 CPU profiler (`node:inspector`), writes `pipeline.cpuprofile` to a
 * new temp directory, prints its path and the functions with the most self time. Open the file
 * in Chrome DevTools (Performance → load profile) or any `.cpuprofile` viewer.
 *
 * Tunables: BENCH_SECTIONS (comma-separated sections to run, e.g. `1,2`; default all), BENCH_ROUNDS (5), BENCH_CALLS (in-process calls per round, 20000), BENCH_STDIO_CALLS
 * (stdio calls per round, 2000), BENCH_STARTUPS (startups per side, 5), BENCH_HTTP_SECONDS (5)
 * and BENCH_HTTP_ROUNDS (3) for the HTTP pairs, BENCH_CLIENTS (16). Prints only: no
 * thresholds, and tests never assert timings.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  ALLOW,
  AuditLog,
  createLogger,
  createMemoryRateLimiter,
  createPipeline,
  createRedactor,
  NO_APPROVAL_CHANNEL,
  toolKit,
} from '@hardened-mcp/core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { z } from 'zod';
import { cedarSection } from './cedar-section.ts';
import { runHttpBench } from './http.bench.ts';
import { redactionSection } from './redaction.bench-part.ts';
import { interleaver, median, printSummary, report, type SummaryLine } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CALLS = Number(process.env.BENCH_CALLS ?? 20_000);
const STDIO_CALLS = Number(process.env.BENCH_STDIO_CALLS ?? 2_000);
const STARTUPS = Number(process.env.BENCH_STARTUPS ?? 5);
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const HTTP_ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3);
const IN_FLIGHT = 8;
const PROFILE = process.argv.includes('--profile');
/** BENCH_SECTIONS: a comma-separated subset of the sections to run (e.g. `1,2`); default all. */
const SECTIONS = process.env.BENCH_SECTIONS?.split(',').map((s) => s.trim());
const section = (name: string): boolean => SECTIONS === undefined || SECTIONS.includes(name);

const HERE = dirname(fileURLToPath(import.meta.url));
const EXAMPLE_BIN = resolve(HERE, '..', '..', 'servers', 'example', 'dist', 'bin.js');
const BARE_BIN = join(HERE, 'bare-stdio-server.ts');

// ---------------------------------------------------------------------------------------------
// Statistics and printing
// ---------------------------------------------------------------------------------------------

/** One line of the closing summary: a measure, its value and the target. */
const summary: SummaryLine[] = [];

const interleave = interleaver(ROUNDS);

// ---------------------------------------------------------------------------------------------
// 1. In-process pipeline
// ---------------------------------------------------------------------------------------------

const columns = ['customer_id', 'first_name', 'last_name', 'company', 'city', 'phone', 'email'].map(
  (name) => ({ name, type: 'text' }),
);
const tableRows = Array.from({ length: 20 }, (_, i) => [
  i + 1,
  'Luís',
  'Gonçalves',
  'Embraer - Empresa Brasileira de Aeronáutica S.A.',
  'São José dos Campos',
  '+55 (12) 3923-5555',
  `luisg${i}@embraer.com.br`,
]);
const kit = toolKit<string>('bench');
const echoTool = kit.read({
  name: 'echo',
  title: 'Echo',
  description: 'Returns its text.',
  output: 'json',
  input: z.strictObject({ text: z.string().max(100) }),
  policy: () => ALLOW,
  execute: async (input) => ({ kind: 'json', data: { text: input.text } }),
});
const tableTool = kit.read({
  name: 'rows',
  title: 'Rows',
  description: 'Returns fixed rows.',
  output: 'table',
  input: z.strictObject({ country: z.string().max(40) }),
  policy: () => ALLOW,
  execute: async () => ({ kind: 'table', columns, rows: tableRows, truncated: false }),
});

const nullStream = new Writable({ write: (_c, _e, cb) => cb() });
const redactor = createRedactor();
const identity = { principal: 'bench', roles: ['reader'], transport: 'stdio' as const, client: {} };
const signal = new AbortController().signal;

function pipelineWith(audit: AuditLog) {
  return createPipeline({
    server: { name: 'bench', version: '0' },
    dataSource: 'the bench',
    tools: [echoTool, tableTool],
    mode: 'read-only',
    roles: { reader: ['bench:read'] },
    clients: { read: 'handle' },
    limits: { maxRows: 1000, maxBytes: 1024 * 1024 },
    redactor,
    audit,
    rateLimiter: createMemoryRateLimiter({ points: 1e12, durationSeconds: 60 }),
    logger: createLogger('silent', redactor, nullStream),
  });
}

/** The bare call: the tool's execute and the JSON of a `CallToolResult` holding its output. */
function bareCall(tool: typeof echoTool | typeof tableTool, args: Record<string, unknown>) {
  return async (): Promise<number> => {
    const out = await (tool.execute as (a: unknown, c: unknown) => Promise<unknown>)(args, {
      identity,
      client: 'handle',
      authorized: undefined,
      secrets: { register: () => undefined },
      limits: { maxRows: 1000, maxBytes: 1 << 20 },
      signal,
      correlationId: 'x',
    });
    return JSON.stringify({ content: [{ type: 'text', text: JSON.stringify(out) }] }).length;
  };
}

function pipelineCall(pipeline: ReturnType<typeof pipelineWith>, name: string, args: object) {
  return async (): Promise<number> => {
    const r = await pipeline.callTool({
      name,
      arguments: args,
      identity,
      approval: NO_APPROVAL_CHANNEL,
      signal,
    });
    return JSON.stringify(r).length;
  };
}

/**
 * µs per call of `fn` over `n` sequential calls: the process's CPU time (user + system), so the
 * number is per core and does not count time spent waiting for a core on a loaded machine.
 */
function perCall(fn: () => Promise<number>, n: number): () => Promise<number> {
  return async () => {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) await fn();
    const used = process.cpuUsage(start);
    return (used.user + used.system) / n;
  };
}

/** µs per call of `fn` over `n` sequential calls, wall clock (for calls that wait on a disk). */
function perCallWall(fn: () => Promise<number>, n: number): () => Promise<number> {
  return async () => {
    const start = performance.now();
    for (let i = 0; i < n; i++) await fn();
    return ((performance.now() - start) * 1000) / n;
  };
}

async function warm(fns: readonly (() => Promise<number>)[], n: number): Promise<void> {
  for (const fn of fns) for (let i = 0; i < n; i++) await fn();
}

const echoArgs = { text: 'hello' };
const tableArgs = { country: 'Brazil' };

async function inProcess(): Promise<void> {
  const memoryAudit = await AuditLog.open({ sinks: { stderr: true }, stderrStream: nullStream });
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-bench-'));
  const groupAudit = await AuditLog.open({
    sinks: { file: join(dir, 'group.jsonl') },
    durability: 'group',
  });
  const fsyncAudit = await AuditLog.open({
    sinks: { file: join(dir, 'fsync.jsonl') },
    durability: 'fsync',
  });
  try {
    const inMemory = pipelineWith(memoryAudit);
    const sides = {
      bareEcho: bareCall(echoTool, echoArgs),
      echo: pipelineCall(inMemory, 'bench_echo', echoArgs),
      bareTable: bareCall(tableTool, tableArgs),
      table: pipelineCall(inMemory, 'bench_rows', tableArgs),
      group: pipelineCall(pipelineWith(groupAudit), 'bench_echo', echoArgs),
      fsync: pipelineCall(pipelineWith(fsyncAudit), 'bench_echo', echoArgs),
    };
    await warm(Object.values(sides), 500);
    console.log(
      `\n1. in-process, per call: CPU µs (${CALLS} calls per round); durable audit: wall µs (${CALLS / 20} calls per round)`,
    );
    const [bareEcho = [], echo = []] = await interleave([
      perCall(sides.bareEcho, CALLS),
      perCall(sides.echo, CALLS),
    ]);
    report(
      'trivial tool (target: pipeline ≤ 15 µs per call)',
      { name: 'bare call (execute + JSON)', xs: bareEcho },
      { name: 'pipeline, audit in memory', xs: echo },
      'µs',
    );
    summary.push({
      measure: 'in-process pipeline, trivial tool, CPU per call',
      value: `${median(echo).toFixed(1)} µs`,
      target: '≤ 15 µs',
    });
    const [bareTable = [], table = []] = await interleave([
      perCall(sides.bareTable, CALLS / 4),
      perCall(sides.table, CALLS / 4),
    ]);
    report(
      `table tool, ${tableRows.length} rows × ${columns.length} columns (redaction of every cell)`,
      { name: 'bare call (execute + JSON)', xs: bareTable },
      { name: 'pipeline, audit in memory', xs: table },
      'µs',
    );
    const [mem = [], group = [], fsync = []] = await interleave([
      perCallWall(sides.echo, CALLS / 20),
      perCallWall(sides.group, CALLS / 20),
      perCallWall(sides.fsync, CALLS / 20),
    ]);
    report(
      'durable audit (file), sequential calls: group commit (the default)',
      { name: 'pipeline, audit in memory', xs: mem },
      { name: 'pipeline, audit file, group', xs: group },
      'µs',
    );
    report(
      'durable audit (file), sequential calls: fsync per record',
      { name: 'pipeline, audit in memory', xs: mem },
      { name: 'pipeline, audit file, fsync', xs: fsync },
      'µs',
    );
  } finally {
    await Promise.all([memoryAudit.close(), groupAudit.close(), fsyncAudit.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// 2 and 3. Over stdio
// ---------------------------------------------------------------------------------------------

interface StdioSide {
  readonly name: string;
  readonly bin: string;
  readonly args: readonly string[];
  readonly tool: string;
  readonly env: Record<string, string>;
}

/**
 * Our server's configuration: the defaults except a rate limit the bench cannot exhaust (the
 * default, 120 calls per minute per principal and tool, would refuse most calls). JSON, in a
 * temp directory removed at exit.
 */
const CONFIG_DIR = mkdtempSync(join(tmpdir(), 'hmcp-bench-config-'));
const OURS_CONFIG = join(CONFIG_DIR, 'example.json');
writeFileSync(
  OURS_CONFIG,
  JSON.stringify({ rateLimit: { points: 1_000_000, durationSeconds: 1 } }),
  { mode: 0o600 },
);
process.once('exit', () => rmSync(CONFIG_DIR, { recursive: true, force: true }));

const OURS: StdioSide = {
  name: 'ours (example server)',
  bin: EXAMPLE_BIN,
  args: ['--config', OURS_CONFIG],
  tool: 'example_list_folders',
  env: { EXAMPLE_READ_TOKEN: 'read-token-0001' },
};
const BARE: StdioSide = {
  name: 'bare MCP SDK server',
  bin: BARE_BIN,
  args: [],
  tool: 'echo',
  env: {},
};

/** Spawns `side` on this Node, stderr discarded, and connects an SDK client. */
async function connect(side: StdioSide): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [side.bin, ...side.args],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...side.env },
    stderr: 'ignore',
  });
  const client = new Client({ name: 'hardened-mcp-bench', version: '0' });
  await client.connect(transport);
  return client;
}

async function callOk(client: Client, tool: string): Promise<void> {
  const r = await client.callTool({ name: tool, arguments: {} });
  if (r.isError) throw new Error(`${tool} failed: ${JSON.stringify(r.content).slice(0, 200)}`);
}

/** p50 latency (ms) of `n` sequential calls. */
function latency(client: Client, tool: string, n: number): () => Promise<number> {
  return async () => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await callOk(client, tool);
      times.push(performance.now() - t0);
    }
    return median(times);
  };
}

/** Calls per second with {@link IN_FLIGHT} calls in flight, `n` calls in all. */
function throughput(client: Client, tool: string, n: number): () => Promise<number> {
  return async () => {
    let left = n;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (left > 0) {
          left--;
          await callOk(client, tool);
        }
      }),
    );
    return (n / (performance.now() - start)) * 1000;
  };
}

/** ms from spawn to the first `tools/list` answer (the process is then closed). */
function startup(side: StdioSide): () => Promise<number> {
  return async () => {
    const t0 = performance.now();
    const client = await connect(side);
    const tools = await client.listTools();
    const ms = performance.now() - t0;
    if (!tools.tools.some((t) => t.name === side.tool)) throw new Error(`${side.name}: no tool`);
    await client.close();
    return ms;
  };
}

async function overStdio(): Promise<void> {
  const ours = await connect(OURS);
  const bare = await connect(BARE);
  try {
    for (let i = 0; i < 300; i++) {
      await callOk(ours, OURS.tool);
      await callOk(bare, BARE.tool);
    }
    console.log(`\n2. trivial tool over stdio (${STDIO_CALLS} calls per round)`);
    const [bareP50 = [], oursP50 = []] = await interleave([
      latency(bare, BARE.tool, STDIO_CALLS),
      latency(ours, OURS.tool, STDIO_CALLS),
    ]);
    report(
      'p50 latency, one call at a time (target: ours ≤ 1.2× bare)',
      { name: BARE.name, xs: bareP50 },
      { name: OURS.name, xs: oursP50 },
      'ms',
      3,
    );
    summary.push({
      measure: 'stdio p50, ours / bare SDK',
      value: `${(median(oursP50) / median(bareP50)).toFixed(2)}×`,
      target: '≤ 1.2×',
    });
    const [bareRate = [], oursRate = []] = await interleave([
      throughput(bare, BARE.tool, STDIO_CALLS),
      throughput(ours, OURS.tool, STDIO_CALLS),
    ]);
    report(
      `calls/s with ${IN_FLIGHT} in flight (target: ours ≥ 0.8× bare)`,
      { name: BARE.name, xs: bareRate },
      { name: OURS.name, xs: oursRate },
      'calls/s',
      0,
    );
    summary.push({
      measure: `stdio calls/s, ${IN_FLIGHT} in flight, ours / bare SDK`,
      value: `${(median(oursRate) / median(bareRate)).toFixed(2)}×`,
      target: '≥ 0.8×',
    });
  } finally {
    await Promise.all([ours.close(), bare.close()]);
  }
  if (section('3')) await startupSection();
}

/** Section 3: spawn to the first `tools/list`, ours vs bare, interleaved. */
async function startupSection(): Promise<void> {
  console.log(`\n3. startup: spawn to the first tools/list answer (${STARTUPS} per side)`);
  const startups = await interleaver(Math.max(ROUNDS, STARTUPS))([startup(BARE), startup(OURS)]);
  report(
    'startup (target: ours ≤ 2× the reference)',
    { name: BARE.name, xs: startups[0] ?? [] },
    { name: OURS.name, xs: startups[1] ?? [] },
    'ms',
    0,
  );
  summary.push({
    measure: 'example server startup to the first tools/list, ours / bare SDK',
    value: `${(median(startups[1] ?? []) / median(startups[0] ?? [])).toFixed(2)}×`,
    target: '≤ 2×',
  });
}

// ---------------------------------------------------------------------------------------------
// 4. Over Streamable HTTP
// ---------------------------------------------------------------------------------------------

/**
 * The 1-replica part of `http.bench.ts` (`pnpm bench:http` adds 3 replicas behind HAProxy): the
 * Postgres server over Streamable HTTP vs the bare SDK HTTP server, 16 clients, req/s.
 */
async function overHttp(): Promise<void> {
  console.log(
    `\n4. Streamable HTTP, ${HTTP_ROUNDS} rounds of ${HTTP_SECONDS} s per side (PostgreSQL: ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded'})`,
  );
  const ratios = await runHttpBench({
    replicas: false,
    seconds: HTTP_SECONDS,
    rounds: HTTP_ROUNDS,
  });
  for (const r of ratios) {
    const [what, target] = r.label.includes('SELECT 1')
      ? ['SELECT 1 through PostgreSQL', '≥ 0.5×']
      : r.label.includes('trivial')
        ? ['trivial tool (example server)', '≥ 0.8×']
        : ['postgres_list_schemas (a catalog query)', 'none; for reference'];
    summary.push({
      measure: `HTTP req/s at ${process.env.BENCH_CLIENTS ?? 16} concurrent, ours / bare SDK, ${what}`,
      value: `${median(r.rps).toFixed(2)}×`,
      target,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// --profile
// ---------------------------------------------------------------------------------------------

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
}

async function profile(): Promise<void> {
  const audit = await AuditLog.open({ sinks: { stderr: true }, stderrStream: nullStream });
  const pipeline = pipelineWith(audit);
  const echo = pipelineCall(pipeline, 'bench_echo', echoArgs);
  const table = pipelineCall(pipeline, 'bench_rows', tableArgs);
  await warm([echo, table], 2000);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  await perCall(echo, CALLS)();
  await perCall(table, CALLS / 4)();
  const { profile: cpu } = await session.post('Profiler.stop');
  session.disconnect();
  await audit.close();
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-bench-profile-'));
  const file = join(dir, 'pipeline.cpuprofile');
  writeFileSync(file, JSON.stringify(cpu));
  const byId = new Map((cpu.nodes as ProfileNode[]).map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const id of cpu.samples ?? []) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const where =
      frame.url === ''
        ? ''
        : ` ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
    const key = `${frame.functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = cpu.samples?.length ?? 1;
  console.log(`CPU profile of the in-process hot path written to ${file}`);
  console.log('most self time:');
  for (const [key, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`  ${((100 * n) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
}

// ---------------------------------------------------------------------------------------------

console.log(
  `hardened-mcp benchmark suite, Node ${process.version}, ${ROUNDS} interleaved rounds; medians (min–max). The machine may be shared: compare ratios.`,
);
if (PROFILE) {
  await profile();
} else {
  if (section('1')) await inProcess();
  if (section('2')) await overStdio();
  else if (section('3')) await startupSection();
  if (section('3b')) await cedarSection({ calls: CALLS, interleave, report });
  if (section('4')) await overHttp();
  if (section('5') && process.env.BENCH_POSTGRES !== '0') {
    const { postgresBench } = await import('./postgres.bench.ts');
    summary.push(...(await postgresBench()));
  }
  if (section('6')) summary.push(...redactionSection(ROUNDS));
  printSummary(summary);
}
