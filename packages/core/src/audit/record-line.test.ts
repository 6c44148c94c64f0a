import { describe, expect, it } from 'vitest';
import { canonicalJson, computeRecordHash, hashAndSerializeRecord } from './hash-chain.js';
import { type StampedFields, serializeStampedRecord } from './record-line.js';

/** A record as `AuditLog.#stamp` builds it, every optional field absent. */
function minimal(): StampedFields {
  return {
    v: 1,
    time: '2026-01-02T03:04:05.678Z',
    auditId: '6f1c2a8e-1111-4a2b-9c3d-0123456789ab',
    seq: 0,
    prevHash: '0'.repeat(64),
    server: { name: 'srv', version: '1.0.0' },
    principal: 'alice',
    roles: [],
    client: { name: undefined, version: undefined },
    transport: 'stdio',
    tool: 'x_echo',
    access: 'read',
    arguments: undefined,
    decision: { result: 'allowed', reason: undefined, approval: undefined, policies: undefined },
    classification: undefined,
    outcome: 'success',
    durationMs: 0,
    rows: undefined,
    bytes: undefined,
    truncated: undefined,
    redactions: {},
    errorClass: undefined,
    bearerCredential: undefined,
    correlationId: 'c',
    session: undefined,
    resultSha256: undefined,
    notes: undefined,
  };
}

/** Every optional field present, with values that test escaping, key order and numbers. */
function full(): StampedFields {
  return {
    ...minimal(),
    seq: 41,
    prevHash: 'ab'.repeat(32),
    server: { name: 'srv "q" \\ \u2028', version: '' },
    principal: 'bøb\u0000\u202e',
    roles: ['writer', 'reader', 'Z', '10', '9'],
    client: { name: 'client ☃', version: '9.9' },
    transport: 'http',
    tool: 'x_write',
    access: 'write',
    arguments: {
      z: 1,
      '10': 'ten',
      '9': [1, null, 'x', { b: 2, a: 1 }],
      ['__proto__']: { y: 1e21, x: -0 },
      É: 'accent',
      e: 'plain',
      nested: { list: [true, false, 0.1 + 0.2], empty: {} },
    },
    decision: {
      result: 'denied',
      reason: 'policy_denied',
      approval: 'declined',
      policies: ['p2', 'p1'],
    },
    classification: { label: 'restricted', paths: ['s.t.c', 'a.b'] },
    outcome: 'denied',
    durationMs: 12.345,
    rows: 7,
    bytes: 1024,
    truncated: true,
    redactions: { phone: 1, email: 2, 'withheld:scope': 3 },
    errorClass: 'forbidden',
    bearerCredential: { field: 'url', sha256: 'cd'.repeat(32) },
    correlationId: 'corr',
    session: {
      mcpSessionId: 'sess',
      requestId: 17,
      intent: 'refund [REDACTED:email]',
      client: { name: 'n', version: undefined },
    },
    resultSha256: 'ef'.repeat(32),
    notes: { zeta: 'z', alpha: 1, beta: false },
  };
}

describe('serializeStampedRecord', () => {
  const cases: [string, StampedFields][] = [
    ['minimal', minimal()],
    ['full', full()],
    ['session without client, string request id', { ...full(), session: { requestId: 'r-1' } }],
    [
      'empty decision members, empty classification paths',
      {
        ...minimal(),
        decision: { result: 'allowed' },
        classification: { label: 'public' },
        arguments: { omitted: true, bytes: 9000, sha256: 'f'.repeat(64) },
      },
    ],
    [
      'values the schema would refuse (mutated after validation): the generic path',
      {
        ...full(),
        roles: [{ b: 1, a: 2 } as unknown as string],
        principal: { toJSON: () => 'p' } as unknown as string,
      },
    ],
    [
      'arguments an array, toJSON and undefined members',
      {
        ...minimal(),
        arguments: [undefined, new Date(0), { when: new Date(1), gone: undefined }],
      },
    ],
  ];
  it.each(cases)('%s: the line and hash the generic serializer gives', (_name, record) => {
    const { hash, line } = serializeStampedRecord(record);
    expect(hash).toBe(computeRecordHash(record));
    expect(line).toBe(canonicalJson({ ...record, hash }));
    expect(serializeStampedRecord(record)).toEqual(hashAndSerializeRecord(record));
  });

  it('throws a TypeError for what canonical JSON refuses', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => serializeStampedRecord({ ...minimal(), arguments: cyclic })).toThrow(TypeError);
    expect(() => serializeStampedRecord({ ...minimal(), arguments: { n: 1n } })).toThrow(TypeError);
  });
});
