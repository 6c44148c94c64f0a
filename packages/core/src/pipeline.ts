import { createHash, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { z } from 'zod';
import { type ApprovalChannel, type ApprovalResult, configuredApproval } from './approval.js';
import { type AuditEntry, auditIntentFromMeta, resultDigestOfJson } from './audit/index.js';
import { type Denial, deny, ErrorCode, type ErrorCodeValue, ToolError } from './errors.js';
import type { Identity } from './identity.js';
import type { Logger } from './logger.js';
import { fenceUntrusted, jsonBytes } from './output.js';
import type { AccessControl, AccessVerdict } from './policy/access-control.js';
import type { RateLimiter } from './rate-limit.js';
import type { Redactor } from './redaction/index.js';
import { type ContentBlock, shapeOutput } from './shape-output.js';
import {
  type AuditNotes,
  type AuditNoteValue,
  type CredentialScope,
  type ExecuteClassification,
  MAX_AUDIT_NOTE_CHARS,
  MAX_AUDIT_NOTES,
  type OutputLimits,
  secretRegistry,
  type Tool,
} from './tool.js';
import { createToolRegistry, type ListedTool } from './tool-registry.js';
import { neutralizeApprovalText } from './upstream/approval-text.js';

export { type ListedTool, TABLE_OUTPUT_SCHEMA } from './tool-registry.js';

/** Anything that records audit entries (the hash-chained {@link AuditLog} in production). */
export interface AuditRecorder {
  /**
   * Records one entry. The pipeline awaits the result: a throw or a rejected promise withholds
   * the call's result (fail closed).
   */
  record(entry: AuditEntry): unknown;
  /** False once a sink has failed: calls are then refused before they execute (fail closed). */
  readonly healthy?: boolean | undefined;
}

/** Per-tool settings from configuration. */
export interface ToolSettings {
  readonly approval?: 'required' | 'none' | undefined;
}

/** Everything the pipeline needs; built once at startup by `assemble()`. */
export interface PipelineOptions<C> {
  readonly server: { readonly name: string; readonly version: string };
  /** Names the data source in the untrusted-data fence, e.g. `the PostgreSQL database`. */
  readonly dataSource: string;
  /** All tools the connector declares; the pipeline decides which are enabled. */
  readonly tools: readonly Tool<C>[];
  readonly mode: 'read-only' | 'read-write';
  /** Tool allowlist from configuration; undefined = all declared tools. */
  readonly allow?: readonly string[] | undefined;
  readonly toolSettings?: Readonly<Record<string, ToolSettings | undefined>> | undefined;
  /** Role → scopes (connector defaults merged with configuration). */
  readonly roles: Readonly<Record<string, readonly string[]>>;
  /** Upstream clients by credential scope; a missing `write` client means no write tools. */
  readonly clients: Readonly<Partial<Record<CredentialScope, C>>>;
  /**
   * Per-principal clients (`principalCredentials`): when set, each call executes with the client
   * this returns for the tool's scope and the caller (given the shared client of the scope).
   * A ToolError it throws is the call's sanitized error.
   */
  readonly clientFor?:
    | ((scope: CredentialScope, identity: Identity, shared: C | undefined) => Promise<C>)
    | undefined;
  /** Output ceilings. */
  readonly limits: OutputLimits;
  readonly redactor: Redactor;
  readonly audit: AuditRecorder;
  readonly rateLimiter: RateLimiter;
  readonly logger: Logger;
  /**
   * The Cedar policy step, classification and session taint (`packages/core/src/policy`); runs
   * after the connector's policy step, before approval. Absent: scopes and allowlists alone decide.
   */
  readonly access?: AccessControl | undefined;
  /** Called with every audit entry after it is recorded (metrics). Must not throw. */
  readonly observer?: ((entry: AuditEntry) => void) | undefined;
}

/** One call as the transport hands it to the pipeline. */
export interface CallRequest {
  readonly name: string;
  readonly arguments: unknown;
  readonly identity: Identity;
  readonly approval: ApprovalChannel;
  readonly signal: AbortSignal;
  /**
   * Where the call came from, for the audit record: the MCP session id (Streamable HTTP), the
   * JSON-RPC request id and the request's `_meta` (which may carry the client's intent under
   * `io.hardened-mcp/intent`, see `auditIntentFromMeta`). All optional.
   */
  readonly origin?:
    | {
        readonly mcpSessionId?: string | undefined;
        readonly requestId?: string | number | undefined;
        readonly meta?: unknown;
      }
    | undefined;
}

/** MCP `CallToolResult` as the pipeline produces it. */
export interface CallResult {
  readonly content: ContentBlock[];
  readonly structuredContent?: Record<string, unknown> | undefined;
  readonly isError?: boolean | undefined;
  readonly _meta?: Record<string, unknown> | undefined;
}

/** `unknown_tool` is answered by the transport as a protocol error (-32602), the same for unknown and disabled tools. */
export type CallResponse =
  | { readonly kind: 'unknown_tool' }
  | {
      readonly kind: 'result';
      readonly result: CallResult;
      /**
       * Exactly `JSON.stringify(result)`, the bytes whose SHA-256 is the audit record's
       * `resultSha256`, when the call reached a tool (absent for the "result withheld" answer of
       * a failed audit). Lets a transport write the answer without serializing it again.
       */
      readonly json?: string | undefined;
    };

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
  /**
   * Records a refusal decided outside `callTool` (the HTTP edge: authentication, scopes) as a
   * denied call, through the same entry shape, recorder and observer as `callTool`: one audit
   * path. Never throws; returns false (after logging) when the record could not be written.
   */
  recordRefusal(refusal: EdgeRefusal): boolean;
  /**
   * {@link recordRefusal} for a refusal whose answer must wait for its record (a call refused
   * in place of `callTool`, e.g. because the startup checks failed): resolves once the record is
   * durable by the audit log's rule, true, or false (after logging) when it could not be
   * written. Never rejects.
   */
  recordRefusalDurably(refusal: EdgeRefusal): Promise<boolean>;
}

