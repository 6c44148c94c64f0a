import type { ResourceRef } from '@hardened-mcp/core';

/**
 * The Cedar entity type of the Jira tools: `Project` (id: the project key, e.g. `SUP`) with
 * attributes `project` (the key) and `issue` (the issue key the call names, `""` when none).
 * Classification paths are project keys, so operators label `SUP: confidential` under
 * `classification.labels`; a call that may touch several projects is classified as the highest
 * of them (fail closed). Spread into a tool's `resource` beside its `of`.
 */
export const projectType = {
  type: 'Project',
  attributes: { project: 'String', issue: 'String' },
} as const;

/** The project key of an issue key (`SUP-12` → `SUP`); keys are validated by the input schema. */
export function projectOfIssueKey(key: string): string {
  const dash = key.lastIndexOf('-');
  return dash > 0 ? key.slice(0, dash) : key;
}

/** The resource of a call on one project (and optionally one of its issues). */
export function projectRef(project: string, issue = ''): ResourceRef {
  return { id: project, attrs: { project, issue } };
}

/** The resource of a call that names an issue: its project, from the key. */
export function issueRef(key: string): ResourceRef {
  return projectRef(projectOfIssueKey(key), key);
}

/**
 * The resource of a search: the projects it names, or every readable project when it names none
 * or gives raw JQL (the server scopes raw JQL to every readable project). Id `*` when several.
 */
export function searchRef(
  readable: readonly string[],
  input: { readonly projects?: readonly string[] | undefined; readonly jql?: string | undefined },
): ResourceRef {
  const projects =
    input.jql === undefined && input.projects !== undefined ? input.projects : readable;
  const [only] = projects;
  return projects.length === 1 && only !== undefined
    ? projectRef(only)
    : { id: '*', attrs: { project: '*', issue: '' }, classify: [...projects] };
}
