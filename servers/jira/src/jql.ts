/**
 * Structured search filters, built into JQL on the server. Every value is a quoted JQL string
 * literal (`"…"` with `\` before `"` and `\`, per Atlassian's "JQL: reserved characters"), so a
 * value such as `x) OR (project = SECRET` stays one string and cannot add a clause. Field names,
 * operators and the order come from fixed lists, never from input.
 */

/** The filters `jira_search_issues` accepts (already validated and bounded by its input schema). */
export interface SearchFilters {
  /** Allowlisted project keys to search (at least one). */
  readonly projects: readonly string[];
  readonly issueTypes?: readonly string[] | undefined;
  readonly statuses?: readonly string[] | undefined;
  /** Account ids, or `unassigned`. */
  readonly assignee?: string | undefined;
  readonly labels?: readonly string[] | undefined;
  /** Full-text search (`text ~ "…"`). */
  readonly text?: string | undefined;
  /** Dates as `YYYY-MM-DD`. */
  readonly createdFrom?: string | undefined;
  readonly createdTo?: string | undefined;
  readonly updatedFrom?: string | undefined;
  readonly updatedTo?: string | undefined;
  readonly orderBy?: 'created' | 'updated' | 'priority' | 'key' | undefined;
  readonly direction?: 'asc' | 'desc' | undefined;
}

/** A JQL string literal: `"` + value with `\` and `"` escaped + `"`. */
export function jqlString(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

const list = (values: readonly string[]) => `(${values.map(jqlString).join(', ')})`;

/**
 * The JQL for a set of filters: `project in ("SUP", "OPS") AND … ORDER BY updated DESC`. The
 * project clause is always first and always present.
 *
 * @throws Error when `projects` is empty (the caller must refuse before: an empty allowlist allows nothing)
 */
export function buildJql(f: SearchFilters): string {
  if (f.projects.length === 0) throw new Error('no project to search');
  const clauses = [`project in ${list(f.projects)}`];
  if (f.issueTypes?.length) clauses.push(`issuetype in ${list(f.issueTypes)}`);
  if (f.statuses?.length) clauses.push(`status in ${list(f.statuses)}`);
  if (f.assignee !== undefined)
    clauses.push(
      f.assignee === 'unassigned' ? 'assignee is EMPTY' : `assignee = ${jqlString(f.assignee)}`,
    );
  for (const label of f.labels ?? []) clauses.push(`labels = ${jqlString(label)}`);
  if (f.text !== undefined) clauses.push(`text ~ ${jqlString(f.text)}`);
  if (f.createdFrom) clauses.push(`created >= ${jqlString(f.createdFrom)}`);
  if (f.createdTo) clauses.push(`created <= ${jqlString(f.createdTo)}`);
  if (f.updatedFrom) clauses.push(`updated >= ${jqlString(f.updatedFrom)}`);
  if (f.updatedTo) clauses.push(`updated <= ${jqlString(f.updatedTo)}`);
  const order = `ORDER BY ${f.orderBy ?? 'updated'} ${(f.direction ?? 'desc').toUpperCase()}`;
  return `${clauses.join(' AND ')} ${order}`;
}
