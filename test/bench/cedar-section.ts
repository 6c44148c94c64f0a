/**
 * `pnpm bench`, section 4: what the Cedar policy step costs (issue 15: at most 100 µs per call at
 * the median with 50 policies, as a ratio to the pipeline without Cedar). Called from
 * suite.bench.ts with its interleaving and printing, so the numbers read like the rest.
 *
 * - One decision alone, per-call median (wall µs, `performance.now` around each call, median of
 *   the calls of a round, then median of the rounds): the engine (slices narrowed by the
 *   request's resource, trimmed requests)
 *   vs the reference evaluation (whole request, whole set, Cedar checking the schema), both on
 *   requests that never repeat (a new principal each call: no cached decision), for 50 policies
 *   shaped like real ones and for 50 synthetic ones that no action slice or resource guard can
 *   shrink; and the repeated request (the decision cache).
 * - The pipeline on a tool that declares a Table resource, median wall µs per call (median of
 *   the calls of a round, median of the rounds): without the access step, with it but without
 *   Cedar, and with Cedar and the 50 realistic policies, uncached (a new principal each call)
 *   and cached (one principal). Medians leave out the garbage collector's pauses, which the
 *   suite's CPU-time means include.
 *
 * Prints only: no thresholds, and tests never assert timings.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import {
  ALLOW,
  AuditLog,
  type CedarRequest,
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
  type Tool,
  toolKit,
} from '@hardened-mcp/core';
import { z } from 'zod';

/** What the suite lends this section: its interleaving and its A/B line. */
export interface CedarSectionOptions {
  readonly calls: number;
  readonly interleave: (sides: readonly (() => Promise<number>)[]) => Promise<number[][]>;
  readonly report: (
    label: string,
    a: { name: string; xs: number[] },
    b: { name: string; xs: number[] },
    unit: string,
    digits?: number,
  ) => void;
}

const kit = toolKit<string>('bench');
const table = {
  type: 'Table',
  attributes: { schema: 'String', table: 'String', department: 'String' },
} as const;
const folder = { type: 'Folder', attributes: { folder: 'String', department: 'String' } } as const;
const json = { output: 'json' as const, input: z.strictObject({ table: z.string().max(64) }) };
const ok = async () => ({ kind: 'json' as const, data: { ok: true } });
const tableOf = (i: { table: string }) => {
  const [schema = '', name = ''] = i.table.split('.');
  return {
    id: i.table,
    attrs: { schema, table: name, department: schema },
    classify: [i.table],
  };
};
const folderOf = (i: { table: string }) => ({
  id: i.table,
  attrs: { folder: i.table, department: 'sales' },
});
const read = (name: string, resource: object) =>
  kit.read({
    name,
    title: name,
    description: `${name}.`,
    ...json,
    policy: () => ALLOW,
    execute: ok,
    resource,
  } as never);
const write = (name: string, resource: object | undefined, egress = false) =>
  kit.write({
    name,
    title: name,
    description: `${name}.`,
    ...json,
    policy: () => ALLOW,
    execute: ok,
    describeChange: () => name,
    egress,
    ...(resource ? { resource } : {}),
  } as never);
/** A connector-like tool set: tables, documents, a channel. */
const tools = [
  read('query', { ...table, of: tableOf }),
  read('list_tables', { ...table, of: tableOf }),
  read('describe_table', { ...table, of: tableOf }),
  read('export_csv', { ...table, of: tableOf }),
  write('insert_row', { ...table, of: tableOf }),
  write('delete_rows', { ...table, of: tableOf }),
  read('read_doc', { ...folder, of: folderOf }),
  write('write_doc', { ...folder, of: folderOf }),
  write('post_message', undefined, true),
  kit.read({
    name: 'list_channels',
    title: 'list_channels',
    description: 'list_channels.',
    ...json,
    policy: () => ALLOW,
    execute: ok,
  }),
] as Tool<string>[];
const TEAMS = [
  'sales',
  'hr',
  'finance',
  'ops',
  'legal',
  'support',
  'eng',
  'data',
  'it',
  'sec',
  'mkt',
  'exec',
];
const A = (tool: string) => `Hmcp::Action::"bench_${tool}"`;

