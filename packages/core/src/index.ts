/**
 * `@hardened-mcp/core`: the security core. Every tool call of every hardened-mcp server passes
 * one enforcement pipeline; connectors declare tools as data and never register them around it.
 * See README.md for the pipeline and a connector author's guide.
 */
export {
  APPROVAL_FORM_SCHEMA,
  type ApprovalChannel,
  type ApprovalResult,
  approvalFromElicitation,
  NO_APPROVAL_CHANNEL,
} from './approval.js';
export {
  type AssembledServer,
  type AssembleOptions,
  assemble,
  type ConnectorConfig,
} from './assemble.js';
export * from './audit/index.js';
export { runConnectorCli } from './cli.js';
export {
  authConfigSchema,
  type CoreConfig,
  type CredentialSource,
  type CredentialSourceInput,
  coreConfigShape,
  credentialSourceSchema,
  deepFreeze,
  defineConfigSchema,
  httpConfigSchema,
  mtlsConfigSchema,
  mtlsRuleSchema,
  type PrincipalCredentialsSettings,
  parseConfig,
  principalCredentialsSchema,
  readConfigFile,
  roleNameSchema,
  type SecretsManagerSource,
  type SecretsManagerSourceInput,
  scopeSchema,
  secretsManagerSourceSchema,
  type TokenExchangeSettings,
  tokenExchangeSchema,
  toolNameSchema,
} from './config.js';
export {
  type ConnectorContext,
  type ConnectorDefinition,
  type ConnectorTools,
  defineConnector,
  type LabelledPath,
} from './connector.js';
export {
  createPrincipalClients,
  type PrincipalClients,
  type PrincipalClientsOptions,
} from './credentials/principal-clients.js';
export { attachSubjectToken, subjectTokenOf } from './credentials/subject-token.js';
export {
  ACCESS_TOKEN_TYPE,
  type ExchangedToken,
  TOKEN_EXCHANGE_GRANT,
  TokenExchanger,
  type TokenExchangerOptions,
} from './credentials/token-exchange.js';
export {
  type CredentialHandle,
  type CredentialSources,
  type Credentials,
  type LoadCredentialsOptions,
  type LoadedCredentials,
  loadCredential,
  loadCredentials,
  Secret,
  secretFragments,
} from './credentials.js';
export {
  ALLOW,
  type Decision,
  type Denial,
  deny,
  ErrorCode,
  type ErrorCodeValue,
  StartupError,
  ToolError,
  type ToolErrorOptions,
} from './errors.js';
export {
  type AuthConfig,
  type Authenticator,
  createAuthenticator,
  hashApiKey,
  type Principal,
} from './http/auth.js';
export { jsonDepthExceeds } from './http/body.js';
export { identityFromAuthInfo } from './http/edge-auth.js';
// The HTTP server module loads on the first serveHttp call (serve-http.ts): stdio never needs it.
export type { HttpConfig, HttpServeOptions, RunningHttpServer } from './http/http-server.js';
export {
  type CertificatePrincipal,
  certificateThumbprint,
  describeCertificateFailure,
  type MtlsConfig,
  type MtlsRule,
  type MtlsServerOptions,
  mtlsServerOptions,
  type PeerTls,
  peerTlsOf,
  principalFromCertificate,
} from './http/mtls.js';
export { isLoopback } from './http/request-guards.js';
export {
  type ClientInfo,
  type ForwardedClaim,
  type ForwardedClaims,
  type Identity,
  resolveStdioIdentity,
  type Transport,
} from './identity.js';
export { createLogger, type Logger } from './logger.js';
export {
  APPROVAL_TIMEOUT_MS,
  createMcpServer,
  type McpServerOptions,
  serveStdio,
} from './mcp-server.js';
export { createServerMetrics, type ServerMetrics } from './metrics.js';
export { capRowsByBytes, fenceUntrusted, jsonBytes, newBoundary, renderTable } from './output.js';
export {
  type AuditRecorder,
  type CallRequest,
  type CallResponse,
  type CallResult,
  createPipeline,
  type EdgeRefusal,
  type ListedTool,
  type Pipeline,
  type PipelineOptions,
  TABLE_OUTPUT_SCHEMA,
  type ToolSettings,
} from './pipeline.js';
export * from './policy/index.js';
export {
  createMemoryRateLimiter,
  createRedisRateLimiter,
  type RateLimiter,
  type RateLimitRule,
} from './rate-limit.js';
export * from './redaction/index.js';
export { type Reloadable, reloadAll } from './reload.js';
export {
  CredentialError,
  openSecretsManagerCredential,
  SecretsManagerCredential,
  type SecretsManagerCredentialOptions,
} from './secrets-manager.js';
export { serveHttp } from './serve-http.js';
export {
  binaryStandIn,
  type ContentBlock,
  type ShapedOutput,
  shapeOutput,
  withoutBinary,
} from './shape-output.js';
export {
  type Allowed,
  type AuditNotes,
  type AuditNoteValue,
  type Authorization,
  allow,
  annotationsFor,
  type ColumnInfo,
  type CredentialScope,
  type ExecuteClassification,
  type ExecuteContext,
  MAX_AUDIT_NOTE_CHARS,
  MAX_AUDIT_NOTES,
  type OutputLimits,
  type PolicyContext,
  type ResourceAttributeType,
  type ResourceDeclaration,
  type ResourceRef,
  type SecretRegistry,
  secretRegistry,
  type Tool,
  type ToolAccess,
  type ToolAnnotations,
  type ToolDefinition,
  type ToolKit,
  type ToolOutput,
  type ToolSpec,
  toolKit,
} from './tool.js';
export {
  createToolRegistry,
  type ToolRegistry,
  type ToolRegistryOptions,
} from './tool-registry.js';
export * from './upstream/index.js';
