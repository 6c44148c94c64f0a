/**
 * The redaction section of `pnpm bench` (issue 14): dense-PII table cells and sparse text in
 * MB/s per core, each with its ratio to the target (≥ 50 and ≥ 100 MB/s) and to a baseline
 * measured in the same interleaved run, and the adversarial shapes' cost ratio between 1 MiB and
 * 4 MiB inputs (linear ≈ 4×). The measurements themselves live in
 * `packages/core/bench/redaction.bench.ts` (`pnpm bench:redaction` runs them alone, with larger
 * adversarial inputs), so both commands print the same workloads.
 *
 * The section runs that file in a child process (same Node binary), as a server runs its
 * redactor: in the suite's own process the earlier sections have created many pipelines and
 * redactors with other options and fed them other shapes of input, which leaves the shared
 * redaction code optimized for all of them (about 20% slower on dense cells in a measurement of
 * that effect alone) and makes the result depend on what ran before.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import type { SummaryLine } from './stats.ts';

const BENCH_FILE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'packages',
  'core',
  'bench',
  'redaction.bench.ts',
);

/**
 * Prints the redaction section with `rounds` interleaved rounds per measurement (medians), from
 * a child process running `packages/core/bench/redaction.bench.ts` with 1 and 4 MiB adversarial
 * inputs. Needs `@hardened-mcp/core` built (`pnpm bench` builds it). Prints a line instead of
 * throwing when the child fails. Returns the section's lines for the closing summary (from a
 * JSON file the child writes to `BENCH_SUMMARY_FILE`).
 */
export function redactionSection(rounds: number): SummaryLine[] {
  console.log('\n6. Redaction, CPU time per core (packages/core/bench/redaction.bench.ts)');
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-bench-redaction-'));
  const summaryFile = join(dir, 'summary.json');
  try {
    const child = spawnSync(process.execPath, [BENCH_FILE], {
      stdio: 'inherit',
      env: {
        ...process.env,
        BENCH_ROUNDS: String(rounds),
        BENCH_ADVERSARIAL_MIB: '1,4',
        BENCH_SUMMARY_FILE: summaryFile,
      },
    });
    if (child.status !== 0) {
      console.log(`  redaction bench failed (exit ${child.status ?? child.signal ?? child.error})`);
      return [{ measure: 'redaction', value: 'failed', target: 'see section 6' }];
    }
    const r = JSON.parse(readFileSync(summaryFile, 'utf8')) as {
      denseMBps: number;
      sparseMBps: number;
      worstGrowth: number;
      failed: number;
    };
    return [
      {
        measure: 'redaction, dense-PII cells',
        value: `${r.denseMBps.toFixed(1)} MB/s`,
        target: '≥ 50 MB/s',
      },
      {
        measure: 'redaction, sparse text',
        value: `${r.sparseMBps.toFixed(1)} MB/s`,
        target: '≥ 100 MB/s',
      },
      {
        measure: 'redaction, adversarial: worst time growth / size growth (1 MiB → 4 MiB)',
        value: `${r.worstGrowth.toFixed(2)}×`,
        target: '≈ 1× (linear)',
      },
      { measure: 'redaction, adversarial shapes that threw', value: String(r.failed), target: '0' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
