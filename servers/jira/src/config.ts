import { credentialSourceSchema } from '@hardened-mcp/core';
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

/** A custom field id, `customfield_N` (Jira Cloud's REST field id of a custom field). */
const customFieldIdSchema = z
  .string()
  .regex(/^customfield_\d{1,9}$/, 'custom field ids look like customfield_10042');

/** Names a readable custom field's alias cannot take: the fields `fields` already names. */
const RESERVED_FIELD_NAMES = new Set<string>([
  ...READABLE_FIELDS,
  'comment',
  'attachment',
  'project',
  'key',
]);

/** Issue fields a write tool may set (custom fields go through `customFields` aliases). */
export const WRITABLE_FIELDS = ['summary', 'description', 'labels', 'priority'] as const;

/** A field a tool may set. */
export type WritableField = (typeof WRITABLE_FIELDS)[number];

/** An IANA media type without parameters, lower case, e.g. `image/png`. */
const mimeTypeSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$/,
    'a media type like image/png',
  );

/** Media types the attachment tools accept by default: plain documents and images, nothing executable or active. */
export const DEFAULT_ATTACHMENT_MIME_TYPES = [
  'text/plain',
  'text/csv',
  'application/json',
  'application/pdf',
  'image/png',
  'image/jpeg',
  'image/gif',
] as const;

/** Atlassian's OAuth 2.0 token endpoint ("OAuth 2.0 (3LO) apps", Atlassian developer docs). */
export const ATLASSIAN_TOKEN_URL = 'https://auth.atlassian.com/oauth/token';
/** Atlassian's API gateway: 3LO apps call `{apiBase}/ex/jira/{cloudId}/rest/api/3/…`. */
export const ATLASSIAN_API_BASE = 'https://api.atlassian.com';

/** An origin (`https:`, or `http:` to loopback for tests; checked again by the core's upstream client). */
const originSchema = z
  .url({ protocol: /^https?$/ })
  .refine((u) => new URL(u).origin === u.replace(/\/$/, ''), 'an origin: scheme, host, port only');

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
    /**
     * How the credential is sent: `basic` (e-mail + API token), `bearer` (an OAuth 2.0 access
     * token kept fresh by its credential source) or `oauth` (OAuth 2.0 (3LO): the credential is a
     * refresh token; the server obtains access tokens from `oauth.tokenUrl`, refreshes them on
     * expiry and on a `401`, and calls `{oauth.apiBase}/ex/jira/{oauth.cloudId}`).
     */
    auth: z
      .strictObject({
        scheme: z.enum(['basic', 'bearer', 'oauth']).default('basic'),
        /** The account e-mail for `basic`; default: the `JIRA_EMAIL` environment variable. */
        email: z.email().optional(),
        oauth: z
          .strictObject({
            /** The app's client id (public). */
            clientId: z.string().min(1).max(200),
            /** Where the client secret comes from (any credential source). */
            clientSecret: credentialSourceSchema.default({ env: 'JIRA_OAUTH_CLIENT_SECRET' }),
            /** The site's cloud id (from `/oauth/token/accessible-resources`). */
            cloudId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'a cloud id is a UUID'),
            tokenUrl: z.url({ protocol: /^https?$/ }).default(ATLASSIAN_TOKEN_URL),
            apiBase: originSchema.default(ATLASSIAN_API_BASE),
          })
          .optional(),
      })
      .prefault({})
      .refine((a) => a.scheme !== 'oauth' || a.oauth !== undefined, {
        message: 'jira.auth.oauth (clientId, cloudId) is required with scheme oauth',
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
        /**
         * Custom fields the read tools return, by alias: `{ storyPoints: customfield_10016 }`.
         * The `fields` argument names them by alias, results carry them under `customFields`,
         * labels key them by id. None by default.
         */
        custom: z
          .record(
            z.string().regex(/^[a-z][a-zA-Z0-9]{0,39}$/, 'aliases are camelCase words'),
            customFieldIdSchema,
          )
          .refine((r) => Object.keys(r).length <= 50, 'at most 50 readable custom fields')
          .refine(
            (r) => new Set(Object.values(r)).size === Object.keys(r).length,
            'each custom field has one alias',
          )
          .refine(
            (r) => Object.keys(r).every((a) => !RESERVED_FIELD_NAMES.has(a)),
            'an alias cannot be a system field name (summary, comment, attachment, …)',
          )
          .default({}),
      })
      .prefault({}),
    /** Custom fields writable by alias: `{ severity: customfield_10042 }`. Others are never set. */
    customFields: z
      .record(
        z.string().regex(/^[a-z][a-zA-Z0-9]{0,39}$/, 'aliases are camelCase words'),
        customFieldIdSchema,
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
    /**
     * The site's field list (`GET /rest/api/3/field`), fetched only with raw JQL and labels, to
     * resolve custom fields' display names to ids: used for `ttlMs`, refetched on a name it does
     * not hold at most once per `missRefreshMs`.
     */
    fieldList: z
      .strictObject({
        ttlMs: z.int().min(1_000).max(900_000).default(300_000),
        missRefreshMs: z.int().min(0).max(3_600_000).default(30_000),
      })
      .prefault({}),
    /** What a raw JQL query may use (names compared case-insensitively). */
    jql: z
      .strictObject({
        fields: z
          .array(
            z
              .string()
              .regex(
                /^(?:[A-Za-z][A-Za-z0-9 _-]{0,39}|cf\[\d{1,9}\])$/,
                'a JQL field name (letters, digits, spaces, _ and -) or cf[N]',
              ),
          )
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
    /**
     * `jira_get_attachment` / `jira_add_attachment`: off by default. Downloads and uploads are
     * capped at `maxBytes` and limited to `mimeTypes`; a download redirected by Jira is followed
     * only to the site origin (with the credential) or to one of `mediaOrigins` (without it).
     */
    attachments: z
      .strictObject({
        enabled: z.boolean().default(false),
        maxBytes: z
          .int()
          .min(1)
          .max(20 * 1024 * 1024)
          .default(1024 * 1024),
        mimeTypes: z
          .array(mimeTypeSchema)
          .min(1)
          .max(50)
          .default([...DEFAULT_ATTACHMENT_MIME_TYPES]),
        /** Origins Jira may redirect a download to (Jira Cloud: its media host); none by default. */
        mediaOrigins: z.array(originSchema).max(10).default([]),
      })
      .prefault({}),
    /**
     * ADF `mention` nodes in `jira_add_comment` (they notify people): off by default. When on, the
     * `mentions` argument takes at most `max` account ids; group mentions are never made.
     */
    mentions: z
      .strictObject({
        enabled: z.boolean().default(false),
        max: z.int().min(1).max(10).default(3),
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
