import type { z } from 'zod';
import type { Denial } from './errors.js';
import type { Identity } from './identity.js';

/** What a tool does to the upstream system. Annotations, enablement, scopes and credential derive from it. */
export type ToolAccess = 'read' | 'write';

/** Which credential (and so which upstream client) a tool runs with: always its access. */
export type CredentialScope = 'read' | 'write';

/** A column of a tabular result. `type` is the upstream type name (e.g. `int4`, `text`). */
export interface ColumnInfo {
  readonly name: string;
  readonly type: string;
}

/**
 * What a tool's `execute` returns, before output controls. Every byte of it came from (or was
 * shaped by) the data source, so the core redacts all of it — cell values, object keys, column
 * names and `note` — caps it, and puts its text rendering inside the untrusted-data fence.
 *
 * - `table`: rows are arrays aligned with `columns` (so duplicate column names are fine).
 *   `truncated` is true when the tool stopped at the row or byte cap.
 * - `json`: a JSON object (e.g. a table description).
 * - `binary`: bytes (e.g. an object's content), returned as an MCP embedded resource `blob`.
 *   Only a tool that declares `binaryOutput: true` may return it; the pipeline refuses it from
 *   any other tool. Binary values inside `table`/`json` output (`Uint8Array`, `Buffer`) are
 *   never rendered: they become `{ "binary": true, "bytes": n }`.
 */
export type ToolOutput = (
  | {
      readonly kind: 'table';
      readonly columns: readonly ColumnInfo[];
      readonly rows: readonly (readonly unknown[])[];
      readonly truncated: boolean;
      /** One-line summary; redacted and shown inside the fence like the data. */
      readonly note?: string | undefined;
    }
  | {
      readonly kind: 'json';
      readonly data: Readonly<Record<string, unknown>>;
      readonly rowCount?: number | undefined;
      readonly truncated?: boolean | undefined;
      readonly note?: string | undefined;
    }
  | {
      readonly kind: 'binary';
      /** IANA media type of `data`, e.g. `image/png`. */
      readonly mimeType: string;
      readonly data: Uint8Array;
      /** A URI naming the resource (e.g. `s3://bucket/key`); redacted like data. */
      readonly uri: string;
      /** Metadata shown as fenced JSON beside the bytes. */
      readonly metadata?: Readonly<Record<string, unknown>> | undefined;
      readonly truncated?: boolean | undefined;
      readonly note?: string | undefined;
    }
) & {
  /**
   * Results the tool dropped by policy after the upstream returned them, counted per reason
   * (e.g. `{ other_conversation: 2 }` for search hits outside the allowlist). Recorded in the
   * audit record's `redactions` as `withheld:<reason>`; never shown to the client.
   */
  readonly withheld?: Readonly<Record<string, number>> | undefined;
};

/** Limits a tool must honour while producing output (the core re-checks after). */
export interface OutputLimits {
  /** Maximum rows to return. */
  readonly maxRows: number;
  /** Maximum serialized bytes of the result (UTF-8 of the JSON rows). */
  readonly maxBytes: number;
}

/** Cedar attribute types a resource declaration may use (`StringSet` is Cedar `Set<String>`). */
export type ResourceAttributeType = 'String' | 'Long' | 'Boolean' | 'StringSet';

/** One resource a call touches, as the connector declares it. */
export interface ResourceRef {
  /** Cedar entity id, e.g. `public.customer` or `bucket/prefix/`. */
  readonly id: string;
  /** Attribute values; every attribute the declaration lists must be present. */
  readonly attrs?:
    | Readonly<Record<string, string | number | boolean | readonly string[]>>
    | undefined;
  /**
   * Classification paths the call reads or writes (e.g. every column `schema.table.column` a
   * statement can read). Default: `[id]`. The call's label is the highest of their labels.
   */
  readonly classify?: readonly string[] | undefined;
}

/**
 * What a tool touches, for the Cedar policy step and classification: the Cedar entity type (one
 * per connector resource kind, e.g. `Table`, `Folder`, `Bucket`), its attribute types (the core
 * generates the Cedar schema from them) and, per call, which resource.
 */
