import type { ResourceRef } from '@hardened-mcp/core';
import type { ChannelInfo } from './channels.js';

/**
 * The Cedar entity type of the Slack tools: `Channel` (id: the conversation id, e.g.
 * `C0123ABCD`) with attributes `channel` (the id) and `name` (without `#`). Classification paths
 * are conversation ids, so operators label `C0123ABCD: confidential` under
 * `classification.labels`. The id is the one the policy step resolved (a `#name` in the input is
 * resolved first), so a name cannot dodge a label. Spread into a tool's `resource` beside its `of`.
 */
export const channelType = {
  type: 'Channel',
  attributes: { channel: 'String', name: 'String' },
} as const;

/** The resource of a call on one resolved conversation. */
export function channelRef(channel: ChannelInfo): ResourceRef {
  return { id: channel.id, attrs: { channel: channel.id, name: channel.name } };
}

/**
 * The resource of a call that may return messages of any readable conversation (a search): id
 * `*`, classified as the highest label of the allowlist (fail closed).
 */
export function everyChannelRef(readable: readonly string[]): ResourceRef {
  return { id: '*', attrs: { channel: '*', name: '*' }, classify: [...readable] };
}
