/**
 * `@hardened-mcp/jira`: the hardened Jira Cloud connector. Run it as the `hardened-mcp-jira` bin.
 */
export { adfToMarkdown, markdownToAdfDoc } from './adf.js';
export { type JiraClient, jiraTransport, openJiraClient } from './client.js';
export {
  issueKeySchema,
  type JiraSettings,
  jiraSectionSchema,
  projectKeySchema,
  READABLE_FIELDS,
  WRITABLE_FIELDS,
} from './config.js';
export { jiraConnector, VERSION } from './connector.js';
export {
  createFieldLabels,
  type FieldLabels,
  jqlFieldIds,
  TEXT_SEARCH_FIELDS,
} from './field-labels.js';
export { buildJql, jqlString, type SearchFilters } from './jql.js';
export { kit } from './kit.js';
export { createJiraTools } from './tools.js';