/** A refusal at the HTTP edge, for {@link Pipeline.recordRefusal}. */
export interface EdgeRefusal {
  /** Who was refused; absent before authentication (recorded as principal `unauthenticated`). */
  readonly identity?: Identity | undefined;
  /** The tool asked for, or the edge step that refused (e.g. `http:authenticate`). */
  readonly tool: string;
  /** Stable code recorded as `errorClass` (an {@link ErrorCode} or an RFC 6750 §3.1 error). */
  readonly code: string;
  /** Stable reason recorded as `decision.reason`; default `code`. */
  readonly reason?: string | undefined;
  /** Recorded as `arguments`, redacted and size-capped like a call's arguments. */
  readonly arguments?: unknown;
}

const MAX_AUDIT_ARGUMENT_BYTES = 8 * 1024;
/** The approval prompt a human reads is at most this many characters (a visible cut marker beyond). */
export const MAX_APPROVAL_CHARS = 8_000;
/** Upstream error detail shown to the client (fenced), at most this many UTF-16 units. */
const MAX_DETAIL_CHARS = 2048;

/** How a call ended, before it is audited. */
interface Outcome {
  result: CallResult;
  /** Exactly `JSON.stringify(result)` when the output step already wrote it (see ShapedOutput.json). */
  resultJson?: string | undefined;
  decision: AuditEntry['decision'];
  outcome: AuditEntry['outcome'];
  rows?: number | undefined;
  bytes?: number | undefined;
  truncated?: boolean | undefined;
  errorClass?: string | undefined;
  bearerCredential?: { field: string; sha256: string } | undefined;
}

/** What the steps of one call share. */
interface CallState {
  readonly req: CallRequest;
  readonly correlationId: string;
  /** Redaction counts of the call. */
  readonly counts: Record<string, number>;
  /** What the tool noted for the audit record (`ctx.audit.note`). */
  readonly notes: Record<string, AuditNoteValue>;
  approval?: ApprovalResult | 'not_required';
  /** The access-control reasons the human was shown when they approved (step 7). */
  approvedReasons?: ReadonlySet<string>;
  /** What the access-control step decided (classification label, paths, Cedar policy ids). */
  access?: { label: AccessVerdict['label']; paths: readonly string[]; policies: readonly string[] };
}

