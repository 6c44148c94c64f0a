/**
 * The audit record's canonical line, written field by field (the hot path of every call).
 *
 * `hashAndSerializeRecord` walks any object generically (keys listed, checked for order, every
 * value dispatched by type, in JavaScript). The records `AuditLog` stamps always have the same
 * shape, so this writes their members in canonical (UTF-16 code unit) key order and lets native
 * `JSON.stringify` serialize the values, with the same rules as `canonicalJson`: byte-identical to
 * `canonicalJson({ ...record, hash })`, and `hash` to `computeRecordHash(record)`, for every
 * record of the {@link StampedFields} shape (`record-line.test.ts` checks both against the
 * generic serializer). Caller-shaped values (`arguments`, `redactions`, `notes`, arrays) still go
 * through the generic serializer, which sorts their keys.
 *
 * @module
 */
import { hash as sha } from 'node:crypto';
import { canonicalMember, hashAndSerializeRecord } from './hash-chain.js';

/** A string-keyed plain value as `AuditLog` builds it (every field may be `undefined`). */
type Fields = { readonly [key: string]: unknown };

/**
 * The record `AuditLog` stamps, before its `hash`: the top-level fields of `AuditRecord` and
 * the nested objects it builds itself (`server`, `client`, `decision`, `classification`,
 * `bearerCredential`, `session` and `session.client`), each holding only its declared keys.
 */
export interface StampedFields {
  readonly v: number;
  readonly time: string;
  readonly auditId: string;
  readonly seq: number;
  readonly prevHash: string;
  readonly server: Fields;
  readonly principal: string;
  readonly roles: readonly string[];
  readonly client: Fields;
  readonly transport: string;
  readonly tool: string;
  readonly access: string;
  readonly arguments: unknown;
  readonly decision: Fields;
  readonly classification: Fields | undefined;
  readonly outcome: string;
  readonly durationMs: number;
  readonly rows: number | undefined;
  readonly bytes: number | undefined;
  readonly truncated: boolean | undefined;
  readonly redactions: Fields;
  readonly errorClass: string | undefined;
  readonly bearerCredential: Fields | undefined;
  readonly correlationId: string;
  readonly session: Fields | undefined;
  readonly resultSha256: string | undefined;
  readonly notes: Fields | undefined;
}

/** A value `JSON.stringify` writes exactly as canonical JSON does (or omits, as it does). */
function isLeaf(v: unknown): boolean {
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'undefined';
}

function leaves(o: Fields | undefined, keys: readonly string[]): boolean {
  if (o === undefined) return true;
  for (const k of keys) if (!isLeaf(o[k])) return false;
  return true;
}

function strings(a: unknown): boolean {
  if (a === undefined) return true;
  if (!Array.isArray(a)) return false;
  for (const v of a) if (typeof v !== 'string') return false;
  return true;
}

const NAME_VERSION = ['name', 'version'] as const;

/**
 * True when every value the fast path hands to `JSON.stringify` is a string, number, boolean or
 * `undefined` (arrays: strings only), as the entry schema guarantees; anything else (an entry
 * mutated after it was validated) takes the generic serializer.
 */
function fastPathApplies(r: StampedFields): boolean {
  const session = r.session;
  return (
    leaves(r as unknown as Fields, TOP_LEAVES) &&
    leaves(r.server, NAME_VERSION) &&
    leaves(r.client, NAME_VERSION) &&
    leaves(r.decision, ['approval', 'reason', 'result']) &&
    strings(r.decision.policies) &&
    leaves(r.classification, ['label']) &&
    (r.classification === undefined || strings(r.classification.paths)) &&
    leaves(r.bearerCredential, ['field', 'sha256']) &&
    strings(r.roles) &&
    leaves(session, ['intent', 'mcpSessionId', 'requestId']) &&
    (session === undefined || leaves(session.client as Fields | undefined, NAME_VERSION))
  );
}

