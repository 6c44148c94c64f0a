/**
 * What makes a Cedar decision cheap without changing it: per request, only the policies whose
 * scope can match cross into the Wasm engine (a slice of the policy set), and only the entity
 * attributes and context keys those policies can read (a trimmed request).
 *
 * Both rest on Cedar's semantics (https://docs.cedarpolicy.com/policies/syntax-policy.html and
 * the authorization algorithm, https://docs.cedarpolicy.com/auth/authorization.html):
 *
 * - A policy is satisfied only when its scope (principal, action, resource constraints) and
 *   every condition hold; the scope is evaluated first and a false scope short-circuits the
 *   conditions, so a policy whose scope cannot match is neither satisfied nor errored. The
 *   decision (deny if a forbid is satisfied, else allow if a permit is, else deny), the
 *   determining policies and the errored policies are therefore the same with or without it.
 * - A policy reads an entity attribute or a context key only through `.attr` or `has attr`
 *   (Cedar has no computed keys); a value it never names cannot change its result, except a
 *   record used whole (`context == {…}`), which is kept whole.
 *
 * Everything here is conservative: what it cannot analyse keeps the full request and the full
 * policy set.
 */
import type { CedarRequest } from './cedar-engine.js';

/** An entity reference in Cedar's JSON form (namespace-qualified type). */
export interface EntityRef {
  readonly type: string;
  readonly id: string;
}

/** One scope constraint of a policy (principal or resource), from its JSON (EST) form. */
type Scope =
  | { readonly op: 'All' }
  | { readonly op: '=='; readonly entity: EntityRef }
  | { readonly op: 'in'; readonly entity: EntityRef }
  | { readonly op: 'is'; readonly type: string; readonly in?: EntityRef | undefined };

/** The action constraint of a policy. */
type ActionScope =
  | { readonly op: 'All' }
  | { readonly op: '=='; readonly entity: EntityRef }
  | { readonly op: 'in'; readonly entities: readonly EntityRef[] };

/** Paths of a record a policy set reads: `true` = the value is read whole. */
export type Reads = true | Map<string, Reads>;

/** What one policy can match and read, derived from its JSON (EST) form. */
export interface PolicyFacts {
  readonly id: string;
  readonly principal: Scope;
  readonly action: ActionScope;
  readonly resource: Scope;
  /** Context paths the conditions read (`context.time.hour` → time → hour). */
  readonly context: Reads;
  /** Every attribute name read with `.` or `has` anywhere (entity attributes kept by name). */
  readonly attributes: ReadonlySet<string>;
  /** Its conditions use the entity hierarchy (`in`, or `is … in`). */
  readonly bodyHierarchy: boolean;
  /** The policy's JSON (EST) form, for the slices' specialized copies. */
  readonly json: Readonly<Record<string, unknown>>;
  /**
   * Its conditions name an action literal other than as `action in …`/`action == …`: only the
   * schema knows every action's groups, so such a policy is evaluated with the schema.
   */
  readonly actionLiterals: boolean;
  /**
   * The leftmost conjunct of its first condition when that is `when { resource.attr == literal
   * && … }` (either operand order, a String, Long or Boolean literal): a request whose resource
   * entity carries another value makes the policy false before anything else of it is evaluated.
   */
  readonly resourceGuard?: { readonly attr: string; readonly value: string | number | boolean };
}

/** One Cedar type of the generated schema, resolved. */
export type AttrType =
  | { readonly kind: 'String' | 'Long' | 'Boolean' }
  | { readonly kind: 'Set'; readonly element: AttrType }
  | { readonly kind: 'Record'; readonly attributes: ReadonlyMap<string, AttrType> };

