import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from './audit-log.js';
import { GENESIS_HASH } from './audit-record.js';
import {
  type AuditChainVerification,
  canonicalJson,
  computeRecordHash,
  hashAndSerializeRecord,
  verifyAuditChain,
  verifyAuditFile,
} from './hash-chain.js';
import { entry, line, memorySink, parse, resign, tempDir } from './test-support/fixtures.js';

describe('canonicalJson', () => {
  it('sorts keys recursively and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('is independent of key insertion order', () => {
    expect(canonicalJson({ a: 1, b: { c: 2, d: 3 } })).toBe(
      canonicalJson({ b: { d: 3, c: 2 }, a: 1 }),
    );
  });

  it('omits undefined properties and nulls undefined array items, like JSON.stringify', () => {
    expect(canonicalJson({ a: undefined, b: null, c: [undefined, () => 1], d: () => 1 })).toBe(
      '{"b":null,"c":[null,null]}',
    );
  });

  it('sorts keys by UTF-16 code units and escapes strings as JSON.stringify', () => {
    expect(canonicalJson({ é: 1, Z: 2, a: 3, '\u2028': 'line\nbreak "q"' })).toBe(
      `{"Z":2,"a":3,"é":1,${JSON.stringify('\u2028')}:${JSON.stringify('line\nbreak "q"')}}`,
    );
  });

  it('serializes numbers as JavaScript does and non-finite numbers as null', () => {
    expect(canonicalJson([1, 1.5, -0, 1e21, 1e-7, Number.NaN, Number.POSITIVE_INFINITY])).toBe(
      '[1,1.5,0,1e+21,1e-7,null,null]',
    );
  });

  it('honours toJSON and unwraps boxed primitives', () => {
    const when = new Date('2025-01-02T03:04:05.678Z');
    expect(canonicalJson({ when, s: new String('x'), n: new Number(2) })).toBe(
      '{"n":2,"s":"x","when":"2025-01-02T03:04:05.678Z"}',
    );
  });

  it('accepts shared (non-circular) references', () => {
    const shared = { k: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"k":1},"b":{"k":1}}');
  });

  it('throws TypeError for cycles, bigints and an undefined top level', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(TypeError);
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
  });
});

describe('computeRecordHash', () => {
  it('is the SHA-256 of the canonical JSON without the hash field', () => {
    const rec = { b: 2, a: 1 };
    const expected = createHash('sha256').update('{"a":1,"b":2}').digest('hex');
    expect(computeRecordHash(rec)).toBe(expected);
    expect(computeRecordHash({ ...rec, hash: 'anything' })).toBe(expected);
  });
});

/** Five chained lines produced by the real logger. */
async function chainLines(n = 5): Promise<string[]> {
  const sink = memorySink();
  const log = await AuditLog.open({ sinks: { extra: [sink] } });
  for (let i = 0; i < n; i++) log.record(entry(i));
  await log.close();
  return [...sink.lines];
}

function expectFailure(
  result: AuditChainVerification,
  expected: { code: string; line: number; records: number },
): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect({ code: result.code, line: result.line, records: result.records }).toEqual(expected);
  expect(result.message.length).toBeGreaterThan(0);
}

