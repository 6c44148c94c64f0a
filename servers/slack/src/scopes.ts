import type { SlackSettings } from './config.js';

/**
 * OAuth scopes each tool needs (Slack's Web API reference, "Required scopes" of each method
 * the tool calls). The README's scope table is this table.
 *
 * - `slack_list_channels`, startup: `conversations.info` → `channels:read`, `groups:read`
 *   (+ `im:read`, `mpim:read` with direct messages)
 * - `slack_read_history`: `conversations.history` → `channels:history`, `groups:history`
 *   (+ `im:history`, `mpim:history`); `users.info` → `users:read` (names in text)
 * - `slack_read_thread`: `conversations.replies`: the same
 * - `slack_get_user`: `users.info` → `users:read` (never `users:read.email`)
 * - `slack_search_messages`: `search.messages` → `search:read` (user token only)
 * - `slack_post_message`, `slack_reply_thread`: `chat.postMessage` → `chat:write`
 * - `slack_add_reaction`: `reactions.add` → `reactions:write`
 */
export const TOOL_SCOPES: Readonly<Record<string, readonly string[]>> = {
  slack_list_channels: ['channels:read', 'groups:read'],
  slack_read_history: ['channels:history', 'groups:history', 'users:read'],
  slack_read_thread: ['channels:history', 'groups:history', 'users:read'],
  slack_get_user: ['users:read'],
  slack_post_message: ['chat:write'],
  slack_reply_thread: ['chat:write'],
  slack_add_reaction: ['reactions:write'],
};

/** Extra scopes for direct messages and group DMs (`allowDirectMessages: true`). */
const DM_SCOPES = ['im:read', 'mpim:read', 'im:history', 'mpim:history'];

/**
 * The scopes the bot token may hold for the enabled tools: the read tools' always (the startup
 * check reads the allowlisted conversations), the write tools' in `read-write` mode, the DM
 * scopes with `allowDirectMessages`.
 */
export function neededBotScopes(
  settings: SlackSettings,
  mode: 'read-only' | 'read-write',
): Set<string> {
  const needed = new Set<string>();
  const add = (tool: string) => {
    for (const s of TOOL_SCOPES[tool] ?? []) needed.add(s);
  };
  for (const t of [
    'slack_list_channels',
    'slack_read_history',
    'slack_read_thread',
    'slack_get_user',
  ])
    add(t);
  if (mode === 'read-write') {
    add('slack_post_message');
    add('slack_reply_thread');
    if (settings.reactions.enabled) add('slack_add_reaction');
  }
  if (settings.allowDirectMessages) for (const s of DM_SCOPES) needed.add(s);
  return needed;
}

/** The only scope the user token (search) may hold. */
export const USER_TOKEN_SCOPES: ReadonlySet<string> = new Set(['search:read']);

/**
 * Granted scopes beyond `needed`, sorted. Slack reports a token's scopes in the `x-oauth-scopes`
 * header of every answer (`auth.test` at startup).
 */
export function excessScopes(granted: readonly string[], needed: ReadonlySet<string>): string[] {
  return [...new Set(granted.filter((s) => s.length > 0 && !needed.has(s)))].sort();
}