/** What the slicer needs from the schema: actions, entity shapes and the context type. */
export interface SchemaFacts {
  readonly actionType: string;
  /** Action id → its groups (transitive), qualified principal and resource types. */
  readonly actions: ReadonlyMap<
    string,
    {
      readonly ancestors: readonly string[];
      readonly principalTypes: readonly string[];
      readonly resourceTypes: readonly string[];
      readonly context: AttrType;
    }
  >;
  /** Qualified entity type → its attributes (absent: none) and allowed parent types (transitive). */
  readonly entities: ReadonlyMap<
    string,
    { readonly shape: ReadonlyMap<string, AttrType>; readonly ancestorTypes: ReadonlySet<string> }
  >;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asRef(v: unknown): EntityRef | undefined {
  return isObject(v) && typeof v.type === 'string' && typeof v.id === 'string'
    ? { type: v.type, id: v.id }
    : undefined;
}

/** Thrown inside the analysis when a form is not understood: the caller keeps everything. */
class Opaque extends Error {}

function scopeOf(v: unknown): Scope {
  if (!isObject(v)) throw new Opaque();
  if (v.op === 'All') return { op: 'All' };
  if (v.op === '==' || v.op === 'in') {
    const entity = asRef(v.entity);
    if (!entity) throw new Opaque(); // slots (templates) are refused earlier; be safe anyway
    return { op: v.op, entity };
  }
  if (v.op === 'is' && typeof v.entity_type === 'string') {
    if (v.in === undefined) return { op: 'is', type: v.entity_type };
    const inRef = isObject(v.in) ? asRef(v.in.entity) : undefined;
    if (!inRef) throw new Opaque();
    return { op: 'is', type: v.entity_type, in: inRef };
  }
  throw new Opaque();
}

function actionScopeOf(v: unknown): ActionScope {
  if (!isObject(v)) throw new Opaque();
  if (v.op === 'All') return { op: 'All' };
  if (v.op === '==') {
    const entity = asRef(v.entity);
    if (!entity) throw new Opaque();
    return { op: '==', entity };
  }
  if (v.op === 'in') {
    const list = Array.isArray(v.entities) ? v.entities : [v.entity];
    const entities = list.map(asRef);
    if (entities.some((e) => e === undefined)) throw new Opaque();
    return { op: 'in', entities: entities as EntityRef[] };
  }
  throw new Opaque();
}

function addRead(reads: Reads, path: readonly string[]): Reads {
  if (reads === true) return true;
  if (path.length === 0) return true;
  const [head, ...rest] = path as [string, ...string[]];
  const sub = reads.get(head);
  reads.set(head, rest.length === 0 ? true : addRead(sub ?? new Map(), rest));
  return reads;
}

/** Path of `.`/`has` chains down to a variable: `context.time.hour` → ['context','time','hour']. */
function chain(expr: unknown): string[] | undefined {
  if (!isObject(expr)) return undefined;
  if (typeof expr.Var === 'string') return [expr.Var];
  const access = isObject(expr['.']) ? expr['.'] : undefined;
  if (access && typeof access.attr === 'string') {
    const left = chain(access.left);
    return left ? [...left, access.attr] : undefined;
  }
  return undefined;
}

/** `resource.attr` → attr. */
function resourceAttr(expr: unknown): string | undefined {
  const path = chain(expr);
  return path?.length === 2 && path[0] === 'resource' ? path[1] : undefined;
}

/**
 * Whether a policy's text holds an integer literal that a JS number cannot hold exactly.
 * Cedar Longs are 64-bit; `cedar.policyToJson` returns them as JS numbers, exact only up to
 * 2^53 (ECMA-262 Number.MAX_SAFE_INTEGER): `1152921504606846977` comes back as
 * `1152921504606847000`, and a slice built from that JSON would compare another value than the
 * policy does. Such a policy must not be analysed (the set is then evaluated whole). Digit runs
 * inside strings are counted too: that only costs slicing, never a decision.
 *
 * @param text one policy's Cedar source
 */
export function hasLossyLong(text: string): boolean {
  for (const run of text.match(/\d{16,}/g) ?? []) {
    const exact = BigInt(run);
    if (BigInt(Number(run)) !== exact) return true;
  }
  return false;
}

/** A String, Long or Boolean literal's value. */
function primitiveLiteral(expr: unknown): string | number | boolean | undefined {
  if (!isObject(expr) || Object.keys(expr).length !== 1 || !Object.hasOwn(expr, 'Value'))
    return undefined;
  const v = expr.Value;
  return typeof v === 'string' ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isInteger(v))
    ? v
    : undefined;
}

