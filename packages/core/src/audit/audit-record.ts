/**
 * The audit record: one per tool call (allowed or denied), written as one JSON line.
 *
 * Records are hash-chained (see `hash-chain.ts`): `hash` is the hex SHA-256 of the record's
 * canonical JSON without `hash`, and `prevHash` is the previous record's `hash` (64 zeros for the
 * first record of a chain). Editing, deleting, reordering or inserting a record is therefore
 * detectable by {@link verifyAuditChain}.
 *
 * The record never carries raw data the caller has not already redacted: `arguments` is stored as
 * given (the caller redacts it first), and `reason` / `errorClass` are stable codes, never
 * messages.
 *
 * @module
 */
import { z } from 'zod';

/** The record format version. Bumped only on an incompatible change. */
export const AUDIT_RECORD_VERSION = 1;

/** `prevHash` of the first record of a chain: 64 hex zeros. */
export const GENESIS_HASH = '0'.repeat(64);

/** How the MCP client is connected; `internal` for events of the audit trail itself (no client). */
export type AuditTransport = 'stdio' | 'http' | 'internal';

/** What the tool does upstream; `none` for calls that never reached a tool (e.g. unknown tool). */
export type AuditAccess = 'read' | 'write' | 'none';

/** Outcome of the human approval step for the call. */
export type AuditApproval = 'approved' | 'declined' | 'cancelled' | 'unavailable' | 'not_required';

/** The enforcement decision for the call. */
export interface AuditDecision {
  readonly result: 'allowed' | 'denied';
  /** Stable reason code (e.g. `forbidden`, `policy_denied`), never a free-text message. */
  readonly reason?: string | undefined;
  readonly approval?: AuditApproval | undefined;
  /** Ids of the Cedar policies that determined the decision (the permits that allowed, the forbids that denied). */
  readonly policies?: readonly string[] | undefined;
}

/** The classification of what a call touched (see README "Classification"). */
export interface AuditClassification {
  readonly label: 'public' | 'internal' | 'confidential' | 'restricted';
  /** The classified paths touched (e.g. `schema.table.column`); recorded for `restricted` calls. */
  readonly paths?: readonly string[] | undefined;
}

/**
 * One audit record, exactly as written (one canonical JSON object per line).
 *
 * Optional fields that are `undefined` are omitted from the written line and from the hash.
 */
export interface AuditRecord {
  /** Format version, always `1`. */
  readonly v: 1;
  /** When the record was stamped: ISO 8601 UTC with milliseconds (`2025-01-02T03:04:05.678Z`). */
  readonly time: string;
  /** Random UUID (v4) identifying this record. */
  readonly auditId: string;
  /** 0-based position in this chain. */
  readonly seq: number;
  /** Hex SHA-256 of the previous record (its `hash`); {@link GENESIS_HASH} for `seq` 0. */
  readonly prevHash: string;
  /** Hex SHA-256 over the canonical JSON of this record without `hash` (so including `prevHash`). */
  readonly hash: string;
  /** The MCP server that handled the call. */
  readonly server: { readonly name: string; readonly version: string };
  /** Who made the call (authenticated principal id). */
  readonly principal: string;
  /** The principal's roles at the time of the call. */
  readonly roles: readonly string[];
  /** What the MCP client said it is (self-reported, untrusted). */
  readonly client: { readonly name?: string | undefined; readonly version?: string | undefined };
  readonly transport: AuditTransport;
  /** Tool name as requested (may be an unknown tool for denied calls). */
  readonly tool: string;
  readonly access: AuditAccess;
  /** The call's arguments, already redacted by the caller. */
  readonly arguments: unknown;
  readonly decision: AuditDecision;
  /** What the call touched, by classification label (absent when classification is not in use). */
  readonly classification?: AuditClassification | undefined;
  /** `denied` when the pipeline refused the call; otherwise whether the tool succeeded. */
  readonly outcome: 'success' | 'error' | 'denied';
  /** Wall-clock duration of the call in milliseconds (≥ 0). */
  readonly durationMs: number;
  /** Rows returned or affected, when the tool reports them. */
  readonly rows?: number | undefined;
  /** Bytes of output returned to the client, when known. */
  readonly bytes?: number | undefined;
  /** True when the output was cut at a row or byte cap. */
  readonly truncated?: boolean | undefined;
  /** Count of redacted values per redaction rule / kind (e.g. `{ "email": 2 }`). */
  readonly redactions: Readonly<Record<string, number>>;
  /** Stable error code when `outcome` is `error`; never a message carrying data. */
  readonly errorClass?: string | undefined;
  /**
   * Set when the result carried the tool's declared bearer credential (e.g. a presigned URL):
   * the output field's name and the value's hex SHA-256, never the value.
   */
  readonly bearerCredential?: { readonly field: string; readonly sha256: string } | undefined;
  /** Correlation id shared with the server log and the client-facing error. */
  readonly correlationId: string;
  /**
   * Where the call came from, so an investigator can reconstruct one session's chain of calls:
   * the MCP session id (Streamable HTTP `Mcp-Session-Id`), the JSON-RPC request id of the
   * `tools/call`, the client-supplied intent (see `auditIntentFromMeta`: redacted, at most
   * {@link MAX_AUDIT_INTENT_CHARS} characters) and the client info from `initialize`.
   */
  readonly session?: AuditSession | undefined;
  /**
   * Hex SHA-256 of the exact `CallToolResult` JSON returned to the client (see `resultDigest`), so
   * what the model saw can be proven later against a retained copy without logging the data.
   */
  readonly resultSha256?: string | undefined;
  /**
   * Facts the tool added about the call (`ctx.audit.note(key, value)` in `execute`), e.g.
   * `{ "droppedOutOfScope": 2 }`: camelCase keys, finite numbers, booleans, redacted short strings.
   */
  readonly notes?: Readonly<Record<string, number | boolean | string>> | undefined;
}

