import { createHash, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { ApprovalChannel, ApprovalResult } from './approval.js';
import type { AuditEntry } from './audit/index.js';
import { type Denial, deny, ErrorCode, type ErrorCodeValue, ToolError } from './errors.js';
import type { Identity } from './identity.js';
import type { Logger } from './logger.js';
import { capRowsByBytes, fenceUntrusted, jsonBytes, renderTable } from './output.js';
import type { RateLimiter } from './rate-limit.js';
import type { Redactor } from './redaction/index.js';
import {
  annotationsFor,
  type CredentialScope,
  type OutputLimits,
  type ToolAnnotations,
  type ToolDefinition,
  type ToolOutput,
} from './tool.js';

/** Anything that records audit entries (the hash-chained {@link AuditLog} in production). */
export interface AuditRecorder {
  record(entry: AuditEntry): unknown;
  /** False once a sink has failed: calls are then refused before they execute (fail closed). */
  readonly healthy?: boolean | undefined;
}

/** Per-tool settings from configuration. */
export interface ToolSettings {
  readonly approval?: 'required' | 'none' | undefined;
}

/** Everything the pipeline needs; built once at startup by the connector runner. */
export interface PipelineOptions<H> {
  readonly server: { readonly name: string; readonly version: string };
  /** Names the data source in the untrusted-data fence, e.g. `the PostgreSQL database`. */
  readonly dataSource: string;
  /** All tools the connector declares; the pipeline decides which are enabled. */
  readonly tools: readonly ToolDefinition<never, H>[];
  readonly mode: 'read-only' | 'read-write';
  /** Tool allowlist from configuration; undefined = all declared tools. */
  readonly allow?: readonly string[] | undefined;
  readonly toolSettings?: Readonly<Record<string, ToolSettings | undefined>> | undefined;
  /** Role → scopes (connector defaults merged with configuration). */
  readonly roles: Readonly<Record<string, readonly string[]>>;
  /** Credential handles by scope; a missing `write` handle means no write tools. */
  readonly handles: Readonly<Partial<Record<CredentialScope, H>>>;
  /** Output ceilings. */
  readonly limits: OutputLimits;
  readonly redactor: Redactor;
  readonly audit: AuditRecorder;
  readonly rateLimiter: RateLimiter;
  readonly logger: Logger;
  /** Called with every audit entry after it is recorded (metrics). Must not throw. */
  readonly observer?: ((entry: AuditEntry) => void) | undefined;
}

/** A tool as listed to clients (MCP `Tool`). */
export interface ListedTool {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly inputSchema: Readonly<Record<string, unknown>>;
  readonly outputSchema?: Readonly<Record<string, unknown>> | undefined;
  readonly annotations: ToolAnnotations;
}

/** One call as the transport hands it to the pipeline. */
export interface CallRequest {
  readonly name: string;
  readonly arguments: unknown;
  readonly identity: Identity;
  readonly approval: ApprovalChannel;
  readonly signal: AbortSignal;
}

/** MCP `CallToolResult` as the pipeline produces it. */
export interface CallResult {
  readonly content: { type: 'text'; text: string }[];
  readonly structuredContent?: Record<string, unknown> | undefined;
  readonly isError?: boolean | undefined;
  readonly _meta?: Record<string, unknown> | undefined;
}

/** `unknown_tool` is answered by the transport as a protocol error (-32602), the same for unknown and disabled tools. */
export type CallResponse =
  | { readonly kind: 'unknown_tool' }
  | { readonly kind: 'result'; readonly result: CallResult };

/** The enforcement pipeline. Transports call `listTools` and `callTool`; nothing else runs tools. */
export interface Pipeline {
  /** The enabled tools (precomputed). */
  listTools(): readonly ListedTool[];
  /** Runs one call through every step; never throws. */
  callTool(request: CallRequest): Promise<CallResponse>;
  /** Names of enabled tools. */
  readonly enabledTools: readonly string[];
  /**
   * The scopes an enabled tool needs that `identity` lacks (empty: none missing); undefined for
   * an unknown or disabled tool. Lets HTTP answer 403 `insufficient_scope` (RFC 6750 §3.1).
   */
  missingScopes(name: string, identity: Identity): readonly string[] | undefined;
}

/** Output schema of `table` tools (MCP structured content). */
export const TABLE_OUTPUT_SCHEMA = Object.freeze({
  type: 'object',
  properties: {
    columns: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, type: { type: 'string' } },
        required: ['name', 'type'],
      },
    },
    rows: { type: 'array', items: { type: 'array' } },
    rowCount: { type: 'integer', minimum: 0 },
    truncated: { type: 'boolean' },
  },
  required: ['columns', 'rows', 'rowCount', 'truncated'],
});