export interface ResourceDeclaration<I = never, A = unknown> {
  /** Unqualified Cedar entity type name (`[A-Z][A-Za-z0-9]*`); it lives in namespace `Hmcp`. */
  readonly type: string;
  /** Attribute name → type. */
  readonly attributes?: Readonly<Record<string, ResourceAttributeType>> | undefined;
  /** The resource of one call, from the validated input and what the connector's policy step authorized. */
  of(input: I, authorized: A): ResourceRef;
}

/**
 * What the policy step sees.
 *
 * @typeParam C - the connector's upstream client type
 */
export interface PolicyContext<C = unknown> {
  readonly identity: Identity;
  /**
   * The upstream client of the **read** credential scope, for checks against live upstream state
   * before the human is asked (e.g. the project an issue is in now). Always the read client, for
   * write tools too: the policy step never holds the write credential.
   */
  readonly readClient: C;
}

/** A value a tool may add to its call's audit record (see {@link AuditNotes}). */
export type AuditNoteValue = number | boolean | string;

/**
 * Facts a tool adds to its call's audit record, under `notes` (e.g. how many upstream items it
 * dropped as out of scope). Keys are camelCase words (`/^[a-z][a-zA-Z0-9]{0,39}$/`), at most
 * {@link MAX_AUDIT_NOTES} per call; numbers must be finite; strings are redacted and cut at
 * {@link MAX_AUDIT_NOTE_CHARS} characters. A later note with the same key replaces the earlier.
 * Notes are recorded whatever the outcome (a tool that throws after noting keeps its notes).
 */
export interface AuditNotes {
  /**
   * Records `key: value` in this call's audit record.
   * @throws Error for a malformed key, a non-finite number, or more than {@link MAX_AUDIT_NOTES} keys (a connector bug).
   */
  note(key: string, value: AuditNoteValue): void;
}

/** Most notes one call's audit record carries. */
export const MAX_AUDIT_NOTES = 16;
/** Longest string note, in UTF-16 code units (longer ones are cut and end in `…`). */
export const MAX_AUDIT_NOTE_CHARS = 200;

/**
 * The policy step's "yes", carrying what it authorized (e.g. the normalized object key, the
 * parsed statement) so `execute` receives exactly that as `ctx.authorized`.
 */
export interface Allowed<A> {
  readonly ok: true;
  readonly value: A;
}

/** What a policy step returns: {@link allow}(value) or a {@link Denial}. */
export type Authorization<A> = Allowed<A> | Denial;

/** The policy step's "yes" with the value `execute` will get as `ctx.authorized`. */
export function allow<A>(value: A): Allowed<A> {
  return { ok: true, value };
}

/**
 * Secrets a connector obtains itself while running (temporary cloud credentials, OAuth tokens):
 * registering one makes the redactor replace it (and its fragments) in every later output,
 * error and log line.
 */
export interface SecretRegistry {
  /** Registers a secret value. Values shorter than 8 characters are ignored (too common to match). */
  register(value: string): void;
}

/**
 * The {@link SecretRegistry} that registers values with `redactor` (values under 8 characters
 * are ignored: too common to match by exact value).
 */
export function secretRegistry(redactor: { addKnownSecret(value: string): void }): SecretRegistry {
  return Object.freeze({
    register(value: string) {
      if (value.length >= 8) redactor.addKnownSecret(value);
    },
  });
}

/**
 * What `execute` receives.
 *
 * @typeParam C - the connector's upstream client type (one per credential scope)
 * @typeParam A - what the policy step authorized (`allow(value)`), `undefined` without a policy
 */
export interface ExecuteContext<C, A = undefined> {
  readonly identity: Identity;
  /** The upstream client of the tool's own credential scope: a read tool only ever gets the read client. */
  readonly client: C;
  /** The value the policy step passed to `allow()`. */
  readonly authorized: A;
  readonly limits: OutputLimits;
  /** Aborted when the client cancels or the server shuts down. */
  readonly signal: AbortSignal;
  readonly correlationId: string;
  readonly secrets: SecretRegistry;
  /**
   * Classification of what only the upstream can tell (e.g. the columns a SQL statement reads,
   * resolved by the database's planner): present when classification labels are configured.
   * Call it BEFORE reading the data.
   */
  readonly classification?: ExecuteClassification | undefined;
  /** Facts for this call's audit record (`notes`). */
  readonly audit: AuditNotes;
}

