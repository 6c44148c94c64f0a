import { describe, expect, it } from 'vitest';
import { type AuditEntry, auditEntrySchema } from './audit-record.js';
import { isAuditEntryShape } from './entry-shape.js';

const HEX = 'a'.repeat(64);

/** Every field set, as the pipeline builds a record of a classified, noted call. */
const FULL: AuditEntry = {
  server: { name: 'hardened-mcp-example', version: '1.0.0' },
  principal: 'alice',
  roles: ['reader'],
  client: { name: 'c', version: '1' },
  transport: 'stdio',
  tool: 'example_list_folders',
  access: 'read',
  arguments: { path: '/x', n: [1, 2] },
  decision: { result: 'allowed', approval: 'not_required', policies: ['p1'] },
  classification: { label: 'restricted', paths: ['a.b.c'] },
  outcome: 'success',
  durationMs: 0.125,
  rows: 3,
  bytes: 120,
  truncated: false,
  redactions: { email: 2 },
  errorClass: undefined,
  bearerCredential: { field: 'url', sha256: HEX },
  correlationId: '5f0c1f0e-2d8b-4a57-9d8e-8f6d3c2b1a00',
  session: { mcpSessionId: 's', requestId: 7, intent: 'why', client: { name: 'c' } },
  resultSha256: HEX,
  notes: { droppedOutOfScope: 2, cached: true, kind: 'x' },
};

/** The fewest fields: a refusal at the HTTP edge. */
const MINIMAL: AuditEntry = {
  server: { name: 's', version: '0' },
  principal: 'unauthenticated',
  roles: [],
  client: {},
  transport: 'http',
  tool: 'http:authenticate',
  access: 'none',
  arguments: {},
  decision: { result: 'denied', reason: 'invalid_token' },
  outcome: 'denied',
  durationMs: 0,
  redactions: {},
  correlationId: 'x',
};

const sym = Symbol('k');
const getterThrows = Object.defineProperty({}, 'name', {
  enumerable: true,
  get() {
    throw new Error('boom');
  },
});

/** Values each field is tried with: valid and invalid ones, including the edges of each rule. */
const TRIALS: Record<string, unknown[]> = {
  server: [undefined, null, [], {}, { name: 's' }, { name: 1, version: '1' }, getterThrows],
  principal: [undefined, 1, '', 'bob'],
  roles: [undefined, 'reader', [1], ['a', 'b'], [], new Array(2)],
  client: [undefined, null, [], { name: 1 }, { version: 'v' }, getterThrows],
  transport: ['stdio', 'http', 'internal', 'sse', undefined],
  tool: [undefined, 2, 'x'],
  access: ['read', 'write', 'none', 'admin', undefined],
  arguments: [undefined, null, 1, 'x', [1], { a: undefined }],
  decision: [
    undefined,
    {},
    { result: 'maybe' },
    { result: 'denied', reason: 1 },
    { result: 'allowed', approval: 'later' },
    { result: 'allowed', policies: Array.from({ length: 64 }, () => 'p') },
    { result: 'allowed', policies: Array.from({ length: 65 }, () => 'p') },
    { result: 'allowed', policies: ['p'.repeat(128)] },
    { result: 'allowed', policies: ['p'.repeat(129)] },
  ],
  classification: [
    undefined,
    null,
    { label: 'secret' },
    { label: 'public' },
    { label: 'restricted', paths: Array.from({ length: 256 }, () => 'a') },
    { label: 'restricted', paths: Array.from({ length: 257 }, () => 'a') },
    { label: 'restricted', paths: ['a'.repeat(1025)] },
  ],
  outcome: ['success', 'error', 'denied', 'ok', undefined],
  durationMs: [0, -0, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, '1', undefined],
  rows: [undefined, 0, 1.5, -1, 2 ** 53, Number.NaN, '1'],
  bytes: [undefined, 0, 10, -3, 0.1],
  truncated: [undefined, true, 0, 'yes'],
  redactions: [
    undefined,
    null,
    [],
    {},
    { email: 1 },
    { email: -1 },
    { email: 0.5 },
    { email: '1' },
    { [sym]: 1 },
    Object.defineProperty({}, 'hidden', { value: -1, enumerable: false }),
    // Not plain objects: zod's record refuses them, so must the shortcut.
    new Map(),
    new Date(0),
    /x/,
    new Number(5),
    new String(''),
    new (class Counts {})(),
    Object.create(null) as object,
  ],
  errorClass: [undefined, 'internal', 5],
  bearerCredential: [
    undefined,
    { field: 'u', sha256: HEX },
    { field: 'u', sha256: HEX.toUpperCase() },
    { field: 'u', sha256: 'a'.repeat(63) },
    { sha256: HEX },
  ],
  correlationId: [undefined, 'c', 1],
  session: [
    undefined,
    {},
    null,
    { requestId: 'r'.repeat(256) },
    { requestId: 'r'.repeat(257) },
    { requestId: Number.POSITIVE_INFINITY },
    { requestId: true },
    { mcpSessionId: 's'.repeat(257) },
    { intent: 'i'.repeat(1024) },
    { intent: 'i'.repeat(1025) },
    { client: null },
    { client: { name: 2 } },
  ],
  resultSha256: [undefined, HEX, 'A'.repeat(64), `${HEX}\n`, 1],
  notes: [
    undefined,
    {},
    { goodKey: 1 },
    { BadKey: 1 },
    { k: Number.NaN },
    { k: 's'.repeat(201) },
    { k: 's'.repeat(202) },
    { k: null },
    { k: { nested: 1 } },
    { [`a${'b'.repeat(39)}`]: 1 },
    { [`a${'b'.repeat(40)}`]: 1 },
    { [sym]: 1 },
    new Map(),
    new Date(0),
    new (class Notes {})(),
  ],
};

