import {
  ApprovalText,
  type Authorization,
  allow,
  deny,
  ErrorCode,
  type Tool,
  ToolError,
} from '@hardened-mcp/core';
import { z } from 'zod';
import { markdownToAdfDoc } from './adf.js';
import type { JiraClient } from './client.js';
import { cloud } from './cloud.js';
import { issueKeySchema, type JiraSettings, projectKeySchema } from './config.js';
import { classifyReturned, type FieldLabels, withFields } from './field-labels.js';
import { fingerprintOf, type IdempotencyStore } from './idempotency.js';
import { fetchIssueInScope, shapeIssue } from './issues.js';
import { kit } from './kit.js';
import { liveTransitions } from './read-tools.js';
import { issueRef, projectOfIssueKey, projectRef, projectType } from './resources.js';

const chars = (s: string) => Array.from(s).length;
const issueKeyArg = issueKeySchema.describe('An issue key, e.g. SUP-12.');
/** One line of text: no control or line-separator characters. */
const line = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}\u2028\u2029]+$/u, 'one line, no control characters');
const labelArg = z.string().regex(/^[^\s"\\\p{Cc}]{1,100}$/u, 'labels have no spaces or quotes');
const markdownArg = z
  .string()
  .min(1)
  .max(64_000)
  .describe('Markdown (converted to Atlassian Document Format).');

/** Answers the policy step with the refusal a thrown ToolError carries (absent, out of scope, upstream). */
async function refuseOnError<A>(run: () => Promise<Authorization<A>>): Promise<Authorization<A>> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof ToolError) return deny(err.code, err.message);
    throw err;
  }
}

/**
 * Declares the write tools from configuration alone. Their policy steps check the live issue
 * (project, transitions, parent) with the read client the core hands them (`ctx.readClient`),
 * before the human is asked; `execute` checks again with the write client.
 */
