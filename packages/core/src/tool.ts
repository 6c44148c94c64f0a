import type { z } from 'zod';
import type { Decision } from './errors.js';
import type { Identity } from './identity.js';

/** What a tool does to the upstream system. Annotations and enablement derive from it. */
export type ToolAccess = 'read' | 'write';

/** Which credential a tool runs with. A read tool can only ever get the read credential. */
export type CredentialScope = 'read' | 'write';

/** A column of a tabular result. `type` is the upstream type name (e.g. `int4`, `text`). */
export interface ColumnInfo {
  readonly name: string;
  readonly type: string;
}

/**
 * What a tool's `execute` returns, before output controls. The core redacts it, caps it, fences
 * the text rendering and records counts in the audit record.
 *
 * - `table`: rows are arrays aligned with `columns` (so duplicate column names are fine).
 *   `truncated` is true when the tool stopped at the row or byte cap.
 * - `json`: a JSON object (e.g. a table description).
 */
export type ToolOutput =
  | {
      readonly kind: 'table';
      readonly columns: readonly ColumnInfo[];
      readonly rows: readonly (readonly unknown[])[];
      readonly truncated: boolean;
      /** One-line summary shown above the data in the text rendering (trusted, from our code). */
      readonly note?: string | undefined;
    }
  | {
      readonly kind: 'json';
      readonly data: Readonly<Record<string, unknown>>;
      readonly rowCount?: number | undefined;
      readonly truncated?: boolean | undefined;
      readonly note?: string | undefined;
    };

/** Limits a tool must honour while producing output (the core re-checks after). */
export interface OutputLimits {
  /** Maximum rows to return. */
  readonly maxRows: number;
  /** Maximum serialized bytes of the result (UTF-8 of the JSON rows). */
  readonly maxBytes: number;
}

/** What the policy step sees. */
export interface PolicyContext {
  readonly identity: Identity;
}

/** What `execute` receives. `credential` is the handle for the tool's declared scope only. */
export interface ExecuteContext<H> {
  readonly identity: Identity;
  readonly credential: H;
  readonly limits: OutputLimits;
  /** Aborted when the client cancels or the server shuts down. */
  readonly signal: AbortSignal;
  readonly correlationId: string;
}

/**
 * A tool declared as data. Connectors declare tools; only the core registers and runs them.
 * Modelled on typed procedure metadata enforced by one middleware (cf. tRPC).
 *
 * @typeParam I - the parsed input type (output of `input`)
 * @typeParam H - the credential handle type the connector creates (e.g. a `pg.Pool`)
 */
export interface ToolDefinition<I = unknown, H = unknown> {
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
  /** Credential scope the tool runs with. A `read` tool must declare `read`. */
  readonly credential: CredentialScope;
  /** For annotations: repeating the call with the same input has no further effect. */
  readonly idempotent?: boolean | undefined;
  /** For annotations (write tools): may delete or overwrite data. Defaults to true for writes. */
  readonly destructive?: boolean | undefined;
  /** Declares the result shape (`table` results get an output schema). */
  readonly output: 'table' | 'json';
  /** Pipeline step 5: resource allowlists and other constraints, from configuration only. */
  readonly policy?: ((input: I, ctx: PolicyContext) => Decision | Promise<Decision>) | undefined;
  /** For approval (step 6): a plain description of what will change, shown to the human. */
  readonly describeChange?: ((input: I) => string) | undefined;
  /** Pipeline step 8. Throw {@link ToolError} for client-safe failures. */
  readonly execute: (input: I, ctx: ExecuteContext<H>) => Promise<ToolOutput>;
}

/**
 * Declares a tool with its input type inferred from the schema. Identity function, for types.
 */
export function defineTool<S extends z.ZodType, H>(
  tool: Omit<ToolDefinition<z.output<S>, H>, 'input'> & { readonly input: S },
): ToolDefinition<z.output<S>, H> {
  return tool as ToolDefinition<z.output<S>, H>;
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
export function annotationsFor(tool: ToolDefinition<never, never>): ToolAnnotations {
  const write = tool.access === 'write';
  return Object.freeze({
    title: tool.title,
    readOnlyHint: !write,
    destructiveHint: write ? (tool.destructive ?? true) : false,
    idempotentHint: write ? (tool.idempotent ?? false) : true,
    openWorldHint: false,
  });
}
