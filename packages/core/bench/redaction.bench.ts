/**
 * Redaction throughput and linearity.
 *
 * Workloads (generated with a fixed seed, no external data):
 *  - dense PII table cells: customer rows where most cells hold an e-mail, phone, card number,
 *    IBAN or SSN, redacted with `redactTable` (the pipeline's path for SQL results);
 *  - sparse text: prose in 4 KiB strings with one finding per ~16 KiB, redacted with
 *    `redactString`;
 *  - adversarial shapes (digit runs, `@` storms, long token-shaped strings, …) at two sizes:
 *    the time ratio between the sizes shows whether the cost is linear (≈ the size ratio).
 *
 * MB/s counts UTF-8 bytes of the input (for tables: of `JSON.stringify(rows)`), 1 MB = 10^6
 * bytes. Each workload prints the ratio against a baseline measured in the same run, on the
 * same data: `JSON.stringify` of the rows for tables, a `String.prototype.indexOf` scan of
 * every string for text. Times are the process's CPU time (user + system), so "per core" holds
 * on a shared machine; rounds alternate baseline and redaction (A, B, A, B …) after three
 * warm-up calls per side (one for adversarial shapes) and the median round is reported, for
 * dense cells with the slowest and fastest round. Dense cells are flat strings, as a driver
 * delivers them (see `flatCells`).
 *
 * Each throughput line also prints the ratio to issue 14's target (dense cells ≥ 50 MB/s, sparse
 * text ≥ 100 MB/s per core).
 *
 * Run: pnpm bench:redaction (builds first). BENCH_ROUNDS (default 5), BENCH_HUGE=1 (adds a
 * 64 MiB adversarial input) and BENCH_ADVERSARIAL_MIB (the two adversarial sizes, default `4,16`)
 * tune it. BENCH_REDACTION_COMPARE=<path to another build's
 * `dist/index.js` or `dist/redaction/index.js`> adds that build's redactor as a third side of
 * every interleaved round (before/after of a change in one run). `pnpm bench` runs the same
 * measurements through {@link runRedactionBench} (test/bench/redaction.bench-part.ts). No
 * thresholds: this prints, tests never assert timings.
 */
import { Buffer } from 'node:buffer';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { createRedactor, type Redactor } from '../dist/index.js';

const MiB = 1024 * 1024;
/** issue 14: redaction of dense-PII table cells, MB/s per core */
export const DENSE_TARGET_MBPS = 50;
/** issue 14: redaction of sparse text, MB/s per core */
export const SPARSE_TARGET_MBPS = 100;

/** Deterministic PRNG (mulberry32) so every run sees the same data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(20261207);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
const digits = (n: number): string =>
  Array.from({ length: n }, () => pick([...'0123456789'])).join('');

/** A Luhn-valid 16-digit Visa-range number (ISO/IEC 7812-1 Annex B check digit). */
function cardNumber(): string {
  const body = `4${digits(14)}`;
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = body.charCodeAt(body.length - 1 - i) - 48;
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return `${body}${(10 - (sum % 10)) % 10}`;
}

const FIRST = ['Luís', 'Leonie', 'François', 'Bjørn', 'František', 'Helena', 'Astrid', 'Daan'];
const LAST = ['Gonçalves', 'Köhler', 'Tremblay', 'Hansen', 'Wichterlová', 'Holý', 'Gruber'];
const CITY = ['São José dos Campos', 'Stuttgart', 'Montréal', 'Oslo', 'Prague', 'Vienne'];
const DOMAIN = ['embraer.com.br', 'surfeu.de', 'gmail.com', 'jetbrains.com', 'yahoo.co.uk'];

export const TABLE_COLUMNS = [
  'id',
  'name',
  'city',
  'email',
  'phone',
  'card',
  'iban',
  'ssn',
  'note',
];
export function tableRows(n: number): unknown[][] {
  return Array.from({ length: n }, (_, i) => {
    const first = pick(FIRST);
    return [
      i + 1,
      `${first} ${pick(LAST)}`,
      pick(CITY),
      `${first.toLowerCase().normalize('NFD').replace(/\p{M}/gu, '')}${i}@${pick(DOMAIN)}`,
      pick([
        `+55 (12) ${digits(4)}-${digits(4)}`,
        `+49 0711 ${digits(7)}`,
        `(555) ${digits(3)}-${digits(4)}`,
      ]),
      cardNumber(),
      'GB82 WEST 1234 5698 7654 32',
      `${pick(['123', '078', '219'])}-${digits(2).replace('00', '12')}-${digits(3)}7`,
      `call ${first} at ${first.toLowerCase()}@${pick(DOMAIN)} about invoice ${digits(6)}`,
    ];
  });
}

