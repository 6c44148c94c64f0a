import { classificationConfigSchema, policiesConfigSchema, type Tool } from '@hardened-mcp/core';
import { createAttachmentTools } from './attachments.js';
import type { JiraClient } from './client.js';
import type { JiraSettings } from './config.js';
import { createFieldLabels, type FieldLabels } from './field-labels.js';
import type { IdempotencyStore } from './idempotency.js';
import { createReadTools } from './read-tools.js';
import { createWriteTools } from './write-tools.js';

/**
 * Declares every tool of the Jira connector from configuration alone (no client is in reach
 * here; the write tools' policy steps get the read client from the core as `ctx.readClient`).
 * `jira_find_users` exists only with `jira.users.enabled`, the attachment tools only with
 * `jira.attachments.enabled`. `idempotency` holds `jira_create_issue`'s keys; `labels` is the
 * field-level classification built from the core's `classification` section (default: none
 * configured, so no field is withheld or refused by label).
 */
export function createJiraTools(
  settings: JiraSettings,
  idempotency: IdempotencyStore,
  labels: FieldLabels = createFieldLabels(
    classificationConfigSchema.parse({}),
    policiesConfigSchema.parse({}),
  ),
): Tool<JiraClient>[] {
  return [
    ...createReadTools(settings, labels),
    ...createWriteTools(settings, idempotency, labels),
    ...createAttachmentTools(settings, labels),
  ];
}
