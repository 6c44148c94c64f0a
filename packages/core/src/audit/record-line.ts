/**
 * The audit record's canonical line, written field by field (the hot path of every call).
 *
 * {@link hashAndSerializeRecord} walks any object generically (keys listed, checked for order,
 * every value dispatched by type). The records `AuditLog` stamps always have the same shape, so
 * this writes their members directly in canonical (UTF-16 code unit) key order and serializes
 * only the values, with the same rules as `canonicalJson`: the result is byte-identical to
 * `canonicalJson({ ...record, hash })`, and `hash` to `computeRecordHash(record)`, for every
 * record of the {@link StampedFields} shape (`record-line.test.ts` checks both against the
 * generic serializer). Caller-shaped values (`arguments`, `redactions`, `notes`, arrays) still go
 * through the generic serializer, which sorts their keys.
 *
 * @module
 */
import { hash as sha } from 'node:crypto';
import { canonicalMember } from './hash-chain.js';

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

/** Appends `"key":value` to the members in `acc` (nothing for an omitted value). */
function add(acc: string, quotedKey: string, value: string | undefined): string {
  if (value === undefined) return acc;
  return acc === '' ? `${quotedKey}:${value}` : `${acc},${quotedKey}:${value}`;
}

/** `{"name":…,"version":…}` of a `server`/`client` object built by the logger. */
function nameVersion(o: Fields | undefined): string | undefined {
  if (o === undefined) return undefined;
  let m = add('', '"name"', canonicalMember(o.name, 'name'));
  m = add(m, '"version"', canonicalMember(o.version, 'version'));
  return `{${m}}`;
}

function decision(o: Fields): string {
  let m = add('', '"approval"', canonicalMember(o.approval, 'approval'));
  m = add(m, '"policies"', canonicalMember(o.policies, 'policies'));
  m = add(m, '"reason"', canonicalMember(o.reason, 'reason'));
  m = add(m, '"result"', canonicalMember(o.result, 'result'));
  return `{${m}}`;
}

function classification(o: Fields | undefined): string | undefined {
  if (o === undefined) return undefined;
  let m = add('', '"label"', canonicalMember(o.label, 'label'));
  m = add(m, '"paths"', canonicalMember(o.paths, 'paths'));
  return `{${m}}`;
}

function bearer(o: Fields | undefined): string | undefined {
  if (o === undefined) return undefined;
  let m = add('', '"field"', canonicalMember(o.field, 'field'));
  m = add(m, '"sha256"', canonicalMember(o.sha256, 'sha256'));
  return `{${m}}`;
}

function session(o: Fields | undefined): string | undefined {
  if (o === undefined) return undefined;
  let m = add('', '"client"', nameVersion(o.client as Fields | undefined));
  m = add(m, '"intent"', canonicalMember(o.intent, 'intent'));
  m = add(m, '"mcpSessionId"', canonicalMember(o.mcpSessionId, 'mcpSessionId'));
  m = add(m, '"requestId"', canonicalMember(o.requestId, 'requestId'));
  return `{${m}}`;
}

/**
 * The hash and the canonical line of a stamped record (see the module comment).
 *
 * @param r The record without `hash`, exactly of the {@link StampedFields} shape (nested objects
 *   holding only their declared keys, as `AuditLog` builds them).
 * @returns `hash`: hex SHA-256 of the canonical JSON of `r`; `line`: the canonical JSON of `r`
 *   with `hash` added (not yet escaped, see `escapeAuditLine`).
 * @throws TypeError as `canonicalJson` (a bigint or a cycle in `arguments` or `notes`).
 */
export function serializeStampedRecord(r: StampedFields): { hash: string; line: string } {
  // Members before "hash", in key order.
  let head = add('', '"access"', canonicalMember(r.access, 'access'));
  head = add(head, '"arguments"', canonicalMember(r.arguments, 'arguments'));
  head = add(head, '"auditId"', canonicalMember(r.auditId, 'auditId'));
  head = add(head, '"bearerCredential"', bearer(r.bearerCredential));
  head = add(head, '"bytes"', canonicalMember(r.bytes, 'bytes'));
  head = add(head, '"classification"', classification(r.classification));
  head = add(head, '"client"', nameVersion(r.client));
  head = add(head, '"correlationId"', canonicalMember(r.correlationId, 'correlationId'));
  head = add(head, '"decision"', decision(r.decision));
  head = add(head, '"durationMs"', canonicalMember(r.durationMs, 'durationMs'));
  head = add(head, '"errorClass"', canonicalMember(r.errorClass, 'errorClass'));
  // Members after it.
  let tail = add('', '"notes"', canonicalMember(r.notes, 'notes'));
  tail = add(tail, '"outcome"', canonicalMember(r.outcome, 'outcome'));
  tail = add(tail, '"prevHash"', canonicalMember(r.prevHash, 'prevHash'));
  tail = add(tail, '"principal"', canonicalMember(r.principal, 'principal'));
  tail = add(tail, '"redactions"', canonicalMember(r.redactions, 'redactions'));
  tail = add(tail, '"resultSha256"', canonicalMember(r.resultSha256, 'resultSha256'));
  tail = add(tail, '"roles"', canonicalMember(r.roles, 'roles'));
  tail = add(tail, '"rows"', canonicalMember(r.rows, 'rows'));
  tail = add(tail, '"seq"', canonicalMember(r.seq, 'seq'));
  tail = add(tail, '"server"', nameVersion(r.server));
  tail = add(tail, '"session"', session(r.session));
  tail = add(tail, '"time"', canonicalMember(r.time, 'time'));
  tail = add(tail, '"tool"', canonicalMember(r.tool, 'tool'));
  tail = add(tail, '"transport"', canonicalMember(r.transport, 'transport'));
  tail = add(tail, '"truncated"', canonicalMember(r.truncated, 'truncated'));
  tail = add(tail, '"v"', canonicalMember(r.v, 'v'));
  const sep = head !== '' && tail !== '' ? ',' : '';
  const hash = sha('sha256', `{${head}${sep}${tail}}`, 'hex');
  const member = `"hash":"${hash}"`;
  return {
    hash,
    line: `{${head}${head === '' ? '' : ','}${member}${tail === '' ? '' : ','}${tail}}`,
  };
}
