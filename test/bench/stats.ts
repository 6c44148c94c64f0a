/**
 * Statistics and printing shared by the bench suite's sections (issue 14): medians of
 * interleaved rounds with their spread, and A/B lines that print the ratio of medians. Prints
 * only; nothing here asserts a time.
 */

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
 * An interleaver for `rounds` rounds: runs every measurement of `sides` once per round, in
 * order (A, B, A, B …), so that the machine's load falls on every side alike; values per side.
 */
export function interleaver(
  rounds: number,
): (sides: readonly (() => Promise<number>)[]) => Promise<number[][]> {
  return async (sides) => {
    const out = sides.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      for (const [i, side] of sides.entries()) out[i]?.push(await side());
    }
    return out;
  };
}