/**
 * The guard of a first condition `when { resource.attr == literal && … }` (see
 * {@link PolicyFacts.resourceGuard}): the leftmost operand of its `&&` chain.
 */
function guardOf(
  condition: unknown,
): { attr: string; value: string | number | boolean } | undefined {
  if (!isObject(condition) || condition.kind !== 'when') return undefined;
  let expr: unknown = condition.body;
  while (isObject(expr) && Object.keys(expr).length === 1 && isObject(expr['&&']))
    expr = expr['&&'].left;
  if (!isObject(expr) || Object.keys(expr).length !== 1 || !isObject(expr['=='])) return undefined;
  const { left, right } = expr['=='];
  const attr = resourceAttr(left) ?? resourceAttr(right);
  const value = primitiveLiteral(resourceAttr(left) !== undefined ? right : left);
  return attr !== undefined && value !== undefined ? { attr, value } : undefined;
}

/**
 * Analyses one policy's JSON form: its scope and what its conditions read.
 *
 * @returns undefined when a form is not understood (the caller then never slices or trims).
 */
export function analysePolicy(id: string, json: unknown): PolicyFacts | undefined {
  try {
    if (!isObject(json)) throw new Opaque();
    const principal = scopeOf(json.principal);
    const action = actionScopeOf(json.action);
    const resource = scopeOf(json.resource);
    let context: Reads = new Map();
    const attributes = new Set<string>();
    let hierarchy = false;
    let actionLiterals = false;
    const isActionVar = (e: unknown) => isObject(e) && e.Var === 'action';
    const visit = (expr: unknown, actionLiteralOk = false): void => {
      if (Array.isArray(expr)) {
        for (const e of expr) visit(e, actionLiteralOk);
        return;
      }
      if (!isObject(expr)) return;
      const keys = Object.keys(expr);
      if (keys.length !== 1) throw new Opaque();
      const op = keys[0] as string;
      const body = expr[op];
      switch (op) {
        case 'Value':
          if (!actionLiteralOk && JSON.stringify(body).includes('"__entity"')) {
            const refs = JSON.stringify(body).match(/"type":"[^"]*"/g) ?? [];
            if (refs.some((r) => r === '"type":"Action"' || r.endsWith('::Action"')))
              actionLiterals = true;
          }
          return; // literals read nothing (entity literals' attributes are caught by `.` below)
        case 'Slot':
        case 'Unknown':
          return;
        case 'Var':
          // A variable used other than through `.`/`has`: the whole context is read.
          if (body === 'context') context = true;
          return;
        case '.':
        case 'has': {
          if (!isObject(body) || typeof body.attr !== 'string') throw new Opaque();
          const path = chain(body.left);
          // A context path reads the context only: it holds no entity (else no schema facts).
          if (path?.[0] === 'context') context = addRead(context, [...path.slice(1), body.attr]);
          else {
            attributes.add(body.attr);
            visit(body.left);
          }
          return;
        }
        case 'Record':
          if (!isObject(body)) throw new Opaque();
          for (const v of Object.values(body)) visit(v); // keys are the policy's own names
          return;
        case 'in':
        case '==':
        case '!=':
          if (op === 'in') hierarchy = true;
          if (!isObject(body)) throw new Opaque();
          // `action in Hmcp::Action::"read"`: the request's action entity carries its groups.
          visit(body.left);
          visit(body.right, isActionVar(body.left));
          return;
        case 'is':
          if (isObject(body) && body.in !== undefined) hierarchy = true;
          visit(isObject(body) ? Object.values(body) : body);
          return;
        case 'Set':
          visit(body, actionLiteralOk);
          return;
        case 'like':
          if (!isObject(body)) throw new Opaque();
          visit(body.left);
          return;
        default:
          // Operators ({left,right} / {arg} / if-then-else) and functions ([args]).
          visit(isObject(body) ? Object.values(body) : body);
      }
    };
    const conditions = json.conditions;
    if (!Array.isArray(conditions)) throw new Opaque();
    for (const c of conditions) {
      if (!isObject(c) || (c.kind !== 'when' && c.kind !== 'unless')) throw new Opaque();
      visit(c.body);
    }
    const resourceGuard = guardOf(conditions[0]);
    return {
      id,
      principal,
      action,
      resource,
      context,
      attributes,
      bodyHierarchy: hierarchy,
      actionLiterals,
      json,
      ...(resourceGuard ? { resourceGuard } : {}),
    };
  } catch (err) {
    if (err instanceof Opaque) return undefined;
    throw err;
  }
}

