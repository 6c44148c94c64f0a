/**
 * `@hardened-mcp/slack`: the hardened Slack connector. Run it as the `hardened-mcp-slack` bin.
 */
export { type Block, blockSchema, escapeBlocks, refuseBlocks, renderBlocks } from './blocks.js';
export { ChannelDirectory, type ChannelInfo, type ConversationKind } from './channels.js';
export {
  openSlackClient,
  platformError,
  type SlackClient,
  slackCall,
  slackFetch,
  toSlackError,
} from './client.js';
export {
  conversationIdSchema,
  messageTsSchema,
  PROFILE_FIELDS,
  type SlackSettings,
  slackSectionSchema,
  userIdSchema,
} from './config.js';
export { slackConnector, VERSION } from './connector.js';
export { kit, SlackState } from './kit.js';
export { excessScopes, neededBotScopes, TOOL_SCOPES, USER_TOKEN_SCOPES } from './scopes.js';
export {
  countUserMentions,
  escapeMrkdwn,
  findMassMention,
  foldForDetection,
  renderIncoming,
} from './text.js';
export { createSlackTools } from './tools.js';
