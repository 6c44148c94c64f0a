import {
  allow,
  type CursorBinding,
  deny,
  ErrorCode,
  type Tool,
  ToolError,
} from '@hardened-mcp/core';
import { z } from 'zod';
import type { ChannelInfo } from './channels.js';
import { channelInfoOf } from './channels.js';
import { type SlackClient, slackCall } from './client.js';
import { messageTsSchema, type SlackSettings, userIdSchema } from './config.js';
import { kit, type SlackState } from './kit.js';
import { type RawMessage, renderMessages } from './render.js';
import { channelRef, channelType, everyChannelRef } from './resources.js';

/** A conversation: an id (`C0123ABCD`) or a listed channel's name (`#general`). */
export const channelArg = z
  .string()
  .min(1)
  .max(81)
  .regex(/^#?[A-Za-z0-9._-]+$/, 'a conversation id (C0123ABCD) or a channel name (#general)')
  .describe('A conversation id (C0123ABCD) or an allowlisted channel name (#general).');
const cursorArg = z
  .string()
  .min(1)
  .max(4_096)
  .optional()
  .describe('nextCursor of the previous page.');
const cursorState = z.strictObject({
  c: z.string().min(1).max(2_048),
  o: z.string().max(20).optional(),
  l: z.string().max(20).optional(),
});

/**
 * Resolves `target` to an allowlisted conversation a read may use: listed on `channels.read`,
 * and a DM or group DM only with `allowDirectMessages` (the configuration refuses a listed `D…`
 * id otherwise; a `G…` group DM is known by its kind).
 */
export function readableChannel(
  state: SlackState,
  settings: SlackSettings,
  target: string,
  list: readonly string[] = settings.channels.read,
): { ok: true; channel: ChannelInfo } | { ok: false; code: 'policy_denied'; message: string } {
  const resolved = state.channels().resolve(target);
  if (!resolved.ok) return { ok: false, code: ErrorCode.PolicyDenied, message: resolved.message };
  const info = state.channels().get(resolved.id);
  if (!info || !list.includes(resolved.id))
    return {
      ok: false,
      code: ErrorCode.PolicyDenied,
      message: `conversation ${resolved.id} is not in the allowlist`,
    };
  if ((info.kind === 'im' || info.kind === 'mpim') && !settings.allowDirectMessages)
    return { ok: false, code: ErrorCode.PolicyDenied, message: 'direct messages are refused' };
  return { ok: true, channel: info };
}

/** Seconds since the epoch (Slack's `oldest`/`latest`) from an ISO 8601 date-time. */
function slackTime(iso: string): string {
  return (Date.parse(iso) / 1000).toFixed(6);
}

/**
 * Keeps the messages that belong to `channelId` (a message whose `channel` names another
 * conversation is dropped) and counts the rest.
 */
function inChannel(messages: readonly RawMessage[], channelId: string) {
  const kept = messages.filter((m) => m.channel === undefined || m.channel === channelId);
  return { kept, dropped: messages.length - kept.length };
}

/** Declares the read tools from configuration alone. */
export function createReadTools(settings: SlackSettings, state: SlackState): Tool<SlackClient>[] {
  const pageSize = settings.read.pageSize;
  const maxRangeMs = settings.read.maxRangeDays * 86_400_000;
  const limitArg = z
    .int()
    .min(1)
    .max(pageSize)
    .optional()
    .describe(`Messages per page (at most ${pageSize}).`);

  const listChannels = kit.read({
    name: 'list_channels',
    title: 'List allowlisted Slack conversations',
    description:
      'Lists the conversations this server may read (ids are authoritative), with name, kind, topic and whether posting is allowed.',
    input: z.strictObject({}),
    output: 'table',
    async execute(_input, ctx) {
      const api = ctx.client.api(ctx.signal);
      const rows: unknown[][] = [];
      for (const id of settings.channels.read) {
        const r = await slackCall(() => api.conversations.info({ channel: id }));
        // The result is checked too: an answer for another id is an error, not a row.
        const c = channelInfoOf(r.channel, id);
        if ((c.kind === 'im' || c.kind === 'mpim') && !settings.allowDirectMessages) continue;
        rows.push([
          c.id,
          c.name,
          c.kind,
          c.archived,
          c.topic,
          c.purpose,
          settings.channels.write.includes(id),
        ]);
      }
      return {
        kind: 'table',
        columns: [
          { name: 'id', type: 'text' },
          { name: 'name', type: 'text' },
          { name: 'kind', type: 'text' },
          { name: 'archived', type: 'bool' },
          { name: 'topic', type: 'text' },
          { name: 'purpose', type: 'text' },
          { name: 'writable', type: 'bool' },
        ],
        rows,
        truncated: false,
      };
    },
  });

  const readHistory = kit.read({
    name: 'read_history',
    title: 'Read a Slack conversation',
    description:
      'Reads messages of an allowlisted conversation, newest first. Without oldest/latest it reads from now back; older messages are reached by passing nextCursor back as cursor (no message is hidden by a default range).',
    input: z.strictObject({
      channel: channelArg,
      limit: limitArg,
      oldest: z.iso
        .datetime({ offset: true })
        .optional()
        .describe('Only messages after this time (ISO 8601).'),
      latest: z.iso
        .datetime({ offset: true })
        .optional()
        .describe('Only messages before this time (ISO 8601).'),
      cursor: cursorArg,
    }),
    output: 'json',
    policy(input, ctx) {
      const r = readableChannel(state, settings, input.channel);
      if (!r.ok) return deny(r.code, r.message);
      const binding: CursorBinding = {
        tool: 'slack_read_history',
        principal: ctx.identity.principal,
        resource: r.channel.id,
      };
      if (input.cursor !== undefined) {
        if (input.oldest !== undefined || input.latest !== undefined)
          return deny(
            ErrorCode.InvalidInput,
            'a cursor carries its time range: pass only the cursor',
          );
        const opened = state.cursors.open<unknown>(input.cursor, binding);
        const parsed = opened.ok ? cursorState.safeParse(opened.state) : undefined;
        if (!parsed?.success)
          return deny(
            ErrorCode.InvalidInput,
            'the cursor is not a nextCursor of this conversation, or has expired',
          );
        return allow({
          channel: r.channel,
          binding,
          cursor: parsed.data.c,
          oldest: parsed.data.o,
          latest: parsed.data.l,
        });
      }
      const latestMs = input.latest ? Date.parse(input.latest) : Date.now();
      if (input.oldest !== undefined) {
        const oldestMs = Date.parse(input.oldest);
        if (oldestMs > latestMs) return deny(ErrorCode.InvalidInput, 'oldest is after latest');
        if (latestMs - oldestMs > maxRangeMs)
          return deny(
            ErrorCode.LimitExceeded,
            `the time range is wider than ${settings.read.maxRangeDays} days`,
          );
      }
      return allow({
        channel: r.channel,
        binding,
        cursor: undefined as string | undefined,
        oldest: input.oldest ? slackTime(input.oldest) : undefined,
        latest: input.latest ? slackTime(input.latest) : undefined,
      });
    },
    resource: { ...channelType, of: (_input, a) => channelRef(a.channel) },
    async execute(input, ctx) {
      const { channel, binding, cursor, oldest, latest } = ctx.authorized;
      const api = ctx.client.api(ctx.signal);
      const r = await slackCall(() =>
        api.conversations.history({
          channel: channel.id,
          limit: input.limit ?? pageSize,
          ...(cursor ? { cursor } : {}),
          ...(oldest ? { oldest } : {}),
          ...(latest ? { latest } : {}),
        }),
      );
      const { kept, dropped } = inChannel((r.messages ?? []) as RawMessage[], channel.id);
      const messages = await renderMessages(state, ctx.client, kept, ctx.signal);
      const next = r.has_more ? r.response_metadata?.next_cursor : undefined;
      return {
        kind: 'json',
        data: {
          channel: { id: channel.id, name: channel.name },
          messages,
          nextCursor: next ? state.cursors.seal(binding, { c: next, o: oldest, l: latest }) : null,
          ...(dropped > 0 ? { droppedFromOtherConversations: dropped } : {}),
        },
        rowCount: messages.length,
        withheld: { other_conversation: dropped },
        note: next
          ? `${messages.length} messages, newest first; older messages exist: pass nextCursor`
          : `${messages.length} messages, newest first; no older messages in range`,
      };
    },
  });

  const readThread = kit.read({
    name: 'read_thread',
    title: 'Read a Slack thread',
    description:
      'Reads a thread (the parent message and its replies, oldest first) in an allowlisted conversation. Pass nextCursor back as cursor for more replies.',
    input: z.strictObject({
      channel: channelArg,
      ts: messageTsSchema.describe('The thread parent message ts, e.g. 1712345678.000100.'),
      limit: limitArg,
      cursor: cursorArg,
    }),
    output: 'json',
    policy(input, ctx) {
      const r = readableChannel(state, settings, input.channel);
      if (!r.ok) return deny(r.code, r.message);
      const binding: CursorBinding = {
        tool: 'slack_read_thread',
        principal: ctx.identity.principal,
        resource: [r.channel.id, input.ts],
      };
      if (input.cursor === undefined)
        return allow({ channel: r.channel, binding, cursor: undefined as string | undefined });
      const opened = state.cursors.open<unknown>(input.cursor, binding);
      const parsed = opened.ok ? cursorState.safeParse(opened.state) : undefined;
      if (!parsed?.success)
        return deny(
          ErrorCode.InvalidInput,
          'the cursor is not a nextCursor of this thread, or has expired',
        );
      return allow({ channel: r.channel, binding, cursor: parsed.data.c as string | undefined });
    },
    resource: { ...channelType, of: (_input, a) => channelRef(a.channel) },
    async execute(input, ctx) {
      const { channel, binding, cursor } = ctx.authorized;
      const api = ctx.client.api(ctx.signal);
      const r = await slackCall(() =>
        api.conversations.replies({
          channel: channel.id,
          ts: input.ts,
          limit: input.limit ?? pageSize,
          ...(cursor ? { cursor } : {}),
        }),
      );
      const raw = (r.messages ?? []) as RawMessage[];
      // The parent must be this thread's, in this conversation: a thread whose parent now lives
      // elsewhere (moved, or an answer for another conversation) is refused whole.
      if (!cursor) {
        const parent = raw[0];
        if (
          !parent ||
          parent.ts !== input.ts ||
          (parent.channel !== undefined && parent.channel !== channel.id)
        )
          throw new ToolError(ErrorCode.PolicyDenied, 'the thread is not in this conversation');
      }
      const { kept } = inChannel(
        raw.filter((m) => m.thread_ts === undefined || m.thread_ts === input.ts),
        channel.id,
      );
      const messages = await renderMessages(state, ctx.client, kept, ctx.signal);
      const next = r.has_more ? r.response_metadata?.next_cursor : undefined;
      return {
        kind: 'json',
        data: {
          channel: { id: channel.id, name: channel.name },
          threadTs: input.ts,
          messages,
          nextCursor: next ? state.cursors.seal(binding, { c: next }) : null,
          ...(raw.length > kept.length
            ? { droppedFromOtherConversations: raw.length - kept.length }
            : {}),
        },
        rowCount: messages.length,
        withheld: { other_conversation: raw.length - kept.length },
      };
    },
  });

  const getUser = kit.read({
    name: 'get_user',
    title: 'Look up a Slack user',
    description: `Shows a user's profile fields (${settings.userFields.join(', ')}). E-mail addresses and phone numbers are never returned.`,
    input: z.strictObject({ user: userIdSchema.describe('A user id, e.g. U0123ABCD.') }),
    output: 'json',
    async execute(input, ctx) {
      const r = await slackCall(() => ctx.client.api(ctx.signal).users.info({ user: input.user }));
      const u = (r.user ?? {}) as {
        id?: string;
        real_name?: string;
        tz?: string;
        is_bot?: boolean;
        deleted?: boolean;
        profile?: {
          display_name?: string;
          real_name?: string;
          title?: string;
          status_text?: string;
        };
      };
      if (u.id !== input.user)
        throw new ToolError(ErrorCode.UpstreamError, 'Slack answered for another user');
      const all: Record<string, unknown> = {
        display_name: u.profile?.display_name ?? '',
        real_name: u.profile?.real_name ?? u.real_name ?? '',
        title: u.profile?.title ?? '',
        status_text: u.profile?.status_text ?? '',
        tz: u.tz ?? '',
        is_bot: u.is_bot === true,
        deleted: u.deleted === true,
      };
      const data: Record<string, unknown> = { id: input.user };
      for (const f of settings.userFields) data[f] = all[f];
      return { kind: 'json', data };
    },
  });

  const tools = [listChannels, readHistory, readThread, getUser];
  if (settings.search.enabled) tools.push(createSearchTool(settings, state));
  return tools;
}

/** Search terms the query may not hold (the server adds the conversation scope itself). */
const SCOPE_MODIFIERS = /(^|\s)-?(in|from|to|with):/i;

/** `slack_search_messages` (only with `search.enabled`; runs with the user token). */
function createSearchTool(settings: SlackSettings, state: SlackState) {
  return kit.read({
    name: 'search_messages',
    resource: { ...channelType, of: () => everyChannelRef(settings.channels.read) },
    title: 'Search Slack messages',
    description:
      'Searches messages in the allowlisted channels (the server adds the in: terms; results from any other conversation are dropped).',
    input: z.strictObject({
      query: z
        .string()
        .min(1)
        .max(500)
        .regex(/^[^\p{Cc}]+$/u, 'one line, no control characters')
        .describe('Search words (Slack search syntax, without in:/from: terms).'),
      page: z.int().min(1).max(20).optional(),
    }),
    output: 'json',
    policy(input) {
      if (SCOPE_MODIFIERS.test(input.query))
        return deny(
          ErrorCode.InvalidInput,
          'the query may not hold in:, from:, to: or with: terms',
        );
      const names = state
        .channels()
        .all()
        .filter((c) => c.kind === 'public' || c.kind === 'private')
        .map((c) => `in:#${c.name}`);
      if (names.length === 0)
        return deny(ErrorCode.PolicyDenied, 'no allowlisted channel can be searched');
      return allow({ query: `${input.query} ${names.join(' ')}` });
    },
    async execute(input, ctx) {
      if (!ctx.client.user)
        throw new ToolError(ErrorCode.UpstreamUnavailable, 'search needs a Slack user token');
      const api = ctx.client.user(ctx.signal);
      const r = await slackCall(() =>
        api.search.messages({
          query: ctx.authorized.query,
          count: settings.search.maxResults,
          page: input.page ?? 1,
          sort: 'timestamp',
          sort_dir: 'desc',
          highlight: false,
        }),
      );
      const matches = (r.messages?.matches ?? []) as unknown as (Omit<RawMessage, 'channel'> & {
        channel?: { id?: string } | string;
      })[];
      const listed = new Set(settings.channels.read);
      const kept: RawMessage[] = [];
      const where: string[] = [];
      let dropped = 0;
      for (const m of matches) {
        const id = typeof m.channel === 'string' ? m.channel : m.channel?.id;
        const info = id ? state.directory?.get(id) : undefined;
        if (
          !id ||
          !listed.has(id) ||
          !info ||
          ((info.kind === 'im' || info.kind === 'mpim') && !settings.allowDirectMessages)
        ) {
          dropped += 1;
          continue;
        }
        kept.push({ ...m, channel: undefined });
        where.push(id);
      }
      const rendered = await renderMessages(state, ctx.client, kept, ctx.signal);
      const total = r.messages?.paging?.pages ?? 1;
      return {
        kind: 'json',
        data: {
          results: rendered.map((m, i) => ({ channel: where[i], ...m })),
          page: input.page ?? 1,
          pages: total,
          droppedFromOtherConversations: dropped,
        },
        rowCount: rendered.length,
        withheld: { other_conversation: dropped },
        note: `${rendered.length} results; ${dropped} from conversations outside the allowlist dropped`,
      };
    },
  });
}