function resolveType(
  t: unknown,
  namespace: Record<string, unknown>,
  depth = 0,
): AttrType | undefined {
  if (!isObject(t) || typeof t.type !== 'string' || depth > 16) return undefined;
  if (t.type === 'String' || t.type === 'Long' || t.type === 'Boolean') return { kind: t.type };
  if (t.type === 'Set') {
    const element = resolveType(t.element, namespace, depth + 1);
    return element ? { kind: 'Set', element } : undefined;
  }
  if (t.type === 'Record') {
    if (!isObject(t.attributes)) return undefined;
    const attributes = new Map<string, AttrType>();
    for (const [k, v] of Object.entries(t.attributes)) {
      // Optional attributes are not generated; not understood → not optimized.
      if (isObject(v) && v.required === false) return undefined;
      const r = resolveType(v, namespace, depth + 1);
      if (!r) return undefined;
      attributes.set(k, r);
    }
    return { kind: 'Record', attributes };
  }
  const common = isObject(namespace.commonTypes) ? namespace.commonTypes[t.type] : undefined;
  return common === undefined ? undefined : resolveType(common, namespace, depth + 1);
}

/**
 * Reads the generated schema (one namespace, JSON form) into {@link SchemaFacts}.
 *
 * @returns undefined when the schema uses a form the slicer does not model (then nothing is
 *   sliced or trimmed and Cedar checks requests against the schema itself).
 */
export function schemaFacts(schema: unknown): SchemaFacts | undefined {
  if (!isObject(schema)) return undefined;
  const names = Object.keys(schema);
  if (names.length !== 1) return undefined;
  const name = names[0] as string;
  const ns = schema[name];
  if (!isObject(ns) || !isObject(ns.entityTypes) || !isObject(ns.actions)) return undefined;
  const q = (n: string) => `${name}::${n}`;
  const parentsOf = new Map<string, string[]>();
  const entities = new Map<
    string,
    { shape: ReadonlyMap<string, AttrType>; ancestorTypes: Set<string> }
  >();
  for (const [type, decl] of Object.entries(ns.entityTypes)) {
    if (!isObject(decl)) return undefined;
    let shape: ReadonlyMap<string, AttrType> = new Map();
    if (decl.shape !== undefined) {
      const r = resolveType(decl.shape, ns);
      if (r?.kind !== 'Record') return undefined;
      shape = r.attributes;
    }
    const memberOf = decl.memberOfTypes ?? [];
    if (!Array.isArray(memberOf) || memberOf.some((m) => typeof m !== 'string')) return undefined;
    parentsOf.set(q(type), (memberOf as string[]).map(q));
    entities.set(q(type), { shape, ancestorTypes: new Set() });
  }
  for (const [type, e] of entities) {
    const todo = [...(parentsOf.get(type) ?? [])];
    while (todo.length > 0) {
      const t = todo.pop() as string;
      if (e.ancestorTypes.has(t)) continue;
      e.ancestorTypes.add(t);
      todo.push(...(parentsOf.get(t) ?? []));
    }
  }
  const groups = new Map<string, string[]>();
  for (const [id, decl] of Object.entries(ns.actions)) {
    if (!isObject(decl)) return undefined;
    const memberOf = decl.memberOf ?? [];
    if (!Array.isArray(memberOf)) return undefined;
    const parents: string[] = [];
    for (const m of memberOf) {
      if (!isObject(m) || typeof m.id !== 'string' || (m.type !== undefined && m.type !== 'Action'))
        return undefined;
      parents.push(m.id);
    }
    groups.set(id, parents);
  }
  const actions = new Map<
    string,
    {
      ancestors: string[];
      principalTypes: string[];
      resourceTypes: string[];
      context: AttrType;
    }
  >();
  for (const [id, decl] of Object.entries(ns.actions)) {
    if (!isObject(decl) || decl.appliesTo === undefined) continue; // groups: no requests
    const applies = decl.appliesTo;
    if (!isObject(applies)) return undefined;
    const context = resolveType(applies.context ?? { type: 'Record', attributes: {} }, ns);
    const principalTypes = applies.principalTypes;
    const resourceTypes = applies.resourceTypes;
    if (
      context?.kind !== 'Record' ||
      !Array.isArray(principalTypes) ||
      !Array.isArray(resourceTypes) ||
      [...principalTypes, ...resourceTypes].some((t) => typeof t !== 'string')
    )
      return undefined;
    const ancestors = new Set<string>();
    const todo = [...(groups.get(id) ?? [])];
    while (todo.length > 0) {
      const g = todo.pop() as string;
      if (ancestors.has(g)) continue;
      ancestors.add(g);
      todo.push(...(groups.get(g) ?? []));
    }
    actions.set(id, {
      ancestors: [...ancestors],
      principalTypes: (principalTypes as string[]).map(q),
      resourceTypes: (resourceTypes as string[]).map(q),
      context,
    });
  }
  return { actionType: q('Action'), actions, entities };
}