describe('verifyAuditChain', () => {
  let lines: string[];
  beforeEach(async () => {
    lines = await chainLines();
  });

  it('accepts an intact chain and reports the last hash', async () => {
    const result = await verifyAuditChain(lines);
    expect(result).toEqual({
      ok: true,
      records: 5,
      lastHash: parse(lines[4]!).hash,
      checkpoints: 0,
      afterLastCheckpoint: 5,
    });
  });

  it('accepts an empty chain', async () => {
    expect(await verifyAuditChain([])).toEqual({
      ok: true,
      records: 0,
      lastHash: GENESIS_HASH,
      checkpoints: 0,
      afterLastCheckpoint: 0,
    });
  });

  it('accepts async iterables', async () => {
    async function* gen() {
      yield* lines;
    }
    expect(await verifyAuditChain(gen())).toMatchObject({ ok: true, records: 5 });
  });

  it('tolerates trailing empty lines (text split on newlines)', async () => {
    const text = `${lines.join('\n')}\n`;
    expect(await verifyAuditChain(text.split('\n'))).toMatchObject({ ok: true, records: 5 });
  });

  it('detects an edited field (hash_mismatch at that line)', async () => {
    const rec = parse(lines[2]!);
    lines[2] = line({ ...rec, principal: 'someone-else' });
    expectFailure(await verifyAuditChain(lines), { code: 'hash_mismatch', line: 3, records: 2 });
  });

  it('detects an edit inside the arguments', async () => {
    const rec = parse(lines[2]!);
    lines[2] = line({ ...rec, arguments: { sql: 'drop table users', limit: 10 } });
    expectFailure(await verifyAuditChain(lines), { code: 'hash_mismatch', line: 3, records: 2 });
  });

  it('detects an edit even when the record is re-signed (chain_broken at the next line)', async () => {
    lines[2] = line(resign({ ...parse(lines[2]!), outcome: 'error' }));
    expectFailure(await verifyAuditChain(lines), { code: 'chain_broken', line: 4, records: 3 });
  });

  it('detects a deleted line (chain_broken where the gap is)', async () => {
    lines.splice(2, 1);
    expectFailure(await verifyAuditChain(lines), { code: 'chain_broken', line: 3, records: 2 });
  });

  it('detects two swapped lines', async () => {
    const [third, fourth] = [lines[2]!, lines[3]!];
    lines[2] = fourth;
    lines[3] = third;
    expectFailure(await verifyAuditChain(lines), { code: 'chain_broken', line: 3, records: 2 });
  });

  it('detects an inserted forged line with its own valid hash but a wrong prevHash', async () => {
    const forged = resign({ ...parse(lines[1]!), principal: 'forger', prevHash: 'a'.repeat(64) });
    lines.splice(2, 0, line(forged));
    expectFailure(await verifyAuditChain(lines), { code: 'chain_broken', line: 3, records: 2 });
  });

  it('detects an inserted forged line linked to its predecessor (breaks the next link)', async () => {
    const prev = parse(lines[1]!);
    const forged = resign({ ...prev, principal: 'forger', seq: 2, prevHash: prev.hash });
    lines.splice(2, 0, line(forged));
    expectFailure(await verifyAuditChain(lines), { code: 'chain_broken', line: 4, records: 3 });
  });

  it('detects a changed genesis prevHash (bad_genesis), re-signed or not', async () => {
    const first = parse(lines[0]!);
    const resigned = [line(resign({ ...first, prevHash: 'f'.repeat(64) })), ...lines.slice(1)];
    expectFailure(await verifyAuditChain(resigned), { code: 'bad_genesis', line: 1, records: 0 });

    const edited = [line({ ...first, prevHash: 'f'.repeat(64) }), ...lines.slice(1)];
    expectFailure(await verifyAuditChain(edited), { code: 'hash_mismatch', line: 1, records: 0 });
  });

  it('detects a removed head of the chain (bad_genesis)', async () => {
    expectFailure(await verifyAuditChain(lines.slice(2)), {
      code: 'bad_genesis',
      line: 1,
      records: 0,
    });
  });

  it('detects a seq gap in an otherwise consistently re-signed chain', async () => {
    const records = lines.map(parse) as Record<string, unknown>[];
    let prevHash = GENESIS_HASH;
    const forged = records.map((r, i) => {
      const signed = resign({ ...r, seq: i < 3 ? i : i + 1, prevHash });
      prevHash = signed.hash as string;
      return line(signed);
    });
    expectFailure(await verifyAuditChain(forged), { code: 'seq_gap', line: 4, records: 3 });
  });

  it('detects a genesis record whose seq is not 0', async () => {
    const forged = [line(resign({ ...parse(lines[0]!), seq: 1 }))];
    expectFailure(await verifyAuditChain(forged), { code: 'seq_gap', line: 1, records: 0 });
  });

  it('reports unparseable lines without echoing their content', async () => {
    lines[1] = '{"secret":"hunter2", not json';
    const result = await verifyAuditChain(lines);
    expectFailure(result, { code: 'parse_error', line: 2, records: 1 });
    expect(result.ok || result.message).not.toContain('hunter2');
  });

  it('reports a torn last line as parse_error', async () => {
    lines[4] = lines[4]!.slice(0, 40);
    expectFailure(await verifyAuditChain(lines), { code: 'parse_error', line: 5, records: 4 });
  });

  it('reports records that are valid JSON but not v1 audit records', async () => {
    const { correlationId: _dropped, ...rest } = parse(lines[0]!);
    const result = await verifyAuditChain([line(resign(rest)), ...lines.slice(1)]);
    expectFailure(result, { code: 'parse_error', line: 1, records: 0 });
    expect(result.ok || result.message).toContain('correlationId');
    expectFailure(await verifyAuditChain(['[1,2,3]']), {
      code: 'parse_error',
      line: 1,
      records: 0,
    });
  });

  it('reports an empty line inside the chain', async () => {
    lines.splice(2, 0, '');
    expectFailure(await verifyAuditChain(lines), { code: 'parse_error', line: 3, records: 2 });
  });

  it('refuses a string (not lines)', async () => {
    await expect(verifyAuditChain(lines.join('\n'))).rejects.toThrow(TypeError);
  });
});

describe('verifyAuditFile', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    tmp = await tempDir();
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('streams a file and verifies it', async () => {
    const lines = await chainLines(20);
    const path = tmp.file('audit.jsonl');
    await writeFile(path, `${lines.join('\n')}\n`);
    expect(await verifyAuditFile(path)).toEqual({
      ok: true,
      records: 20,
      lastHash: parse(lines[19]!).hash,
      checkpoints: 0,
      afterLastCheckpoint: 20,
    });
  });

  it('reports tampering with the file line number', async () => {
    const lines = await chainLines(6);
    lines.splice(4, 1);
    const path = tmp.file('audit.jsonl');
    await writeFile(path, `${lines.join('\n')}\n`);
    expectFailure(await verifyAuditFile(path), { code: 'chain_broken', line: 5, records: 4 });
  });

  it('rejects with the fs error for a missing file', async () => {
    await expect(verifyAuditFile(tmp.file('missing.jsonl'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });
});

describe('hashAndSerializeRecord', () => {
  const records: Record<string, unknown>[] = [
    {
      v: 1,
      seq: 3,
      prevHash: 'a'.repeat(64),
      arguments: { z: 1, '10': 'ten', '9': [1, undefined, 'x'], __proto__x: null },
      decision: { result: 'allowed', reason: undefined },
      outcome: 'success',
      errorClass: undefined,
      time: new Date(0),
    },
    { access: 'read', arguments: { b: 2, a: 1 } },
    { outcome: 'denied', zz: [] },
    {},
    { hash: 'stale', tool: 't' },
  ];
  it('gives the hash computeRecordHash gives and the canonical line with that hash', () => {
    for (const r of records) {
      const { hash, line } = hashAndSerializeRecord(r);
      expect(hash).toBe(computeRecordHash(r));
      expect(line).toBe(canonicalJson({ ...r, hash }));
      expect(JSON.parse(line).hash).toBe(hash);
    }
  });
});
