/**
 * How much the enforcement pipeline adds to a tool call.
 *
 * Baseline: the tool's own work (execute) plus serializing its rows, which any server does.
 * Pipeline: the same tool through every step (identity, enablement, scopes, zod input, policy,
 * rate limit, execute, redaction of every cell, byte caps, the fence, a hash-chained audit
 * record to a null sink). Prints µs per call and the ratio to the baseline, in the same run.
 *
 * The Cedar policy step: the same pipeline with access control and 50 Cedar policies (one permit,
 * 49 forbids over principal, resource and context attributes that do not match), printed as the
 * median µs of the policy evaluation alone (the engine, which evaluates a slice of the set with a
 * trimmed request, and the reference: the whole request against the whole set; uncached and
 * cached) and as a ratio of whole pipelines with and without it. `pnpm bench` (section 4) has
 * the interleaved version with a realistic set.
 *
 * Run: pnpm bench (builds first). No thresholds: this prints, tests never assert timings.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { z } from 'zod';
import {
  ALLOW,
  AuditLog,
  classificationConfigSchema,
  createAccessControl,
  createClassifier,
  createLogger,
  createMemoryRateLimiter,
  createMemoryTaintStore,
  createPipeline,
  createPolicyEngine,
  createRedactor,
  generateCedarSchema,
  NO_APPROVAL_CHANNEL,
  type PolicyEngine,
  policiesConfigSchema,
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
  resource: {
    type: 'Table',
    attributes: { schema: 'String', table: 'String', department: 'String' },
    of: () => ({
      id: 'public.customer',
      attrs: { schema: 'public', table: 'customer', department: 'sales' },
      classify: ['public.customer.email', 'public.customer.city'],
    }),
  },
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

// 50 policies: one permit and 49 forbids that do not apply to the bench principal.
const policyFile = join(mkdtempSync(join(tmpdir(), 'hmcp-bench-')), 'bench.cedar');
const policyLines = ['@id("p0") permit(principal, action, resource);'];
for (let i = 1; i < 50; i++)
  policyLines.push(
    i % 2 === 0
      ? `@id("p${i}") forbid(principal, action, resource is Hmcp::Table) when { resource.department == "d${i}" && principal.department != "d${i}" };`
      : `@id("p${i}") forbid(principal in Hmcp::Role::"r${i}", action, resource) when { context.time.hour > 25 || context.classification > ${i % 4} };`,
  );
writeFileSync(policyFile, policyLines.join('\n'));
const engine = await createPolicyEngine({
  files: [policyFile],
  schema: generateCedarSchema([tool]),
});
const referenceEngine = await createPolicyEngine({
  files: [policyFile],
  schema: generateCedarSchema([tool]),
  slicing: false,
});
const classification = classificationConfigSchema.parse({
  labels: { 'public.customer.email': 'confidential' },
  clearance: { default: 'confidential' },
  taint: { threshold: 'restricted' },
});
const withCedar = createPipeline({
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
  access: createAccessControl({
    serverName: 'bench',
    classifier: createClassifier(classification.labels, classification.default),
    classification,
    policies: policiesConfigSchema.parse({}),
    engine,
    taint: createMemoryTaintStore(60),
    limits: { maxRows: 1000, maxBytes: 1024 * 1024 },
  }),
});
const cedarIdentity = { ...identity, attributes: { department: 'sales' } };
async function throughCedarPipeline(): Promise<number> {
  const r = await withCedar.callTool({
    name: 'bench_list_rows',
    arguments: args,
    identity: cedarIdentity,
    approval: NO_APPROVAL_CHANNEL,
    signal,
  });
  return JSON.stringify(r).length;
}
/**
 * Median µs of one Cedar decision (the request as the access step builds it): `repeat` asks the
 * same request again (the cached answer, as for a principal repeating a call within a minute);
 * otherwise every request differs (a new principal each time: a full Wasm evaluation).
 */
function cedarMedian(engine: PolicyEngine, repeat: boolean): number {
  const request = {
    principal: { type: 'Hmcp::Principal', id: 'bench' },
    action: 'bench_list_rows',
    resource: { type: 'Hmcp::Table', id: 'public.customer' },
    context: {
      time: { epoch: 1_796_000_000, hour: 10, minute: 0, weekday: 1 },
      transport: 'stdio',
      client: '',
      classification: 2,
      label: 'confidential',
      approval: 'none',
      tainted: false,
    },
    entities: [
      {
        uid: { type: 'Hmcp::Principal', id: 'bench' },
        attrs: {
          roles: ['reader'],
          groups: [],
          department: 'sales',
          clearance: 2,
          clearanceLabel: 'confidential',
        },
        parents: [{ type: 'Hmcp::Role', id: 'reader' }],
      },
      {
        uid: { type: 'Hmcp::Table', id: 'public.customer' },
        attrs: {
          schema: 'public',
          table: 'customer',
          department: 'sales',
          classification: 2,
          label: 'confidential',
        },
        parents: [],
      },
    ],
  };
  if (!engine.authorize(request).allowed) throw new Error('bench request should be allowed');
  const n = Math.min(ITERATIONS, 20_000);
  const samples = new Float64Array(n);
  const variant = (i: number) =>
    repeat
      ? request
      : {
          ...request,
          principal: { type: 'Hmcp::Principal', id: `bench-${i}` },
          entities: [
            { ...request.entities[0], uid: { type: 'Hmcp::Principal', id: `bench-${i}` } },
            request.entities[1],
          ],
        };
  for (let i = 0; i < n / 10; i++) engine.authorize(variant(-i - 1));
  for (let i = 0; i < n; i++) {
    const r = variant(i);
    const t = performance.now();
    engine.authorize(r);
    samples[i] = (performance.now() - t) * 1000;
  }
  samples.sort();
  return samples[Math.floor(n / 2)] ?? 0;
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
const cedarFull = await measure(throughCedarPipeline);
const reference = cedarMedian(referenceEngine, false);
const sliced = cedarMedian(engine, false);
console.log(
  `  Cedar, 50 policies, median:       ${sliced.toFixed(1)} µs (distinct requests, uncached: slice + trimmed request), ${cedarMedian(engine, true).toFixed(1)} µs (repeated request, cached decision)`,
);
console.log(
  `  Cedar reference, median:          ${reference.toFixed(1)} µs (whole request, whole set; the engine takes ${(sliced / reference).toFixed(2)}× that)`,
);
console.log(
  `  pipeline + Cedar + classification: ${cedarFull.toFixed(1)} µs/call (${(cedarFull / full).toFixed(2)}× the pipeline without Cedar, +${(cedarFull - full).toFixed(1)} µs)`,
);
await audit.close();
