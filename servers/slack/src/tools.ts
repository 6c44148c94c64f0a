import type { Tool } from '@hardened-mcp/core';
import type { SlackClient } from './client.js';
import type { SlackSettings } from './config.js';
import type { SlackState } from './kit.js';
import { createReadTools } from './read-tools.js';
import { createWriteTools } from './write-tools.js';

/**
 * Every tool of the connector, from configuration alone: the read tools (search only with
 * `search.enabled`) and the write tools (a reaction only with `reactions.enabled`). The core
 * enables the write tools only in `read-write` mode with a write credential.
 */
export function createSlackTools(settings: SlackSettings, state: SlackState): Tool<SlackClient>[] {
  return [...createReadTools(settings, state), ...createWriteTools(settings, state)];
}