/** Can a principal/resource scope match an entity of one of `types` (type-level)? */
function scopeMayMatch(
  scope: Scope,
  types: readonly string[],
  schema: SchemaFacts,
  ancestors: ReadonlySet<string> | undefined,
): boolean {
  const mayBeIn = (ref: EntityRef, type: string) =>
    ref.type === type || schema.entities.get(type)?.ancestorTypes.has(ref.type) === true;
  const key = (ref: EntityRef) => `${ref.type}\u0000${ref.id}`;
  // `in` a literal of another type than the entity's: true only if it is an ancestor.
  const inOk = (ref: EntityRef, type: string) =>
    mayBeIn(ref, type) && (ref.type === type || ancestors === undefined || ancestors.has(key(ref)));
  switch (scope.op) {
    case 'All':
      return true;
    case '==':
      return types.includes(scope.entity.type);
    case 'in':
      return types.some((t) => inOk(scope.entity, t));
    case 'is':
      return types.includes(scope.type) && (scope.in === undefined || inOk(scope.in, scope.type));
  }
}

/**
 * May `policy` be satisfied (or error) for a request with this action? Type-level for the
 * resource; for the principal also by its ancestors (`principal in Role::"x"` needs `x` among
 * them) when `principalAncestors` is given (keys `type\0id`).
 */
export function policyMayApply(
  policy: PolicyFacts,
  action: string,
  schema: SchemaFacts,
  principalAncestors?: ReadonlySet<string>,
): boolean {
  const a = schema.actions.get(action);
  if (!a) return true;
  const actionType = schema.actionType;
  const isAction = (e: EntityRef) =>
    e.type === actionType && (e.id === action || a.ancestors.includes(e.id));
  const actionOk =
    policy.action.op === 'All' ||
    (policy.action.op === '=='
      ? policy.action.entity.type === actionType && policy.action.entity.id === action
      : policy.action.entities.some(isAction));
  return (
    actionOk &&
    scopeMayMatch(policy.principal, a.principalTypes, schema, principalAncestors) &&
    scopeMayMatch(policy.resource, a.resourceTypes, schema, undefined)
  );
}