const TOP_LEAVES = [
  'access',
  'auditId',
  'bytes',
  'correlationId',
  'durationMs',
  'errorClass',
  'outcome',
  'prevHash',
  'principal',
  'resultSha256',
  'rows',
  'seq',
  'time',
  'tool',
  'transport',
  'truncated',
  'v',
] as const;

/** The members of a `JSON.stringify`d object, without its braces. */
function members(json: string): string {
  return json.slice(1, -1);
}

/** Joins member lists, skipping empty ones. */
function join(parts: readonly string[]): string {
  let out = '';
  for (const p of parts) if (p !== '') out = out === '' ? p : `${out},${p}`;
  return out;
}

/** `"key":value`, or nothing for an omitted value. */
function member(quotedKey: string, value: string | undefined): string {
  return value === undefined ? '' : `${quotedKey}:${value}`;
}

/**
 * The hash and the canonical line of a stamped record (see the module comment).
 *
 * The fixed-shape members go through native `JSON.stringify` in runs of object literals whose
 * keys are written in canonical order (`JSON.stringify` keeps insertion order for non-index
 * keys and omits `undefined` members, as canonical JSON does); `arguments`, `notes` and
 * `redactions`, whose keys come from callers, go through `canonicalJson`, which sorts them.
 *
 * @param r The record without `hash`, exactly of the {@link StampedFields} shape (nested objects
 *   holding only their declared keys, as `AuditLog` builds them).
 * @returns `hash`: hex SHA-256 of the canonical JSON of `r`; `line`: the canonical JSON of `r`
 *   with `hash` added (not yet escaped, see `escapeAuditLine`).
 * @throws TypeError as `canonicalJson` (a bigint or a cycle in `arguments` or `notes`).
 */
export function serializeStampedRecord(r: StampedFields): { hash: string; line: string } {
  if (!fastPathApplies(r)) return hashAndSerializeRecord(r);
  const d = r.decision;
  const c = r.classification;
  const b = r.bearerCredential;
  const s = r.session;
  const sc = s?.client as Fields | undefined;
  // Members before "hash", in key order.
  const head = join([
    member('"access"', canonicalMember(r.access, 'access')),
    member('"arguments"', canonicalMember(r.arguments, 'arguments')),
    members(
      JSON.stringify({
        auditId: r.auditId,
        bearerCredential: b && { field: b.field, sha256: b.sha256 },
        bytes: r.bytes,
        classification: c && { label: c.label, paths: c.paths },
        client: { name: r.client.name, version: r.client.version },
        correlationId: r.correlationId,
        decision: {
          approval: d.approval,
          policies: d.policies,
          reason: d.reason,
          result: d.result,
        },
        durationMs: r.durationMs,
        errorClass: r.errorClass,
      }),
    ),
  ]);
  // Members after it.
  const tail = join([
    member('"notes"', canonicalMember(r.notes, 'notes')),
    members(JSON.stringify({ outcome: r.outcome, prevHash: r.prevHash, principal: r.principal })),
    member('"redactions"', canonicalMember(r.redactions, 'redactions')),
    members(
      JSON.stringify({
        resultSha256: r.resultSha256,
        roles: r.roles,
        rows: r.rows,
        seq: r.seq,
        server: { name: r.server.name, version: r.server.version },
        session: s && {
          client: sc && { name: sc.name, version: sc.version },
          intent: s.intent,
          mcpSessionId: s.mcpSessionId,
          requestId: s.requestId,
        },
        time: r.time,
        tool: r.tool,
        transport: r.transport,
        truncated: r.truncated,
        v: r.v,
      }),
    ),
  ]);
  const sep = head !== '' && tail !== '' ? ',' : '';
  const hash = sha('sha256', `{${head}${sep}${tail}}`, 'hex');
  const hashMember = `"hash":"${hash}"`;
  return {
    hash,
    line: `{${head}${head === '' ? '' : ','}${hashMember}${tail === '' ? '' : ','}${tail}}`,
  };
}
