/**
 * The redaction section of `pnpm bench` (issue 14): dense-PII table cells and sparse text in
 * MB/s per core, each with its ratio to the target (≥ 50 and ≥ 100 MB/s) and to a baseline
 * measured in the same interleaved run, and the adversarial shapes' cost ratio between 1 MiB and
 * 4 MiB inputs (linear ≈ 4×). The measurements themselves live in
 * `packages/core/bench/redaction.bench.ts` (`pnpm bench:redaction` runs them alone, with larger
 * adversarial inputs), so both commands print the same workloads.
 */
import { runRedactionBench } from '../../packages/core/bench/redaction.bench.ts';

/**
 * Prints the redaction section with `rounds` interleaved rounds per measurement (medians).
 * Needs `@hardened-mcp/core` built (`pnpm bench` builds it). Throws nothing of its own.
 */
export function redactionSection(rounds: number): void {
  console.log('\n6. Redaction, CPU time per core (packages/core/bench/redaction.bench.ts)');
  runRedactionBench({ rounds, adversarialMiB: [1, 4] });
}
