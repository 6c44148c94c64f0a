import { toolKit } from '@hardened-mcp/core';
import type { JiraClient } from './client.js';

/**
 * The tool kit: tool names get the `jira_` prefix, read tools the `jira:read` scope and the read
 * client, write tools `jira:write` and the write client.
 */
export const kit = toolKit<JiraClient>('jira');
