import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { StartupError } from '../errors.js';
import { CEDAR_NAMESPACE } from './cedar-schema.js';
import {
  analysePolicy,
  ancestorsOf,
  attrsOf,
  conforms,
  guardHolds,
  hasLossyLong,
  type PolicyFacts,
  policyMayApply,
  principalLiterals,
  type ReadPlan,
  readPlan,
  refinable,
  ruledOut,
  type SchemaFacts,
  schemaFacts,
  specialize,
  trimRequest,
} from './cedar-slices.js';

/** Synchronous `require` for modules loaded on first use only (CommonJS packages). */
const lazyRequire = createRequire(import.meta.url);
let loadedCedar: typeof cedar | undefined;

/**
 * Cedar's Wasm module, loaded on first use: importing it compiles 4 MB of Wasm, which a server
 * without `policies.files` never needs (startup cost, issue 14).
 */
function cedarWasm(): typeof cedar {
  loadedCedar ??= lazyRequire('@cedar-policy/cedar-wasm/nodejs') as typeof cedar;
  return loadedCedar;
}

/** Cached decisions per policy set at most (the cache restarts empty past it). */
const MAX_CACHED_DECISIONS = 10_000;
/**
 * Preparsed slices per policy set at most (per action, and per action and role set). Cedar's
 * Wasm module cannot drop a preparsed set, so slice ids are reused: two generations (the set in
 * force and the one a reload prepares), each with at most this many ids.
 */
const MAX_SLICES = 128;
/** Remembered (action, held roles) keys per policy set at most, beyond those with a slice. */
const MAX_SLICE_KEYS = 4096;

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
  /** Counters since start or the last reload (bench and tests): see {@link PolicyEngineStats}. */
  stats(): PolicyEngineStats;
}

/** How the engine evaluated requests since it started or last reloaded. */
export interface PolicyEngineStats {
  /** Preparsed slices of the set in force (per action, and per action and role set). */
  readonly slices: number;
  /** Wasm evaluations of a trimmed request against a slice, without the schema. */
  readonly trimmed: number;
  /** Wasm evaluations of the whole request with the schema (against a slice or the whole set). */
  readonly whole: number;
  /** Requests denied before Wasm because they do not conform to the schema. */
  readonly nonConforming: number;
  /** Answers from the decision cache. */
  readonly cached: number;
  /**
   * Requests answered from a slice narrowed by their own uids and resource (policies they rule
   * out left out; evaluated or cached).
   */
  readonly narrowed: number;
}

/** A preparsed subset of the policy set and what its policies read. */
interface Slice {
  readonly id: string;
  readonly policies: readonly PolicyFacts[];
  readonly plan: ReadPlan;
  /** `principal in X` literals of its policies (`type\0id`): refined per principal by these. */
  readonly literals: ReadonlySet<string>;
  /** The held literals it was specialized for (undefined: the action's slice). */
  readonly held: ReadonlySet<string> | undefined;
  /** Its policies that some requests rule out by their own uids or resource ({@link ruledOut}). */
  readonly refinable: readonly PolicyFacts[];
}