/** 50 policies shaped like a deployment's: the shipped examples and per-tool, per-role, per-team rules. */
const REALISTIC = [
  '@id("base-permit") permit(principal, action, resource);',
  '@id("business-hours-writes") forbid(principal, action in Hmcp::Action::"write", resource) unless { context.time.weekday >= 1 && context.time.weekday <= 5 && context.time.hour >= 8 && context.time.hour < 18 };',
  '@id("restricted-needs-approval") @approval("required") forbid(principal, action in Hmcp::Action::"read", resource) when { context.classification >= 3 } unless { context.approval == "approved" };',
  '@id("incident-responder-window") forbid(principal in Hmcp::Role::"incident-responder", action, resource) when { context.classification > 1 && (context.time.epoch < 1796083200 || context.time.epoch >= 1796688000) };',
  '@id("folder-departments") forbid(principal, action, resource is Hmcp::Folder) when { resource.department != "" && resource.department != principal.department } unless { principal in Hmcp::Role::"incident-responder" };',
  '@id("table-departments") forbid(principal, action in Hmcp::Action::"write", resource is Hmcp::Table) when { resource.department != principal.department };',
  '@id("tainted-egress") forbid(principal, action in Hmcp::Action::"egress", resource) when { context.tainted };',
  `@id("export-analysts") forbid(principal, action == ${A('export_csv')}, resource) unless { principal in Hmcp::Role::"analyst" };`,
  `@id("delete-admins") forbid(principal, action == ${A('delete_rows')}, resource) unless { principal in Hmcp::Role::"admin" };`,
  '@id("contractor-labels") forbid(principal in Hmcp::Role::"contractor", action, resource) when { context.classification > 1 };',
  '@id("contractor-writes") forbid(principal in Hmcp::Role::"contractor", action in Hmcp::Action::"write", resource);',
  '@id("http-write-clients") forbid(principal, action in Hmcp::Action::"write", resource) when { context.transport == "http" && !(context.client like "agent-*") };',
  '@id("payroll") forbid(principal, action, resource == Hmcp::Table::"hr.payroll") unless { principal.department == "hr" };',
  '@id("pii-schema") forbid(principal, action, resource is Hmcp::Table) when { resource.schema == "pii" && !principal.groups.contains("pii-readers") };',
  '@id("night-confidential") forbid(principal, action in Hmcp::Action::"read", resource) when { context.classification >= 2 && (context.time.hour < 6 || context.time.hour >= 22) };',
  '@id("auditors-read") permit(principal in Hmcp::Role::"auditor", action in Hmcp::Action::"read", resource);',
  '@id("anonymous-http") forbid(principal, action, resource is Hmcp::Server) when { context.client == "" && context.transport == "http" };',
  `@id("legacy-service") forbid(principal == Hmcp::Principal::"svc-legacy", action in Hmcp::Action::"write", resource);`,
  ...TEAMS.map(
    (t) =>
      `@id("team-${t}-docs") forbid(principal in Hmcp::Role::"team-${t}", action in Hmcp::Action::"write", resource is Hmcp::Folder) when { resource.department != "${t}" };`,
  ),
  ...TEAMS.slice(0, 10).map(
    (t) =>
      `@id("schema-${t}") forbid(principal, action in Hmcp::Action::"read", resource is Hmcp::Table) when { resource.schema == "${t}" && !principal.groups.contains("${t}-readers") };`,
  ),
  ...[
    'query',
    'list_tables',
    'describe_table',
    'export_csv',
    'insert_row',
    'delete_rows',
    'read_doc',
    'write_doc',
    'post_message',
    'list_channels',
  ].map(
    (tool, i) =>
      `@id("clearance-${tool}") forbid(principal, action == ${A(tool)}, resource) when { principal.clearance < ${i % 3} };`,
  ),
];

/**
 * 50 policies no action slice can shrink (every action unconstrained): 25 role-scoped. The
 * resource test comes second in its condition, so no resource guard narrows them either: the
 * case where slicing helps least.
 */
const SYNTHETIC = [
  '@id("p0") permit(principal, action, resource);',
  ...Array.from({ length: 49 }, (_, j) => {
    const i = j + 1;
    return i % 2 === 0
      ? `@id("p${i}") forbid(principal, action, resource is Hmcp::Table) when { principal.department != "d${i}" && resource.department == "d${i}" };`
      : `@id("p${i}") forbid(principal in Hmcp::Role::"r${i}", action, resource) when { context.time.hour > 25 || context.classification > ${i % 4} };`;
  }),
];