/** The session part of a record (every field optional). */
export interface AuditSession {
  readonly mcpSessionId?: string | undefined;
  /** JSON-RPC request id of the `tools/call` (string or number, JSON-RPC 2.0 §4). */
  readonly requestId?: string | number | undefined;
  /** Client-supplied intent from `_meta["io.hardened-mcp/intent"]`, redacted and size-capped. */
  readonly intent?: string | undefined;
  readonly client?:
    | { readonly name?: string | undefined; readonly version?: string | undefined }
    | undefined;
}

/** Longest intent kept in a record, in UTF-16 code units (longer ones are cut and end in `…`). */
export const MAX_AUDIT_INTENT_CHARS = 1024;

/** What callers pass to `AuditLog.record`: the record minus the fields the logger stamps. */
export type AuditEntry = Omit<AuditRecord, 'v' | 'time' | 'auditId' | 'seq' | 'prevHash' | 'hash'>;

const HEX_64 = /^[0-9a-f]{64}$/;
const nonNegativeInt = z.number().int().nonnegative();

/**
 * Runtime schema of {@link AuditEntry}. `AuditLog.record` checks entries against it so that a
 * record the verifier would reject is never written. Unknown keys are ignored by the schema; the
 * logger only copies known fields into the record.
 */
export const auditEntrySchema = z.object({
  server: z.object({ name: z.string(), version: z.string() }),
  principal: z.string(),
  roles: z.array(z.string()),
  client: z.object({ name: z.string().optional(), version: z.string().optional() }),
  transport: z.enum(['stdio', 'http', 'internal']),
  tool: z.string(),
  access: z.enum(['read', 'write', 'none']),
  arguments: z.unknown(),
  decision: z.object({
    result: z.enum(['allowed', 'denied']),
    reason: z.string().optional(),
    approval: z
      .enum(['approved', 'declined', 'cancelled', 'unavailable', 'not_required'])
      .optional(),
    policies: z.array(z.string().max(128)).max(64).optional(),
  }),
  classification: z
    .object({
      label: z.enum(['public', 'internal', 'confidential', 'restricted']),
      paths: z.array(z.string().max(1024)).max(256).optional(),
    })
    .optional(),
  outcome: z.enum(['success', 'error', 'denied']),
  durationMs: z.number().nonnegative().finite(),
  rows: nonNegativeInt.optional(),
  bytes: nonNegativeInt.optional(),
  truncated: z.boolean().optional(),
  redactions: z.record(z.string(), nonNegativeInt),
  errorClass: z.string().optional(),
  bearerCredential: z.object({ field: z.string(), sha256: z.string().regex(HEX_64) }).optional(),
  correlationId: z.string(),
  session: z
    .object({
      mcpSessionId: z.string().max(256).optional(),
      requestId: z.union([z.string().max(256), z.number()]).optional(),
      intent: z.string().max(MAX_AUDIT_INTENT_CHARS).optional(),
      client: z.object({ name: z.string().optional(), version: z.string().optional() }).optional(),
    })
    .optional(),
  resultSha256: z.string().regex(HEX_64, 'must be 64 lowercase hex characters').optional(),
  notes: z
    .record(
      z.string().regex(/^[a-z][a-zA-Z0-9]{0,39}$/),
      z.union([z.number().finite(), z.boolean(), z.string().max(201)]),
    )
    .optional(),
});

/** Runtime schema of a full {@link AuditRecord} as read back from a log line. */
export const auditRecordSchema = auditEntrySchema.extend({
  v: z.literal(AUDIT_RECORD_VERSION),
  time: z.iso.datetime({ precision: 3 }),
  auditId: z.uuid(),
  seq: nonNegativeInt,
  prevHash: z.string().regex(HEX_64, 'must be 64 lowercase hex characters'),
  hash: z.string().regex(HEX_64, 'must be 64 lowercase hex characters'),
});

// Compile-time guards: whatever the schemas accept is a valid AuditEntry / AuditRecord.
type Assert<T extends true> = T;
export type SchemaGuards = [
  Assert<z.infer<typeof auditEntrySchema> extends AuditEntry ? true : false>,
  Assert<z.infer<typeof auditRecordSchema> extends AuditRecord ? true : false>,
];
