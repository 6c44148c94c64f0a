import { CursorSealer, ErrorCode, ToolError, toolKit } from '@hardened-mcp/core';
import type { ChannelDirectory } from './channels.js';
import type { SlackClient } from './client.js';

/**
 * The tool kit: tool names get the `slack_` prefix, read tools the `slack:read` scope and the
 * read client, write tools `slack:write` and the write client.
 */
export const kit = toolKit<SlackClient>('slack');

/**
 * What the tools of one started server share, filled by the connector when it opens the read
 * client: the allowlisted conversations (names, kinds) and the read client, which the write
 * tools' policy steps use to look at a thread BEFORE the human is asked. (The core's policy
 * step has no client; see README.)
 */
export class SlackState {
  directory: ChannelDirectory | undefined;
  read: SlackClient | undefined;
  /** Seals `nextCursor`s (random key per process: cursors die with the process). */
  readonly cursors = new CursorSealer();
  /** Display names by user id, filled by `users.info` lookups (at most {@link MAX_NAMES}). */
  readonly names = new Map<string, string>();

  /** The directory, or `upstream_unavailable` before the read client is open. */
  channels(): ChannelDirectory {
    if (!this.directory)
      throw new ToolError(ErrorCode.UpstreamUnavailable, 'the Slack read client is not open');
    return this.directory;
  }

  /** The read client, or `upstream_unavailable` before it is open. */
  readClient(): SlackClient {
    if (!this.read)
      throw new ToolError(ErrorCode.UpstreamUnavailable, 'the Slack read client is not open');
    return this.read;
  }
}

/** Cached display names at most (oldest dropped first). */
export const MAX_NAMES = 5_000;
