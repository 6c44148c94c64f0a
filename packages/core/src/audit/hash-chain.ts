/**
 * Canonical JSON, record hashing and chain verification for the audit trail.
 *
 * @module
 */
import { createHash, hash as sha } from 'node:crypto';
import { open } from 'node:fs/promises';
import { auditRecordSchema, GENESIS_HASH } from './audit-record.js';
import { CHECKPOINT_TOOL, type CheckpointVerifier, checkpointMessage } from './checkpoint.js';

/** `tool` of the record that starts a new file continuing a chain (see `AuditLog`). */
export const CHAIN_CONTINUED_TOOL = 'audit:chain_continued';

/**
 * Serializes `value` deterministically (RFC 8785-like canonical JSON):
 *
 * - object keys are sorted recursively by UTF-16 code units (`Array.prototype.sort` order);
 * - no whitespace;
 * - object properties whose value is `undefined`, a function or a symbol are omitted; in arrays
 *   they become `null`;
 * - otherwise as `JSON.stringify`: `toJSON()` is honoured (so `Date` becomes its ISO string),
 *   boxed primitives are unwrapped, non-finite numbers become `null`, and numbers are written as
 *   JavaScript serializes them (not the RFC 8785 / ES6 number canonicalization of other
 *   languages, though for finite doubles the output is the same).
 *
 * @param value Any JSON-serializable value.
 * @returns The canonical JSON text.
 * @throws TypeError if `value` itself is `undefined`, a function or a symbol (nothing to
 *   serialize), if it contains a `bigint`, or if it contains a circular reference.
 */
export function canonicalJson(value: unknown): string {
  const out = serialize(value, '', new Set());
  if (out === undefined) {
    throw new TypeError(`canonicalJson: a top-level ${typeof value} cannot be serialized`);
  }
  return out;
}

/**
 * The canonical JSON of `value` as the member `key` of an object: as {@link canonicalJson}, but
 * `undefined` (and a function or symbol) yields `undefined` (the member is omitted) instead of a
 * throw. Primitives return before the cycle guard is touched (see `serialize`).
 *
 * @throws TypeError for a `bigint` or a circular structure, as {@link canonicalJson}.
 */
export function canonicalMember(value: unknown, key: string): string | undefined {
  return serialize(value, key, new Set());
}

function serialize(input: unknown, key: string, stack: Set<object>): string | undefined {
  // primitives first: they have no toJSON step (only objects and bigints do) and are most values
  switch (typeof input) {
    case 'string':
      return JSON.stringify(input);
    case 'number':
      return Number.isFinite(input) ? JSON.stringify(input) : 'null';
    case 'boolean':
      return input ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (input === null) return 'null';
  let value: unknown = input;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: (key: string) => unknown }).toJSON(key);
  }
  if (value instanceof Number || value instanceof String || value instanceof Boolean) {
    value = value.valueOf();
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('canonicalJson: a bigint cannot be serialized');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (stack.has(obj)) throw new TypeError('canonicalJson: circular structure');
  stack.add(obj);
  try {
    if (Array.isArray(obj)) {
      let out = '[';
      for (let i = 0; i < obj.length; i++) {
        if (i > 0) out += ',';
        out += serialize(obj[i], String(i), stack) ?? 'null';
      }
      return `${out}]`;
    }
    const record = obj as Record<string, unknown>;
    let out = '{';
    for (const k of sortedKeys(record)) {
      const v = serialize(record[k], k, stack);
      if (v === undefined) continue;
      if (out.length > 1) out += ',';
      out += `${quotedKey(k)}:${v}`;
    }
    return `${out}}`;
  } finally {
    stack.delete(obj);
  }
}

/** UTF-16 code unit order, the order of `Array.prototype.sort` without a comparator. */
const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Own enumerable keys of `record` in {@link byCodeUnits} order (no sort when already in order). */
function sortedKeys(record: object): string[] {
  const keys = Object.keys(record);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) return keys.sort(byCodeUnits);
  }
  return keys;
}

/** `JSON.stringify(key)` of recently seen keys (audit records repeat the same few dozen). */
const QUOTED_KEYS = new Map<string, string>();
const QUOTED_KEYS_LIMIT = 1024;
function quotedKey(key: string): string {
  let quoted = QUOTED_KEYS.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (QUOTED_KEYS.size >= QUOTED_KEYS_LIMIT) QUOTED_KEYS.clear();
    if (key.length <= 64) QUOTED_KEYS.set(key, quoted);
  }
  return quoted;
}

