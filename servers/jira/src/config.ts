import { z } from 'zod';

/**
 * A Jira project key: an upper-case letter, then upper-case letters, digits or `_` (2–10
 * characters; Jira Cloud's default key rule, "Project key format" in the Jira admin docs).
 * Compared exactly: configure keys as Jira shows them.
 */
export const projectKeySchema = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{1,9}$/, 'project keys are upper-case letters, digits and _');

/** An issue key: `PROJECT-123`. */
export const issueKeySchema = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{1,9}-[1-9]\d{0,8}$/, 'issue keys look like SUP-123');

/** Issue fields a tool may read (returned by `jira_get_issue` and `jira_search_issues`). */
export const READABLE_FIELDS = [
  'summary',
  'status',
  'assignee',
  'reporter',
  'labels',
  'priority',
  'issuetype',
  'description',
  'created',
  'updated',
  'parent',
] as const;

/** Issue fields a write tool may set (custom fields go through `customFields` aliases). */
export const WRITABLE_FIELDS = ['summary', 'description', 'labels', 'priority'] as const;

/** A field a tool may set. */
export type WritableField = (typeof WRITABLE_FIELDS)[number];

/** A plain name (issue type, status, priority): printable, no quotes or control characters. */
const nameSchema = z
  .string()
  .min(1)
  .max(60)
  .regex(/^[^"\\\p{Cc}]+$/u, 'names cannot hold quotes, backslashes or control characters');

/**
 * The `jira:` configuration section. Every key has a safe default except `site` and
 * `projects.read`, which name the upstream and the allowlist; unknown keys are errors.
 */
export const jiraSectionSchema = z
  .strictObject({
    /**
     * The site origin, e.g. `https://acme.atlassian.net`: the only place requests go. `https:`
     * only (`http:` to loopback for tests), no path, query or user info.
     */
    site: z.url({ protocol: /^https?$/ }),
    /** How the credential is sent: `basic` (e-mail + API token) or `bearer` (OAuth 2.0 access token). */
    auth: z
      .strictObject({
        scheme: z.enum(['basic', 'bearer']).default('basic'),
        /** The account e-mail for `basic` (Jira Cloud API tokens are used with it). */
        email: z.email().optional(),
      })
      .prefault({})
      .refine((a) => a.scheme === 'bearer' || a.email !== undefined, {
        message: 'jira.auth.email is required with scheme basic',
      }),
    /** Project keys: `read` for every tool, `write` (a subset) for writes. */
    projects: z.strictObject({
      read: z.array(projectKeySchema).min(1).max(100),
      write: z.array(projectKeySchema).max(100).default([]),
    }),
    /** Issue types `jira_create_issue` may create (exact names). */
    issueTypes: z.array(nameSchema).max(50).default(['Bug', 'Task']),
    /** Fields read tools return and write tools may set. */
    fields: z
      .strictObject({
        read: z
          .array(z.enum(READABLE_FIELDS))
          .max(READABLE_FIELDS.length)
          .default(['summary', 'status', 'assignee', 'labels', 'priority', 'description']),
        write: z
          .array(z.enum(WRITABLE_FIELDS))
          .max(WRITABLE_FIELDS.length)
          .default(['summary', 'description', 'labels', 'priority']),
      })
      .prefault({}),
    /** Custom fields writable by alias: `{ severity: customfield_10042 }`. Others are never set. */
    customFields: z
      .record(
        z.string().regex(/^[a-z][a-zA-Z0-9]{0,39}$/, 'aliases are camelCase words'),
        z.string().regex(/^customfield_\d{1,9}$/, 'custom field ids look like customfield_10042'),
      )
      .default({}),
    /** Target statuses `jira_transition_issue` may move an issue to (exact names); none by default. */
    transitions: z.strictObject({ allowTo: z.array(nameSchema).max(50).default([]) }).prefault({}),
    /**
     * Raw JQL in `jira_search_issues` (`jql` argument): off by default. When on, the query is
     * parsed with `@atlaskit/jql-ast`, every field and function must be on `jql.fields` /
     * `jql.functions`, and the project allowlist is injected into the tree.
     */
    rawJql: z.boolean().default(false),
    /** What a raw JQL query may use (names compared case-insensitively). */
    jql: z
      .strictObject({
        fields: z
          .array(z.string().regex(/^[A-Za-z][A-Za-z ]{0,39}$/))
          .max(100)
          .default([
            'project',
            'issuetype',
            'type',
            'status',
            'statusCategory',
            'assignee',
            'reporter',
            'labels',
            'priority',
            'resolution',
            'created',
            'updated',
            'resolved',
            'duedate',
            'summary',
            'description',
            'text',
            'comment',
            'key',
            'issuekey',
            'parent',
          ]),
        functions: z
          .array(z.string().regex(/^[A-Za-z]{1,40}$/))
          .max(100)
          .default([
            'currentUser',
            'now',
            'startOfDay',
            'endOfDay',
            'startOfWeek',
            'endOfWeek',
            'startOfMonth',
            'endOfMonth',
          ]),
      })
      .prefault({}),
    /** `jira_find_users` (account id and display name only): off by default. */
    users: z.strictObject({ enabled: z.boolean().default(false) }).prefault({}),
    /** `notifyUsers` sent with `jira_update_issue`; Jira's own default would be true. */
    notifyUsers: z.boolean().default(false),
    /** Limits, in characters (Unicode code points) and items. */
    limits: z
      .strictObject({
        summaryChars: z.int().min(1).max(255).default(255),
        descriptionChars: z.int().min(1).max(32_000).default(16_000),
        commentChars: z.int().min(1).max(32_000).default(8_000),
        labels: z.int().min(0).max(50).default(10),
        /** Issues per page of `jira_search_issues`, and comments per page of `jira_list_comments`. */
        pageSize: z.int().min(1).max(100).default(25),
        /** Latest comments `jira_get_issue` includes. */
        commentsOnGet: z.int().min(0).max(50).default(5),
        /** Characters of the approval prompt (values are cut at 300 with a visible marker). */
        approvalChars: z.int().min(200).max(8_000).default(2_000),
      })
      .prefault({}),
    /** How long `jira_create_issue` remembers an `idempotencyKey`, in ms (default 10 minutes). */
    idempotencyWindowMs: z.int().min(1_000).max(86_400_000).default(600_000),
  })
  .refine((s) => s.projects.write.every((p) => s.projects.read.includes(p)), {
    message: 'every projects.write entry must also be in projects.read',
    path: ['projects', 'write'],
  });

/** The parsed `jira:` section. */
export type JiraSettings = z.infer<typeof jiraSectionSchema>;
