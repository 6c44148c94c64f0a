import { adfToMarkdown } from './adf.js';

/**
 * Readable custom fields (`jira.fields.custom`: alias → `customfield_N`). The model names them by
 * alias (the `fields` argument, `withheldFields`, the result's `customFields`); Jira and labels
 * know them by id.
 */
export interface ReadableCustomFields {
  /** The aliases, in configuration order. */
  readonly aliases: readonly string[];
  /** The field id of a field name the model used (an alias → its id; anything else unchanged). */
  idOf(name: string): string;
  /** The name the model knows a field id by (a configured id → its alias; anything else unchanged). */
  nameOf(id: string): string;
  /** The alias of a configured custom field id, or `undefined`. */
  aliasOf(id: string): string | undefined;
}

/** Builds {@link ReadableCustomFields} from `jira.fields.custom` (validated: aliases and ids unique). */
export function readableCustomFields(
  config: Readonly<Record<string, string>>,
): ReadableCustomFields {
  const byAlias = new Map(Object.entries(config));
  const byId = new Map([...byAlias].map(([a, id]) => [id, a]));
  return {
    aliases: [...byAlias.keys()],
    idOf: (name) => byAlias.get(name) ?? name,
    nameOf: (id) => byId.get(id) ?? id,
    aliasOf: (id) => byId.get(id),
  };
}

/** Items of an array value kept (a multi-select or multi-user field). */
export const MAX_CUSTOM_ITEMS = 100;
/** Nesting followed inside a value (arrays of options, a cascading select's child). */
const MAX_DEPTH = 3;

/** A display string, or null, for one object value of a custom field. */
function displayOf(o: Record<string, unknown>, depth: number): string | null {
  // A user (user pickers): the display name only, never the e-mail address.
  if (typeof o.accountId === 'string')
    return typeof o.displayName === 'string' ? o.displayName : null;
  // An option (select, radio, checkbox); a cascading select's child after " / ".
  if (typeof o.value === 'string') {
    const child =
      depth < MAX_DEPTH && o.child && typeof o.child === 'object'
        ? displayOf(o.child as Record<string, unknown>, depth + 1)
        : null;
    return child ? `${o.value} / ${child}` : o.value;
  }
  // Versions, groups, components, sprints, statuses: by name; projects and issues by key.
  if (typeof o.name === 'string') return o.name;
  if (typeof o.key === 'string') return o.key;
  if (typeof o.displayName === 'string') return o.displayName;
  return null;
}

function convert(v: unknown, depth: number): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (Array.isArray(v))
    return depth >= MAX_DEPTH
      ? null
      : v.slice(0, MAX_CUSTOM_ITEMS).map((x) => convert(x, depth + 1));
  if (typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  // Rich text (a paragraph custom field in REST v3) is an ADF document: Markdown, as descriptions.
  if (o.type === 'doc') return adfToMarkdown(o);
  return displayOf(o, depth);
}

/**
 * The value of a custom field as shown to the model (never Jira's raw object): text, numbers,
 * dates and booleans as they are; rich text (ADF) as Markdown through {@link adfToMarkdown};
 * users as their display name (never the e-mail address); options as their value (a cascading
 * select as `parent / child`); versions, groups and sprints by name, projects and issues by key;
 * arrays item by item (at most {@link MAX_CUSTOM_ITEMS}); anything else `null`. Shapes from
 * Atlassian's "Jira REST API examples" (custom field types) and the v3 description's `IssueBean`.
 */
export function customFieldValue(v: unknown): unknown {
  return convert(v, 0);
}