const NOTE_KEY = /^[a-z][a-zA-Z0-9]{0,39}$/;

/**
 * The {@link AuditNotes} of one call: checks keys and values, redacts and cuts strings.
 * @throws Error for a malformed key, a non-finite number or too many keys (a connector bug).
 */
function auditNotes(
  notes: Record<string, AuditNoteValue>,
  redact: (text: string) => string,
): AuditNotes {
  return Object.freeze({
    note(key: string, value: AuditNoteValue) {
      if (!NOTE_KEY.test(key)) throw new Error(`audit note key ${key} is not a camelCase word`);
      if (!Object.hasOwn(notes, key) && Object.keys(notes).length >= MAX_AUDIT_NOTES)
        throw new Error(`more than ${MAX_AUDIT_NOTES} audit notes`);
      if (typeof value === 'number' && !Number.isFinite(value))
        throw new Error(`audit note ${key} is not a finite number`);
      if (typeof value === 'string') {
        const text = redact(value);
        notes[key] =
          text.length > MAX_AUDIT_NOTE_CHARS ? `${text.slice(0, MAX_AUDIT_NOTE_CHARS)}…` : text;
      } else notes[key] = value;
    },
  });
}

/** The refusal result every step returns: `code: message (correlation id …)`. */
function errorResult(
  code: ErrorCodeValue,
  message: string,
  correlationId: string,
  retryAfterMs?: number,
  detail?: string,
): CallResult {
  // The first block is always the one stable line; upstream detail (already redacted and
  // fenced) follows as a block of its own.
  return {
    isError: true,
    content: [
      { type: 'text', text: `${code}: ${message} (correlation id ${correlationId})` },
      ...(detail ? [{ type: 'text' as const, text: detail }] : []),
    ],
    _meta: {
      'hardened-mcp/error':
        retryAfterMs === undefined
          ? { code, correlationId }
          : { code, correlationId, retryAfterMs },
    },
  };
}

function denied(d: Denial, state: CallState): Outcome {
  const approval = state.approval === undefined ? {} : { approval: state.approval };
  const policies = state.access?.policies.length ? { policies: state.access.policies } : {};
  return {
    result: errorResult(d.code, d.message, state.correlationId, d.retryAfterMs),
    decision: { result: 'denied', reason: d.code, ...approval, ...policies },
    outcome: 'denied',
    errorClass: d.code,
  };
}

/**
 * Builds the one enforcement pipeline (see packages/core/README.md for the step list):
 * identity → enabled → scopes → rate limit → input validation → policy → approval (writes) →
 * execute with the scoped client → output caps, redaction, fence → audit record → sanitized error.
 *
 * @throws Error at construction when a tool declaration is inconsistent (see
 *   {@link createToolRegistry}); StartupError when configuration names an undeclared tool.
 */