/** The schema's verdict (it throws on a throwing getter: that counts as refused). */
function schemaAccepts(entry: unknown): boolean {
  try {
    return auditEntrySchema.safeParse(entry).success;
  } catch {
    return false;
  }
}

/** The property under test: the shortcut never accepts what the schema refuses. */
function expectSound(entry: unknown): boolean {
  const fast = isAuditEntryShape(entry);
  if (fast) expect(schemaAccepts(entry)).toBe(true);
  return fast;
}

describe('isAuditEntryShape', () => {
  it('accepts the records the pipeline builds (so the schema is skipped on the hot path)', () => {
    expect(expectSound(FULL)).toBe(true);
    expect(expectSound(MINIMAL)).toBe(true);
  });

  it('never accepts an entry the schema refuses: one field changed at a time', () => {
    let accepted = 0;
    let refusedByBoth = 0;
    for (const base of [FULL, MINIMAL])
      for (const [key, values] of Object.entries(TRIALS))
        for (const value of values) {
          const entry = { ...base, [key]: value };
          if (expectSound(entry)) accepted++;
          else if (!schemaAccepts(entry)) refusedByBoth++;
        }
    // Both kinds occur, so the table exercises each side of every rule.
    expect(accepted).toBeGreaterThan(50);
    expect(refusedByBoth).toBeGreaterThan(50);
  });

  it('never accepts an entry the schema refuses: many fields changed at once (seeded)', () => {
    let seed = 14;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    const keys = Object.keys(TRIALS);
    for (let i = 0; i < 3000; i++) {
      const entry: Record<string, unknown> = { ...(i % 2 === 0 ? FULL : MINIMAL) };
      for (let k = next() % 4; k >= 0; k--) {
        const key = keys[next() % keys.length] as string;
        const values = TRIALS[key] as unknown[];
        entry[key] = values[next() % values.length];
      }
      expectSound(entry);
    }
  });

  it('answers false, without throwing, for non-objects and throwing getters', () => {
    for (const v of [undefined, null, 1, 'x', [], getterThrows])
      expect(isAuditEntryShape(v)).toBe(false);
    const trap = new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    expect(isAuditEntryShape(trap)).toBe(false);
  });
});
