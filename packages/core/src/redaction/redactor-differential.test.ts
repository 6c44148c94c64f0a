/**
 * Differential fuzz test: the redactor with all its shortcuts (normalization fast paths, hints,
 * gates, long-text digit-run jumps, the table loop that strips invisible characters from long
 * texts) must give exactly the output and counts of {@link createReferenceRedactor}, which runs
 * every detector on plainly normalized text. Seeded and bounded, so it is repeatable and runs in
 * a few seconds; a failure prints the seed and the input.
 */
import { describe, expect, it } from 'vitest';
import { mayHoldCard, mayHoldUkNino, mayHoldUsSsn } from './patterns.js';
import {
  createRedactor,
  createReferenceRedactor,
  normalizeForMatching,
  type Redactor,
} from './redactor.js';

/** Deterministic PRNG (mulberry32). */
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

/** Generator of strings built from pieces that come near every detector's edges. */
function generator(seed: number): { text: () => string; int: (n: number) => number } {
  const rand = prng(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const digits = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(48 + int(10));
    return s;
  };
  /** `body` plus its Luhn check digit (ISO/IEC 7812-1 Annex B) */
  const luhn = (body: string): string => {
    let sum = 0;
    for (let i = 0; i < body.length; i++) {
      let d = body.charCodeAt(body.length - 1 - i) - 48;
      if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    return `${body}${(10 - (sum % 10)) % 10}`;
  };
  const pieces: readonly (() => string)[] = [
    () => digits(1 + int(20)),
    () => luhn(`4${digits(14)}`),
    () => luhn(pick(['5', '37', '6011', '62', '35', '2221']) + digits(11 + int(4))),
    () => `${digits(4)}${pick([' ', '-'])}${digits(4)} ${digits(4)} ${digits(4)}`,
    () => `${luhn(`4${digits(14)}`)}.${'0'.repeat(1 + int(3))}`,
    () => `${digits(3)}-${digits(2)}-${digits(4)}`,
    () => pick(['GB82 WEST 1234 5698 7654 32', 'GB82WEST12345698765432', 'NL91ABNA0417164300']),
    () => pick(['DE89 3704 0044 0532 0130 00', 'NL91 ABNA 0417 1643 00', 'nl91abna0417164300']),
    () => `${pick(['GB', 'DE', 'FR', 'XX', 'gb'])}${digits(2)}${pick([' ', ''])}${digits(4)}`,
    () =>
      `+${digits(1 + int(3))}${pick([' ', '-', '.', ' (0) '])}${digits(2 + int(3))} ${digits(3 + int(5))}`,
    () => `(${digits(2 + int(3))}) ${digits(3)}-${digits(4)}`,
    () => `0${digits(3)}${pick([' ', '-', '\u2013'])}${digits(7)}`,
    () => `${digits(3)}${pick(['.', '-'])}${digits(3)}.${digits(4)}`,
    () => pick(['AB 12 34 56 C', 'QQ123456C', 'JG103759A']),
    () =>
      `${pick(['user', 'a.b', 'x+y', 'Jürgen'])}${int(99)}@${pick(['example.com', 'b.co', '2x.png', 'host', 'xn--bcher-kva.de'])}`,
    () => pick(['@', '.', 'git@github.com:', 'https://u:pw@host.io/db', 'postgres://a:b@c/d']),
    () => pick(['password=', 'Pwd=hunter22;', '"api_key": "', 'token: abcdefgh12', 'PWD=/home/x']),
    () => pick(['Bearer abcdefghij1234567890', 'Authorization: Basic dXNlcjpwYXNz', 'secret=']),
    () => pick(['AKIAABCDEFGHIJKLMNOP', `ghp_${'a1'.repeat(18)}`, 'xoxb-1234567890-abc']),
    () => pick(['sk_live_abcdefghij1', 'sk-proj-abc123def456ghi789jkl', `AIza${'x'.repeat(35)}`]),
    () => pick(['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig', '<password>x1</password>']),
    () => '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----',
    () => pick([' ', ' ', ' ', '-', '(', ')', '+', ':', '=', '<', '\t', '\n', ',', '_', '/']),
    () => pick(['the', 'of', 'Luís', 'Gonçalves', 'key', 'pass', 'auth', 'bearer', 'Total', 'ZZ']),
    () => pick(['\u200b', '\u00ad', '\ufeff', '\u2060', '\u034f', '\u{E0041}', '\u061c']),
    () => pick(['４', '１２３', '＠', '\u2010', '\u2013', 'ﬁ', 'Ⅻ', '①', '\u0663']),
    () => pick(['\ud800', '\udc00', '😀', 'é', 'e\u0301', '漢字', 'Ĳ', 'ſ']),
    // the edges of the shape pre-checks (mayHoldCard, mayHoldUsSsn, mayHoldUkNino): what may
    // precede a number, first digits in and out of 2–6 (cards) and 9 (SSN areas), mixed or
    // missing separators, capitals or not before a NINO's digits
    () =>
      `${pick(['', ' ', '+', '-', '.', '_', 'a', 'é', '(', '/', '\u0663', '\u00b2', '#'])}${luhn(pick(['1', '2', '3', '4', '5', '6', '7', '9']) + digits(11 + int(5)))}`,
    () =>
      `${pick(['', ' ', '+', '-', '.', '_', 'x', '9', '\u00e9', ':'])}${pick(['0', '1', '5', '8', '9'])}${digits(2)}${pick([' ', '-', '.', '\u2010'])}${digits(2)}${pick([' ', '-', ''])}${digits(4)}${pick(['', ' ', '5', '.1', '-1', 'a', '_'])}`,
    () =>
      `${pick(['', ' ', 'x', '_', '1', '\u00e9', '('])}${pick(['AB', 'QQ', 'JG', 'ab', 'Ab', 'ZZ', 'CE', 'GB'])}${pick(['', ' ', '  '])}${digits(2)}${pick(['', ' '])}${digits(2)}${pick(['', ' '])}${digits(2)}${pick(['', ' '])}${pick(['A', 'C', 'D', 'E', ''])}`,
  ];
  // pieces without the card-length digit runs (the first five and the last three), for
  // prose-like long texts whose digit runs stay short, so the long-text hints are exact rather
  // than saturated
  const fewDigits = pieces.slice(5, -3);
  const text = (): string => {
    const mode = rand();
    // mostly cell-sized texts, some past the short-text loop (512) and the regex strip (4096)
    const size = mode < 0.7 ? 1 + int(40) : mode < 0.95 ? 40 + int(700) : 700 + int(6000);
    const prose = size > 512 && rand() < 0.5;
    let s = '';
    while (s.length < size) {
      s += prose
        ? `${pick(['the', 'of', 'and', 'to', 'Total:', '12:30', 'v1.2'])} ${rand() < 0.1 ? `${(fewDigits[int(fewDigits.length)] as () => string)()} ` : ''}`
        : (pieces[int(pieces.length)] as () => string)();
    }
    return rand() < 0.3 ? s.slice(int(Math.max(1, s.length >> 2))) : s;
  };
  return { text, int };
}

function expectSame(fast: Redactor, reference: Redactor, text: string, seed: number): void {
  const got = fast.redactString(text);
  const want = reference.redactString(text);
  if (got.value !== want.value || JSON.stringify(got.counts) !== JSON.stringify(want.counts)) {
    // the full input only on failure, so the case can be replayed
    expect({ seed, text, ...got }).toEqual({ seed, text, ...want });
  }
}

describe('redactor against its reference (no shortcuts)', () => {
  const known = ['s3cr3t-v4lue-123', 'hunter2hunter2'];
  const pairs: [string, Redactor, Redactor][] = [
    ['defaults', createRedactor(), createReferenceRedactor()],
    [
      'known secrets',
      createRedactor({ knownSecrets: known }),
      createReferenceRedactor({ knownSecrets: known }),
    ],
    ['PII off', createRedactor({ pii: false }), createReferenceRedactor({ pii: false })],
  ];

  for (const [name, fast, reference] of pairs) {
    it(`gives the same output and counts on generated strings (${name})`, () => {
      for (const seed of [1, 2, 3, 4]) {
        const { text } = generator(seed);
        for (let i = 0; i < 1500; i++) expectSame(fast, reference, text(), seed);
      }
    });
  }

  it('gives the same output on long texts dense with invisible or non-ASCII characters', () => {
    const [, fast, reference] = pairs[0] as [string, Redactor, Redactor];
    const { text, int } = generator(99);
    const inputs = [
      '\u200b４'.repeat(20_000),
      `ab\u200b\ud80012 `.repeat(5_000),
      `x\u{E0041}4 \u00ad`.repeat(4_000),
      `GB82 ${'1'.repeat(30)} a@b.co `.repeat(2_000),
      `call ４１１１ １１１１ １１１１ １１１１ at \ufeffa@b.co ${'٣'.repeat(9)} `.repeat(500),
    ];
    for (let i = 0; i < 20; i++) {
      let s = '';
      while (s.length < 5_000 + int(20_000)) s += text();
      inputs.push(s);
    }
    for (const s of inputs) expectSame(fast, reference, s, 99);
  });

  it('exercises the shape pre-checks both ways, and each holds wherever its detector finds something', () => {
    // the differential tests above prove the shortcuts change nothing only if the generated texts
    // make them skip detectors: require many rejections of texts with 9+ digits, and check each
    // shape check is a necessary condition of its type on the reference's findings
    const reference = createReferenceRedactor();
    const checks: [string, (text: string) => boolean][] = [
      ['card_number', mayHoldCard],
      ['us_ssn', mayHoldUsSsn],
      ['uk_nino', mayHoldUkNino],
    ];
    const rejected = new Map<string, number>();
    const found = new Map<string, number>();
    const { text } = generator(7);
    for (let i = 0; i < 6000; i++) {
      const raw = text();
      const normalized = normalizeForMatching(raw);
      if (normalized.length > 512 || (normalized.match(/\d/g)?.length ?? 0) < 9) continue;
      const { counts } = reference.redactString(raw);
      for (const [type, check] of checks) {
        const holds = check(normalized);
        if ((counts[type] ?? 0) > 0) {
          found.set(type, (found.get(type) ?? 0) + 1);
          // a finding of the type, but the pre-check says none can exist: the shortcut would lose it
          if (!holds) expect({ type, raw }).toEqual({ type, raw, holds: true });
        } else if (!holds) {
          rejected.set(type, (rejected.get(type) ?? 0) + 1);
        }
      }
    }
    for (const [type] of checks) {
      expect(found.get(type) ?? 0, `${type} findings`).toBeGreaterThan(50);
      expect(rejected.get(type) ?? 0, `${type} rejections`).toBeGreaterThan(500);
    }
  });
});