/** See {@link ExecuteContext.classification}. */
export interface ExecuteClassification {
  /**
   * Classifies the call by `paths` (e.g. `schema.table.column`): refuses (throws) when one is
   * above the caller's clearance, asks the human when one is `restricted` and the call was not
   * approved yet, and otherwise raises the call's label (audit record, taint, restricted caps).
   *
   * @returns the output limits of the call from now on (smaller once it touches restricted data)
   * @throws ToolError `policy_denied` (above clearance, or approval declined / unavailable)
   */
  classify(paths: readonly string[]): Promise<OutputLimits>;
  /** The label of one path (for connectors that report labels, e.g. a startup warning). */
  labelOf(path: string): 'public' | 'internal' | 'confidential' | 'restricted';
}

/**
 * A tool declared as data, in the form the core runs. Connectors build these with
 * {@link toolKit}, which derives `name`'s prefix, `scopes` and `credential` from `access`.
 * Modelled on typed procedure metadata enforced by one middleware (cf. tRPC).
 *
 * Methods are declared with method syntax so that a list of tools with different input and
 * authorization types can be held as `Tool<C>`.
 *
 * @typeParam I - the parsed input type (output of `input`)
 * @typeParam C - the upstream client type
 * @typeParam A - what the policy step authorizes
 */
export interface ToolDefinition<I = unknown, C = unknown, A = unknown> {
  /** `<connector>_<verb>_<noun>`, e.g. `postgres_list_tables`. */
  readonly name: string;
  /** Human-readable title for clients. */
  readonly title: string;
  /** What the tool does, for the model. */
  readonly description: string;
  readonly access: ToolAccess;
  /** Scopes the principal must hold, all of them (e.g. `['postgres:read']`). */
  readonly scopes: readonly string[];
  /** Strict zod object: unknown keys rejected, every string/array/number bounded. */
  readonly input: z.ZodType<I>;
  /** Credential scope the tool runs with; always equal to `access`. */
  readonly credential: CredentialScope;
  /** For annotations: repeating the call with the same input has no further effect. */
  readonly idempotent?: boolean | undefined;
  /** For annotations (write tools): may delete or overwrite data. Defaults to true for writes. */
  readonly destructive?: boolean | undefined;
  /** Declares the result shape (`table` results get an output schema). */
  readonly output: 'table' | 'json';
  /** The tool may return `binary` output (an embedded resource blob). Default false. */
  readonly binaryOutput?: boolean | undefined;
  /**
   * The one top-level string field of `json` output that is an intended bearer credential (e.g.
   * a presigned URL). It is exempt from redaction, and the audit record says that a bearer
   * credential was issued (with its SHA-256, never its value).
   */
  readonly bearerField?: string | undefined;
  /** What the tool touches (Cedar resource, classification paths). Undefined: the server itself. */
  readonly resource?: ResourceDeclaration<I, A> | undefined;
  /**
   * The tool sends data out of the system (a post, a comment, an upload): refused or approved
   * with what was read once the session is tainted by classified data.
   */
  readonly egress?: boolean | undefined;
  /** Pipeline step: resource allowlists and other constraints, from configuration only. */
  policy?(input: I, ctx: PolicyContext<C>): Authorization<A> | Promise<Authorization<A>>;
  /** For approval: what will change, shown to the human (the core escapes and bounds it). */
  describeChange?(input: I, authorized: A): string;
  /** Runs the call. Throw {@link ToolError} for client-safe failures. */
  execute(input: I, ctx: ExecuteContext<C, A>): Promise<ToolOutput>;
}

/** Any tool of a connector whose upstream client type is `C`. */
export type Tool<C> = ToolDefinition<never, C, unknown>;

