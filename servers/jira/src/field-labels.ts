import {
  type ClassificationConfig,
  clearanceOf,
  createClassifier,
  type Denial,
  deny,
  ErrorCode,
  type ExecuteClassification,
  type Identity,
  type Label,
  type LabelledPath,
  labelRank,
  type PoliciesConfig,
  type ResourceRef,
} from '@hardened-mcp/core';

/**
 * Field-level classification of Jira data (issue 15 §2: "Jira projects and fields").
 *
 * Operators label fields under the core's `classification.labels`, by Jira field id:
 * - `description: restricted` labels the field in every project (a bare field id: project keys
 *   start with an upper-case letter, field ids with a lower-case one, so the two never collide);
 * - `SUP.customfield_10042: confidential` labels it in project `SUP` only;
 * - `SUP: confidential` (a project) labels every field of the project, as before.
 *
 * A field's label in a project is the highest of these three (a field label can only raise a
 * project's, never lower it: fail closed). Every call passes the core the classification paths
 * `PROJECT.field` (and the bare `field` when it is labelled), so the core's rules apply unchanged:
 * above the caller's clearance → refused, `restricted` → smaller caps, approval even for reads,
 * the paths in the audit record; the session taint learns the highest label.
 */
export interface FieldLabels {
  /** Labels are configured (without them every field has the default label: nothing to do). */
  readonly active: boolean;
  /** The classification paths of `fields` in `projects`: `P.f` for each, and `f` when labelled. */
  paths(projects: readonly string[], fields: readonly string[]): string[];
  /** The label of `field` in the highest of `projects` (at least the project's own label). */
  labelOf(projects: readonly string[], field: string): Label;
  /** The caller's clearance, by the core's rule ({@link clearanceOf}). */
  clearance(identity: Identity): Label;
  /** `fields` split into those at or below the caller's clearance in every project, and the others. */
  split(
    identity: Identity,
    projects: readonly string[],
    fields: readonly string[],
  ): { readonly kept: string[]; readonly withheld: string[] };
  /**
   * A `policy_denied` naming the first of `fields` above the caller's clearance (and what the
   * call would do with it), or `undefined` when every field is within it.
   */
  refuseAbove(
    identity: Identity,
    projects: readonly string[],
    fields: readonly string[],
    doing: string,
  ): Denial | undefined;
  /** Custom field ids that carry a label of their own (`customfield_N` or `P.customfield_N`). */
  readonly labelledCustomFields: readonly string[];
  /**
   * What each configured label key means, for `--print-policy`. `aliases` (field id → alias:
   * `jira.fields.custom` and `jira.customFields`) names the alias a custom field is read or
   * written by, e.g. `field customfield_10050 (alias customerEmail) in every project`.
   */
  describe(
    readable: readonly string[],
    aliases?: ReadonlyMap<string, readonly string[]>,
  ): LabelledPath[];
}

/** The fields JQL `text ~ "…"` matches: summary, description, environment, comments (and text custom fields). */
export const TEXT_SEARCH_FIELDS = ['summary', 'description', 'environment', 'comment'] as const;

/**
 * JQL field names (lower case) that are another name of a field id: the JQL name differs from
 * the REST field id for several system fields (Atlassian, "JQL fields": `component` searches
 * `components`, `fixVersion` `fixVersions`, `affectedVersion` `versions`, `watcher` `watches`,
 * `voter` `votes`), and a label is keyed by the field id.
 */
const JQL_ALIASES: Readonly<Record<string, string>> = {
  type: 'issuetype',
  statuscategory: 'status',
  resolved: 'resolutiondate',
  due: 'duedate',
  createddate: 'created',
  updateddate: 'updated',
  issuekey: 'key',
  component: 'components',
  fixversion: 'fixVersions',
  affectedversion: 'versions',
  watcher: 'watches',
  watchers: 'watches',
  voter: 'votes',
  votes: 'votes',
};

/** System field ids a JQL name reaches, as REST field ids (after {@link JQL_ALIASES}). */
const SYSTEM_JQL_FIELDS = new Set([
  'project',
  'issuetype',
  'status',
  'assignee',
  'reporter',
  'labels',
  'priority',
  'resolution',
  'resolutiondate',
  'created',
  'updated',
  'duedate',
  'summary',
  'description',
  'environment',
  'comment',
  'key',
  'parent',
  'attachment',
  'creator',
  'watches',
  'votes',
  'components',
  'fixVersions',
  'versions',
]);

/**
 * The field ids a JQL field name reaches without the site's field list (names compared
 * case-insensitively): `type` is `issuetype`, `text` is every text field ({@link
 * TEXT_SEARCH_FIELDS} and every labelled custom field, because Jira's `text` also matches text
 * custom fields), `cf[10016]` is `customfield_10016`. `undefined` for a name that is no system
 * field: a custom field's display name, which only the field list resolves.
 */
export function systemJqlFieldIds(
  name: string,
  labelledCustom: readonly string[],
): string[] | undefined {
  const lower = name.toLowerCase();
  if (lower === 'text') return [...TEXT_SEARCH_FIELDS, ...labelledCustom];
  if (/^customfield_\d+$/.test(lower)) return [lower];
  const cf = /^cf\[(\d+)\]$/.exec(lower);
  if (cf) return [`customfield_${cf[1]}`];
  const id = JQL_ALIASES[lower] ?? lower;
  return SYSTEM_JQL_FIELDS.has(id) ? [id] : undefined;
}

