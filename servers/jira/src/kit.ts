import { toolKit } from '@hardened-mcp/core';
import type { JiraClient } from './client.js';

/**
 * The tool kit: tool names get the `jira_` prefix, read tools the `jira:read` scope and the read
 * client, write tools `jira:write` and the write client.
 */
export const kit = toolKit<JiraClient>('jira');

/**
 * Where the write tools' policy steps find the read client: they check the live issue (its
 * project, its transitions) BEFORE the human is asked, with the read credential. The connector
 * sets `read` when it opens the read client. (The core's policy step has no client; see README.)
 */
export interface ReadLookup {
  read: JiraClient | undefined;
}