/**
 * What a connector author writes for one tool: the name without the connector prefix
 * (`list_tables`), and no scopes or credential (derived from `access`).
 */
export interface ToolSpec<S extends z.ZodType, C, A> {
  /** `<verb>_<noun>`; the kit prefixes the connector name. */
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly input: S;
  readonly output: 'table' | 'json';
  readonly binaryOutput?: boolean | undefined;
  readonly bearerField?: string | undefined;
  readonly idempotent?: boolean | undefined;
  readonly destructive?: boolean | undefined;
  /** See {@link ToolDefinition.resource}. */
  readonly resource?: ResourceDeclaration<z.output<S>, A> | undefined;
  /** See {@link ToolDefinition.egress}. */
  readonly egress?: boolean | undefined;
  readonly policy?: (
    input: z.output<S>,
    ctx: PolicyContext<C>,
  ) => Authorization<A> | Promise<Authorization<A>>;
  readonly describeChange?: (input: z.output<S>, authorized: A) => string;
  readonly execute: (input: z.output<S>, ctx: ExecuteContext<C, A>) => Promise<ToolOutput>;
}

/** A connector's typed tool kit: see {@link toolKit}. */
export interface ToolKit<C> {
  /** The connector name (tool prefix, scope prefix). */
  readonly connector: string;
  /** `<connector>:read`. */
  readonly readScope: string;
  /** `<connector>:write`. */
  readonly writeScope: string;
  /** A read tool: scope `<connector>:read`, the read client, read-only annotations. */
  read<S extends z.ZodType, A = undefined>(spec: ToolSpec<S, C, A>): Tool<C>;
  /** A write tool: scope `<connector>:write`, the write client, approval unless configured off. */
  write<S extends z.ZodType, A = undefined>(
    spec: ToolSpec<S, C, A> & {
      readonly describeChange: (input: z.output<S>, authorized: A) => string;
    },
  ): Tool<C>;
}

/**
 * The typed tool kit of one connector. Tools are declared from configuration alone — the kit
 * never sees an upstream client — and the core hands `execute` the client of the tool's own
 * access, so a read tool cannot reach the write client by construction.
 *
 * ```ts
 * const kit = toolKit<pg.Pool>('postgres');
 * const listSchemas = kit.read({ name: 'list_schemas', input: z.strictObject({}), … });
 * ```
 *
 * @throws Error when `connector` is not a lower-case identifier.
 */
export function toolKit<C>(connector: string): ToolKit<C> {
  if (!/^[a-z][a-z0-9]*$/.test(connector))
    throw new Error(`connector name ${connector} must be a lower-case identifier`);
  const make =
    (access: ToolAccess) =>
    <S extends z.ZodType, A>(spec: ToolSpec<S, C, A>): Tool<C> =>
      Object.freeze({
        ...spec,
        name: `${connector}_${spec.name}`,
        access,
        scopes: Object.freeze([`${connector}:${access}`]),
        credential: access,
      }) as unknown as Tool<C>;
  return Object.freeze({
    connector,
    readScope: `${connector}:read`,
    writeScope: `${connector}:write`,
    read: make('read'),
    write: make('write'),
  });
}

/** MCP tool annotations (spec 2025-11-25, `ToolAnnotations`). */
export interface ToolAnnotations {
  readonly title: string;
  readonly readOnlyHint: boolean;
  readonly destructiveHint: boolean;
  readonly idempotentHint: boolean;
  readonly openWorldHint: boolean;
}

/**
 * Derives annotations from the declared access so what clients see matches what is enforced:
 * read tools are read-only, non-destructive and idempotent; write tools are not read-only and
 * destructive unless declared otherwise. Our connectors talk to a closed system: `openWorldHint` false.
 */
export function annotationsFor(tool: Tool<unknown>): ToolAnnotations {
  const write = tool.access === 'write';
  return Object.freeze({
    title: tool.title,
    readOnlyHint: !write,
    destructiveHint: write ? (tool.destructive ?? true) : false,
    idempotentHint: write ? (tool.idempotent ?? false) : true,
    openWorldHint: false,
  });
}
