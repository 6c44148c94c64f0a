import { createHash } from 'node:crypto';
import {
  allow,
  type CursorBinding,
  CursorSealer,
  deny,
  ErrorCode,
  type Tool,
} from '@hardened-mcp/core';
import { z } from 'zod';
import type { JiraClient } from './client.js';
import { cloud } from './cloud.js';
import { issueKeySchema, type JiraSettings, projectKeySchema } from './config.js';
import { readableCustomFields } from './custom-fields.js';
import { createFieldCatalog, type FieldCatalog } from './field-catalog.js';
import {
  classifyReturned,
  type FieldLabels,
  jqlFieldIds,
  systemJqlFieldIds,
  TEXT_SEARCH_FIELDS,
  withFields,
} from './field-labels.js';
import {
  fetchIssueInScope,
  type JiraIssue,
  projectOf,
  shapeComment,
  shapeIssue,
} from './issues.js';
import { buildJql, type SearchFilters } from './jql.js';
import { kit } from './kit.js';
import { scopeRawJql } from './raw-jql.js';
import { issueRef, projectOfIssueKey, projectRef, projectType, searchRef } from './resources.js';

/** A filter value: printable text, no control characters (bounded). */
const value = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}\u2028\u2029]+$/u, 'no control or line-separator characters');
const date = z.iso.date().describe('YYYY-MM-DD');
const cursorArg = z
  .string()
  .min(1)
  .max(4096)
  .optional()
  .describe('nextCursor of the previous page.');
const issueKeyArg = issueKeySchema.describe('An issue key, e.g. SUP-12.');

const cursorState = z.strictObject({ token: z.string().min(1).max(2048) });
const offsetState = z.strictObject({ startAt: z.int().min(0).max(1_000_000) });

/**
 * What `jira_search_issues`'s policy authorizes: the JQL, its cursor binding and page token, the
 * fields to request (those above the caller's clearance withheld) and the classification paths
 * of every field the search returns or matches on.
 */
interface SearchPlan {
  readonly jql: string;
  readonly binding: CursorBinding;
  readonly nextPageToken: string | undefined;
  /** The projects the search is classified by. */
  readonly projects: readonly string[];
  /** Field ids to request (custom fields by id). */
  readonly fields: readonly string[];
  /** Field ids withheld (above the caller's clearance). */
  readonly withheld: readonly string[];
  readonly paths: readonly string[];
}

/** What `jira_get_issue`'s policy authorizes: the fields to request, whether comments are read, what is withheld. */
interface IssuePlan {
  /** Field ids to request (custom fields by id). */
  readonly fields: readonly string[];
  readonly comments: boolean;
  readonly withheld: readonly string[];
  readonly paths: readonly string[];
}

/**
 * The optional `fields` argument of a read tool: a subset of `allowed` (never `*all` or
 * `*navigable`: the server always names the fields it asks Jira for). None when `allowed` is empty.
 */
function fieldsArg(allowed: readonly string[], customAliases: readonly string[] = []) {
  const [first, ...rest] = allowed;
  if (first === undefined) return {};
  return {
    fields: z
      .array(z.enum([first, ...rest]))
      .min(1)
      .max(allowed.length)
      .optional()
      .describe(
        `Fields to return, from ${allowed.join(', ')} (default: all of them).${customAliases.length > 0 ? ` Custom fields (${customAliases.join(', ')}) come back under customFields.` : ''} Fields above your clearance are refused when named here and withheld (listed in withheldFields) by default.`,
      ),
  };
}

/** The field ids the structured search filters match on (the JQL `buildJql` writes). */
function filterFields(
  input: Omit<SearchFilters, 'projects' | 'direction'>,
  labelledCustom: readonly string[],
): string[] {
  const out: string[] = [];
  if (input.issueTypes?.length) out.push('issuetype');
  if (input.statuses?.length) out.push('status');
  if (input.assignee !== undefined) out.push('assignee');
  if (input.labels?.length) out.push('labels');
  if (input.text !== undefined) out.push(...TEXT_SEARCH_FIELDS, ...labelledCustom);
  if (input.createdFrom || input.createdTo) out.push('created');
  if (input.updatedFrom || input.updatedTo) out.push('updated');
  const order = input.orderBy ?? 'updated';
  if (order !== 'key') out.push(order);
  return out;
}