export function createPipeline<C>(options: PipelineOptions<C>): Pipeline {
  const { redactor, audit, rateLimiter, logger, limits } = options;
  const registry = createToolRegistry(options.tools, {
    mode: options.mode,
    allow: options.allow,
    configured: Object.keys(options.toolSettings ?? {}),
    scopes: new Set(
      (Object.keys(options.clients) as CredentialScope[]).filter(
        (s) => options.clients[s] !== undefined,
      ),
    ),
  });
  const secrets = secretRegistry(redactor);
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

  // --- The steps, in order. Each returns a Denial to end the call, or what the next step needs.

  /** Refuses every call while the audit trail cannot record (fail closed). */
  function auditAvailable(): Denial | undefined {
    return audit.healthy === false
      ? deny(
          ErrorCode.Internal,
          'the audit trail is unavailable; no calls are executed until it is restored',
        )
      : undefined;
  }

  /** Step 3: the principal holds every scope the tool requires. */
  function authorize(tool: Tool<C>, identity: Identity): Denial | undefined {
    const held = scopesOf(identity);
    const missing = tool.scopes.filter((s) => !held.has(s));
    return missing.length > 0
      ? deny(
          ErrorCode.Forbidden,
          `principal lacks scope ${missing.join(', ')} required by ${tool.name}`,
        )
      : undefined;
  }

  /**
   * Step 4, right after authorization: a refused or pending call spends budget too. Resolves to
   * the refusal, or undefined when the call is within budget.
   */
  function rateLimit(tool: Tool<C>, identity: Identity): Promise<Denial | undefined> {
    return rateLimiter
      .consume(identity.principal, tool.name)
      .then((rl) => (rl.ok ? undefined : rl));
  }

  /** Step 5: the strict input schema. */
  function validateInput(tool: Tool<C>, args: unknown): { input: never } | Denial {
    const parsed = (tool.input as z.ZodType).safeParse(args ?? {});
    return parsed.success
      ? { input: parsed.data as never }
      : deny(ErrorCode.InvalidInput, describeIssues(parsed.error));
  }

  /**
   * Step 6: resource allowlists and connector rules; yields what was authorized. A tool without
   * a policy step is answered synchronously (nothing to wait for).
   */
  function applyPolicy(
    tool: Tool<C>,
    input: never,
    identity: Identity,
  ): { authorized: unknown } | Promise<{ authorized: unknown } | Denial> {
    const policy = tool.policy;
    if (!policy) return { authorized: undefined };
    // The read client, whatever the tool's access: live checks before approval never hold the
    // write credential. (With per-principal credentials this is still the shared read client.)
    return (async () => {
      // As a method of its tool (ToolDefinition.policy is one), like describeChange and execute.
      const d = await policy.call(tool, input, { identity, readClient: options.clients.read as C });
      return d.ok ? { authorized: d.value } : d;
    })();
  }

  /** Whether step 7 asks a human: the tool's configuration ({@link configuredApproval}) or an access-control reason. */
  function approvalNeeded(tool: Tool<C>, verdict: AccessVerdict | undefined): boolean {
    return (
      (verdict?.approvalReasons.length ?? 0) > 0 ||
      configuredApproval(tool.access, options.toolSettings?.[tool.name]?.approval)
    );
  }

  /**
   * Step 7: a human approves every write (unless configured off for the tool), every call of a
   * read tool configured `approval: required`, and every call access control asks approval for.
   */
  async function obtainApproval(
    tool: Tool<C>,
    input: never,
    authorized: unknown,
    state: CallState,
    verdict: AccessVerdict | undefined,
  ): Promise<Denial | undefined> {
    state.approval = 'not_required';
    const reasons = verdict?.approvalReasons ?? [];
    if (!approvalNeeded(tool, verdict)) return undefined;
    if (!state.req.approval.supported) {
      state.approval = 'unavailable';
      return deny(
        ErrorCode.ApprovalUnavailable,
        `${tool.name} needs human approval and this client cannot ask for it (no elicitation support)`,
      );
    }
    const change =
      tool.access !== 'write'
        ? `${tool.name} will read data.`
        : tool.describeChange
          ? tool.describeChange(input, authorized)
          : `${tool.name} will modify data.`;
    const what =
      reasons.length > 0 ? `${change}\nWhy approval is needed:\n${reasons.join('\n')}` : change;
    // Whatever the connector built, nothing invisible or reordering reaches the human, and the
    // prompt is bounded (a cut is marked, never silent).
    const answer = await state.req.approval.request(
      neutralizeApprovalText(
        `${tool.name} (principal ${state.req.identity.principal}) asks ${tool.access === 'write' ? 'to make this change' : 'to read'}:\n${what}`,
        MAX_APPROVAL_CHARS,
      ),
      state.req.signal,
    );
    state.approval = answer;
    if (answer === 'approved') state.approvedReasons = new Set(reasons);
    return answer === 'approved'
      ? undefined
      : deny(
          ErrorCode.ApprovalDeclined,
          `the change was ${answer === 'cancelled' ? 'cancelled' : 'declined'} by the user; nothing was changed`,
        );
  }

  /** Steps 8–9: execute with the tool's own client, then output controls. */
  async function execute(
    tool: Tool<C>,
    input: never,
    authorized: unknown,
    state: CallState,
    callLimits: OutputLimits,
    late?: ExecuteClassification | undefined,
  ): Promise<Outcome> {
    let limits = callLimits;
    const classification: ExecuteClassification | undefined = late && {
      labelOf: late.labelOf,
      async classify(paths) {
        limits = await late.classify(paths);
        return limits;
      },
    };
    const shared = options.clients[tool.credential];
    const client = options.clientFor
      ? await options.clientFor(tool.credential, state.req.identity, shared)
      : (shared as C);
    const output = await tool.execute(input, {
      identity: state.req.identity,
      client,
      authorized,
      limits,
      signal: state.req.signal,
      correlationId: state.correlationId,
      secrets,
      classification,
      audit: auditNotes(state.notes, (text) => redactor.redactValue(text, state.counts) as string),
    });
    // Results the tool withheld (e.g. search hits outside an allowlist) are counted in the
    // audit record beside the redactions, as `withheld:<reason>`.
    if (output.withheld)
      for (const [reason, n] of Object.entries(output.withheld))
        if (Number.isSafeInteger(n) && n > 0)
          state.counts[`withheld:${reason}`] = (state.counts[`withheld:${reason}`] ?? 0) + n;
    const shaped = shapeOutput(output, {
      tool: tool as Tool<unknown>,
      redactor,
      limits,
      dataSource: options.dataSource,
      counts: state.counts,
    });
    const policies = state.access?.policies.length ? { policies: state.access.policies } : {};
    return {
      result: { content: shaped.content, structuredContent: shaped.structuredContent },
      resultJson: shaped.json,
      decision: { result: 'allowed', approval: state.approval, ...policies },
      outcome: 'success',
      rows: shaped.rows,
      bytes: shaped.bytes,
      truncated: shaped.truncated,
      bearerCredential: shaped.bearerCredential,
    };
  }

  async function run(tool: Tool<C>, state: CallState): Promise<Outcome> {
    const { req } = state;
    const refusal =
      auditAvailable() ?? authorize(tool, req.identity) ?? (await rateLimit(tool, req.identity));
    if (refusal) return denied(refusal, state);
    const valid = validateInput(tool, req.arguments);
    if (!('input' in valid)) return denied(valid, state);
    const applied = applyPolicy(tool, valid.input, req.identity);
    const policy = applied instanceof Promise ? await applied : applied;
    if (!('authorized' in policy)) return denied(policy, state);
    const call = {
      tool: tool as Tool<unknown>,
      input: valid.input as unknown,
      authorized: policy.authorized,
      identity: req.identity,
      session: { mcpSessionId: req.origin?.mcpSessionId, meta: req.origin?.meta },
    };
    let verdict: AccessVerdict | undefined;
    if (options.access) {
      const checked = await options.access.check(call);
      state.access = checked;
      if ('refused' in checked) return denied(deny(ErrorCode.PolicyDenied, checked.refused), state);
      verdict = checked;
    }
    // A call that needs no approval (most reads) takes no async step and does not wait.
    let declined: Denial | undefined;
    if (approvalNeeded(tool, verdict))
      declined = await obtainApproval(tool, valid.input, policy.authorized, state, verdict);
    else state.approval = 'not_required';
    if (declined) return denied(declined, state);
    if (options.access && verdict?.cedarNeedsApproval) {
      const again = options.access.recheckApproved(call, verdict);
      state.access = again;
      if ('refused' in again) return denied(deny(ErrorCode.PolicyDenied, again.refused), state);
      verdict = again;
    }
    const access = options.access;
    const late: ExecuteClassification | undefined =
      access?.classifying && verdict
        ? {
            labelOf: (path) => access.labelOf(path),
            async classify(paths) {
              const current = verdict as AccessVerdict;
              const next = access.classifyLate(current, paths, req.identity);
              state.access = next;
              if ('refused' in next) throw new ToolError(ErrorCode.PolicyDenied, next.refused);
              // Asked again unless the human already approved every reason now found (an
              // approval for the call alone, e.g. `approval: required`, did not show them).
              const seen = state.approval === 'approved' ? state.approvedReasons : undefined;
              if (next.approvalReasons.some((r) => !seen?.has(r))) {
                const declined = await obtainApproval(
                  tool,
                  valid.input,
                  policy.authorized,
                  state,
                  next,
                );
                if (declined) throw new ToolError(ErrorCode.PolicyDenied, declined.message);
              }
              verdict = next;
              return next.limits;
            },
          }
        : undefined;
    const outcome = await execute(
      tool,
      valid.input,
      policy.authorized,
      state,
      verdict?.limits ?? limits,
      late,
    );
    // The session has now received this call's data: taint it (fail closed: a taint that cannot
    // be recorded withholds the result, see callTool's catch).
    if (options.access && verdict) await options.access.recordRead(call, verdict);
    return outcome;
  }

  /** Step 11: anything a tool threw, as a sanitized result (upstream detail redacted and fenced). */
  function failed(tool: Tool<C>, err: unknown, state: CallState): Outcome {
    const code = err instanceof ToolError ? err.code : ErrorCode.Internal;
    let message = 'internal error; see the server log';
    let detail: string | undefined;
    try {
      if (err instanceof ToolError) {
        message = redactor.redactValue(err.message, state.counts) as string;
        if (err.detail) {
          const capped =
            err.detail.length > MAX_DETAIL_CHARS
              ? `${err.detail.slice(0, MAX_DETAIL_CHARS)}…`
              : err.detail;
          detail = fenceUntrusted(
            options.dataSource,
            redactor.redactValue(capped, state.counts) as string,
          );
        }
      }
    } catch {
      // The redactor refused the text (RedactionError): nothing of it leaves.
      message = 'the error text could not be redacted and was withheld';
      detail = undefined;
    }
    logger.error({ err, correlationId: state.correlationId, tool: tool.name }, 'tool call failed');
    // A policy refusal found while executing (e.g. a catalog check inside the statement's
    // transaction, or the database's own permission check) is still a denial.
    const refused = code === ErrorCode.PolicyDenied || code === ErrorCode.Forbidden;
    const approval = state.approval === undefined ? {} : { approval: state.approval };
    return {
      result: errorResult(
        code,
        message,
        state.correlationId,
        err instanceof ToolError ? err.retryAfterMs : undefined,
        detail,
      ),
      decision: refused
        ? { result: 'denied', reason: code, ...approval }
        : { result: 'allowed', ...approval },
      outcome: refused ? 'denied' : 'error',
      errorClass: code,
    };
  }

  /** Step 10: the call's audit record. */
  /**
   * Who, what and where: the part every audit record shares, whether the pipeline ran the call or
   * the HTTP edge refused it (`identity` absent: an unauthenticated peer).
   */
  function recordHead(identity: Identity | undefined, tool: Tool<C> | undefined, name: unknown) {
    return {
      server: options.server,
      principal: identity?.principal ?? 'unauthenticated',
      roles: identity ? [...identity.roles] : [],
      client: identity ? { name: identity.client.name, version: identity.client.version } : {},
      transport: identity?.transport ?? ('http' as const),
      tool: tool ? tool.name : safeName(name),
      access: tool ? tool.access : ('none' as const),
    };
  }

  /** Metrics and other observers see every recorded entry; an observer failure is only logged. */
  function observe(entry: AuditEntry): void {
    try {
      options.observer?.(entry);
    } catch (err) {
      logger.warn({ err }, 'call observer failed');
    }
  }

  function auditEntry(
    tool: Tool<C> | undefined,
    state: CallState,
    outcome: Outcome,
    started: number,
  ): AuditEntry {
    const { req } = state;
    const intent = auditIntentFromMeta(
      req.origin?.meta,
      (text) => redactor.redactValue(text, state.counts) as string,
    );
    return {
      ...recordHead(req.identity, tool, req.name),
      arguments: tool ? auditArguments(req.arguments) : { omitted: true },
      decision: outcome.decision,
      classification: state.access && {
        label: state.access.label,
        paths: state.access.label === 'restricted' ? state.access.paths.slice(0, 256) : undefined,
      },
      outcome: outcome.outcome,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      rows: outcome.rows,
      bytes: outcome.bytes,
      truncated: outcome.truncated,
      redactions: state.counts,
      errorClass: outcome.errorClass,
      bearerCredential: outcome.bearerCredential,
      correlationId: state.correlationId,
      session: {
        mcpSessionId: req.origin?.mcpSessionId,
        requestId: req.origin?.requestId,
        intent,
        client: { name: req.identity.client.name, version: req.identity.client.version },
      },
      // What the model saw, provable later against a retained copy (unknown tools get no result).
      resultSha256: tool ? resultDigestOfJson(resultJsonOf(outcome)) : undefined,
      notes: Object.keys(state.notes).length > 0 ? { ...state.notes } : undefined,
    };
  }

  /**
   * Writes the audit record of a refusal decided outside `callTool`: false when the write failed
   * at once, true when it completed synchronously, else a promise of whether it became durable
   * (never rejects; failures are logged).
   */
  function writeRefusal(refusal: EdgeRefusal): boolean | Promise<boolean> {
    const entry: AuditEntry = {
      ...recordHead(refusal.identity, registry.get(refusal.tool), refusal.tool),
      arguments: auditArguments(refusal.arguments ?? {}),
      decision: { result: 'denied', reason: refusal.reason ?? refusal.code },
      outcome: 'denied',
      durationMs: 0,
      redactions: {},
      errorClass: refusal.code,
      correlationId: randomUUID(),
    };
    const failed = (err: unknown) => {
      logger.error({ err, correlationId: entry.correlationId }, 'refusal audit failed');
      return false;
    };
    let written: unknown;
    try {
      written = audit.record(entry);
    } catch (err) {
      return failed(err);
    }
    observe(entry);
    return written instanceof Promise ? written.then(() => true, failed) : true;
  }

  function auditArguments(args: unknown): unknown {
    const redacted = redactor.redactValue(args ?? {}, {});
    const size = jsonBytes(redacted);
    if (size <= MAX_AUDIT_ARGUMENT_BYTES) return redacted;
    return {
      omitted: true,
      bytes: size,
      sha256: createHash('sha256').update(JSON.stringify(redacted)).digest('hex'),
    };
  }

  return {
    enabledTools: registry.names,
    listTools: () => registry.listed,
    missingScopes(name, identity) {
      const tool = registry.get(name);
      if (!tool) return undefined;
      const held = scopesOf(identity);
      return tool.scopes.filter((s) => !held.has(s));
    },
    recordRefusal(refusal) {
      return writeRefusal(refusal) !== false;
    },
    async recordRefusalDurably(refusal) {
      const written = writeRefusal(refusal);
      return written === true || (written !== false && (await written));
    },
    async callTool(req) {
      const started = performance.now();
      const state: CallState = { req, correlationId: randomUUID(), counts: {}, notes: {} };
      const tool = registry.get(req.name);
      let outcome: Outcome;
      if (!tool) {
        outcome = denied(deny(ErrorCode.UnknownTool, 'unknown tool'), state);
      } else {
        try {
          outcome = await run(tool, state);
        } catch (err) {
          outcome = failed(tool, err, state);
        }
      }
      let entry: AuditEntry;
      try {
        entry = auditEntry(tool, state, outcome, started);
        await audit.record(entry);
      } catch (err) {
        // Fail closed: a call whose audit record cannot be written returns no data.
        logger.error(
          { err, correlationId: state.correlationId },
          'audit record could not be written',
        );
        return {
          kind: 'result',
          result: errorResult(
            ErrorCode.Internal,
            'audit unavailable; the result was withheld',
            state.correlationId,
          ),
        };
      }
      observe(entry);
      if (!tool) return { kind: 'unknown_tool' };
      // The JSON hashed into the audit record goes with the result: a transport can write it.
      return { kind: 'result', result: outcome.result, json: outcome.resultJson };
    },
  };
}

/**
 * `JSON.stringify(outcome.result)`, computed once per call and kept on the outcome: the audit
 * digest hashes it and the transport may write it (`CallResponse.json`).
 * @throws TypeError when the result is not JSON-serializable (a connector bug).
 */
function resultJsonOf(outcome: Outcome): string {
  if (outcome.resultJson === undefined) {
    const json = JSON.stringify(outcome.result) as string | undefined;
    if (json === undefined) throw new TypeError('the call result is not JSON-serializable');
    outcome.resultJson = json;
  }
  return outcome.resultJson;
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
