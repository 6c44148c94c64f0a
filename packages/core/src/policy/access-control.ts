import type { Identity } from '../identity.js';
import type { OutputLimits, ResourceRef, Tool } from '../tool.js';
import type { PolicyEngine } from './cedar-engine.js';
import { CEDAR_NAMESPACE, SERVER_RESOURCE_TYPE } from './cedar-schema.js';
import { type Classifier, LABELS, type Label, labelRank, maxLabel } from './labels.js';
import type { ClassificationConfig, PoliciesConfig } from './policy-config.js';
import { conversationIdFromMeta, type TaintStore } from './taint.js';

/** Where a call came from, for the taint keys. */
export interface CallSession {
  readonly mcpSessionId?: string | undefined;
  readonly meta?: unknown;
}

/** What the access-control step decided before approval. */
export interface AccessVerdict {
  /** The call's classification (highest label of the paths it touches). */
  readonly label: Label;
  /** The classified paths the call touches (connector's paths). */
  readonly paths: readonly string[];
  /** Ids of the Cedar policies that decided (empty without Cedar). */
  readonly policies: readonly string[];
  /** Why a human must approve this call (restricted data, tainted egress, a Cedar policy); empty: none. */
  readonly approvalReasons: readonly string[];
  /** A Cedar denial that an approval may lift: evaluate again with `approval: approved`. */
  readonly cedarNeedsApproval: boolean;
  /** Output limits for this call (smaller for restricted data). */
  readonly limits: OutputLimits;
  /** The session had received data at or above the taint threshold. */
  readonly tainted: boolean;
}

/** A refusal of the access-control step. */
export interface AccessRefusal {
  readonly refused: string;
  readonly label: Label;
  readonly paths: readonly string[];
  readonly policies: readonly string[];
}

/** The Cedar policy step, classification and session taint (see README "Policies", "Classification"). */
export interface AccessControl {
  /** Decides one call (after scopes, input validation and the connector's policy step). */
  check(call: AccessCall): Promise<AccessVerdict | AccessRefusal>;
  /** After a human approved: evaluates Cedar again with `context.approval == "approved"`. */
  recheckApproved(call: AccessCall, verdict: AccessVerdict): AccessVerdict | AccessRefusal;
  /** After a successful call: taints the session when its label reaches the threshold. */
  recordRead(call: AccessCall, verdict: AccessVerdict): Promise<void>;
  /**
   * Classifies a call by paths only the upstream can tell (during execute, before data is read):
   * a refusal above clearance, else the verdict with the raised label and, when the paths are
   * `restricted` and restricted data needs approval, `approvalReasons` naming them.
   */
  classifyLate(
    verdict: AccessVerdict,
    paths: readonly string[],
    identity: Identity,
  ): AccessVerdict | AccessRefusal;
  /** The label of one path. */
  labelOf(path: string): Label;
  /** Labels are configured: connectors resolve execute-time paths (e.g. SQL columns) only then. */
  readonly classifying: boolean;
  /** The Cedar engine, when policies are configured. */
  readonly engine: PolicyEngine | undefined;
}

/** One call as the access-control step sees it. */
export interface AccessCall {
  readonly tool: Tool<unknown>;
  readonly input: unknown;
  readonly authorized: unknown;
  readonly identity: Identity;
  readonly session: CallSession;
}

/** What {@link createAccessControl} needs. */
export interface AccessControlOptions {
  readonly serverName: string;
  readonly classifier: Classifier;
  readonly classification: ClassificationConfig;
  readonly policies: PoliciesConfig;
  readonly engine?: PolicyEngine | undefined;
  readonly taint: TaintStore;
  /** Output limits of the configuration (restricted calls get the smaller of these and `classification.restricted`). */
  readonly limits: OutputLimits;
  /** Clock (tests); default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** The stdio process's one MCP session (a stdio server has exactly one client). */
const STDIO_SESSION = 'stdio';

function asLabel(value: unknown): Label | undefined {
  return typeof value === 'string' && (LABELS as readonly string[]).includes(value)
    ? (value as Label)
    : undefined;
}

function stringSet(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value)
    ? value.filter((v): v is string => typeof v === 'string').slice(0, 256)
    : [];
}

/**
 * The clearance of a principal: the highest of `classification.clearance.default`, the labels of
 * its roles (`classification.clearance.roles`) and its clearance claim (the attribute named by
 * `policies.claims.clearance`; a value that is not a label is ignored). This is the rule the
 * access-control step applies; connectors that withhold parts of a result above the caller's
 * clearance (e.g. Jira fields) use it to decide the same way.
 */
export function clearanceOf(
  identity: Identity,
  classification: Pick<ClassificationConfig, 'clearance'>,
  claims: Pick<PoliciesConfig['claims'], 'clearance'>,
): Label {
  const roles = classification.clearance.roles;
  let clearance: Label = classification.clearance.default;
  for (const role of identity.roles) {
    const l = Object.hasOwn(roles, role) ? roles[role] : undefined;
    if (l) clearance = maxLabel(clearance, l);
  }
  const claimed = asLabel(identity.attributes?.[claims.clearance]);
  return claimed ? maxLabel(clearance, claimed) : clearance;
}