/**
 * `rows` with every string cell flat, as a database driver delivers them (decoded from a
 * buffer). The template literals of {@link tableRows} build ropes (V8 cons strings); V8
 * flattens a rope the first time a regex or `JSON.stringify` reads it and the garbage collector
 * later drops the indirection, at points of the run that depend on what ran before, so the same
 * cells would cost different amounts from one round to the next.
 */
function flatCells(rows: readonly unknown[][]): unknown[][] {
  return rows.map((row) =>
    row.map((cell) => (typeof cell === 'string' ? Buffer.from(cell).toString() : cell)),
  );
}

const WORDS =
  'the of and to in is was for on that with as by it from at his an were are which this be or has had not but they their one been all its new more other who also than after into first two when time'.split(
    ' ',
  );
function sparseChunks(totalBytes: number, chunk: number): string[] {
  const out: string[] = [];
  let size = 0;
  let sinceFinding = 0;
  while (size < totalBytes) {
    const words: string[] = [];
    let len = 0;
    while (len < chunk) {
      let w = pick(WORDS);
      if (sinceFinding > 16 * 1024) {
        w = pick([`mail ${pick(FIRST).toLowerCase()}@example.org`, `card ${cardNumber()}`]);
        sinceFinding = 0;
      } else if (rand() < 0.02) {
        w = pick(['2021-03-04', '12:30', '39.62', 'Total:', '(see p. 12)', 'v1.2.3']);
      }
      words.push(w);
      len += w.length + 1;
      sinceFinding += w.length + 1;
    }
    const s = words.join(' ');
    out.push(s);
    size += s.length;
  }
  return out;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/** CPU time (user + system, ms) that `fn` takes: per-core cost, unaffected by waiting for a core. */
function cpuMs(fn: () => unknown): number {
  const start = process.cpuUsage();
  fn();
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

/**
 * Warm-up calls per side before the dense and sparse measurements: the first call of the dense
 * workload runs at about half speed (interpreter and baseline code), the second is still
 * tiering up; from the third on the optimized code runs. Adversarial shapes take one.
 */
const WARM_UP_CALLS = 3;

/**
 * Runs every side `warmUp` times, then once per round in order (A, B, …), `rounds` times; per
 * side the median CPU ms and the min–max of the rounds.
 */
function interleaved(
  rounds: number,
  sides: readonly (() => unknown)[],
  warmUp = 1,
): { median: number; min: number; max: number }[] {
  for (let i = 0; i < warmUp; i++) for (const side of sides) side();
  const times = sides.map(() => [] as number[]);
  for (let i = 0; i < rounds; i++) {
    for (const [k, side] of sides.entries()) times[k]?.push(cpuMs(side));
  }
  return times.map((ts) => ({ median: median(ts), min: Math.min(...ts), max: Math.max(...ts) }));
}

/** Median CPU ms per side of {@link interleaved}. */
function medians(rounds: number, sides: readonly (() => unknown)[], warmUp = 1): number[] {
  return interleaved(rounds, sides, warmUp).map((t) => t.median);
}

const rate = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const mbps = (bytes: number, ms: number): string => `${rate(bytes, ms).toFixed(1)} MB/s`;

/** Options of {@link runRedactionBench}. */
export interface RedactionBenchOptions {
  /** interleaved rounds per measurement (medians are printed) */
  readonly rounds: number;
  /** where lines go (default `console.log`) */
  readonly print?: (line: string) => void;
  /** adversarial sizes in MiB, small then large (default 4 and 16) */
  readonly adversarialMiB?: readonly [number, number];
  /** add a 64 MiB digit run to the adversarial shapes */
  readonly huge?: boolean;
  /** a second redactor (e.g. another build's) measured as a third side of every round */
  readonly compare?: { readonly name: string; readonly redactor: Redactor };
}

/** What {@link runRedactionBench} measured: MB/s per core, and the adversarial shapes' worst case. */
export interface RedactionBenchResult {
  readonly denseMBps: number;
  readonly sparseMBps: number;
  /** max over the shapes of (large-input time / small-input time) / (large / small size); ≈ 1 is linear */
  readonly worstGrowth: number;
  /** adversarial shapes whose redaction threw */
  readonly failed: number;
}

/**
 * Prints redaction throughput (dense-PII table cells, sparse text) with the ratio to the same
 * run's baseline and to issue 14's targets, and the adversarial shapes' cost ratio between two
 * sizes (linear ≈ the size ratio). Returns the dense and sparse MB/s of this build's redactor,
 * the largest adversarial time ratio divided by the size ratio (≈ 1 when linear) and how many
 * adversarial shapes failed (threw).
 */
export function runRedactionBench(options: RedactionBenchOptions): RedactionBenchResult {
  const { rounds, compare } = options;
  const print = options.print ?? console.log;
  const redactor = createRedactor();
  const other = compare?.redactor;
  const vs = (bytes: number, ours: number, theirs: number | undefined): string =>
    theirs === undefined || compare === undefined
      ? ''
      : `; ${compare.name} ${mbps(bytes, theirs)} (this build ${(theirs / ours).toFixed(2)}× faster)`;
  let denseMBps = 0;
  let sparseMBps = 0;
  let worstGrowth = 0;
  let failed = 0;

  // Dense PII table cells
  {
    const rows = flatCells(tableRows(20_000));
    const bytes = Buffer.byteLength(JSON.stringify(rows));
    const [base, ours, theirs] = interleaved(
      rounds,
      [
        () => JSON.stringify(rows),
        () => redactor.redactTable(TABLE_COLUMNS, rows, {}),
        ...(other === undefined ? [] : [() => other.redactTable(TABLE_COLUMNS, rows, {})]),
      ],
      WARM_UP_CALLS,
    );
    const oursMs = ours?.median ?? 0;
    denseMBps = rate(bytes, oursMs);
    const spread =
      ours === undefined ? '' : ` (rounds ${mbps(bytes, ours.max)}–${mbps(bytes, ours.min)})`;
    print(
      `  dense PII cells   ${rows.length} rows, ${(bytes / 1e6).toFixed(1)} MB: redaction ${mbps(bytes, oursMs)}${spread} = ${(denseMBps / DENSE_TARGET_MBPS).toFixed(2)}× the target (${DENSE_TARGET_MBPS} MB/s); JSON.stringify ${mbps(bytes, base?.median ?? 0)}; redaction takes ${(oursMs / (base?.median ?? 1)).toFixed(1)}× the baseline${vs(bytes, oursMs, theirs?.median)}`,
    );
  }

  // Sparse text
  {
    const chunks = sparseChunks(16 * MiB, 4096);
    const bytes = chunks.reduce((n, s) => n + Buffer.byteLength(s), 0);
    const [base = 0, ours = 0, theirs] = medians(
      rounds,
      [
        () => {
          let n = 0;
          for (const s of chunks) n += s.indexOf('\u0000');
          return n;
        },
        () => {
          for (const s of chunks) redactor.redactString(s);
        },
        ...(other === undefined
          ? []
          : [
              () => {
                for (const s of chunks) other.redactString(s);
              },
            ]),
      ],
      WARM_UP_CALLS,
    );
    sparseMBps = rate(bytes, ours);
    print(
      `  sparse text       ${chunks.length} × 4 KiB, ${(bytes / 1e6).toFixed(1)} MB: redaction ${mbps(bytes, ours)} = ${(sparseMBps / SPARSE_TARGET_MBPS).toFixed(2)}× the target (${SPARSE_TARGET_MBPS} MB/s); indexOf scan ${mbps(bytes, base)}; redaction takes ${(ours / base).toFixed(1)}× the baseline${vs(bytes, ours, theirs)}`,
    );
    const whole = chunks.join(' ');
    const [wbase = 0, wours = 0, wtheirs] = medians(rounds, [
      () => whole.indexOf('\u0000'),
      () => redactor.redactString(whole),
      ...(other === undefined ? [] : [() => other.redactString(whole)]),
    ]);
    print(
      `  sparse text       one ${(whole.length / MiB).toFixed(0)} MiB string: redaction ${mbps(bytes, wours)}; indexOf scan ${mbps(bytes, wbase)}; ${(wours / wbase).toFixed(1)}× the baseline${vs(bytes, wours, wtheirs)}`,
    );
  }

  // Adversarial shapes: time at two sizes (default 4 and 16 MiB); linear cost shows a ratio
  // near the size ratio.
  {
    const [smallMiB, largeMiB] = options.adversarialMiB ?? [4, 16];
    const fill = (unit: string, size: number): string =>
      unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
    const shapes: [string, (size: number) => string][] = [
      ['digit run', (n) => fill('4', n)],
      ['spaced digits', (n) => fill('1 ', n)],
      ['@ storm', (n) => fill('a@', n)],
      ['local part then @', (n) => `${fill('a.', n - 1)}@`],
      ['dotted domain', (n) => `x@${fill('b.', n - 2)}`],
      ['xoxb- token', (n) => `xoxb-${fill('a', n - 5)}`],
      ['ghp_ token', (n) => `ghp_${fill('A', n - 4)}`],
      ['sk- key', (n) => `sk-${fill('a1', n - 3)}`],
      ['Bearer token', (n) => `Bearer ${fill('a1', n - 7)}`],
      ['JWT-shaped', (n) => `eyJ${fill('a.', n - 3)}`],
      ['password keys', (n) => fill('password=', n)],
      ['colon storm', (n) => fill('x: ', n)],
      ['plus digits', (n) => fill('+1 ', n)],
      ['IBAN-like', (n) => fill('GB82 ', n)],
      ['non-ASCII digits', (n) => fill('\u200b４', n)],
    ];
    if (options.huge === true) shapes.push(['64 MiB digit run', () => fill('4', 64 * MiB)]);
    print(
      `  adversarial inputs (${smallMiB} MiB → ${largeMiB} MiB; linear ≈ ${(largeMiB / smallMiB).toFixed(0)}×):`,
    );
    for (const [name, make] of shapes) {
      const small = make(smallMiB * MiB);
      const large = make(largeMiB * MiB);
      const [baseSmall = 0, baseLarge = 0] = medians(rounds, [
        () => small.indexOf('\u0000'),
        () => large.indexOf('\u0000'),
      ]);
      let times: number[];
      try {
        times = medians(rounds, [
          () => redactor.redactString(small),
          () => redactor.redactString(large),
          ...(other === undefined ? [] : [() => other.redactString(large)]),
        ]);
      } catch (err) {
        print(`    ${name.padEnd(18)} FAILED: ${(err as Error).name}: ${(err as Error).message}`);
        failed++;
        continue;
      }
      const [tSmall = 0, tLarge = 0, tOther] = times;
      const bytes = Buffer.byteLength(large);
      worstGrowth = Math.max(worstGrowth, tLarge / tSmall / (largeMiB / smallMiB));
      print(
        `    ${name.padEnd(18)} ${mbps(bytes, tLarge).padStart(12)}  ${largeMiB} MiB / ${smallMiB} MiB time ${(tLarge / tSmall).toFixed(1)}× (indexOf ${(baseLarge / baseSmall).toFixed(1)}×)${tOther === undefined ? '' : `; ${compare?.name} ${mbps(bytes, tOther)}`}`,
      );
    }
  }
  return { denseMBps, sparseMBps, worstGrowth, failed };
}

if (import.meta.main) {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
  const comparePath = process.env.BENCH_REDACTION_COMPARE;
  const compare =
    comparePath === undefined || comparePath === ''
      ? undefined
      : {
          name: 'compared build',
          redactor: (
            (await import(pathToFileURL(resolve(comparePath)).href)) as {
              createRedactor: () => Redactor;
            }
          ).createRedactor(),
        };
  console.log(
    `redaction benchmark, Node ${process.version}, median of ${rounds} interleaved rounds, CPU time per core`,
  );
  const [small = 4, large = 16] = (process.env.BENCH_ADVERSARIAL_MIB ?? '4,16')
    .split(',')
    .map(Number);
  const result = runRedactionBench({
    rounds,
    huge: process.env.BENCH_HUGE === '1',
    compare,
    adversarialMiB: [small, large],
  });
  // `pnpm bench` reads the numbers for its closing summary from this file.
  const summaryFile = process.env.BENCH_SUMMARY_FILE;
  if (summaryFile) writeFileSync(summaryFile, JSON.stringify(result));
}
