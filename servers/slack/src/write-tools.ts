import {
  ApprovalText,
  type Authorization,
  allow,
  deny,
  ErrorCode,
  type Tool,
  ToolError,
} from '@hardened-mcp/core';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { z } from 'zod';
import { type Block, blockSchema, escapeBlocks, refuseBlocks, renderBlocks } from './blocks.js';
import type { ChannelInfo } from './channels.js';
import { type SlackClient, slackCall, toSlackError } from './client.js';
import { messageTsSchema, type SlackSettings } from './config.js';
import { kit, type SlackState } from './kit.js';
import { channelArg, readableChannel } from './read-tools.js';
import { type RawMessage, renderMessages } from './render.js';
import { channelRef, channelType } from './resources.js';
import { countUserMentions, escapeMrkdwn, findMassMention } from './text.js';

const chars = (s: string) => Array.from(s).length;

/** What a post's policy authorizes: the resolved conversation and the exact payload. */
interface AuthorizedPost {
  readonly channel: ChannelInfo;
  /** The text as written (what people will read: escaping keeps it literal). */
  readonly text: string;
  /** The text as sent (`&`, `<`, `>` escaped). */
  readonly sent: string;
  readonly blocks: Block[] | undefined;
  readonly thread?: { readonly ts: string; readonly parent: string } | undefined;
}