/**
 * The field ids a JQL field name reaches: {@link systemJqlFieldIds}, else the ids the site's
 * field list gives the name (`resolved`, keyed by lower-case name; see field-catalog.ts), else
 * every labelled custom field. The last is the fail-closed answer for a display name the list
 * does not hold or when the list is unavailable: its id is unknown here, so it counts as the
 * highest label among custom fields.
 */
export function jqlFieldIds(
  name: string,
  labelledCustom: readonly string[],
  resolved?: ReadonlyMap<string, readonly string[]>,
): string[] {
  const system = systemJqlFieldIds(name, labelledCustom);
  if (system) return system;
  const ids = resolved?.get(name.trim().toLowerCase());
  return ids && ids.length > 0 ? [...ids] : [...labelledCustom];
}

/** A Jira field id: system ids start with a lower-case letter (`description`, `fixVersions`), custom ones are `customfield_N`. */
const FIELD_ID = /^(?:[a-z][A-Za-z0-9]{0,63}|customfield_\d{1,9})$/;
const PROJECT_KEY = /^[A-Z][A-Z0-9_]{1,9}$/;

/**
 * Builds {@link FieldLabels} from the core's configuration sections, with the same classifier
 * the core builds (`createClassifier(labels, default)`), so the connector and the core agree.
 */
export function createFieldLabels(
  classification: ClassificationConfig,
  policies: Pick<PoliciesConfig, 'claims'>,
): FieldLabels {
  const labels = classification.labels;
  const classifier = createClassifier(labels, classification.default);
  const keys = Object.keys(labels);
  const labelledCustomFields = [
    ...new Set(
      keys.flatMap((k) => {
        const field = k.includes('.') ? k.slice(k.indexOf('.') + 1) : k;
        return /^customfield_\d{1,9}$/.test(field) ? [field] : [];
      }),
    ),
  ];
  const labelled = (field: string) => Object.hasOwn(labels, field);
  const labelOf = (projects: readonly string[], field: string): Label =>
    classifier.highest([
      ...projects,
      ...projects.map((p) => `${p}.${field}`),
      ...(labelled(field) ? [field] : []),
    ]);
  const clearance = (identity: Identity) => clearanceOf(identity, classification, policies.claims);
  return Object.freeze({
    active: classifier.configured,
    labelledCustomFields,
    clearance,
    labelOf,
    paths(projects: readonly string[], fields: readonly string[]) {
      const out: string[] = [];
      for (const f of new Set(fields)) {
        for (const p of projects) out.push(`${p}.${f}`);
        if (labelled(f)) out.push(f);
      }
      return out;
    },
    split(identity: Identity, projects: readonly string[], fields: readonly string[]) {
      const rank = labelRank(clearance(identity));
      const kept: string[] = [];
      const withheld: string[] = [];
      for (const f of fields) (labelRank(labelOf(projects, f)) > rank ? withheld : kept).push(f);
      return { kept, withheld };
    },
    refuseAbove(
      identity: Identity,
      projects: readonly string[],
      fields: readonly string[],
      doing: string,
    ) {
      const c = clearance(identity);
      for (const f of new Set(fields)) {
        const l = labelOf(projects, f);
        if (labelRank(l) > labelRank(c))
          return deny(
            ErrorCode.PolicyDenied,
            `field ${f} is classified ${l}, above the principal's clearance (${c}): ${doing}`,
          );
      }
      return undefined;
    },
    describe(readable: readonly string[], aliases?: ReadonlyMap<string, readonly string[]>) {
      const named = (f: string) => {
        const a = aliases?.get(f) ?? [];
        return a.length > 0 ? `field ${f} (alias ${a.join(', ')})` : `field ${f}`;
      };
      return Object.entries(labels).map(([path, label]): LabelledPath => {
        const dot = path.indexOf('.');
        const project = dot > 0 ? path.slice(0, dot) : '';
        const field = dot > 0 ? path.slice(dot + 1) : '';
        let means: string;
        if (PROJECT_KEY.test(path))
          means = readable.includes(path)
            ? `project ${path}: every field of its issues`
            : `project ${path} (not in jira.projects.read)`;
        else if (FIELD_ID.test(path)) means = `${named(path)} in every project`;
        else if (PROJECT_KEY.test(project) && FIELD_ID.test(field))
          means = `${named(field)} in project ${project}`;
        else means = UNMATCHED;
        return { path, label, means };
      });
    },
  });
}

/** What {@link FieldLabels.describe} says of a key that is no project key and no field id (a typo, usually). */
export const UNMATCHED = 'not a Jira project key or field id: matches nothing this server reads';

/** `ref` classified by its project and `fieldPaths` too (the core labels a call by the highest path). */
export function withFields(ref: ResourceRef, fieldPaths: readonly string[]): ResourceRef {
  return { ...ref, classify: [...(ref.classify ?? [ref.id]), ...fieldPaths] };
}

/**
 * Classifies what Jira actually returned for an issue requested by `requestedKey` when it lives
 * in another project now (a moved issue answers under its old key): its project and `fields`
 * there, before any of it leaves the server. A no-op when the project is the key's, or when no
 * label is configured.
 *
 * @throws ToolError `policy_denied` from the core when that project or a field is above the caller's clearance
 */
export async function classifyReturned(
  classification: ExecuteClassification | undefined,
  labels: FieldLabels,
  requestedKey: string,
  project: string,
  fields: readonly string[],
): Promise<void> {
  const dash = requestedKey.lastIndexOf('-');
  if (!classification || requestedKey.slice(0, dash) === project) return;
  await classification.classify([project, ...labels.paths([project], fields)]);
}