/**
 * Declares the read tools from configuration alone. `labels` is the field-level classification
 * (see field-labels.ts): fields above the caller's clearance are not requested from Jira and are
 * listed in the result as `withheldFields`; a search that matches on such a field is refused.
 * Readable custom fields (`fields.custom`) are named by alias to the model and by id to Jira and
 * to labels. `catalog` resolves custom-field display names in raw JQL (default: one per tool set,
 * timed by `jira.fieldList`, fetched on first need).
 */
export function createReadTools(
  settings: JiraSettings,
  labels: FieldLabels,
  catalog: FieldCatalog = createFieldCatalog(settings.fieldList),
): Tool<JiraClient>[] {
  const readable = new Set(settings.projects.read);
  const custom = readableCustomFields(settings.fields.custom);
  const customIds = Object.values(settings.fields.custom);
  const readFields = [...settings.fields.read, ...customIds];
  const cursors = new CursorSealer();
  const pageSize = settings.limits.pageSize;
  // A search returns the read fields but the description (too long for a result list).
  const searchFields = [...new Set(readFields.filter((f) => f !== 'description'))];
  /** Field ids → the names the model uses (custom fields by alias). */
  const names = (ids: readonly string[]) => ids.map((id) => custom.nameOf(id));
  /** Names the model used → field ids, once each. */
  const ids = (given: readonly string[]) => [...new Set(given.map((n) => custom.idOf(n)))];

  const listProjects = kit.read({
    name: 'list_projects',
    title: 'List projects',
    description: 'Lists the Jira projects this server may read (key and name).',
    output: 'table',
    input: z.strictObject({}),
    async execute(_input, ctx) {
      const page = (await (
        await cloud()
      ).searchProjects(ctx.client.api(ctx.signal), {
        keys: [...readable],
        maxResults: 100,
      } as never)) as { values?: { key?: unknown; name?: unknown }[] };
      // The allowlist applies to the answer too.
      const rows = (page.values ?? [])
        .filter((p) => typeof p.key === 'string' && readable.has(p.key))
        .map((p) => [p.key, typeof p.name === 'string' ? p.name : '']);
      return {
        kind: 'table',
        columns: [
          { name: 'key', type: 'text' },
          { name: 'name', type: 'text' },
        ],
        rows,
        truncated: false,
      };
    },
  });

  const jqlRules = {
    fields: new Set(settings.jql.fields.map((f) => f.toLowerCase())),
    functions: new Set(settings.jql.functions.map((f) => f.toLowerCase())),
  };
  const searchInput = z.strictObject({
    projects: z
      .array(projectKeySchema)
      .min(1)
      .max(20)
      .optional()
      .describe('Default: every allowed project.'),
    issueTypes: z.array(value(60)).max(10).optional(),
    statuses: z.array(value(60)).max(10).optional(),
    assignee: z
      .union([z.literal('unassigned'), z.string().regex(/^[A-Za-z0-9:_-]{1,128}$/)])
      .optional()
      .describe('An account id (jira_find_users), or "unassigned".'),
    labels: z
      .array(z.string().regex(/^[^\s"\\\p{Cc}]{1,100}$/u))
      .max(10)
      .optional(),
    text: value(200)
      .optional()
      .describe('Full-text search over summary, description and comments.'),
    createdFrom: date.optional(),
    createdTo: date.optional(),
    updatedFrom: date.optional(),
    updatedTo: date.optional(),
    orderBy: z.enum(['created', 'updated', 'priority', 'key']).optional(),
    direction: z.enum(['asc', 'desc']).optional(),
    limit: z.int().min(1).max(100).optional(),
    cursor: cursorArg,
    ...fieldsArg(names(searchFields), custom.aliases),
  });
  const searchIssues = kit.read({
    name: 'search_issues',
    resource: {
      ...projectType,
      of: (input, plan: SearchPlan) =>
        withFields(
          searchRef(settings.projects.read, input as { jql?: string; projects?: string[] }),
          plan.paths,
        ),
    },
    title: 'Search issues',
    description:
      'Searches issues in the allowed projects with structured filters (the server builds the JQL). Pass nextCursor back as cursor, with the same filters, for the next page.',
    output: 'json',
    input: settings.rawJql
      ? searchInput.extend({
          jql: z
            .string()
            .min(1)
            .max(2_000)
            .optional()
            .describe(
              'Raw JQL (fields and functions on the server allowlist); the server adds the project scope. Not combined with the other filters.',
            ),
        })
      : searchInput,
    async policy(input, { identity, readClient }) {
      const projects = input.projects ?? [...readable];
      const refused = projects.find((p) => !readable.has(p));
      if (refused)
        return deny(ErrorCode.PolicyDenied, `project ${refused} is not in the allowed projects`);
      const raw = (input as { jql?: string }).jql;
      // The projects the core classifies the search by (every readable one for raw JQL).
      const ref = searchRef(settings.projects.read, input as { jql?: string; projects?: string[] });
      const scope = ref.classify ?? [ref.id];
      let jql: string;
      let matched: string[];
      if (raw === undefined) {
        jql = buildJql({ ...input, projects });
        matched = filterFields(input, labels.labelledCustomFields);
      } else {
        const {
          projects: _p,
          limit: _l,
          cursor: _c,
          jql: _j,
          fields: _f,
          ...filters
        } = input as typeof input & {
          jql?: string;
          fields?: string[];
        };
        if (Object.values(filters).some((v) => v !== undefined))
          return deny(ErrorCode.InvalidInput, 'use either jql or the structured filters, not both');
        const scoped = await scopeRawJql(raw, projects, jqlRules);
        if (!scoped.ok)
          return deny(ErrorCode.InvalidInput, `the JQL was refused: ${scoped.reason}`);
        jql = scoped.jql;
        // Custom fields' display names (`"Story Points"`) resolve through the site's field list
        // so the label check is exact; an unknown name, or no list, counts as every labelled
        // custom field (fail closed). Without labels there is nothing to check: no request.
        const display = scoped.fields.filter((f) => !systemJqlFieldIds(f, []));
        const resolved =
          labels.active && display.length > 0
            ? await catalog.resolve(() => readClient.api(), display)
            : undefined;
        matched = scoped.fields.flatMap((f) =>
          jqlFieldIds(f, labels.labelledCustomFields, resolved),
        );
      }
      // Matching on a field reads it (a `description ~ "x"` answers yes or no about its text):
      // a field above the clearance refuses the search before it reaches Jira.
      const refusal = labels.refuseAbove(identity, scope, matched, 'a search cannot match on it');
      if (refusal) return refusal;
      const given = (input as { fields?: string[] }).fields;
      const asked = given ? ids(given) : undefined;
      if (asked) {
        const askedRefusal = labels.refuseAbove(identity, scope, asked, 'it was asked for');
        if (askedRefusal) return askedRefusal;
      }
      const { kept, withheld } = labels.split(identity, scope, asked ?? searchFields);
      const fieldPlan = {
        projects: scope,
        fields: kept,
        withheld,
        paths: labels.active ? labels.paths(scope, [...kept, ...matched]) : [],
      };
      // The cursor is bound to the exact query: a cursor of another search is refused.
      const binding = {
        tool: 'jira_search_issues',
        principal: identity.principal,
        resource: createHash('sha256').update(jql).digest('base64url'),
      };
      if (input.cursor === undefined)
        return allow<SearchPlan>({ jql, binding, nextPageToken: undefined, ...fieldPlan });
      const opened = cursors.open<unknown>(input.cursor, binding);
      const state = opened.ok ? cursorState.safeParse(opened.state) : undefined;
      if (!state?.success)
        return deny(
          ErrorCode.InvalidInput,
          !opened.ok && opened.reason === 'expired'
            ? 'the cursor has expired; search again from the start'
            : 'the cursor is not a nextCursor of this search (same filters)',
        );
      return allow<SearchPlan>({
        jql,
        binding,
        nextPageToken: state.data.token,
        ...fieldPlan,
      });
    },
    async execute(input, ctx) {
      const limit = Math.min(input.limit ?? pageSize, pageSize, ctx.limits.maxRows);
      const fields = ['project', ...ctx.authorized.fields];
      const page = (await (
        await cloud()
      ).searchAndReconsileIssuesUsingJql(ctx.client.api(ctx.signal), {
        jql: ctx.authorized.jql,
        maxResults: limit,
        fields,
        ...(ctx.authorized.nextPageToken ? { nextPageToken: ctx.authorized.nextPageToken } : {}),
      })) as { issues?: JiraIssue[]; nextPageToken?: unknown };
      const returned = page.issues ?? [];
      // Second wall: an issue whose project (as returned) is outside the allowlist is dropped.
      const kept = returned.flatMap((i) => {
        const project = projectOf(i);
        return project && readable.has(project) && typeof i.key === 'string'
          ? [
              shapeIssue(
                { ...i, key: i.key, project },
                fields.filter((f) => f !== 'project'),
                custom,
              ),
            ]
          : [];
      });
      // An allowlisted project the search was not classified by (a stale index answers with
      // issues moved elsewhere): classify it and its fields there before anything is returned.
      const elsewhere = [...new Set(kept.map((i) => i.project as string))].filter(
        (p) => !ctx.authorized.projects.includes(p),
      );
      if (elsewhere.length > 0 && ctx.classification)
        await ctx.classification.classify([
          ...elsewhere,
          ...labels.paths(elsewhere, ctx.authorized.fields),
        ]);
      const token = typeof page.nextPageToken === 'string' ? page.nextPageToken : undefined;
      // The audit record counts what the second wall dropped, whatever the model does with it.
      ctx.audit.note('droppedOutOfScope', returned.length - kept.length);
      const { withheld } = ctx.authorized;
      if (withheld.length > 0) ctx.audit.note('withheldFields', withheld.join(','));
      return {
        kind: 'json',
        data: {
          issues: kept,
          droppedOutOfScope: returned.length - kept.length,
          ...(withheld.length > 0 ? { withheldFields: names(withheld) } : {}),
          nextCursor: token ? cursors.seal(ctx.authorized.binding, { token }) : null,
        },
        rowCount: kept.length,
        truncated: token !== undefined,
      };
    },
  });

  // With the attachment tools on, jira_get_issue lists attachment metadata (ids to download).
  const issueFields = settings.attachments.enabled ? [...readFields, 'attachment'] : readFields;
  // What jira_get_issue reads by default: the issue fields, and comments unless commentsOnGet is 0.
  const getFields = [
    ...new Set(settings.limits.commentsOnGet > 0 ? [...issueFields, 'comment'] : issueFields),
  ];
  const getIssueTool = kit.read({
    name: 'get_issue',
    resource: {
      ...projectType,
      of: (input, plan: IssuePlan) => withFields(issueRef(input.key), plan.paths),
    },
    title: 'Read an issue',
    description: `Reads one issue: the allowed fields, the description as Markdown and the latest ${settings.limits.commentsOnGet} comments (more with jira_list_comments). Fields above the caller's clearance are not read and are listed as withheldFields.`,
    output: 'json',
    input: z.strictObject({ key: issueKeyArg, ...fieldsArg(names(getFields), custom.aliases) }),
    policy(input, { identity }) {
      const project = [projectOfIssueKey(input.key)];
      const given = (input as { fields?: string[] }).fields;
      const asked = given ? ids(given) : undefined;
      // Fields asked for by name and above the clearance are refused (leaving them out would
      // answer a different question silently); the default set withholds them instead.
      if (asked) {
        const refusal = labels.refuseAbove(identity, project, asked, 'it was asked for');
        if (refusal) return refusal;
      }
      const wanted = asked ?? getFields;
      const { kept, withheld } = labels.split(identity, project, wanted);
      return allow<IssuePlan>({
        fields: kept.filter((f) => f !== 'comment'),
        comments: kept.includes('comment'),
        withheld,
        paths: labels.active ? labels.paths(project, kept) : [],
      });
    },
    async execute(input, ctx) {
      const api = ctx.client.api(ctx.signal);
      const plan = ctx.authorized;
      const issue = await fetchIssueInScope(api, input.key, readable, plan.fields);
      // A moved issue answers under its old key from another project: classify what was
      // actually returned (its project and fields there) before any of it leaves this server.
      await classifyReturned(
        ctx.classification,
        labels,
        input.key,
        issue.project,
        plan.comments ? [...plan.fields, 'comment'] : plan.fields,
      );
      const n = plan.comments ? settings.limits.commentsOnGet : 0;
      if (plan.withheld.length > 0) ctx.audit.note('withheldFields', plan.withheld.join(','));
      const comments =
        n === 0
          ? { comments: [], total: 0 }
          : ((await (
              await cloud()
            ).getComments(api, {
              issueIdOrKey: issue.key,
              maxResults: n,
              orderBy: '-created',
            } as never)) as { comments?: unknown[]; total?: number });
      return {
        kind: 'json',
        data: {
          ...shapeIssue(issue, plan.fields, custom),
          ...(issue.key === input.key ? {} : { requestedKey: input.key }),
          ...(plan.comments
            ? {
                comments: (comments.comments ?? []).slice(0, n).map(shapeComment),
                commentTotal: typeof comments.total === 'number' ? comments.total : null,
              }
            : {}),
          ...(plan.withheld.length > 0 ? { withheldFields: names(plan.withheld) } : {}),
        },
      };
    },
  });

  const listComments = kit.read({
    name: 'list_comments',
    resource: {
      ...projectType,
      of: (input) =>
        withFields(
          issueRef(input.key),
          labels.active ? labels.paths([projectOfIssueKey(input.key)], ['comment']) : [],
        ),
    },
    title: 'List comments',
    description:
      'Lists the comments of an issue, oldest first, one page at a time (pass nextCursor back as cursor).',
    output: 'json',
    input: z.strictObject({
      key: issueKeyArg,
      cursor: cursorArg,
      limit: z.int().min(1).max(100).optional(),
    }),
    policy(input, { identity }) {
      const refusal = labels.refuseAbove(
        identity,
        [projectOfIssueKey(input.key)],
        ['comment'],
        'this tool returns comments',
      );
      if (refusal) return refusal;
      const binding = {
        tool: 'jira_list_comments',
        principal: identity.principal,
        resource: input.key,
      };
      if (input.cursor === undefined) return allow({ binding, startAt: 0 });
      const opened = cursors.open<unknown>(input.cursor, binding);
      const state = opened.ok ? offsetState.safeParse(opened.state) : undefined;
      if (!state?.success)
        return deny(
          ErrorCode.InvalidInput,
          'the cursor is not a nextCursor of this listing, or has expired',
        );
      return allow({ binding, startAt: state.data.startAt });
    },
    async execute(input, ctx) {
      const api = ctx.client.api(ctx.signal);
      const issue = await fetchIssueInScope(api, input.key, readable, []);
      await classifyReturned(ctx.classification, labels, input.key, issue.project, ['comment']);
      const limit = Math.min(input.limit ?? pageSize, pageSize, ctx.limits.maxRows);
      const page = (await (
        await cloud()
      ).getComments(api, {
        issueIdOrKey: issue.key,
        startAt: ctx.authorized.startAt,
        maxResults: limit,
        orderBy: 'created',
      } as never)) as { comments?: unknown[]; total?: number };
      const got = (page.comments ?? []).slice(0, limit);
      const next = ctx.authorized.startAt + got.length;
      const more = got.length > 0 && typeof page.total === 'number' && next < page.total;
      return {
        kind: 'json',
        data: {
          key: issue.key,
          comments: got.map(shapeComment),
          nextCursor: more ? cursors.seal(ctx.authorized.binding, { startAt: next }) : null,
        },
        rowCount: got.length,
        truncated: more,
      };
    },
  });

  const listTransitions = kit.read({
    name: 'list_transitions',
    resource: { ...projectType, of: (input) => issueRef(input.key) },
    title: 'List transitions',
    description:
      'Lists the transitions an issue can take now (id, name, target status) and whether this server allows each.',
    output: 'table',
    input: z.strictObject({ key: issueKeyArg }),
    async execute(input, ctx) {
      const api = ctx.client.api(ctx.signal);
      const issue = await fetchIssueInScope(api, input.key, readable, []);
      const live = await liveTransitions(api, issue.key);
      const allowTo = new Set(settings.transitions.allowTo);
      return {
        kind: 'table',
        columns: [
          { name: 'id', type: 'text' },
          { name: 'name', type: 'text' },
          { name: 'to', type: 'text' },
          { name: 'allowed', type: 'bool' },
        ],
        rows: live.map((t) => [t.id, t.name, t.to, allowTo.has(t.to)]),
        truncated: false,
      };
    },
  });

  const getCreateFields = kit.read({
    name: 'get_create_fields',
    resource: { ...projectType, of: (input) => projectRef(input.project) },
    title: 'Issue types and fields for creating',
    description:
      'Lists the issue types this server may create in a project, with the fields each takes (custom fields by their configured alias).',
    output: 'json',
    input: z.strictObject({ project: projectKeySchema }),
    policy(input) {
      return readable.has(input.project)
        ? allow(undefined)
        : deny(ErrorCode.PolicyDenied, `project ${input.project} is not in the allowed projects`);
    },
    async execute(input, ctx) {
      const api = ctx.client.api(ctx.signal);
      const types = (await (
        await cloud()
      ).getCreateIssueMetaIssueTypes(api, {
        projectIdOrKey: input.project,
      } as never)) as { issueTypes?: { id?: unknown; name?: unknown }[] };
      const allowedTypes = new Set(settings.issueTypes);
      const aliasOf = new Map(Object.entries(settings.customFields).map(([a, id]) => [id, a]));
      const writable = new Set<string>(settings.fields.write);
      const out = [];
      for (const t of (types.issueTypes ?? []).slice(0, 50)) {
        // The id goes into the next request's path: digits only, whatever Jira sent.
        if (
          typeof t.id !== 'string' ||
          !/^\d{1,18}$/.test(t.id) ||
          typeof t.name !== 'string' ||
          !allowedTypes.has(t.name)
        )
          continue;
        const meta = (await (
          await cloud()
        ).getCreateIssueMetaIssueTypeId(api, {
          projectIdOrKey: input.project,
          issueTypeId: t.id,
        } as never)) as { fields?: { fieldId?: unknown; name?: unknown; required?: unknown }[] };
        const fields = (meta.fields ?? []).flatMap((f) => {
          const id = typeof f.fieldId === 'string' ? f.fieldId : '';
          const alias = aliasOf.get(id);
          if (!writable.has(id) && alias === undefined) return [];
          return [
            {
              field: alias ?? id,
              name: typeof f.name === 'string' ? f.name : '',
              required: f.required === true,
            },
          ];
        });
        out.push({ issueType: t.name, fields });
      }
      return { kind: 'json', data: { project: input.project, issueTypes: out } };
    },
  });

  const tools = [
    listProjects,
    searchIssues,
    getIssueTool,
    listComments,
    listTransitions,
    getCreateFields,
  ];
  if (settings.users.enabled)
    tools.push(
      kit.read({
        name: 'find_users',
        title: 'Find users',
        description:
          'Finds users by name: account id and display name only (never e-mail addresses).',
        output: 'table',
        input: z.strictObject({ query: value(100) }),
        async execute(input, ctx) {
          const users = (await (
            await cloud()
          ).findUsers(ctx.client.api(ctx.signal), {
            query: input.query,
            maxResults: Math.min(20, ctx.limits.maxRows),
          } as never)) as { accountId?: unknown; displayName?: unknown }[];
          return {
            kind: 'table',
            columns: [
              { name: 'accountId', type: 'text' },
              { name: 'displayName', type: 'text' },
            ],
            rows: (Array.isArray(users) ? users : [])
              .slice(0, 20)
              .filter((u) => typeof u.accountId === 'string')
              .map((u) => [u.accountId, typeof u.displayName === 'string' ? u.displayName : '']),
            truncated: false,
          };
        },
      }),
    );
  return tools;
}

/** A transition the issue can take now. */
export interface LiveTransition {
  readonly id: string;
  readonly name: string;
  /** The target status name. */
  readonly to: string;
}

/** The issue's live transition list (`GET /rest/api/3/issue/{key}/transitions`). */
export async function liveTransitions(
  api: ReturnType<JiraClient['api']>,
  key: string,
): Promise<LiveTransition[]> {
  const res = (await (await cloud()).getTransitions(api, { issueIdOrKey: key } as never)) as {
    transitions?: { id?: unknown; name?: unknown; to?: { name?: unknown } }[];
  };
  return (res.transitions ?? []).flatMap((t) =>
    typeof t.id === 'string' && typeof t.to?.name === 'string'
      ? [{ id: t.id, name: typeof t.name === 'string' ? t.name : '', to: t.to.name }]
      : [],
  );
}