export function createWriteTools(
  settings: JiraSettings,
  idempotency: IdempotencyStore,
  labels: FieldLabels,
): Tool<JiraClient>[] {
  const writable = new Set(settings.projects.write);
  const readable = new Set(settings.projects.read);
  /**
   * The resource of a write to an issue: its project from the key, classified with the fields
   * the write sets there (when the live issue is elsewhere now, `execute` classifies that project
   * and its fields too, with {@link classifyReturned}).
   */
  const issueWriteRef = (key: string, fields: readonly string[]) =>
    withFields(issueRef(key), labels.active ? labels.paths([projectOfIssueKey(key)], fields) : []);
  /** A `policy_denied` when a field a write sets is above the caller's clearance. */
  const refuseWrite = (
    identity: Parameters<FieldLabels['clearance']>[0],
    project: string,
    fields: readonly string[],
  ) => labels.refuseAbove(identity, [project], fields, 'this call would write it');
  /**
   * The live issue for a write's policy step: absent or unreadable → the read tools' answer;
   * readable but not in the write allowlist → `policy_denied` (nothing hidden is revealed).
   */
  async function writableIssue(read: JiraClient, key: string, fields: readonly string[]) {
    const issue = await fetchIssueInScope(read.api(), key, readable, fields);
    if (!writable.has(issue.project))
      throw new ToolError(
        ErrorCode.PolicyDenied,
        `project ${issue.project} is not writable by policy`,
      );
    return issue;
  }
  const writeFields = new Set<string>(settings.fields.write);
  const issueTypes = new Set(settings.issueTypes);
  const allowTo = new Set(settings.transitions.allowTo);
  const lim = settings.limits;
  const approval = () => new ApprovalText({ maxChars: lim.approvalChars, maxValueChars: 300 });

  /** Field rules shared by create and update: allowlist and sizes. */
  function checkFields(input: {
    summary?: string | undefined;
    description?: string | undefined;
    labels?: string[] | undefined;
    priority?: string | undefined;
  }): ReturnType<typeof deny> | undefined {
    for (const f of ['summary', 'description', 'labels', 'priority'] as const)
      if (input[f] !== undefined && !writeFields.has(f))
        return deny(ErrorCode.PolicyDenied, `field ${f} is not writable by policy`);
    if (input.summary !== undefined && chars(input.summary) > lim.summaryChars)
      return deny(
        ErrorCode.LimitExceeded,
        `the summary is longer than ${lim.summaryChars} characters`,
      );
    if (input.description !== undefined && chars(input.description) > lim.descriptionChars)
      return deny(
        ErrorCode.LimitExceeded,
        `the description is longer than ${lim.descriptionChars} characters`,
      );
    if (input.labels !== undefined && input.labels.length > lim.labels)
      return deny(ErrorCode.LimitExceeded, `at most ${lim.labels} labels`);
    return undefined;
  }

  /** The `fields` object of a create or edit: ADF description, names as `{ name }`. */
  function jiraFields(input: {
    summary?: string | undefined;
    description?: string | undefined;
    labels?: string[] | undefined;
    priority?: string | undefined;
  }): Record<string, unknown> {
    return {
      ...(input.summary !== undefined ? { summary: input.summary } : {}),
      ...(input.description !== undefined
        ? { description: markdownToAdfDoc(input.description) }
        : {}),
      ...(input.labels !== undefined ? { labels: input.labels } : {}),
      ...(input.priority !== undefined ? { priority: { name: input.priority } } : {}),
    };
  }

  // ---- jira_create_issue -------------------------------------------------------------------
  const createInput = z.strictObject({
    project: projectKeySchema,
    issueType: line(60),
    summary: line(255),
    description: markdownArg.optional(),
    labels: z.array(labelArg).max(50).optional(),
    priority: line(60).optional(),
    customFields: z.record(z.string().max(40), z.union([line(255), z.number()])).optional(),
    parent: issueKeyArg.optional().describe('Parent issue key; must be in the same project.'),
    idempotencyKey: z
      .string()
      .regex(/^[A-Za-z0-9_-]{8,64}$/)
      .optional()
      .describe(
        'Any 8-64 character key: a retried call with the same key returns the first result.',
      ),
  });
  /** The field ids a create sets (custom fields by the id their alias names; unknown aliases are refused by the policy). */
  const createdFields = (input: z.output<typeof createInput>): string[] => [
    'issuetype',
    'summary',
    ...(['description', 'labels', 'priority', 'parent'] as const).filter(
      (f) => input[f] !== undefined,
    ),
    ...Object.keys(input.customFields ?? {}).flatMap((alias) => {
      const id = Object.hasOwn(settings.customFields, alias)
        ? settings.customFields[alias]
        : undefined;
      return id ? [id] : [];
    }),
  ];
  const createTool = kit.write({
    name: 'create_issue',
    resource: {
      ...projectType,
      of: (input) =>
        withFields(
          projectRef(input.project),
          labels.active ? labels.paths([input.project], createdFields(input)) : [],
        ),
    },
    egress: true,
    title: 'Create an issue',
    description: `Creates an issue in a writable project (needs the human's approval). Issue types: ${settings.issueTypes.join(', ')}. Description in Markdown.`,
    destructive: false,
    output: 'json',
    input: createInput,
    policy(input, { identity, readClient }) {
      if (!writable.has(input.project))
        return deny(ErrorCode.PolicyDenied, `project ${input.project} is not writable by policy`);
      const labelRefusal = refuseWrite(identity, input.project, createdFields(input));
      if (labelRefusal) return labelRefusal;
      if (!issueTypes.has(input.issueType))
        return deny(ErrorCode.PolicyDenied, `issue type ${input.issueType} is not allowed`);
      const fieldRefusal = checkFields(input);
      if (fieldRefusal) return fieldRefusal;
      const custom: Record<string, string | number> = {};
      for (const [alias, v] of Object.entries(input.customFields ?? {})) {
        const id = settings.customFields[alias];
        if (!id) return deny(ErrorCode.PolicyDenied, `custom field ${alias} is not configured`);
        custom[id] = v;
      }
      if (input.parent !== undefined && !input.parent.startsWith(`${input.project}-`))
        return deny(ErrorCode.PolicyDenied, 'the parent must be in the same project');
      const parent = input.parent;
      return refuseOnError(async () => {
        if (input.idempotencyKey !== undefined) {
          const { idempotencyKey, ...rest } = input;
          const seen = await idempotency.check(
            identity.principal,
            idempotencyKey,
            fingerprintOf(rest),
          );
          if (seen === 'mismatch')
            return deny(
              ErrorCode.InvalidInput,
              'this idempotencyKey was used for a different issue',
            );
        }
        if (parent === undefined) return allow(custom);
        // The parent as it is now (a moved parent keeps its old key) must be in the same project.
        const p = await fetchIssueInScope(readClient.api(), parent, new Set([input.project]), []);
        return p.project === input.project
          ? allow(custom)
          : deny(ErrorCode.PolicyDenied, 'the parent must be in the same project');
      });
    },
    describeChange: (input) => {
      const t = approval()
        .line('Create a Jira issue in project', input.project)
        .field('type', input.issueType)
        .field('summary', input.summary);
      if (input.description !== undefined) t.field('description', input.description);
      if (input.labels !== undefined) t.field('labels', input.labels.join(', '));
      if (input.priority !== undefined) t.field('priority', input.priority);
      if (input.parent !== undefined) t.field('parent', input.parent);
      for (const [k, v] of Object.entries(input.customFields ?? {})) t.field(k, v);
      return t.toString();
    },
    async execute(input, ctx) {
      const { idempotencyKey, ...rest } = input;
      const run = async () => {
        const res = (await (
          await cloud()
        ).createIssue(ctx.client.api(ctx.signal), {
          fields: {
            project: { key: input.project },
            issuetype: { name: input.issueType },
            ...jiraFields(input),
            ...(input.parent !== undefined ? { parent: { key: input.parent } } : {}),
            ...ctx.authorized,
          },
        } as never)) as { key?: unknown; id?: unknown };
        if (typeof res?.key !== 'string' || typeof res.id !== 'string')
          throw new ToolError(ErrorCode.UpstreamError, 'Jira answered without an issue key');
        return { key: res.key, id: res.id };
      };
      const { result, replayed } =
        idempotencyKey === undefined
          ? { result: await run(), replayed: false }
          : await idempotency.run(ctx.identity.principal, idempotencyKey, fingerprintOf(rest), run);
      return { kind: 'json', data: { ...result, project: input.project, replayed } };
    },
  });

  // ---- jira_update_issue -------------------------------------------------------------------
  const updateInput = z.strictObject({
    key: issueKeyArg,
    summary: line(255).optional(),
    description: markdownArg.optional(),
    labels: z.array(labelArg).max(50).optional(),
    priority: line(60).optional(),
  });
  type UpdateInput = z.output<typeof updateInput>;
  const changedFields = (input: UpdateInput) =>
    (['summary', 'description', 'labels', 'priority'] as const).filter(
      (f) => input[f] !== undefined,
    );
  const updateTool = kit.write({
    name: 'update_issue',
    resource: {
      ...projectType,
      of: (input) => issueWriteRef(input.key, changedFields(input)),
    },
    egress: true,
    title: 'Update an issue',
    description:
      "Changes summary, description (Markdown), labels or priority of an issue in a writable project (needs the human's approval). Never moves an issue or changes its type.",
    destructive: true,
    output: 'json',
    input: updateInput,
    policy(input, { identity, readClient }) {
      if (changedFields(input).length === 0)
        return deny(ErrorCode.InvalidInput, 'nothing to change');
      const labelRefusal = refuseWrite(
        identity,
        projectOfIssueKey(input.key),
        changedFields(input),
      );
      if (labelRefusal) return labelRefusal;
      const fieldRefusal = checkFields(input);
      if (fieldRefusal) return fieldRefusal;
      return refuseOnError(async () => {
        const issue = await writableIssue(readClient, input.key, changedFields(input));
        return allow({ key: issue.key, before: shapeIssue(issue, changedFields(input)) });
      });
    },
    describeChange: (input, authorized) => {
      const t = approval().line('Update Jira issue', authorized.key);
      for (const f of changedFields(input)) {
        const after = f === 'labels' ? (input.labels ?? []).join(', ') : input[f];
        const before = authorized.before[f];
        t.change(f, Array.isArray(before) ? before.join(', ') : before, after);
      }
      return t.toString();
    },
    async execute(input, ctx) {
      const api = ctx.client.api(ctx.signal);
      // Re-checked with the write credential: the issue may have moved since the approval.
      const issue = await fetchIssueInScope(api, input.key, writable, []);
      // A moved issue: the fields are written in its project now, classified there too.
      await classifyReturned(
        ctx.classification,
        labels,
        input.key,
        issue.project,
        changedFields(input),
      );
      await (await cloud()).editIssue(api, {
        issueIdOrKey: issue.key,
        notifyUsers: settings.notifyUsers,
        fields: jiraFields(input),
      } as never);
      return { kind: 'json', data: { key: issue.key, updated: changedFields(input) } };
    },
  });

  // ---- jira_add_comment --------------------------------------------------------------------
  const mentions = settings.mentions;
  const accountIdArg = z
    .string()
    .regex(/^[A-Za-z0-9:_-]{1,128}$/, 'an account id from jira_find_users')
    // Jira's special mentions notify everyone in a room or group: never.
    .refine((id) => !['all', 'here', 'channel', 'everyone'].includes(id.toLowerCase()), {
      message: 'group mentions are not allowed',
    });
  const commentInput = z.strictObject({
    key: issueKeyArg,
    body: markdownArg,
    ...(mentions.enabled
      ? {
          mentions: z
            .array(accountIdArg)
            .max(50)
            .optional()
            .describe(
              `Account ids to mention (and notify), at most ${mentions.max}; they lead the comment. @name in the body is plain text.`,
            ),
        }
      : {}),
  });
  const mentionsOf = (input: z.output<typeof commentInput>): string[] => [
    ...new Set((input as { mentions?: string[] }).mentions ?? []),
  ];
  const commentTool = kit.write({
    name: 'add_comment',
    resource: {
      ...projectType,
      of: (input) => issueWriteRef(input.key, ['comment']),
    },
    egress: true,
    title: 'Add a comment',
    description: `Adds a comment (Markdown, at most ${lim.commentChars} characters) to an issue in a writable project (needs the human's approval). ${
      mentions.enabled
        ? `Mentions only through the mentions argument (at most ${mentions.max} account ids); @name in the body stays plain text.`
        : 'Mentions are not supported: @name stays plain text and notifies nobody.'
    }`,
    destructive: false,
    output: 'json',
    input: commentInput,
    policy(input, { identity, readClient }) {
      const labelRefusal = refuseWrite(identity, projectOfIssueKey(input.key), ['comment']);
      if (labelRefusal) return labelRefusal;
      if (chars(input.body) > lim.commentChars)
        return deny(
          ErrorCode.LimitExceeded,
          `the comment is longer than ${lim.commentChars} characters`,
        );
      const people = mentionsOf(input);
      if (people.length > mentions.max)
        return deny(ErrorCode.PolicyDenied, `at most ${mentions.max} mentions per comment`);
      return refuseOnError(async () => {
        const issue = await writableIssue(readClient, input.key, []);
        return allow({ key: issue.key, mentions: people });
      });
    },
    describeChange: (input, authorized) => {
      const t = approval().line('Comment on Jira issue', authorized.key);
      if (authorized.mentions.length > 0)
        t.field('mentions (notified)', authorized.mentions.join(', '));
      return t.field('comment', input.body).toString();
    },
    async execute(input, ctx) {
      const api = ctx.client.api(ctx.signal);
      const issue = await fetchIssueInScope(api, input.key, writable, []);
      await classifyReturned(ctx.classification, labels, input.key, issue.project, ['comment']);
      const doc = markdownToAdfDoc(input.body);
      // The only mention nodes ever sent: the approved account ids, in a leading paragraph.
      const people = ctx.authorized.mentions;
      const body =
        people.length === 0
          ? doc
          : {
              ...doc,
              content: [
                {
                  type: 'paragraph',
                  content: people.flatMap((id) => [
                    { type: 'mention', attrs: { id } },
                    { type: 'text', text: ' ' },
                  ]),
                },
                ...doc.content,
              ],
            };
      const res = (await (
        await cloud()
      ).addComment(api, {
        issueIdOrKey: issue.key,
        body,
      } as never)) as { id?: unknown };
      return {
        kind: 'json',
        data: {
          key: issue.key,
          commentId: typeof res?.id === 'string' ? res.id : null,
          mentioned: people.length,
        },
      };
    },
  });

  // ---- jira_transition_issue ---------------------------------------------------------------
  const transitionTool = kit.write({
    name: 'transition_issue',
    resource: {
      ...projectType,
      of: (input) => issueWriteRef(input.key, ['status']),
    },
    title: 'Transition an issue',
    description: `Moves an issue through its workflow with a transition id from jira_list_transitions (needs the human's approval). Allowed target statuses: ${settings.transitions.allowTo.join(', ') || 'none'}.`,
    destructive: true,
    output: 'json',
    input: z.strictObject({
      key: issueKeyArg,
      transitionId: z
        .string()
        .regex(/^\d{1,9}$/)
        .describe('An id from jira_list_transitions.'),
    }),
    policy(input, { identity, readClient }) {
      const labelRefusal = refuseWrite(identity, projectOfIssueKey(input.key), ['status']);
      if (labelRefusal) return labelRefusal;
      return refuseOnError(async () => {
        const api = readClient.api();
        const issue = await writableIssue(readClient, input.key, ['status']);
        const t = (await liveTransitions(api, issue.key)).find((x) => x.id === input.transitionId);
        if (!t)
          return deny(
            ErrorCode.PolicyDenied,
            `transition ${input.transitionId} is not available for ${issue.key} now`,
          );
        if (!allowTo.has(t.to))
          return deny(ErrorCode.PolicyDenied, `moving an issue to ${t.to} is not allowed`);
        const from = shapeIssue(issue, ['status']).status;
        return allow({
          key: issue.key,
          from: typeof from === 'string' ? from : '',
          to: t.to,
          name: t.name,
        });
      });
    },
    describeChange: (_input, a) =>
      approval()
        .line('Transition Jira issue', a.key, `(${a.name})`)
        .change('status', a.from, a.to)
        .toString(),
    async execute(input, ctx) {
      const api = ctx.client.api(ctx.signal);
      const issue = await fetchIssueInScope(api, input.key, writable, []);
      await classifyReturned(ctx.classification, labels, input.key, issue.project, ['status']);
      // The live list again, with the write credential: the approved transition must still be there.
      const t = (await liveTransitions(api, issue.key)).find((x) => x.id === input.transitionId);
      if (!t || t.to !== ctx.authorized.to)
        throw new ToolError(
          ErrorCode.PolicyDenied,
          `transition ${input.transitionId} is no longer available`,
        );
      await (await cloud()).doTransition(api, {
        issueIdOrKey: issue.key,
        transition: { id: t.id },
      } as never);
      return { kind: 'json', data: { key: issue.key, from: ctx.authorized.from, to: t.to } };
    },
  });

  return [createTool, updateTool, commentTool, transitionTool];
}
