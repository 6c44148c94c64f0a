import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { StartupError } from '../errors.js';
import { CEDAR_NAMESPACE } from './cedar-schema.js';

/** Cached decisions per policy set at most (the cache restarts empty past it). */
const MAX_CACHED_DECISIONS = 10_000;

/** One loaded policy, for audit ids and the printed policy. */
export interface LoadedPolicy {
  /** `@id("…")` annotation, else `<file name>#<n>` (1-based). */
  readonly id: string;
  readonly file: string;
  readonly effect: 'permit' | 'forbid';
  /** Carries `@approval("required")`: a denial by it alone can be lifted by a human approval. */
  readonly approvable: boolean;
  /** The policy text as written. */
  readonly text: string;
}

/** The entities and context of one Cedar request (JSON form, namespace-qualified types). */
export interface CedarRequest {
  readonly principal: { readonly type: string; readonly id: string };
  readonly action: string;
  readonly resource: { readonly type: string; readonly id: string };
  readonly context: Record<string, unknown>;
  readonly entities: readonly unknown[];
}

/** A Cedar decision. */
export interface CedarDecision {
  readonly allowed: boolean;
  /** Ids of the determining policies (the permits that allowed, or the forbids that denied). */
  readonly policies: readonly string[];
  /** Denied only by `@approval("required")` forbid policies: a human approval may lift it. */
  readonly approvable: boolean;
  /** Policies that failed to evaluate (treated as not satisfied, Cedar's semantics); ids only. */
  readonly errored: readonly string[];
}

/** The Cedar engine of one server: a validated, preparsed policy set that SIGHUP can replace. */
export interface PolicyEngine {
  /** The policies in force. */
  readonly policies: readonly LoadedPolicy[];
  /** Evaluates one request against the preparsed policy set (synchronous, no I/O). */
  authorize(request: CedarRequest): CedarDecision;
  /**
   * Reads the files again; a valid set replaces the one in force between two calls (calls in
   * flight are unaffected: evaluation is synchronous). An invalid set keeps the old one.
   */
  reload(): Promise<{ ok: true; count: number } | { ok: false; reason: string }>;
}

interface PolicySetVersion {
  readonly id: string;
  readonly policies: readonly LoadedPolicy[];
  readonly byId: ReadonlyMap<string, LoadedPolicy>;
}

function errorsText(errors: readonly { message: string; help?: string | null }[]): string {
  return errors
    .slice(0, 5)
    .map((e) => (e.help ? `${e.message} (${e.help})` : e.message))
    .join('; ');
}

/**
 * Reads, parses and validates (strict mode) the policy files against `schema`.
 *
 * @throws Error whose message names the file and the policy, never anything but policy text
 *   positions and Cedar's explanation.
 */