/**
 * Builds the access-control step. Order within it: resource (as the tool declares it) →
 * classification label → clearance (above → refused) → taint of egress tools → restricted-data
 * rules → Cedar. Every refusal is a `policy_denied` naming the rule, never data.
 */
export function createAccessControl(options: AccessControlOptions): AccessControl {
  const { classifier, classification, engine, taint } = options;
  const now = options.now ?? Date.now;
  const claimNames = options.policies.claims;
  const threshold = labelRank(classification.taint.threshold);
  const restrictedLimits: OutputLimits = {
    maxRows: Math.min(options.limits.maxRows, classification.restricted.maxRows),
    maxBytes: Math.min(options.limits.maxBytes, classification.restricted.maxBytes),
  };

  const principals = new WeakMap<Identity, { clearance: Label; entity: Record<string, unknown> }>();
  function principalOf(identity: Identity) {
    let p = principals.get(identity);
    if (!p) {
      const claims = identity.attributes ?? {};
      const clearance = clearanceOf(identity, classification, claimNames);
      const department = claims[claimNames.department];
      p = {
        clearance,
        entity: {
          uid: { type: `${CEDAR_NAMESPACE}::Principal`, id: identity.principal },
          attrs: {
            roles: [...identity.roles],
            groups: stringSet(claims[claimNames.groups]),
            department: typeof department === 'string' ? department : '',
            clearance: labelRank(clearance),
            clearanceLabel: clearance,
          },
          parents: identity.roles.map((r) => ({ type: `${CEDAR_NAMESPACE}::Role`, id: r })),
        },
      };
      principals.set(identity, p);
    }
    return p;
  }

  // Hour, minute and weekday in the configured zone, computed once per minute. The formatter is
  // built at the first Cedar decision, not at startup: building one loads ICU's zone and locale
  // data (about 125 M instructions, ~8% of a stdio server's start, issue 14), and only Cedar
  // policies read the time. The zone was validated with the configuration (policy-config.ts).
  let zoned: Intl.DateTimeFormat | undefined;
  const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  let minuteCache: { minute: number; hour: number; min: number; weekday: number } | undefined;
  function timeContext(ms: number) {
    const minute = Math.floor(ms / 60_000);
    if (minuteCache?.minute !== minute) {
      zoned ??= new Intl.DateTimeFormat('en-US', {
        timeZone: options.policies.timeZone,
        hourCycle: 'h23',
        hour: 'numeric',
        minute: 'numeric',
        weekday: 'short',
      });
      const parts = Object.fromEntries(zoned.formatToParts(ms).map((p) => [p.type, p.value]));
      minuteCache = {
        minute,
        hour: Number(parts.hour),
        min: Number(parts.minute),
        weekday: WEEKDAYS.indexOf(parts.weekday ?? ''),
      };
    }
    return {
      // Minute resolution: policies are written in minutes, and repeated requests hit the cache.
      epoch: minute * 60,
      hour: minuteCache.hour,
      minute: minuteCache.min,
      weekday: minuteCache.weekday,
    };
  }

  function resourceOf(call: AccessCall): {
    type: string;
    ref: ResourceRef;
    paths: readonly string[];
  } {
    const decl = call.tool.resource;
    if (!decl)
      return {
        type: SERVER_RESOURCE_TYPE,
        ref: { id: options.serverName, attrs: { name: options.serverName } },
        paths: [],
      };
    const ref = decl.of(call.input as never, call.authorized);
    return { type: decl.type, ref, paths: ref.classify ?? [ref.id] };
  }

  /** Taint keys of a call: the MCP session (or the stdio process) and the conversation, per principal. */
  function taintKeys(call: AccessCall): string[] {
    const p = call.identity.principal;
    const keys: string[] = [];
    const session =
      call.session.mcpSessionId ??
      (call.identity.transport === 'stdio' ? STDIO_SESSION : undefined);
    if (session) keys.push(`${options.serverName}:session:${p}:${session}`);
    const conversation = conversationIdFromMeta(call.session.meta);
    if (conversation) keys.push(`conversation:${p}:${conversation}`);
    return keys;
  }

  function cedarDecide(
    call: AccessCall,
    resource: { type: string; ref: ResourceRef },
    label: Label,
    approval: 'approved' | 'none',
    tainted: boolean,
  ) {
    if (!engine) return undefined;
    const principal = principalOf(call.identity);
    const resourceUid = { type: `${CEDAR_NAMESPACE}::${resource.type}`, id: resource.ref.id };
    const attrs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(resource.ref.attrs ?? {}))
      attrs[k] = Array.isArray(v) ? [...v] : v;
    attrs.classification = labelRank(label);
    attrs.label = label;
    return engine.authorize({
      principal: principal.entity.uid as { type: string; id: string },
      action: call.tool.name,
      resource: resourceUid,
      context: {
        time: timeContext(now()),
        transport: call.identity.transport,
        client: call.identity.client.name ?? '',
        classification: labelRank(label),
        label,
        approval,
        tainted,
      },
      entities: [principal.entity, { uid: resourceUid, attrs, parents: [] }],
    });
  }

  return {
    engine,
    classifying: classifier.configured,
    labelOf: (path) => classifier.labelOf(path),
    classifyLate(verdict, paths, identity) {
      const label =
        paths.length > 0 ? maxLabel(verdict.label, classifier.highest(paths)) : verdict.label;
      const all = [...verdict.paths, ...paths.filter((p) => !verdict.paths.includes(p))];
      const { clearance } = principalOf(identity);
      if (labelRank(label) > labelRank(clearance)) {
        const above = paths.filter((p) => labelRank(classifier.labelOf(p)) > labelRank(clearance));
        return {
          refused: `the call reads ${above.slice(0, 20).join(', ')}, classified above the principal's clearance (${clearance})`,
          label,
          paths: all,
          policies: verdict.policies,
        };
      }
      const restricted = paths.filter((p) => classifier.labelOf(p) === 'restricted');
      return {
        ...verdict,
        label,
        paths: all,
        approvalReasons:
          restricted.length > 0 && classification.restricted.approval
            ? [`the call reads restricted data: ${restricted.slice(0, 20).join(', ')}.`]
            : [],
        limits: label === 'restricted' ? restrictedLimits : verdict.limits,
      };
    },
    async check(call) {
      const resource = resourceOf(call);
      const label =
        resource.paths.length > 0 ? classifier.highest(resource.paths) : classification.default;
      const { clearance } = principalOf(call.identity);
      const refuse = (refused: string, policies: readonly string[] = []): AccessRefusal => ({
        refused,
        label,
        paths: resource.paths,
        policies,
      });
      if (labelRank(label) > labelRank(clearance))
        return refuse(
          `${call.tool.name} touches data classified ${label}, above the principal's clearance (${clearance})`,
        );
      const approvalReasons: string[] = [];
      let tainted = false;
      const keys = taintKeys(call);
      if (keys.length > 0) {
        let found: { label: Label; paths: string[] } | undefined;
        try {
          for (const key of keys) {
            const t = await taint.get(key);
            if (t && labelRank(t.label) >= threshold) {
              found ??= { label: t.label, paths: [] };
              found.label = maxLabel(found.label, t.label);
              for (const p of t.paths)
                if (!found.paths.includes(p) && found.paths.length < 20) found.paths.push(p);
            }
          }
        } catch {
          // The taint store cannot answer: egress is refused (fail closed), other tools proceed.
          if (call.tool.egress)
            return refuse(
              `${call.tool.name} sends data out and the session's classification cannot be checked (taint store unavailable)`,
            );
        }
        if (found) {
          tainted = true;
          if (call.tool.egress) {
            const what = `this session has received ${found.label} data${found.paths.length > 0 ? ` (${found.paths.join(', ')})` : ''}`;
            if (classification.taint.egress === 'refuse')
              return refuse(
                `${call.tool.name} sends data out and ${what}; start a new session to use it`,
              );
            approvalReasons.push(`${call.tool.name} sends data out and ${what}.`);
          }
        }
      }
      const restricted = label === 'restricted';
      if (restricted && classification.restricted.approval)
        approvalReasons.push(
          `${call.tool.name} touches restricted data: ${resource.paths.slice(0, 20).join(', ')}.`,
        );
      let policies: readonly string[] = [];
      let cedarNeedsApproval = false;
      const decision = cedarDecide(call, resource, label, 'none', tainted);
      if (decision) {
        policies = decision.policies;
        if (!decision.allowed) {
          if (!decision.approvable)
            return refuse(
              decision.policies.length > 0
                ? `${call.tool.name} is forbidden by policy ${decision.policies.join(', ')}`
                : `no policy permits ${call.tool.name} for this principal and resource`,
              decision.policies,
            );
          cedarNeedsApproval = true;
          approvalReasons.push(
            `policy ${decision.policies.join(', ')} requires approval for this call.`,
          );
        }
      }
      return {
        label,
        paths: resource.paths,
        policies,
        approvalReasons,
        cedarNeedsApproval,
        limits: restricted ? restrictedLimits : options.limits,
        tainted,
      };
    },
    recheckApproved(call, verdict) {
      if (!verdict.cedarNeedsApproval) return verdict;
      const resource = resourceOf(call);
      const decision = cedarDecide(call, resource, verdict.label, 'approved', verdict.tainted);
      if (!decision || decision.allowed) return { ...verdict, policies: decision?.policies ?? [] };
      return {
        refused: `${call.tool.name} is forbidden by policy ${decision.policies.join(', ') || '(no permit)'} even with approval`,
        label: verdict.label,
        paths: verdict.paths,
        policies: decision.policies,
      };
    },
    async recordRead(call, verdict) {
      if (labelRank(verdict.label) < threshold) return;
      for (const key of taintKeys(call)) await taint.mark(key, verdict.label, verdict.paths);
    },
  };
}