/**
 * The record's canonical JSON without `hash` (what {@link computeRecordHash} hashes), its hash,
 * and the canonical JSON of the record with that `hash` added: the line the audit file holds.
 * One serialization instead of two (the `hash` member is spliced in at its sorted place).
 *
 * @param unsigned A record without `hash` (a `hash` property, if any, is ignored).
 * @returns `hash` (64 lowercase hex characters) and `line` (canonical JSON, not yet escaped).
 * @throws TypeError as {@link canonicalJson}.
 */
export function hashAndSerializeRecord(unsigned: object): { hash: string; line: string } {
  // null prototypes keep a `__proto__` key an own property
  const before = Object.create(null) as Record<string, unknown>;
  const after = Object.create(null) as Record<string, unknown>;
  for (const k of Object.keys(unsigned)) {
    if (k === 'hash') continue;
    if (k === 'toJSON') {
      // not a plain record: hash and serialize the reference way
      const hash = computeRecordHash(unsigned);
      return { hash, line: canonicalJson({ ...unsigned, hash }) };
    }
    (k < 'hash' ? before : after)[k] = (unsigned as Record<string, unknown>)[k];
  }
  // canonical JSON of the record is `{` members sorted by key `}`: the members before `hash`
  // and those after it, each serialized once
  const head = canonicalJson(before).slice(1, -1);
  const tail = canonicalJson(after).slice(1, -1);
  const sep = head !== '' && tail !== '' ? ',' : '';
  const hash = sha('sha256', `{${head}${sep}${tail}}`, 'hex');
  const member = `"hash":"${hash}"`;
  return {
    hash,
    line: `{${head}${head === '' ? '' : ','}${member}${tail === '' ? '' : ','}${tail}}`,
  };
}

/**
 * Hex SHA-256 of the canonical JSON of `record` without its `hash` property.
 *
 * @param record A stamped record (or a parsed line); any `hash` property is ignored.
 * @returns 64 lowercase hex characters.
 * @throws TypeError as {@link canonicalJson}.
 */
export function computeRecordHash(record: object): string {
  const { hash: _ignored, ...rest } = record as Record<string, unknown>;
  return createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex');
}

/** Why a chain failed verification. */
export type AuditChainFailureCode =
  /** The line is not JSON or not a well-formed v1 audit record. */
  | 'parse_error'
  /** The record's `hash` does not match its content (the record was edited). */
  | 'hash_mismatch'
  /** `prevHash` is not the previous record's `hash` (deleted, reordered or inserted records). */
  | 'chain_broken'
  /** `seq` does not increase by exactly 1 from 0 although the hashes link. */
  | 'seq_gap'
  /** The first record's `prevHash` is not 64 zeros (the head of the chain is missing). */
  | 'bad_genesis'
  /** A checkpoint's signature does not verify, or it does not sign the record before it. */
  | 'bad_checkpoint';

/**
 * Result of {@link verifyAuditChain}.
 *
 * - ok: `records` is the number of records, `lastHash` the last record's hash
 *   ({@link GENESIS_HASH} for an empty chain). Compare `lastHash` / `records` with an external
 *   anchor to detect truncation at the end, which a hash chain alone cannot.
 * - not ok: `records` is the number of records that verified before the failure, `line` the
 *   1-based line number of the offending line, `code` a stable code and `message` a short
 *   explanation that carries hashes and sequence numbers only, never record content.
 */
export type AuditChainVerification =
  | {
      ok: true;
      records: number;
      lastHash: string;
      /**
       * Set when the file starts with an `audit:chain_continued` record (written when the
       * previous file was deleted, replaced or truncated under the server): the `seq` and
       * `prevHash` it continues from, to be matched against the displaced file.
       */
      continuesFrom?: { seq: number; prevHash: string } | undefined;
      /** `audit:checkpoint` records seen (their signatures checked when a verifier was given). */
      checkpoints: number;
      /** Records after the last checkpoint (all of them when there is none). */
      afterLastCheckpoint: number;
    }
  | { ok: false; records: number; line: number; code: AuditChainFailureCode; message: string };

/**
 * Verifies a hash-chained audit log given as lines (without their line terminators).
 *
 * For each record, in order: the line parses as a v1 record; its `hash` matches its content; the
 * first record has `prevHash` = 64 zeros and `seq` 0 (or is an `audit:chain_continued` record,
 * reported as `continuesFrom`); every later record has `prevHash` equal to
 * the previous record's `hash` and `seq` one more than the previous `seq`. Stops at the first
 * failure. Empty (whitespace-only) lines are accepted only at the end (e.g. the `''` after the
 * final newline when a file is split on `'\n'`); an empty line followed by a record is a
 * `parse_error`. Memory use is bounded by the longest line.
 *
 * @param lines The log's lines, sync or async (e.g. a `readline` interface).
 * @returns The verification result; never rejects for a bad chain.
 * @throws TypeError if `lines` is a string (pass lines, not text). Rejects with whatever the
 *   iterable throws (e.g. an I/O error).
 */
