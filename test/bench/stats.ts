/**
 * Statistics and printing shared by the bench suite's sections (issue 14): medians of
 * interleaved rounds with their spread, and A/B lines that print the ratio of medians. Prints
 * only; nothing here asserts a time.
 */

/** One line of a bench's closing summary: a measure, its value (a ratio or a time) and its target. */
export interface SummaryLine {
  readonly measure: string;
  readonly value: string;
  readonly target: string;
}

/** Median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** `median (min–max) unit` of one side's rounds. */
export function spread(xs: readonly number[], unit: string, digits = 1): string {
  return `${median(xs).toFixed(digits)} ${unit} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
}

/** Prints one A/B line: both medians with spread and B/A as a ratio of medians. */
export function report(
  label: string,
  a: { name: string; xs: number[] },
  b: { name: string; xs: number[] },
  unit: string,
  digits = 1,
): void {
  console.log(
    `  ${label}\n    ${a.name.padEnd(34)} ${spread(a.xs, unit, digits)}\n    ${b.name.padEnd(34)} ${spread(b.xs, unit, digits)}\n    ratio ${b.name} / ${a.name}: ${(median(b.xs) / median(a.xs)).toFixed(2)}×`,
  );
}

/**
 * The order in which round `round` (0-based) runs `count` sides: the sides rotated by the round
 * number (two sides: A B, B A, A B …), so no side always runs first. Running first is not
 * neutral: the garbage the previous side left is collected during the next one, and in A/B runs
 * of the redactor the side that ran first in every round measured 3–17% slower.
 */
export function roundOrder(round: number, count: number): number[] {
  return Array.from({ length: count }, (_, k) => (k + round) % count);
}

/**
 * An interleaver for `rounds` rounds: runs every measurement of `sides` once per round, the
 * order rotating each round ({@link roundOrder}), so that the machine's load and the previous
 * side's garbage fall on every side alike; values per side, in round order.
 */
export function interleaver(
  rounds: number,
): (sides: readonly (() => Promise<number>)[]) => Promise<number[][]> {
  return async (sides) => {
    const out = sides.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      for (const i of roundOrder(r, sides.length)) {
        const side = sides[i];
        if (side) out[i]?.push(await side());
      }
    }
    return out;
  };
}

/** Prints the closing summary: one line per measure with its value and target. */
export function printSummary(lines: readonly SummaryLine[]): void {
  console.log('\nsummary (medians of the interleaved rounds above)');
  const width = Math.max(0, ...lines.map((l) => l.measure.length));
  for (const l of lines)
    console.log(`  ${l.measure.padEnd(width)}  ${l.value.padStart(9)}  (target ${l.target})`);
}
