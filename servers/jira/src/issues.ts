import { ErrorCode, ToolError } from '@hardened-mcp/core';
import type { Client as JiraJsClient } from 'jira.js/core';
import { adfToMarkdown } from './adf.js';
import { cloud } from './cloud.js';
import { customFieldValue, type ReadableCustomFields } from './custom-fields.js';

/** The parts of a Jira issue the tools use, as REST v3 returns them (`GET /rest/api/3/issue/{key}`). */
export interface JiraIssue {
  readonly id?: string;
  readonly key?: string;
  readonly fields?: Record<string, unknown> & {
    readonly project?: { readonly key?: string } | null;
  };
}

/** The project key of an issue as Jira returned it, or `undefined`. */
export function projectOf(issue: JiraIssue | undefined): string | undefined {
  const key = issue?.fields?.project?.key;
  return typeof key === 'string' ? key : undefined;
}

/** The fixed answer for an issue that is absent or outside the allowlist (alike, so scope cannot be probed). */
export function notInScope(key: string): ToolError {
  return new ToolError(
    ErrorCode.UpstreamError,
    `issue ${key} does not exist in an allowed project, or is not visible to this server`,
  );
}

/**
 * Fetches an issue and checks the project it is in NOW (Jira answers a moved issue under its old
 * key, with its new project): the issue is returned only when that project is in `allowed`.
 *
 * @throws ToolError `upstream_error` ({@link notInScope}) when absent, invisible or out of scope;
 *   the transport's errors otherwise
 */
export async function fetchIssueInScope(
  api: JiraJsClient,
  key: string,
  allowed: ReadonlySet<string>,
  fields: readonly string[],
): Promise<JiraIssue & { key: string; project: string }> {
  let issue: JiraIssue;
  try {
    issue = (await (
      await cloud()
    ).getIssue(api, {
      issueIdOrKey: key,
      fields: [...new Set(['project', ...fields])],
    })) as JiraIssue;
  } catch (err) {
    if (err instanceof ToolError && err.code === ErrorCode.UpstreamError) throw notInScope(key);
    throw err;
  }
  const project = projectOf(issue);
  if (!project || !allowed.has(project) || typeof issue.key !== 'string') throw notInScope(key);
  return { ...issue, key: issue.key, project };
}

/** A user as shown to the model: account id and display name, never the e-mail address. */
export function userOf(u: unknown): { accountId: string; displayName: string } | null {
  if (!u || typeof u !== 'object') return null;
  const { accountId, displayName } = u as { accountId?: unknown; displayName?: unknown };
  return typeof accountId === 'string'
    ? { accountId, displayName: typeof displayName === 'string' ? displayName : '' }
    : null;
}

const nameOf = (v: unknown) =>
  v && typeof v === 'object' && typeof (v as { name?: unknown }).name === 'string'
    ? (v as { name: string }).name
    : null;

/**
 * The allowlisted fields of an issue, flattened for the model: names for status, type and
 * priority, `{ accountId, displayName }` for people, Markdown for the description, readable
 * custom fields (ids configured in `custom`) under `customFields` by alias, converted by
 * {@link customFieldValue}. Fields not in `fields` are never copied, whatever Jira sent.
 */
export function shapeIssue(
  issue: JiraIssue & { key: string; project: string },
  fields: readonly string[],
  custom?: ReadableCustomFields,
): Record<string, unknown> {
  const f = issue.fields ?? {};
  const out: Record<string, unknown> = { key: issue.key, project: issue.project };
  const customOut: Record<string, unknown> = {};
  for (const name of fields) {
    const v = Object.hasOwn(f, name) ? f[name] : undefined;
    const alias = custom?.aliasOf(name);
    if (alias !== undefined) {
      customOut[alias] = customFieldValue(v);
      continue;
    }
    switch (name) {
      case 'status':
      case 'priority':
      case 'issuetype':
        out[name] = nameOf(v);
        break;
      case 'assignee':
      case 'reporter':
        out[name] = userOf(v);
        break;
      case 'description':
        out.description = adfToMarkdown(v);
        break;
      case 'parent':
        out.parent =
          v && typeof v === 'object' && typeof (v as { key?: unknown }).key === 'string'
            ? (v as { key: string }).key
            : null;
        break;
      case 'labels':
        out.labels = Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
        break;
      case 'attachment':
        // Metadata only (ids for jira_get_attachment); never the content URL.
        out.attachments = (Array.isArray(v) ? v : []).slice(0, 100).flatMap((a) => {
          const x = (a ?? {}) as Record<string, unknown>;
          return typeof x.id === 'string'
            ? [
                {
                  id: x.id,
                  filename: typeof x.filename === 'string' ? x.filename : '',
                  mimeType: typeof x.mimeType === 'string' ? x.mimeType : '',
                  size: typeof x.size === 'number' ? x.size : null,
                },
              ]
            : [];
        });
        break;
      default:
        out[name] = typeof v === 'string' ? v : null;
    }
  }
  if (Object.keys(customOut).length > 0) out.customFields = customOut;
  return out;
}

/** A comment as shown to the model: id, author, created, body as Markdown. */
export function shapeComment(c: unknown): Record<string, unknown> {
  const x = (c ?? {}) as { id?: unknown; author?: unknown; created?: unknown; body?: unknown };
  return {
    id: typeof x.id === 'string' ? x.id : null,
    author: userOf(x.author),
    created: typeof x.created === 'string' ? x.created : null,
    body: adfToMarkdown(x.body),
  };
}
