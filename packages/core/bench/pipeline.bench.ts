/**
 * How much the enforcement pipeline adds to a tool call.
 *
 * Baseline: the tool's own work (execute) plus serializing its rows, which any server does.
 * Pipeline: the same tool through every step (identity, enablement, scopes, zod input, policy,
 * rate limit, execute, redaction of every cell, byte caps, the fence, a hash-chained audit
 * record to a null sink). Prints µs per call and the ratio to the baseline, in the same run.
 *
 * Run: pnpm bench (builds first). No thresholds: this prints, tests never assert timings.
 */
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { z } from 'zod';
import {
  ALLOW,
  AuditLog,
  createLogger,
  createMemoryRateLimiter,
  createPipeline,
  createRedactor,
  NO_APPROVAL_CHANNEL,
  toolKit,
} from '../dist/index.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 20);
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 20_000);

const columns = [
  'customer_id',
  'first_name',
  'last_name',
  'company',
  'city',
  'country',
  'phone',
  'email',
  'total',
].map((name) => ({ name, type: 'text' }));
const rows = Array.from({ length: ROWS }, (_, i) => [
  i + 1,
  'Luís',
  'Gonçalves',
  'Embraer - Empresa Brasileira de Aeronáutica S.A.',
  'São José dos Campos',
  'Brazil',
  '+55 (12) 3923-5555',
  `luisg${i}@embraer.com.br`,
  '39.62',
]);

const tool = toolKit<string>('bench').read({
  name: 'list_rows',
  title: 'Bench',
  description: 'Returns fixed rows.',
  output: 'table',
  input: z.strictObject({
    country: z.string().max(40),
    maxRows: z.int().min(1).max(1000).optional(),
  }),
  policy: () => ALLOW,
  execute: async () => ({ kind: 'table', columns, rows, truncated: false }),
});

const nullStream = new Writable({ write: (_c, _e, cb) => cb() });
const redactor = createRedactor();
const audit = await AuditLog.open({ sinks: { stderr: true }, stderrStream: nullStream });
const pipeline = createPipeline({
  server: { name: 'bench', version: '0' },
  dataSource: 'the bench',
  tools: [tool],
  mode: 'read-only',
  roles: { reader: ['bench:read'] },
  clients: { read: 'handle' },
  limits: { maxRows: 1000, maxBytes: 1024 * 1024 },
  redactor,
  audit,
  rateLimiter: createMemoryRateLimiter({ points: 1e9, durationSeconds: 60 }),
  logger: createLogger('silent', redactor, nullStream),
});
const identity = { principal: 'bench', roles: ['reader'], transport: 'stdio' as const, client: {} };
const signal = new AbortController().signal;
const args = { country: 'Brazil' };

async function baseline(): Promise<number> {
  const out = await tool.execute(args, {
    identity,
    client: 'handle',
    authorized: undefined,
    secrets: { register: () => undefined },
    limits: { maxRows: 1000, maxBytes: 1 << 20 },
    signal,
    correlationId: 'x',
  });
  return JSON.stringify(out).length;
}
async function throughPipeline(): Promise<number> {
  const r = await pipeline.callTool({
    name: 'bench_list_rows',
    arguments: args,
    identity,
    approval: NO_APPROVAL_CHANNEL,
    signal,
  });
  return JSON.stringify(r).length;
}

async function measure(fn: () => Promise<number>): Promise<number> {
  for (let i = 0; i < ITERATIONS / 10; i++) await fn(); // warm-up
  const start = performance.now();
  for (let i = 0; i < ITERATIONS; i++) await fn();
  return ((performance.now() - start) * 1000) / ITERATIONS;
}

const base = await measure(baseline);
const full = await measure(throughPipeline);
console.log(
  `pipeline benchmark: ${ROWS} rows × ${columns.length} columns per call, ${ITERATIONS} calls, Node ${process.version}`,
);
console.log(`  baseline (execute + JSON):        ${base.toFixed(1)} µs/call`);
console.log(`  full pipeline (all 11 steps):     ${full.toFixed(1)} µs/call`);
console.log(
  `  added by the pipeline:            ${(full - base).toFixed(1)} µs/call (${(full / base).toFixed(1)}× the baseline)`,
);
console.log(
  `  per result cell (redaction etc.): ${((full - base) / (ROWS * columns.length)).toFixed(2)} µs`,
);
await audit.close();