const ROLES = ['analyst', 'team-sales'];
/** The access step's request for `bench_query` on `sales.orders` by principal `u<i>`. */
function request(i: number): CedarRequest {
  const principal = { type: 'Hmcp::Principal', id: `u${i}` };
  const resource = { type: 'Hmcp::Table', id: 'sales.orders' };
  return {
    principal,
    action: 'bench_query',
    resource,
    context: {
      time: { epoch: 1_796_000_040, hour: 10, minute: 14, weekday: 2 },
      transport: 'stdio',
      client: '',
      classification: 2,
      label: 'confidential',
      approval: 'none',
      tainted: false,
    },
    entities: [
      {
        uid: principal,
        attrs: {
          roles: ROLES,
          groups: ['sales-readers'],
          department: 'sales',
          clearance: 2,
          clearanceLabel: 'confidential',
        },
        parents: ROLES.map((id) => ({ type: 'Hmcp::Role', id })),
      },
      {
        uid: resource,
        attrs: {
          schema: 'sales',
          table: 'orders',
          department: 'sales',
          classification: 2,
          label: 'confidential',
        },
        parents: [],
      },
    ],
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Median wall µs of one decision over `n` calls (`repeat`: the same request every time). */
function decisionMedian(engine: PolicyEngine, n: number, start: { i: number }, repeat: boolean) {
  return async (): Promise<number> => {
    const samples = new Float64Array(n);
    const same = request(-1);
    for (let k = 0; k < n; k++) {
      const r = repeat ? same : request(start.i++);
      const t = performance.now();
      engine.authorize(r);
      samples[k] = (performance.now() - t) * 1000;
    }
    samples.sort();
    return samples[n >> 1] ?? Number.NaN;
  };
}

async function engineFor(dir: string, name: string, policies: readonly string[], slicing: boolean) {
  const file = join(dir, `${name}.cedar`);
  writeFileSync(file, policies.join('\n'));
  const engine = await createPolicyEngine({
    files: [file],
    schema: generateCedarSchema(tools as Tool<unknown>[]),
    slicing,
  });
  const answer = engine.authorize(request(-2));
  if (!answer.allowed) throw new Error(`the bench request should be allowed by the ${name} set`);
  return engine;
}

/** Prints section 4 (see the module comment). */
export async function cedarSection(options: CedarSectionOptions): Promise<void> {
  const { calls, interleave, report } = options;
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-bench-cedar-'));
  const nullStream = new Writable({ write: (_c, _e, cb) => cb() });
  const audit = await AuditLog.open({ sinks: { stderr: true }, stderrStream: nullStream });
  try {
    const realistic = await engineFor(dir, 'realistic', REALISTIC, true);
    const realisticRef = await engineFor(dir, 'realistic', REALISTIC, false);
    const synthetic = await engineFor(dir, 'synthetic', SYNTHETIC, true);
    const syntheticRef = await engineFor(dir, 'synthetic', SYNTHETIC, false);
    const n = Math.max(200, Math.floor(calls / 10));
    const counter = { i: 0 };
    const sides = [
      decisionMedian(realisticRef, n, counter, false),
      decisionMedian(realistic, n, counter, false),
      decisionMedian(syntheticRef, n, counter, false),
      decisionMedian(synthetic, n, counter, false),
      decisionMedian(realistic, n, counter, true),
    ];
    for (const side of sides) await side(); // warm-up (and each engine's slices prepared)
    console.log(
      `\n3b. Cedar policy step, 50 policies (target: ≤ 100 µs per call at the median); ${n} decisions per round`,
    );
    const [ref = [], sliced = [], synRef = [], syn = [], cached = []] = await interleave(sides);
    report(
      `one decision, 50 realistic policies, a new principal each call (uncached), median wall µs; ${realistic.stats().slices} slices prepared, narrowed by the resource: ${realistic.stats().narrowed > 0 ? 'yes' : 'no'}`,
      { name: 'reference: whole request and set', xs: ref },
      { name: 'engine: slice + trimmed request', xs: sliced },
      'µs',
    );
    report(
      `one decision, 50 synthetic policies no action slice or resource guard shrinks (25 role-scoped), uncached; ${synthetic.stats().slices} slices`,
      { name: 'reference: whole request and set', xs: synRef },
      { name: 'engine: slice + trimmed request', xs: syn },
      'µs',
    );
    report(
      'one decision, the same request repeated (decision cache)',
      { name: 'engine, uncached', xs: sliced },
      { name: 'engine, cached', xs: cached },
      'µs',
      2,
    );

    // The pipeline on bench_query, without and with the access step and the realistic set.
    const redactor = createRedactor();
    const classification = classificationConfigSchema.parse({
      labels: { 'sales.orders': 'confidential' },
      clearance: { default: 'confidential' },
      taint: { threshold: 'restricted' },
    });
    const limits = { maxRows: 1000, maxBytes: 1024 * 1024 };
    const pipelineWith = (access: boolean, engine: PolicyEngine | undefined) =>
      createPipeline({
        server: { name: 'bench', version: '0' },
        dataSource: 'the bench',
        tools,
        mode: 'read-write',
        roles: { analyst: ['bench:read'], 'team-sales': [] },
        clients: { read: 'handle', write: 'handle' },
        limits,
        redactor,
        audit,
        rateLimiter: createMemoryRateLimiter({ points: 1e12, durationSeconds: 60 }),
        logger: createLogger('silent', redactor, nullStream),
        ...(access
          ? {
              access: createAccessControl({
                serverName: 'bench',
                classifier: createClassifier(classification.labels, classification.default),
                classification,
                policies: policiesConfigSchema.parse({}),
                engine,
                taint: createMemoryTaintStore(60),
                limits,
                now: () => Date.parse('2026-12-08T10:14:00Z'),
              }),
            }
          : {}),
      });
    const plain = pipelineWith(false, undefined);
    const classified = pipelineWith(true, undefined);
    const withCedar = pipelineWith(true, realistic);
    const signal = new AbortController().signal;
    const identity = (i: number) => ({
      principal: `p${i}`,
      roles: ROLES,
      transport: 'stdio' as const,
      client: {},
      attributes: { department: 'sales', groups: ['sales-readers'] },
    });
    const fixed = identity(-1);
    const args = { table: 'sales.orders' };
    let next = 0;
    /** Median wall µs of one call over a round (the measure: the median call). */
    const perCall = (pipeline: typeof plain, repeat: boolean) => async (): Promise<number> => {
      const m = Math.max(200, Math.floor(calls / 10));
      const samples = new Float64Array(m);
      for (let k = 0; k < m; k++) {
        const id = repeat ? fixed : identity(next++);
        const t = performance.now();
        const r = await pipeline.callTool({
          name: 'bench_query',
          arguments: args,
          identity: id,
          approval: NO_APPROVAL_CHANNEL,
          signal,
        });
        samples[k] = (performance.now() - t) * 1000;
        if (r.kind !== 'result' || r.result.isError)
          throw new Error('the bench call should succeed');
      }
      samples.sort();
      return samples[m >> 1] ?? Number.NaN;
    };
    const pipes = [
      perCall(plain, false),
      perCall(classified, false),
      perCall(withCedar, false),
      perCall(withCedar, true),
    ];
    for (const p of pipes) await p();
    const [none = [], access = [], uncached = [], repeated = []] = await interleave(pipes);
    const added = (xs: number[], base: number[]) => {
      const d = median(xs) - median(base);
      return `${d >= 0 ? '+' : ''}${d.toFixed(1)} µs`;
    };
    report(
      `pipeline on bench_query (a Table resource), median wall µs per call, a new principal each call; Cedar adds ${added(uncached, access)}`,
      { name: 'pipeline + access step, no Cedar', xs: access },
      { name: 'pipeline + Cedar (50), uncached', xs: uncached },
      'µs',
    );
    report(
      `the same, against the pipeline without the access step (classification, taint, Cedar): ${added(uncached, none)}`,
      { name: 'pipeline without access step', xs: none },
      { name: 'pipeline + Cedar (50), uncached', xs: uncached },
      'µs',
    );
    report(
      `pipeline on bench_query, one principal repeating the call (decision cache): ${added(repeated, access)}`,
      { name: 'pipeline + access step, no Cedar', xs: access },
      { name: 'pipeline + Cedar (50), cached', xs: repeated },
      'µs',
    );
  } finally {
    await audit.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
