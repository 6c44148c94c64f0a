import type { Tool } from '@hardened-mcp/core';
import type { JiraClient } from './client.js';
import type { JiraSettings } from './config.js';
import type { ReadLookup } from './kit.js';
import { createReadTools } from './read-tools.js';
import { createWriteTools } from './write-tools.js';

/**
 * Declares every tool of the Jira connector from configuration alone (no client is in reach
 * here; the write tools' policy steps reach the read client through `lookup` once it is open).
 * `jira_find_users` exists only with `jira.users.enabled`.
 */
export function createJiraTools(settings: JiraSettings, lookup: ReadLookup): Tool<JiraClient>[] {
  return [...createReadTools(settings), ...createWriteTools(settings, lookup)];
}