/** Declares the write tools from configuration alone. */
export function createWriteTools(settings: SlackSettings, state: SlackState): Tool<SlackClient>[] {
  const post = settings.post;
  // Per-channel send budget: `maxPerChannelPerHour` posts in any rolling hour (fixed window of
  // rate-limiter-flexible's memory store, keyed by conversation id).
  const budget = new RateLimiterMemory({ points: post.maxPerChannelPerHour, duration: 3_600 });
  const approval = () =>
    new ApprovalText({ maxChars: post.approvalChars, maxValueChars: post.approvalChars });

  /** Resolves a write target: on `channels.write`, not a DM unless allowed. */
  function writableChannel(target: string) {
    return readableChannel(state, settings, target, settings.channels.write);
  }

  /** The text and block rules, checked on the text as written (before escaping, never normalized). */
  function checkContent(text: string, blocks: readonly Block[] | undefined): string | undefined {
    if (chars(text) > post.maxChars) return `the text is longer than ${post.maxChars} characters`;
    const mass = findMassMention(text);
    if (mass) return `mass mentions are refused (${JSON.stringify(mass)})`;
    const mentions = countUserMentions(text);
    if (mentions > post.maxUserMentions)
      return `too many user mentions (${mentions}; at most ${post.maxUserMentions})`;
    if (blocks) {
      if (blocks.length > post.maxBlocks) return `at most ${post.maxBlocks} blocks`;
      return refuseBlocks(blocks, post.maxUserMentions);
    }
    return undefined;
  }

  /** Refuses before the human is asked when the channel's budget is spent. */
  async function budgetLeft(id: string): Promise<Authorization<undefined> | undefined> {
    const r = await budget.get(id);
    if (r && r.remainingPoints <= 0)
      return deny(
        ErrorCode.RateLimited,
        `the send budget of this channel (${post.maxPerChannelPerHour} per hour) is spent`,
        r.msBeforeNext,
      );
    return undefined;
  }

  async function authorizePost(
    input: { channel: string; text: string; blocks?: Block[] | undefined },
    thread?: { ts: string },
  ): Promise<Authorization<AuthorizedPost>> {
    const r = writableChannel(input.channel);
    if (!r.ok) return deny(r.code, r.message);
    const refused = checkContent(input.text, input.blocks);
    if (refused) return deny(ErrorCode.PolicyDenied, refused);
    const spent = await budgetLeft(r.channel.id);
    if (spent && !spent.ok) return spent;
    let parent: { ts: string; parent: string } | undefined;
    if (thread) {
      // The thread is looked at with the read client BEFORE the human is asked: it must exist,
      // and its parent must be in this conversation.
      try {
        parent = { ts: thread.ts, parent: await threadParent(r.channel, thread.ts) };
      } catch (err) {
        const e = toSlackError(err);
        return deny(e.code, e.message);
      }
    }
    return allow({
      channel: r.channel,
      text: input.text,
      sent: escapeMrkdwn(input.text),
      blocks: input.blocks ? escapeBlocks(input.blocks) : undefined,
      thread: parent,
    });
  }

  /** The rendered text of a thread's parent (at most 300 characters), checked to be in `channel`. */
  async function threadParent(channel: ChannelInfo, ts: string): Promise<string> {
    const client = state.readClient();
    const signal = AbortSignal.timeout(settings.timeoutMs);
    const r = await slackCall(() =>
      client.api(signal).conversations.replies({ channel: channel.id, ts, limit: 1 }),
    );
    const first = (r.messages ?? [])[0] as RawMessage | undefined;
    if (!first || first.ts !== ts || (first.channel !== undefined && first.channel !== channel.id))
      throw new ToolError(ErrorCode.PolicyDenied, 'the thread is not in this conversation');
    const [rendered] = await renderMessages(state, client, [first], signal);
    return `${rendered?.author ?? '?'}: ${Array.from(rendered?.text ?? '')
      .slice(0, 300)
      .join('')}`;
  }

  function describe(a: AuthorizedPost, verb: string): string {
    const t = approval().line(verb, `#${a.channel.name}`, a.channel.id);
    if (a.thread) t.field('in the thread of', a.thread.parent).field('thread ts', a.thread.ts);
    t.field('text, as people will read it', a.text);
    if (a.blocks)
      for (const [i, b] of renderBlocks(a.blocks).entries()) t.field(`block ${i + 1}`, b);
    t.field('links unfurled', 'no').field('mentions notify', 'no (@channel/@here refused)');
    return t.toString();
  }

  /** Spends one post of the channel's budget (after approval) or refuses. */
  async function spend(id: string): Promise<void> {
    try {
      await budget.consume(id, 1);
    } catch (err) {
      if (err instanceof RateLimiterRes)
        throw new ToolError(ErrorCode.RateLimited, 'the send budget of this channel is spent', {
          retryAfterMs: err.msBeforeNext,
        });
      throw err;
    }
  }

  async function send(a: AuthorizedPost, client: SlackClient, signal: AbortSignal) {
    await spend(a.channel.id);
    // Written once: the upstream client never retries a write, the WebClient has no retries.
    const r = await slackCall(() =>
      client.api(signal).chat.postMessage({
        channel: a.channel.id,
        text: a.sent,
        ...(a.blocks ? { blocks: a.blocks } : {}),
        ...(a.thread ? { thread_ts: a.thread.ts, reply_broadcast: false } : {}),
        link_names: false,
        unfurl_links: false,
        unfurl_media: false,
        parse: 'none',
        mrkdwn: true,
      }),
    );
    if (r.channel !== a.channel.id)
      throw new ToolError(ErrorCode.UpstreamError, 'Slack answered for another conversation');
    return {
      kind: 'json' as const,
      data: {
        channel: { id: a.channel.id, name: a.channel.name },
        ts: r.ts ?? null,
        ...(a.thread ? { threadTs: a.thread.ts } : {}),
      },
      rowCount: 1,
    };
  }

  const textArg = z
    .string()
    .min(1)
    .max(40_000)
    .describe(
      `Message text (Slack mrkdwn: *bold*, _italic_, \`code\`), at most ${post.maxChars} characters. Sent literally: <, > and & are escaped; @channel/@here are refused.`,
    );
  const blocksArg = z
    .array(blockSchema)
    .min(1)
    .max(50)
    .optional()
    .describe('Optional non-interactive blocks: section, header, divider, context, rich_text.');

  const postMessage = kit.write({
    name: 'post_message',
    egress: true,
    title: 'Post a Slack message',
    description:
      'Posts a message to an allowlisted channel after a human approves it. Links are never unfurled; mass mentions are refused.',
    input: z.strictObject({ channel: channelArg, text: textArg, blocks: blocksArg }),
    output: 'json',
    destructive: false,
    idempotent: false,
    policy: (input) => authorizePost(input),
    describeChange: (_input, a) => describe(a, 'Post to Slack channel'),
    resource: { ...channelType, of: (_input, a) => channelRef(a.channel) },
    execute: (_input, ctx) => send(ctx.authorized, ctx.client, ctx.signal),
  });

  const replyThread = kit.write({
    name: 'reply_thread',
    egress: true,
    title: 'Reply in a Slack thread',
    description:
      'Replies in a thread of an allowlisted channel after a human approves it (never broadcast to the channel).',
    input: z.strictObject({
      channel: channelArg,
      threadTs: messageTsSchema.describe('The thread parent message ts.'),
      text: textArg,
      blocks: blocksArg,
    }),
    output: 'json',
    destructive: false,
    idempotent: false,
    policy: (input) => authorizePost(input, { ts: input.threadTs }),
    describeChange: (_input, a) => describe(a, 'Reply in a thread of Slack channel'),
    resource: { ...channelType, of: (_input, a) => channelRef(a.channel) },
    execute: (_input, ctx) => send(ctx.authorized, ctx.client, ctx.signal),
  });

  const tools = [postMessage, replyThread];
  if (settings.reactions.enabled)
    tools.push(
      kit.write({
        name: 'add_reaction',
        title: 'React to a Slack message',
        description:
          'Adds an emoji reaction to a message in an allowlisted channel after a human approves it.',
        input: z.strictObject({
          channel: channelArg,
          ts: messageTsSchema,
          name: z
            .string()
            .regex(/^[a-z0-9_+'-]{1,64}$/, 'an emoji name such as thumbsup or white_check_mark')
            .describe('Emoji name without colons.'),
        }),
        output: 'json',
        destructive: false,
        idempotent: true,
        policy(input) {
          const r = writableChannel(input.channel);
          if (!r.ok) return deny(r.code, r.message);
          return allow(r.channel);
        },
        describeChange: (input, channel) =>
          approval()
            .line('React in Slack channel', `#${channel.name}`, channel.id)
            .field('message ts', input.ts)
            .field('emoji', `:${input.name}:`)
            .toString(),
        resource: { ...channelType, of: (_input, channel) => channelRef(channel) },
        async execute(input, ctx) {
          await slackCall(() =>
            ctx.client.api(ctx.signal).reactions.add({
              channel: ctx.authorized.id,
              timestamp: input.ts,
              name: input.name,
            }),
          );
          return {
            kind: 'json',
            data: { channel: ctx.authorized.id, ts: input.ts, reaction: input.name },
          };
        },
      }),
    );
  return tools;
}
