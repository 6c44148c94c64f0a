import { ErrorCode, StartupError, ToolError } from '@hardened-mcp/core';
import type { WebClient } from '@slack/web-api';
import { slackCall } from './client.js';
import type { SlackSettings } from './config.js';

/** What kind of conversation an id is (from `conversations.info`'s `is_*` flags). */
export type ConversationKind = 'public' | 'private' | 'im' | 'mpim';

/** One allowlisted conversation, as `conversations.info` described it at startup. */
export interface ChannelInfo {
  readonly id: string;
  /** The channel name without `#` (an IM has none: its id is used). */
  readonly name: string;
  readonly kind: ConversationKind;
  readonly archived: boolean;
  readonly topic: string;
  readonly purpose: string;
  readonly members: number | undefined;
}

/** A conversation as Slack describes it (the fields read). */
interface RawConversation {
  id?: string;
  name?: string;
  is_private?: boolean;
  is_im?: boolean;
  is_mpim?: boolean;
  is_archived?: boolean;
  topic?: { value?: string };
  purpose?: { value?: string };
  num_members?: number;
}

/** The kind of a conversation from Slack's flags. */
export function kindOf(c: RawConversation, id: string): ConversationKind {
  if (c.is_im || id.startsWith('D')) return 'im';
  if (c.is_mpim) return 'mpim';
  return c.is_private ? 'private' : 'public';
}

/** Shapes `conversations.info`'s channel, checking that Slack answered for the id asked. */
export function channelInfoOf(raw: unknown, id: string): ChannelInfo {
  const c = (raw ?? {}) as RawConversation;
  if (c.id !== id)
    throw new ToolError(ErrorCode.UpstreamError, 'Slack answered for another conversation');
  return {
    id,
    name: typeof c.name === 'string' ? c.name : id,
    kind: kindOf(c, id),
    archived: c.is_archived === true,
    topic: c.topic?.value ?? '',
    purpose: c.purpose?.value ?? '',
    members: c.num_members,
  };
}

/**
 * The allowlisted conversations, by id and by name. Loaded once at startup with
 * `conversations.info` for every id on `channels.read` (ids are authoritative; a name is only a
 * way to reach an id on the list). A target that does not resolve to a listed id is refused.
 */
export class ChannelDirectory {
  readonly #byId = new Map<string, ChannelInfo>();
  readonly #byName = new Map<string, string>();

  constructor(channels: readonly ChannelInfo[]) {
    for (const c of channels) {
      this.#byId.set(c.id, c);
      if (c.kind === 'public' || c.kind === 'private') this.#byName.set(c.name, c.id);
    }
  }

  /**
   * Describes every `channels.read` id with `conversations.info`.
   *
   * @throws StartupError when a listed id is unknown to Slack or invisible to the token, or is a
   *   DM/group DM while `allowDirectMessages` is false
   */
  static async load(api: WebClient, settings: SlackSettings): Promise<ChannelDirectory> {
    const channels: ChannelInfo[] = [];
    for (const id of settings.channels.read) {
      let info: ChannelInfo;
      try {
        const r = await slackCall(() => api.conversations.info({ channel: id }));
        info = channelInfoOf(r.channel, id);
      } catch (err) {
        throw new StartupError(
          `slack.channels.read lists ${id}, which Slack does not show to this token (${err instanceof ToolError ? err.message : 'call failed'})`,
        );
      }
      if ((info.kind === 'im' || info.kind === 'mpim') && !settings.allowDirectMessages)
        throw new StartupError(
          `slack.channels.read lists ${id}, a direct message: set slack.allowDirectMessages to read it`,
        );
      channels.push(info);
    }
    return new ChannelDirectory(channels);
  }

  /** The listed conversation `id`, or undefined. */
  get(id: string): ChannelInfo | undefined {
    return this.#byId.get(id);
  }

  /** Every listed conversation, in configuration order. */
  all(): ChannelInfo[] {
    return [...this.#byId.values()];
  }

  /** A display name for text rendering: `name` for channels, undefined for others. */
  nameOf(id: string): string | undefined {
    return this.#byId.get(id)?.name;
  }

  /**
   * Resolves a target to a listed conversation id: an id as given; `#name` or `name` through the
   * listed channels' names. User ids (`U…`, `W…`: `chat.postMessage` would open a DM) and anything
   * else are refused.
   *
   * @returns the id, or the refusal message
   */
  resolve(target: string): { ok: true; id: string } | { ok: false; message: string } {
    if (/^[UW][A-Z0-9]{8,11}$/.test(target))
      return { ok: false, message: 'a user id would open a direct message: refused' };
    if (/^[CGD][A-Z0-9]{8,11}$/.test(target)) return { ok: true, id: target };
    const name = target.startsWith('#') ? target.slice(1) : target;
    const id = this.#byName.get(name);
    if (id) return { ok: true, id };
    return { ok: false, message: 'the channel does not resolve to an allowlisted conversation' };
  }
}