/** `policy.json` with its resource guard ({@link PolicyFacts.resourceGuard}) replaced by `true`. */
function foldGuard(json: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined {
  const conditions = json.conditions;
  if (!Array.isArray(conditions) || !isObject(conditions[0])) return undefined;
  const fold = (expr: unknown): unknown => {
    if (!isObject(expr)) return undefined;
    const and = expr['&&'];
    if (isObject(and)) {
      const left = fold(and.left);
      return left === undefined ? undefined : { '&&': { ...and, left } };
    }
    return isObject(expr['==']) ? { Value: true } : undefined;
  };
  const body = fold(conditions[0].body);
  if (body === undefined) return undefined;
  return { ...json, conditions: [{ ...conditions[0], body }, ...conditions.slice(1)] };
}

/**
 * Does the request's resource entity satisfy `policy`'s resource guard (present, with the
 * guard's attribute equal to its literal)? Then the guard is `true`, without error.
 */
export function guardHolds(
  policy: PolicyFacts,
  resourceAttrs: Readonly<Record<string, unknown>> | undefined,
): boolean {
  const guard = policy.resourceGuard;
  return (
    guard !== undefined &&
    resourceAttrs !== undefined &&
    Object.hasOwn(resourceAttrs, guard.attr) &&
    resourceAttrs[guard.attr] === guard.value
  );
}

/** Can {@link ruledOut} rule `policy` out for some request (it has a test that depends on one)? */
export function refinable(policy: PolicyFacts): boolean {
  return (
    policy.principal.op === '==' ||
    policy.resource.op === '==' ||
    policy.resourceGuard !== undefined
  );
}

/**
 * Is `policy` certainly neither satisfied nor errored for this request, by the request's own
 * uids and resource entity: a `principal == E` or `resource == E` scope naming another entity
 * (a false scope short-circuits the conditions), or a {@link PolicyFacts.resourceGuard} the
 * resource entity's value fails (the first condition's leftmost `&&` operand is false, so the
 * policy is false before anything else of it is evaluated; Cedar's `==` never errors, and
 * `resource.attr` cannot error when the entity and its attribute are in the request).
 * `resourceAttrs`: the attributes of the request's resource entity, undefined when the request
 * does not carry it (then no guard rules a policy out).
 */
export function ruledOut(
  policy: PolicyFacts,
  request: CedarRequest,
  resourceAttrs: Readonly<Record<string, unknown>> | undefined,
): boolean {
  const p = policy.principal;
  if (
    p.op === '==' &&
    (p.entity.type !== request.principal.type || p.entity.id !== request.principal.id)
  )
    return true;
  const r = policy.resource;
  if (
    r.op === '==' &&
    (r.entity.type !== request.resource.type || r.entity.id !== request.resource.id)
  )
    return true;
  const guard = policy.resourceGuard;
  if (!guard || !resourceAttrs || !Object.hasOwn(resourceAttrs, guard.attr)) return false;
  const value = resourceAttrs[guard.attr];
  // Only a primitive attribute is compared here; Cedar's `==` of values of different types is
  // false, as is JavaScript's `===`.
  return (
    (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') &&
    value !== guard.value
  );
}

/** The attributes of the request's entity `uid` (a conforming request has it at most once). */
export function attrsOf(
  uid: EntityRef,
  entities: readonly EntityJson[],
): Readonly<Record<string, unknown>> | undefined {
  for (const e of entities) if (e.uid.type === uid.type && e.uid.id === uid.id) return e.attrs;
  return undefined;
}

/** Role-like literals (`principal in X` with X of another type) the slice's scopes name. */
export function principalLiterals(policies: readonly PolicyFacts[]): Set<string> {
  const out = new Set<string>();
  for (const p of policies) {
    const s = p.principal;
    const ref = s.op === 'in' ? s.entity : s.op === 'is' ? s.in : undefined;
    if (ref) out.add(`${ref.type}\u0000${ref.id}`);
  }
  return out;
}

/** What a slice's policies read, merged: the request is trimmed to this. */
export interface ReadPlan {
  /** A policy needs the schema's action hierarchy: send the full request with the schema. */
  readonly schema: boolean;
  readonly context: Reads;
  readonly attributes: ReadonlySet<string>;
  readonly hierarchy: boolean;
}

/**
 * A policy of a slice with the scope constraints that are true for every request of the slice
 * replaced by unconstrained ones (same truth value, so the same decision, determining and
 * errored policies): the action constraint (the slice is per action and the policy was kept
 * because it matches it), `is` of the action's only principal/resource type, and `principal
 * in X` for an X the principal holds (`held`: the slice is per set of held literals).
 * What stays may still need the hierarchy (`in` against a specific entity).
 */
export interface SpecializedPolicy {
  readonly facts: PolicyFacts;
  readonly json: Record<string, unknown>;
  /** A constraint left in the scope uses `in`. */
  readonly scopeHierarchy: boolean;
}

/** Specializes `policy` (kept by {@link policyMayApply} for `action` and `held`) for its slice. */
export function specialize(
  policy: PolicyFacts,
  action: string,
  schema: SchemaFacts,
  held: ReadonlySet<string> | undefined,
  guardHolds = false,
): SpecializedPolicy {
  if (guardHolds && policy.resourceGuard) {
    // The slice is used only for requests whose resource satisfies the guard: `true` in its
    // place has the same value and no error, and the attribute is no longer read.
    const json = foldGuard(policy.json);
    const facts = json ? analysePolicy(policy.id, json) : undefined;
    if (facts) return specialize(facts, action, schema, held);
  }
  const a = schema.actions.get(action);
  const json: Record<string, unknown> = { ...policy.json };
  let scopeHierarchy = false;
  if (!a) {
    const p = policy.principal;
    const r = policy.resource;
    scopeHierarchy =
      policy.action.op === 'in' ||
      p.op === 'in' ||
      (p.op === 'is' && p.in !== undefined) ||
      r.op === 'in' ||
      (r.op === 'is' && r.in !== undefined);
    return { facts: policy, json, scopeHierarchy };
  }
  json.action = { op: 'All' };
  const onlyPrincipalType = a.principalTypes.length === 1;
  const literalHeld = (ref: EntityRef) =>
    held !== undefined &&
    !a.principalTypes.includes(ref.type) &&
    held.has(`${ref.type}\u0000${ref.id}`);
  const p = policy.principal;
  if (
    (p.op === 'in' && literalHeld(p.entity)) ||
    (p.op === 'is' && onlyPrincipalType && (p.in === undefined || literalHeld(p.in)))
  )
    json.principal = { op: 'All' };
  else if (p.op === 'in' || (p.op === 'is' && p.in !== undefined)) scopeHierarchy = true;
  const r = policy.resource;
  if (r.op === 'is' && r.in === undefined && a.resourceTypes.length === 1)
    json.resource = { op: 'All' };
  else if (r.op === 'in' || (r.op === 'is' && r.in !== undefined)) scopeHierarchy = true;
  return { facts: policy, json, scopeHierarchy };
}

/** Merges the reads of a slice's (specialized) policies. */
export function readPlan(specialized: readonly SpecializedPolicy[]): ReadPlan {
  let context: Reads = new Map();
  const attributes = new Set<string>();
  let hierarchy = false;
  let schema = false;
  const merge = (into: Reads, from: Reads): Reads => {
    if (into === true || from === true) return true;
    for (const [k, v] of from) {
      const cur = into.get(k);
      into.set(k, cur === undefined ? (v === true ? true : merge(new Map(), v)) : merge(cur, v));
    }
    return into;
  };
  for (const { facts: p, scopeHierarchy } of specialized) {
    context = merge(context, p.context);
    for (const a of p.attributes) attributes.add(a);
    hierarchy ||= p.bodyHierarchy || scopeHierarchy;
    schema ||= p.actionLiterals;
  }
  return { schema, context, attributes, hierarchy };
}

function trimRecord(value: unknown, reads: Reads): unknown {
  if (reads === true || !isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, sub] of reads) if (Object.hasOwn(value, k)) out[k] = trimRecord(value[k], sub);
  return out;
}

const I64 = 2 ** 63;

function conformsTo(value: unknown, t: AttrType): boolean {
  switch (t.kind) {
    case 'String':
      return typeof value === 'string';
    case 'Boolean':
      return typeof value === 'boolean';
    case 'Long':
      return typeof value === 'number' && Number.isInteger(value) && value >= -I64 && value < I64;
    case 'Set':
      return Array.isArray(value) && value.every((v) => conformsTo(v, t.element));
    case 'Record': {
      if (!isObject(value)) return false;
      const keys = Object.keys(value);
      if (keys.length !== t.attributes.size) return false;
      for (const k of keys) {
        const a = t.attributes.get(k);
        if (!a || !conformsTo(value[k], a)) return false;
      }
      return true;
    }
  }
}

/** One entity of a request as {@link CedarRequest} carries it. */
interface EntityJson {
  readonly uid: EntityRef;
  readonly attrs: Record<string, unknown>;
  readonly parents: readonly EntityRef[];
}

/**
 * Checks a request against the schema the way Cedar's schema-based parsing does, or stricter:
 * declared entity types only (no action entities), exactly the declared attributes with their
 * types, parents of allowed types, a context of exactly the action's context type (also leaf
 * types, which Cedar leaves unchecked when `validateRequest` is off). Stricter only fails
 * closed: a non-conforming request is denied.
 *
 * @returns the request's entities when it conforms; `'reference'` when Cedar itself must judge
 *   (an unknown action, a principal or resource of a type the action does not apply to, or a
 *   uid given twice: Cedar accepts identical duplicates only);
 *   `false` when it does not conform.
 */
export function conforms(
  request: CedarRequest,
  schema: SchemaFacts,
): readonly EntityJson[] | 'reference' | false {
  const action = schema.actions.get(request.action);
  if (
    !action?.principalTypes.includes(request.principal.type) ||
    !action.resourceTypes.includes(request.resource.type)
  )
    return 'reference';
  if (!conformsTo(request.context, action.context)) return false;
  const entities = request.entities as readonly EntityJson[];
  const seen = new Set<string>();
  for (const e of entities) {
    if (!isObject(e) || !asRef(e.uid) || !isObject(e.attrs) || !Array.isArray(e.parents))
      return false;
    const key = `${e.uid.type}\u0000${e.uid.id}`;
    if (seen.has(key)) return 'reference';
    seen.add(key);
    const decl = schema.entities.get(e.uid.type);
    if (!decl) return false;
    const keys = Object.keys(e.attrs);
    if (keys.length !== decl.shape.size) return false;
    for (const k of keys) {
      const t = decl.shape.get(k);
      if (!t || !conformsTo(e.attrs[k], t)) return false;
    }
    for (const p of e.parents) if (!asRef(p) || !decl.ancestorTypes.has(p.type)) return false;
  }
  return entities;
}

/** Ancestors (`type\0id`) of `uid` through the request's entities, transitively. */
export function ancestorsOf(uid: EntityRef, entities: readonly EntityJson[]): Set<string> {
  const byKey = new Map(entities.map((e) => [`${e.uid.type}\u0000${e.uid.id}`, e]));
  const out = new Set<string>();
  const todo = [...(byKey.get(`${uid.type}\u0000${uid.id}`)?.parents ?? [])];
  while (todo.length > 0) {
    const p = todo.pop() as EntityRef;
    const key = `${p.type}\u0000${p.id}`;
    if (out.has(key)) continue;
    out.add(key);
    todo.push(...(byKey.get(key)?.parents ?? []));
  }
  return out;
}

/** The trimmed request that crosses into Wasm (no schema: the action entity is given here). */
export interface TrimmedRequest {
  readonly context: Record<string, unknown>;
  readonly entities: unknown[];
}

/**
 * Trims a conforming request to what `plan` reads: entity attributes by name, context by path,
 * parents (and the action with its groups) only when a policy uses the hierarchy. An entity
 * that keeps nothing is left out (nothing reads it: no attribute is named and `in` is unused).
 */
export function trimRequest(
  request: CedarRequest,
  entities: readonly EntityJson[],
  plan: ReadPlan,
  schema: SchemaFacts,
): TrimmedRequest {
  const out: unknown[] = [];
  for (const e of entities) {
    const attrs: Record<string, unknown> = {};
    let kept = false;
    for (const k of Object.keys(e.attrs))
      if (plan.attributes.has(k)) {
        attrs[k] = e.attrs[k];
        kept = true;
      }
    if (kept || (plan.hierarchy && e.parents.length > 0))
      out.push({ uid: e.uid, attrs, parents: plan.hierarchy ? e.parents : [] });
  }
  if (plan.hierarchy) {
    const ancestors = schema.actions.get(request.action)?.ancestors ?? [];
    out.push({
      uid: { type: schema.actionType, id: request.action },
      attrs: {},
      parents: ancestors.map((id) => ({ type: schema.actionType, id })),
    });
  }
  return {
    context: trimRecord(request.context, plan.context) as Record<string, unknown>,
    entities: out,
  };
}
