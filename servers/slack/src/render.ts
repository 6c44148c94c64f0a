import type { SlackClient } from './client.js';
import { slackCall } from './client.js';
import type { SlackState } from './kit.js';
import { MAX_NAMES } from './kit.js';
import { mentionedUsers, renderIncoming } from './text.js';

/** A message as Slack returns it (the fields read). */
export interface RawMessage {
  type?: string;
  subtype?: string;
  ts?: string;
  thread_ts?: string;
  user?: string;
  bot_id?: string;
  username?: string;
  text?: string;
  channel?: string;
  reply_count?: number;
  reactions?: { name?: string; count?: number }[];
  files?: unknown[];
}

/** A message as the model sees it (text rendered; inside the core's untrusted-data fence). */
export interface RenderedMessage {
  readonly ts: string;
  /** ISO 8601 UTC from `ts`. */
  readonly time: string;
  /** Display name of the author (never an e-mail); the id when unknown. */
  readonly author: string;
  readonly text: string;
  readonly threadTs?: string | undefined;
  readonly replies?: number | undefined;
  readonly reactions?: string | undefined;
  readonly files?: number | undefined;
}

/** Distinct users a call may look up by `users.info` (the rest show as ids). */
const MAX_LOOKUPS_PER_CALL = 25;

/** A user's display name from `users.info`: `profile.display_name`, then `real_name`, then `name`. */
export function displayNameOf(user: unknown): string | undefined {
  const u = (user ?? {}) as {
    name?: string;
    real_name?: string;
    profile?: { display_name?: string; real_name?: string };
  };
  const name = u.profile?.display_name || u.profile?.real_name || u.real_name || u.name;
  return typeof name === 'string' && name.length > 0 ? name.slice(0, 80) : undefined;
}

/** Looks up the display names of `ids` not cached yet (bounded per call; failures leave the id). */
export async function resolveNames(
  state: SlackState,
  client: SlackClient,
  ids: Iterable<string>,
  signal: AbortSignal,
): Promise<void> {
  const wanted = [...new Set(ids)]
    .filter((id) => !state.names.has(id))
    .slice(0, MAX_LOOKUPS_PER_CALL);
  const api = client.api(signal);
  for (const id of wanted) {
    try {
      const r = await slackCall(() => api.users.info({ user: id }));
      const name = displayNameOf(r.user);
      if (name) {
        if (state.names.size >= MAX_NAMES) {
          const oldest = state.names.keys().next().value;
          if (oldest !== undefined) state.names.delete(oldest);
        }
        state.names.set(id, name);
      }
    } catch {
      // The id stays as the author; the message is still shown.
    }
  }
}

/** Renders messages after resolving their authors and mentioned users. */
export async function renderMessages(
  state: SlackState,
  client: SlackClient,
  messages: readonly RawMessage[],
  signal: AbortSignal,
): Promise<RenderedMessage[]> {
  const ids: string[] = [];
  for (const m of messages) {
    if (m.user) ids.push(m.user);
    ids.push(...mentionedUsers(m.text ?? ''));
  }
  await resolveNames(state, client, ids, signal);
  const lookup = {
    user: (id: string) => state.names.get(id),
    channel: (id: string) => state.directory?.nameOf(id),
  };
  return messages.map((m) => {
    const ts = m.ts ?? '0';
    const seconds = Number.parseFloat(ts);
    const reactions = (m.reactions ?? [])
      .map((r) => `:${r.name ?? '?'}: ${r.count ?? 0}`)
      .join(' ');
    return {
      ts,
      time: Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : '',
      author: m.user
        ? (state.names.get(m.user) ?? m.user)
        : (m.username ?? (m.bot_id ? `bot ${m.bot_id}` : 'unknown')),
      text: renderIncoming(m.text ?? '', lookup),
      ...(m.thread_ts && m.thread_ts !== m.ts ? { threadTs: m.thread_ts } : {}),
      ...(m.reply_count ? { replies: m.reply_count } : {}),
      ...(reactions ? { reactions } : {}),
      ...(m.files?.length ? { files: m.files.length } : {}),
    };
  });
}