async function loadPolicySet(
  files: readonly string[],
  schema: cedar.Schema,
): Promise<PolicySetVersion> {
  const policies: LoadedPolicy[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(
        `cannot read policy file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    const parts = cedar.policySetTextToParts(text);
    if (parts.type !== 'success')
      throw new Error(`policy file ${file}: ${errorsText(parts.errors)}`);
    if (parts.policy_templates.length > 0)
      throw new Error(`policy file ${file}: templates are not supported; write static policies`);
    parts.policies.forEach((policyText, i) => {
      const json = cedar.policyToJson(policyText);
      if (json.type !== 'success')
        throw new Error(`policy file ${file}: ${errorsText(json.errors)}`);
      const annotations = json.json.annotations ?? {};
      const id = annotations.id ?? `${basename(file)}#${i + 1}`;
      if (!/^[A-Za-z0-9_.:#-]{1,128}$/.test(id))
        throw new Error(
          `policy file ${file}: policy id ${JSON.stringify(id).slice(0, 140)} is not [A-Za-z0-9_.:#-]{1,128}`,
        );
      policies.push({
        id,
        file,
        effect: json.json.effect,
        approvable: annotations.approval === 'required',
        text: policyText,
      });
    });
  }
  const byId = new Map<string, LoadedPolicy>();
  for (const p of policies) {
    if (byId.has(p.id))
      throw new Error(`duplicate policy id ${p.id} (in ${byId.get(p.id)?.file} and ${p.file})`);
    byId.set(p.id, p);
  }
  for (const p of policies)
    if (p.approvable && p.effect !== 'forbid')
      throw new Error(
        `policy ${p.id}: @approval("required") is only meaningful on a forbid policy`,
      );
  const staticPolicies = Object.fromEntries(policies.map((p) => [p.id, p.text]));
  const validation = cedar.validate({
    schema,
    policies: { staticPolicies },
    validationSettings: { mode: 'strict' },
  });
  if (validation.type !== 'success')
    throw new Error(`policies do not validate: ${errorsText(validation.errors)}`);
  if (validation.validationErrors.length > 0)
    throw new Error(
      `policies do not validate against the schema: ${validation.validationErrors
        .slice(0, 5)
        .map((e) => `${e.policyId}: ${e.error.message}${e.error.help ? ` (${e.error.help})` : ''}`)
        .join('; ')}`,
    );
  const id = `hmcp-${randomUUID()}`;
  const prepared = cedar.preparsePolicySet(id, { staticPolicies });
  if (prepared.type !== 'success')
    throw new Error(`policies could not be prepared: ${errorsText(prepared.errors)}`);
  return { id, policies, byId };
}

/** What {@link createPolicyEngine} needs. */
export interface PolicyEngineOptions {
  /** Policy files (`policies.files`), in order. */
  readonly files: readonly string[];
  /** The schema generated from the connector's declarations ({@link generateCedarSchema}). */
  readonly schema: cedar.SchemaJson<string>;
  /** Reports a rejected reload (the old set stays). */
  readonly onReloadRejected?: ((reason: string) => void) | undefined;
}

/**
 * Loads and validates the policy files and prepares them once (Cedar's preparsed, cached policy
 * set): per call only the request's entities and context cross into the Wasm engine.
 *
 * @throws StartupError when a file cannot be read, does not parse, or does not validate against
 *   the schema (strict mode: a misspelled attribute, action or type is a startup error, never a
 *   silent deny).
 */
export async function createPolicyEngine(options: PolicyEngineOptions): Promise<PolicyEngine> {
  const schemaName = `hmcp-schema-${randomUUID()}`;
  const schemaReady = cedar.preparseSchema(schemaName, options.schema);
  if (schemaReady.type !== 'success')
    throw new StartupError(
      `the generated Cedar schema is invalid: ${errorsText(schemaReady.errors)}`,
    );
  let current: PolicySetVersion;
  try {
    current = await loadPolicySet(options.files, options.schema);
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
  const actionType = `${CEDAR_NAMESPACE}::Action`;
  // Cedar is deterministic: the same request against the same policy set gets the same answer.
  // Requests repeat (same principal, tool, resource, and a context at minute resolution), so
  // answers are cached per policy set, keyed by the request's JSON; a reload starts a new cache.
  let decisions = new Map<string, CedarDecision>();
  const evaluate = (request: CedarRequest): CedarDecision => {
    const answer = cedar.statefulIsAuthorized({
      principal: request.principal,
      action: { type: actionType, id: request.action },
      resource: request.resource,
      context: request.context as cedar.Context,
      entities: request.entities as cedar.Entities,
      preparsedPolicySetId: current.id,
      preparsedSchemaName: schemaName,
      validateRequest: false,
    });
    // A request Cedar cannot evaluate (malformed entity) is a denial: fail closed.
    if (answer.type !== 'success')
      return { allowed: false, policies: [], approvable: false, errored: ['request'] };
    const { decision, diagnostics } = answer.response;
    const reasons = diagnostics.reason;
    const allowed = decision === 'allow';
    return {
      allowed,
      policies: reasons,
      approvable:
        !allowed &&
        reasons.length > 0 &&
        reasons.every((id) => current.byId.get(id)?.approvable === true),
      errored: diagnostics.errors.map((e) => e.policyId),
    };
  };
  return {
    get policies() {
      return current.policies;
    },
    authorize(request) {
      const key = JSON.stringify(request);
      const hit = decisions.get(key);
      if (hit) return hit;
      const decision = Object.freeze(evaluate(request));
      if (decisions.size >= MAX_CACHED_DECISIONS) decisions = new Map();
      decisions.set(key, decision);
      return decision;
    },
    async reload() {
      try {
        current = await loadPolicySet(options.files, options.schema);
        decisions = new Map();
        return { ok: true as const, count: current.policies.length };
      } catch (err) {
        const reason = (err as Error).message;
        options.onReloadRejected?.(reason);
        return { ok: false as const, reason };
      }
    },
  };
}