const MAX_AUDIT_ARGUMENT_BYTES = 8 * 1024;

interface Outcome {
  result: CallResult;
  decision: AuditEntry['decision'];
  outcome: AuditEntry['outcome'];
  rows?: number;
  bytes?: number;
  truncated?: boolean;
  errorClass?: string;
}

/**
 * Builds the one enforcement pipeline (see packages/core/README.md for the step list):
 * identity → enabled → scopes → input validation → policy → approval (writes) → rate limit →
 * execute with the scoped credential → output caps, redaction, fence → audit record → sanitized error.
 *
 * @throws Error at construction when a tool declaration is inconsistent (a read tool asking for
 * the write credential, a duplicate name, a name not shaped `<connector>_<verb>_<noun>`).
 */
export function createPipeline<H>(options: PipelineOptions<H>): Pipeline {
  const { redactor, audit, rateLimiter, logger, limits } = options;
  const seen = new Set<string>();
  for (const tool of options.tools) {
    if (seen.has(tool.name)) throw new Error(`duplicate tool ${tool.name}`);
    seen.add(tool.name);
    if (!/^[a-z][a-z0-9]*(_[a-z0-9]+)+$/.test(tool.name))
      throw new Error(`tool name ${tool.name} is not <connector>_<verb>[_<noun>]`);
    if (tool.access === 'read' && tool.credential !== 'read')
      throw new Error(`read tool ${tool.name} must use the read credential`);
    if (tool.scopes.length === 0) throw new Error(`tool ${tool.name} declares no scopes`);
    const schema = z.toJSONSchema(tool.input as z.ZodType, {
      io: 'input',
      unrepresentable: 'any',
    }) as Record<string, unknown>;
    if (schema.type !== 'object' || schema.additionalProperties !== false) {
      throw new Error(
        `tool ${tool.name} must declare a strict object input schema (z.strictObject)`,
      );
    }
  }
  const allow = options.allow ? new Set(options.allow) : undefined;
  const enabled = new Map<string, ToolDefinition<never, H>>();
  for (const tool of options.tools) {
    if (allow && !allow.has(tool.name)) continue;
    if (tool.access === 'write' && options.mode !== 'read-write') continue;
    if (options.handles[tool.credential] === undefined) continue;
    enabled.set(tool.name, tool);
  }
  const listed: readonly ListedTool[] = Object.freeze(
    [...enabled.values()].map((tool) =>
      Object.freeze({
        name: tool.name,
        title: tool.title,
        description: tool.description,
        inputSchema: z.toJSONSchema(tool.input as z.ZodType, {
          io: 'input',
          unrepresentable: 'any',
        }) as Record<string, unknown>,
        outputSchema: tool.output === 'table' ? TABLE_OUTPUT_SCHEMA : undefined,
        annotations: annotationsFor(tool),
      }),
    ),
  );
  const scopeCache = new WeakMap<Identity, ReadonlySet<string>>();
  const scopesOf = (identity: Identity): ReadonlySet<string> => {
    let scopes = scopeCache.get(identity);
    if (!scopes) {
      const set = new Set<string>(identity.scopes ?? []);
      for (const role of identity.roles) {
        if (Object.hasOwn(options.roles, role))
          for (const s of options.roles[role] ?? []) set.add(s);
      }
      scopes = set;
      scopeCache.set(identity, scopes);
    }
    return scopes;
  };

  const errorResult = (
    code: ErrorCodeValue,
    message: string,
    correlationId: string,
    retryAfterMs?: number,
  ): CallResult => ({
    isError: true,
    content: [{ type: 'text', text: `${code}: ${message} (correlation id ${correlationId})` }],
    _meta: {
      'hardened-mcp/error':
        retryAfterMs === undefined
          ? { code, correlationId }
          : { code, correlationId, retryAfterMs },
    },
  });
  const denied = (d: Denial, correlationId: string, approval?: ApprovalResult): Outcome => ({
    result: errorResult(d.code, d.message, correlationId, d.retryAfterMs),
    decision: approval
      ? { result: 'denied', reason: d.code, approval }
      : { result: 'denied', reason: d.code },
    outcome: 'denied',
    errorClass: d.code,
  });

  async function run(
    tool: ToolDefinition<never, H>,
    req: CallRequest,
    correlationId: string,
    counts: Record<string, number>,
    state: { approval?: ApprovalResult | 'not_required' },
  ): Promise<Outcome> {
    // A call that could not be audited must not run (writes above all): refuse up front.
    if (audit.healthy === false) {
      return denied(
        deny(
          ErrorCode.Internal,
          'the audit trail is unavailable; no calls are executed until it is restored',
        ),
        correlationId,
      );
    }
    // 3. Authorization
    const held = scopesOf(req.identity);
    const missing = tool.scopes.filter((s) => !held.has(s));
    if (missing.length > 0) {
      return denied(
        deny(
          ErrorCode.Forbidden,
          `principal lacks scope ${missing.join(', ')} required by ${tool.name}`,
        ),
        correlationId,
      );
    }
    // 4. Input validation
    const parsed = (tool.input as z.ZodType).safeParse(req.arguments ?? {});
    if (!parsed.success)
      return denied(deny(ErrorCode.InvalidInput, describeIssues(parsed.error)), correlationId);
    const input = parsed.data as never;
    // 5. Policy constraints
    if (tool.policy) {
      const d = await tool.policy(input, { identity: req.identity });
      if (!d.ok) return denied(d, correlationId);
    }
    // 6. Approval for writes
    let approval: ApprovalResult | 'not_required' = 'not_required';
    state.approval = approval;
    if (tool.access === 'write' && options.toolSettings?.[tool.name]?.approval !== 'none') {
      if (!req.approval.supported) {
        return denied(
          deny(
            ErrorCode.ApprovalUnavailable,
            `${tool.name} needs human approval and this client cannot ask for it (no elicitation support)`,
          ),
          correlationId,
          'unavailable',
        );
      }
      const what = tool.describeChange
        ? tool.describeChange(input)
        : `${tool.name} will modify data.`;
      approval = state.approval = await req.approval.request(
        `${tool.name} (principal ${req.identity.principal}) asks to make this change:\n${what}`,
        req.signal,
      );
      if (approval !== 'approved') {
        return denied(
          deny(
            ErrorCode.ApprovalDeclined,
            `the change was ${approval === 'cancelled' ? 'cancelled' : 'declined'} by the user; nothing was changed`,
          ),
          correlationId,
          approval,
        );
      }
    }
    // 7. Rate limit
    const rl = await rateLimiter.consume(req.identity.principal, tool.name);
    if (!rl.ok)
      return denied(rl, correlationId, approval === 'not_required' ? undefined : approval);
    // 8. Execute with the scoped credential
    const handle = options.handles[tool.credential] as H;
    const output = await tool.execute(input, {
      identity: req.identity,
      credential: handle,
      limits,
      signal: req.signal,
      correlationId,
    });
    // 9. Output controls
    const shaped = shapeOutput(output, counts);
    return {
      result: shaped.result,
      decision: { result: 'allowed', approval },
      outcome: 'success',
      rows: shaped.rows,
      bytes: shaped.bytes,
      truncated: shaped.truncated,
    };
  }

  function shapeOutput(output: ToolOutput, counts: Record<string, number>) {
    if (output.kind === 'table') {
      const names = output.columns.map((c) => c.name);
      const overRows = output.rows.length > limits.maxRows;
      const redacted = redactor.redactTable(
        names,
        overRows ? output.rows.slice(0, limits.maxRows) : output.rows,
        counts,
      );
      const capped = capRowsByBytes(redacted, limits.maxBytes);
      const truncated = output.truncated || overRows || capped.truncated;
      const columns = output.columns.map((c) => ({ name: c.name, type: c.type }));
      const structuredContent = {
        columns,
        rows: capped.rows,
        rowCount: capped.rows.length,
        truncated,
      };
      const summary = `${capped.rows.length} row${capped.rows.length === 1 ? '' : 's'}${truncated ? ' (truncated: more rows exist than the row/byte cap allows)' : ''}.`;
      const text = `${output.note ? `${output.note}\n` : ''}${summary}\n${fenceUntrusted(options.dataSource, renderTable(columns, capped.rows))}`;
      return {
        result: { content: [{ type: 'text' as const, text }], structuredContent },
        rows: capped.rows.length,
        bytes: capped.bytes,
        truncated,
      };
    }
    const data = redactor.redactValue(output.data, counts) as Record<string, unknown>;
    const bytes = jsonBytes(data);
    if (bytes > limits.maxBytes)
      throw new ToolError(
        ErrorCode.LimitExceeded,
        `the result (${bytes} bytes) exceeds the ${limits.maxBytes}-byte cap`,
      );
    const text = `${output.note ? `${output.note}\n` : ''}${fenceUntrusted(options.dataSource, JSON.stringify(data, null, 2))}`;
    return {
      result: { content: [{ type: 'text' as const, text }], structuredContent: data },
      rows: output.rowCount,
      bytes,
      truncated: output.truncated ?? false,
    };
  }

  function auditArguments(args: unknown, counts: Record<string, number>): unknown {
    const redacted = redactor.redactValue(args ?? {}, counts);
    const size = jsonBytes(redacted);
    if (size <= MAX_AUDIT_ARGUMENT_BYTES) return redacted;
    return {
      omitted: true,
      bytes: size,
      sha256: createHash('sha256').update(JSON.stringify(redacted)).digest('hex'),
    };
  }

  return {
    enabledTools: Object.freeze([...enabled.keys()]),
    listTools: () => listed,
    missingScopes(name, identity) {
      const tool = enabled.get(name);
      if (!tool) return undefined;
      const held = scopesOf(identity);
      return tool.scopes.filter((s) => !held.has(s));
    },
    async callTool(req) {
      const started = performance.now();
      const correlationId = randomUUID();
      const counts: Record<string, number> = {};
      const tool = enabled.get(req.name);
      let outcome: Outcome;
      if (!tool) {
        outcome = denied(deny(ErrorCode.UnknownTool, 'unknown tool'), correlationId);
      } else {
        const state: { approval?: ApprovalResult | 'not_required' } = {};
        try {
          outcome = await run(tool, req, correlationId, counts, state);
        } catch (err) {
          const code = err instanceof ToolError ? err.code : ErrorCode.Internal;
          const message =
            err instanceof ToolError
              ? redactor.redactString(err.message).value
              : 'internal error; see the server log';
          logger.error({ err, correlationId, tool: tool.name }, 'tool call failed');
          // A policy refusal found while executing (e.g. a catalog check inside the statement's
          // transaction, or the database's own permission check) is still a denial.
          const refused = code === ErrorCode.PolicyDenied || code === ErrorCode.Forbidden;
          const approval = state.approval ? { approval: state.approval } : {};
          outcome = {
            result: errorResult(code, message, correlationId),
            decision: refused
              ? { result: 'denied', reason: code, ...approval }
              : { result: 'allowed', ...approval },
            outcome: refused ? 'denied' : 'error',
            errorClass: code,
          };
        }
      }
      let entry: AuditEntry;
      try {
        entry = {
          server: options.server,
          principal: req.identity.principal,
          roles: [...req.identity.roles],
          client: { name: req.identity.client.name, version: req.identity.client.version },
          transport: req.identity.transport,
          tool: tool ? tool.name : safeName(req.name),
          access: tool ? tool.access : 'none',
          arguments: tool ? auditArguments(req.arguments, {}) : { omitted: true },
          decision: outcome.decision,
          outcome: outcome.outcome,
          durationMs: Math.round((performance.now() - started) * 1000) / 1000,
          rows: outcome.rows,
          bytes: outcome.bytes,
          truncated: outcome.truncated,
          redactions: counts,
          errorClass: outcome.errorClass,
          correlationId,
        };
        await audit.record(entry);
      } catch (err) {
        // Fail closed: a call whose audit record cannot be written returns no data.
        logger.error({ err, correlationId }, 'audit record could not be written');
        return {
          kind: 'result',
          result: errorResult(
            ErrorCode.Internal,
            'audit unavailable; the result was withheld',
            correlationId,
          ),
        };
      }
      try {
        options.observer?.(entry);
      } catch (err) {
        logger.warn({ err }, 'call observer failed');
      }
      if (!tool) return { kind: 'unknown_tool' };
      return { kind: 'result', result: outcome.result };
    },
  };
}

/** Joins zod issues into one safe line: `path: message` (no input values). */
function describeIssues(error: z.ZodError): string {
  const parts = error.issues.slice(0, 5).map((i) => {
    const path = i.path.length > 0 ? i.path.map(String).join('.') : 'arguments';
    if (i.code === 'unrecognized_keys')
      return `${path}: unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => safeName(k)).join(', ')}`;
    return `${path}: ${i.message}`;
  });
  const more = error.issues.length > 5 ? `; and ${error.issues.length - 5} more` : '';
  return `invalid arguments: ${parts.join('; ')}${more}`;
}

/** A client-supplied name made safe for logs and messages: printable ASCII, at most 64 chars. */
function safeName(name: unknown): string {
  const s = typeof name === 'string' ? name : String(name);
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}
