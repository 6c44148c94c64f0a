import { credentialSourceSchema } from '@hardened-mcp/core';
import { z } from 'zod';

/**
 * A Slack conversation id: `C…` (public or private channel), `G…` (private channel or group DM
 * of older workspaces), `D…` (direct message). Upper-case letters and digits, 9–12 characters
 * (Slack's "Conversation object" docs; ids are opaque, so only the shape is checked).
 */
export const conversationIdSchema = z
  .string()
  .regex(/^[CGD][A-Z0-9]{8,11}$/, 'conversation ids look like C0123ABCD');

/** A Slack user id: `U…` or `W…` (Enterprise Grid). */
export const userIdSchema = z
  .string()
  .regex(/^[UW][A-Z0-9]{8,11}$/, 'user ids look like U0123ABCD');

/** A message timestamp (`ts`), Slack's message id within a conversation: `1712345678.000100`. */
export const messageTsSchema = z
  .string()
  .regex(/^\d{9,10}\.\d{6}$/, 'message timestamps look like 1712345678.000100');

/** Profile fields `slack_get_user` may return. `email` and `phone` are not among them, ever. */
export const PROFILE_FIELDS = [
  'display_name',
  'real_name',
  'title',
  'status_text',
  'tz',
  'is_bot',
  'deleted',
] as const;

/**
 * The `slack:` configuration section. Only `channels.read` has no default (it names what the
 * server may see); unknown keys are errors.
 */
export const slackSectionSchema = z
  .strictObject({
    /**
     * The Web API base URL every request goes to, e.g. `https://slack.com/api/` (the default).
     * `https:` only (`http:` to loopback for tests), no query or user info; it must end in `/`
     * (`@slack/web-api` appends the method name).
     */
    apiUrl: z
      .url({ protocol: /^https?$/ })
      .refine((u) => u.endsWith('/'), 'slack.apiUrl must end with /')
      .default('https://slack.com/api/'),
    /** Conversation ids: `read` for every tool, `write` (a subset) for posts and reactions. Ids are authoritative. */
    channels: z.strictObject({
      read: z.array(conversationIdSchema).min(1).max(200),
      write: z.array(conversationIdSchema).max(200).default([]),
    }),
    /** Direct messages and group DMs: refused unless true AND the conversation id is listed. */
    allowDirectMessages: z.boolean().default(false),
    /** `slack_search_messages`: off by default; needs a user token (`xoxp-`, scope `search:read`). */
    search: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** Where the user token comes from (a credential source like the others). */
        userToken: credentialSourceSchema.default({ env: 'SLACK_USER_TOKEN' }),
        /** Results per call (Slack's `count`). */
        maxResults: z.int().min(1).max(100).default(20),
      })
      .prefault({}),
    /** `slack_add_reaction`: off by default. */
    reactions: z.strictObject({ enabled: z.boolean().default(false) }).prefault({}),
    /** Posting limits: messages per channel per rolling hour, characters (code points) per message. */
    post: z
      .strictObject({
        maxPerChannelPerHour: z.int().min(1).max(1_000).default(20),
        maxChars: z.int().min(1).max(40_000).default(4_000),
        /** User mentions (`<@U…>`) a message may hold before it counts as a mention flood. */
        maxUserMentions: z.int().min(0).max(50).default(3),
        /** Blocks a message may carry (`blocks`); 0 allows plain text only. */
        maxBlocks: z.int().min(0).max(50).default(10),
        /** Characters of the approval prompt (values cut with a visible marker). */
        approvalChars: z.int().min(200).max(8_000).default(4_000),
      })
      .prefault({}),
    /** Read limits. */
    read: z
      .strictObject({
        /** Messages per page of history or thread (Slack's `limit`). */
        pageSize: z.int().min(1).max(200).default(50),
        /** The widest `oldest`…`latest` range a call may ask for, in days. */
        maxRangeDays: z.int().min(1).max(3_650).default(90),
      })
      .prefault({}),
    /** `slack_get_user`'s profile fields (e-mail and phone are never available). */
    userFields: z
      .array(z.enum(PROFILE_FIELDS))
      .max(PROFILE_FIELDS.length)
      .default(['display_name', 'real_name', 'title', 'tz', 'is_bot', 'deleted']),
    /**
     * Start even when a token holds scopes no enabled tool needs (the startup check refuses it
     * otherwise, naming the excess scopes).
     */
    allowExcessScopes: z.boolean().default(false),
    /** Request deadline in ms (per Web API call, retries and waits included). */
    timeoutMs: z.int().min(1_000).max(120_000).default(15_000),
  })
  .refine((s) => s.channels.write.every((c) => s.channels.read.includes(c)), {
    message: 'every channels.write entry must also be in channels.read',
    path: ['channels', 'write'],
  })
  .refine((s) => s.allowDirectMessages || s.channels.read.every((c) => !c.startsWith('D')), {
    message: 'a D… conversation is a direct message: set allowDirectMessages to list it',
    path: ['channels', 'read'],
  });

/** The parsed `slack:` section. */
export type SlackSettings = z.infer<typeof slackSectionSchema>;