interface PolicySetVersion {
  readonly id: string;
  readonly policies: readonly LoadedPolicy[];
  readonly byId: ReadonlyMap<string, LoadedPolicy>;
  /** Per policy, what it can match and read; undefined: a form the slicer does not model. */
  readonly facts: readonly PolicyFacts[] | undefined;
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
  id: string,
): Promise<PolicySetVersion> {
  const policies: LoadedPolicy[] = [];
  const facts: (PolicyFacts | undefined)[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(
        `cannot read policy file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    const parts = cedarWasm().policySetTextToParts(text);
    if (parts.type !== 'success')
      throw new Error(`policy file ${file}: ${errorsText(parts.errors)}`);
    if (parts.policy_templates.length > 0)
      throw new Error(`policy file ${file}: templates are not supported; write static policies`);
    parts.policies.forEach((policyText, i) => {
      const json = cedarWasm().policyToJson(policyText);
      if (json.type !== 'success')
        throw new Error(`policy file ${file}: ${errorsText(json.errors)}`);
      const annotations = json.json.annotations ?? {};
      const id = annotations.id ?? `${basename(file)}#${i + 1}`;
      if (!/^[A-Za-z0-9_.:#-]{1,128}$/.test(id))
        throw new Error(
          `policy file ${file}: policy id ${JSON.stringify(id).slice(0, 140)} is not [A-Za-z0-9_.:#-]{1,128}`,
        );
      facts.push(hasLossyLong(policyText) ? undefined : analysePolicy(id, json.json));
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
  const validation = cedarWasm().validate({
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
  const prepared = cedarWasm().preparsePolicySet(id, { staticPolicies });
  if (prepared.type !== 'success')
    throw new Error(`policies could not be prepared: ${errorsText(prepared.errors)}`);
  const analysed = facts.every((f) => f !== undefined) ? (facts as PolicyFacts[]) : undefined;
  return { id, policies, byId, facts: analysed };
}

/** What {@link createPolicyEngine} needs. */
export interface PolicyEngineOptions {
  /** Policy files (`policies.files`), in order. */
  readonly files: readonly string[];
  /** The schema generated from the connector's declarations ({@link generateCedarSchema}). */
  readonly schema: cedar.SchemaJson<string>;
  /** Reports a rejected reload (the old set stays). */
  readonly onReloadRejected?: ((reason: string) => void) | undefined;
  /**
   * Slice the policy set per request and trim the request to what the policies read (default
   * true; same decisions, see cedar-slices.ts). `false` sends every request whole against the
   * whole set with the schema: the reference the differential test compares against.
   */
  readonly slicing?: boolean | undefined;
}

/**
 * Loads and validates the policy files and prepares them once (Cedar's preparsed, cached policy
 * set): per call only the request's entities and context cross into the Wasm engine.
 *
 * With `slicing` (the default) each request is evaluated against the slice of policies whose
 * scope can match its action, resource type and principal roles, with only the attributes and
 * context keys those policies read; the request is first checked against the schema in
 * JavaScript (declared types and attributes, as Cedar's schema-based parsing does, and leaf
 * types of the context too). The decision, its determining policies and the errored policies
 * are the same as for the whole request against the whole set (cedar-slices.ts says why;
 * cedar-engine.test.ts compares both on random requests).
 *
 * @throws StartupError when a file cannot be read, does not parse, or does not validate against
 *   the schema (strict mode: a misspelled attribute, action or type is a startup error, never a
 *   silent deny).
 */
export async function createPolicyEngine(options: PolicyEngineOptions): Promise<PolicyEngine> {
  const engineId = `hmcp-${randomUUID()}`;
  const schemaName = `${engineId}-schema`;
  const schemaReady = cedarWasm().preparseSchema(schemaName, options.schema);
  if (schemaReady.type !== 'success')
    throw new StartupError(
      `the generated Cedar schema is invalid: ${errorsText(schemaReady.errors)}`,
    );
  const facts: SchemaFacts | undefined =
    options.slicing === false ? undefined : schemaFacts(options.schema);
  // Two generations of preparsed ids, reused: the Wasm module cannot drop a set, and a reload
  // prepares the new one beside the one in force.
  let generation = 0;
  const setId = (gen: number) => `${engineId}-${gen}`;
  let current: PolicySetVersion;
  try {
    current = await loadPolicySet(options.files, options.schema, setId(generation));
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
  const actionType = `${CEDAR_NAMESPACE}::Action`;

  /** Slices of the set in force: per action, and per action and held role literals. */
  let slices = new Map<string, Slice | undefined>();
  let sliceIds = new Map<string, Slice>();
  const sliceOf = (
    version: PolicySetVersion,
    key: string,
    action: string,
    policies: readonly PolicyFacts[],
    held: ReadonlySet<string> | undefined,
    guardsHold = false,
  ): Slice | undefined => {
    const ids = `${held ? 'r' : 'a'}${guardsHold ? 'g' : '-'}${action}\u0001${policies.map((p) => p.id).join('\u0000')}`;
    let slice = sliceIds.get(ids);
    if (!slice && facts && sliceIds.size < MAX_SLICES) {
      const id = `${version.id}-${sliceIds.size}`;
      const specialized = policies.map((p) => specialize(p, action, facts, held, guardsHold));
      const staticPolicies = Object.fromEntries(
        specialized.map((p) => [p.facts.id, p.json as unknown as cedar.PolicyJson]),
      );
      // Past the bound, or if Cedar refuses the slice (it cannot: it parsed the whole set),
      // this key goes unsliced (the whole request against the whole set with the schema).
      if (cedarWasm().preparsePolicySet(id, { staticPolicies }).type === 'success') {
        slice = {
          id,
          policies,
          plan: readPlan(specialized),
          literals: principalLiterals(policies),
          held,
          refinable: policies.filter(refinable),
        };
        sliceIds.set(ids, slice);
      }
    }
    // Keys past the bound (no slice) are remembered too, up to a limit on the map itself.
    if (slice || slices.size < MAX_SLICE_KEYS) slices.set(key, slice);
    return slice;
  };

  const decide = (answer: cedar.AuthorizationAnswer, version: PolicySetVersion): CedarDecision => {
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
        reasons.every((id) => version.byId.get(id)?.approvable === true),
      errored: diagnostics.errors.map((e) => e.policyId),
    };
  };
  /** The whole request, checked by Cedar against the schema (`setId`: whole set or a slice). */
  const withSchema = (request: CedarRequest, setId: string) =>
    cedarWasm().statefulIsAuthorized({
      principal: request.principal,
      action: { type: actionType, id: request.action },
      resource: request.resource,
      context: request.context as cedar.Context,
      entities: request.entities as cedar.Entities,
      preparsedPolicySetId: setId,
      preparsedSchemaName: schemaName,
      validateRequest: false,
    });

  // Cedar is deterministic: the same request against the same policy set gets the same answer.
  // Requests repeat (same principal, tool, resource, and a context at minute resolution), so
  // answers are cached per policy set, keyed by what crosses into Wasm; a reload starts a new
  // cache.
  let decisions = new Map<string, CedarDecision>();
  const counts = { trimmed: 0, whole: 0, nonConforming: 0, cached: 0, narrowed: 0 };
  const cached = (key: string, evaluate: () => CedarDecision): CedarDecision => {
    const hit = decisions.get(key);
    if (hit) {
      counts.cached++;
      return hit;
    }
    const decision = Object.freeze(evaluate());
    if (decisions.size >= MAX_CACHED_DECISIONS) decisions = new Map();
    decisions.set(key, decision);
    return decision;
  };
  const reference = (request: CedarRequest, version: PolicySetVersion) =>
    cached(`r${JSON.stringify(request)}`, () => {
      counts.whole++;
      return decide(withSchema(request, version.id), version);
    });

  const authorize = (request: CedarRequest): CedarDecision => {
    const version = current;
    if (!facts || !version.facts) return reference(request, version);
    const entities = conforms(request, facts);
    if (entities === false) {
      counts.nonConforming++;
      return { allowed: false, policies: [], approvable: false, errored: ['request'] };
    }
    if (entities === 'reference') return reference(request, version);
    const all = version.facts;
    const action = request.action;
    let slice = slices.get(action);
    if (!slices.has(action))
      slice = sliceOf(
        version,
        action,
        action,
        all.filter((p) => policyMayApply(p, action, facts)),
        undefined,
      );
    if (slice && slice.literals.size > 0) {
      const ancestors = ancestorsOf(request.principal, entities);
      const held = [...slice.literals].filter((l) => ancestors.has(l)).sort();
      const key = `${action}\u0001${held.join('\u0001')}`;
      const refined = slices.has(key)
        ? slices.get(key)
        : sliceOf(
            version,
            key,
            action,
            slice.policies.filter((p) => policyMayApply(p, action, facts, ancestors)),
            new Set(held),
          );
      slice = refined ?? slice;
    }
    if (slice && slice.refinable.length > 0) {
      // Policies this request rules out by its own uids and resource: a narrower slice, keyed by
      // the base slice and the ids ruled out (bounded like every slice; past it, the base).
      // When every kept policy's resource guard holds, the slice has them folded to `true`.
      const resourceAttrs = attrsOf(request.resource, entities);
      let out = '';
      let guards = 0;
      let holding = 0;
      for (const p of slice.refinable)
        if (ruledOut(p, request, resourceAttrs)) out += `\u0001${p.id}`;
        else if (p.resourceGuard) {
          guards++;
          if (guardHolds(p, resourceAttrs)) holding++;
        }
      const fold = guards > 0 && holding === guards;
      if (out !== '' || fold) {
        const base = slice;
        const key = `${base.id}\u0002${fold ? 'g' : ''}${out}`;
        const narrow = slices.has(key)
          ? slices.get(key)
          : sliceOf(
              version,
              key,
              action,
              base.policies.filter((p) => !refinable(p) || !ruledOut(p, request, resourceAttrs)),
              base.held,
              fold,
            );
        if (narrow) counts.narrowed++;
        slice = narrow ?? base;
      }
    }
    if (!slice) return reference(request, version);
    const { id, plan } = slice;
    if (plan.schema)
      return cached(`s${id}\u0000${JSON.stringify(request)}`, () => {
        counts.whole++;
        return decide(withSchema(request, id), version);
      });
    const trimmed = trimRequest(request, entities, plan, facts);
    const call = {
      principal: request.principal,
      action: { type: actionType, id: action },
      resource: request.resource,
      context: trimmed.context as cedar.Context,
      entities: trimmed.entities as cedar.Entities,
      preparsedPolicySetId: id,
      validateRequest: false,
    };
    return cached(`t${id}\u0000${JSON.stringify(call)}`, () => {
      counts.trimmed++;
      return decide(cedarWasm().statefulIsAuthorized(call), version);
    });
  };

  let reloading: Promise<unknown> = Promise.resolve();
  return {
    get policies() {
      return current.policies;
    },
    authorize,
    stats: () => ({ slices: sliceIds.size, ...counts }),
    reload() {
      // One reload at a time: each prepares into the generation not in force.
      const run = reloading.then(reloadNow);
      reloading = run.catch(() => undefined);
      return run;
    },
  };

  async function reloadNow(): Promise<{ ok: true; count: number } | { ok: false; reason: string }> {
    try {
      const next = generation ^ 1;
      const version = await loadPolicySet(options.files, options.schema, setId(next));
      // Synchronous from here: no call sees a half-switched engine.
      current = version;
      generation = next;
      slices = new Map();
      sliceIds = new Map();
      decisions = new Map();
      return { ok: true as const, count: current.policies.length };
    } catch (err) {
      const reason = (err as Error).message;
      options.onReloadRejected?.(reason);
      return { ok: false as const, reason };
    }
  }
}