export async function verifyAuditChain(
  lines: Iterable<string> | AsyncIterable<string>,
  options: { checkpointVerifier?: CheckpointVerifier | undefined } = {},
): Promise<AuditChainVerification> {
  if (typeof lines === 'string') {
    throw new TypeError('verifyAuditChain: pass an iterable of lines, not a string');
  }
  let lineNo = 0;
  let records = 0;
  let prevHash = GENESIS_HASH;
  let prevSeq = -1;
  let firstBlankLine = 0;
  let continuesFrom: { seq: number; prevHash: string } | undefined;
  let checkpoints = 0;
  let afterLastCheckpoint = 0;
  const fail = (code: AuditChainFailureCode, message: string, line = lineNo) =>
    ({ ok: false, records, line, code, message }) as const;

  for await (const line of lines) {
    lineNo += 1;
    if (line.trim() === '') {
      if (firstBlankLine === 0) firstBlankLine = lineNo;
      continue;
    }
    if (firstBlankLine !== 0) {
      return fail('parse_error', 'empty line inside the chain', firstBlankLine);
    }

    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      // The JSON.parse message quotes the line; keep record content out of the report.
      return fail('parse_error', 'line is not valid JSON');
    }
    const checked = auditRecordSchema.safeParse(parsed);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'record';
      return fail('parse_error', `not a v1 audit record: ${where}: ${issue?.message ?? 'invalid'}`);
    }
    const record = checked.data;
    // Hash the parsed object, not the schema output: unknown keys are covered by the hash too.
    const actual = computeRecordHash(parsed as object);
    if (actual !== record.hash) {
      return fail(
        'hash_mismatch',
        `record seq ${record.seq} has hash ${record.hash} but its content hashes to ${actual}`,
      );
    }
    if (records === 0) {
      if (record.prevHash !== GENESIS_HASH && record.tool === CHAIN_CONTINUED_TOOL) {
        continuesFrom = { seq: record.seq - 1, prevHash: record.prevHash };
        prevSeq = record.seq - 1;
      } else if (record.prevHash !== GENESIS_HASH) {
        return fail(
          'bad_genesis',
          `first record (seq ${record.seq}) has prevHash ${record.prevHash}, expected 64 zeros`,
        );
      }
    } else if (record.prevHash !== prevHash) {
      return fail(
        'chain_broken',
        `record seq ${record.seq} has prevHash ${record.prevHash} but the previous record ` +
          `(seq ${prevSeq}) has hash ${prevHash}`,
      );
    }
    if (record.seq !== prevSeq + 1) {
      return fail('seq_gap', `expected seq ${prevSeq + 1}, found ${record.seq}`);
    }
    if (record.tool === CHECKPOINT_TOOL) {
      const a = record.arguments as Partial<Record<'alg' | 'seq' | 'hash' | 'sig', unknown>>;
      if (a?.seq !== prevSeq || a.hash !== prevHash || typeof a.sig !== 'string') {
        return fail(
          'bad_checkpoint',
          `checkpoint seq ${record.seq} does not sign the record before it`,
        );
      }
      const verifier = options.checkpointVerifier;
      if (verifier) {
        const ok =
          a.alg === verifier.algorithm &&
          verifier.verify(checkpointMessage(a.seq, a.hash), Buffer.from(a.sig, 'base64'));
        if (!ok) {
          return fail(
            'bad_checkpoint',
            `checkpoint seq ${record.seq}: the signature does not verify`,
          );
        }
      }
      checkpoints += 1;
      afterLastCheckpoint = 0;
    } else {
      afterLastCheckpoint += 1;
    }
    prevHash = record.hash;
    prevSeq = record.seq;
    records += 1;
  }
  const counts = { checkpoints, afterLastCheckpoint };
  return continuesFrom
    ? { ok: true, records, lastHash: prevHash, continuesFrom, ...counts }
    : { ok: true, records, lastHash: prevHash, ...counts };
}

/**
 * Verifies the audit log file at `path`, streaming it line by line (bounded memory: one line at a
 * time). See {@link verifyAuditChain} for the checks and the result.
 *
 * @param path Path of a JSON Lines audit file.
 * @throws Rejects with the `fs` error (`ENOENT`, `EACCES`, `EISDIR`, …) if the file cannot be read.
 */
export async function verifyAuditFile(
  path: string,
  options: { checkpointVerifier?: CheckpointVerifier | undefined } = {},
): Promise<AuditChainVerification> {
  const handle = await open(path, 'r');
  try {
    const rl = handle.readLines({ encoding: 'utf8' });
    try {
      return await verifyAuditChain(rl, options);
    } finally {
      rl.close();
    }
  } finally {
    await handle.close();
  }
}
