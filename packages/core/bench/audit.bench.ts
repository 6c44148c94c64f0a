/**
 * What durable audit costs per tool call, as a ratio to the in-memory pipeline.
 *
 * The same small read tool goes through the whole pipeline with the audit record written:
 * - in memory (baseline): to a null stream, no file;
 * - to a file with `durability: fsync` (one write + fdatasync per record);
 * - to a file with `durability: group` (the default: one write + fdatasync per batch of the
 *   records that arrived while the previous sync ran),
 * each with 1 call in flight and with CONCURRENCY calls in flight. The files live in a temp
 * directory (BENCH_AUDIT_DIR to choose the disk; the file system type is printed: on tmpfs a
 * sync costs nothing, so measure on the disk you deploy on). BENCH_AUDIT_ORDER=group-first
 * swaps the order of the two file modes (on a busy disk the second one measured tends to be
 * slower). No thresholds: this prints.
 *
 * Run: pnpm bench:audit (builds first).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { z } from 'zod';
import {
  AuditLog,
  type AuditLogOptions,
  createLogger,
  createMemoryRateLimiter,
  createPipeline,
  createRedactor,
  defineTool,
  NO_APPROVAL_CHANNEL,
} from '../dist/index.js';

const CALLS = Number(process.env.BENCH_AUDIT_CALLS ?? 2_000);
const CONCURRENCY = Number(process.env.BENCH_AUDIT_CONCURRENCY ?? 16);
const dir = mkdtempSync(join(process.env.BENCH_AUDIT_DIR ?? tmpdir(), 'hmcp-audit-bench-'));

const tool = defineTool({
  name: 'bench_get_row',
  title: 'Bench',
  description: 'Returns one fixed row.',
  access: 'read',
  scopes: ['bench:read'],
  credential: 'read',
  output: 'table',
  input: z.strictObject({ id: z.int() }),
  policy: () => ({ ok: true }),
  execute: async () => ({
    kind: 'table',
    columns: [
      { name: 'id', type: 'int4' },
      { name: 'name', type: 'text' },
    ],
    rows: [[1, 'AC/DC']],
    truncated: false,
  }),
});

const nullStream = new Writable({ write: (_c, _e, cb) => cb() });
const redactor = createRedactor();
const identity = { principal: 'bench', roles: ['reader'], transport: 'stdio' as const, client: {} };
const signal = new AbortController().signal;

async function run(label: string, options: AuditLogOptions, inFlight: number): Promise<number> {
  const audit = await AuditLog.open(options);
  const pipeline = createPipeline({
    server: { name: 'bench', version: '0' },
    dataSource: 'the bench',
    tools: [tool as never],
    mode: 'read-only',
    roles: { reader: ['bench:read'] },
    handles: { read: 'handle' },
    limits: { maxRows: 1000, maxBytes: 1024 * 1024 },
    redactor,
    audit,
    rateLimiter: createMemoryRateLimiter({ points: 1e9, durationSeconds: 60 }),
    logger: createLogger('silent', redactor, nullStream),
  });
  const call = (i: number) =>
    pipeline.callTool({
      name: 'bench_get_row',
      arguments: { id: i },
      identity,
      approval: NO_APPROVAL_CHANNEL,
      signal,
    });
  for (let i = 0; i < Math.min(200, CALLS / 10); i++) await call(i); // warm-up
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < CALLS) await call(next++);
    }),
  );
  const us = ((performance.now() - start) * 1000) / CALLS;
  await audit.close();
  void label;
  return us;
}

let fsType = 'unknown';
try {
  fsType = execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim();
} catch {
  // not Linux coreutils
}

console.log(
  `audit durability benchmark: ${CALLS} calls through the whole pipeline, Node ${process.version}, ` +
    `audit files on ${fsType} (${dir})`,
);
const rows: Array<[string, number]> = [];
for (const inFlight of [1, CONCURRENCY]) {
  const base = await run('memory', { sinks: { stderr: true }, stderrStream: nullStream }, inFlight);
  rows.push([`in memory (baseline), ${inFlight} in flight`, base]);
  for (const durability of (process.env.BENCH_AUDIT_ORDER === 'group-first'
    ? ['group', 'fsync']
    : ['fsync', 'group']) as Array<'fsync' | 'group'>) {
    const file = join(dir, `${durability}-${inFlight}.jsonl`);
    const us = await run(durability, { sinks: { file }, durability }, inFlight);
    rows.push([`file, durability ${durability}, ${inFlight} in flight`, us]);
  }
  for (const [label, us] of rows.splice(0)) {
    console.log(
      `  ${label.padEnd(40)} ${us.toFixed(1).padStart(8)} µs/call  (${(us / base).toFixed(1)}× the in-memory pipeline)`,
    );
  }
}
rmSync(dir, { recursive: true, force: true });
