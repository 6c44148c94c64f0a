/**
 * `@hardened-mcp/postgres`: the hardened PostgreSQL MCP connector. Run it as the
 * `hardened-mcp-postgres` bin; import it to embed or extend the connector.
 */
export {
  type PostgresSettings,
  postgresSectionSchema,
  type SavedQuery,
  savedQuerySchema,
} from './config.js';
export { postgresConnector, VERSION } from './connector.js';
export { openPool, type PgHandle, toToolError, withTransaction } from './database.js';
export {
  type CallSession,
  CLAIMS_SETTING,
  callSessionFor,
  databaseRoleOf,
  mappedRoles,
  PRINCIPAL_SETTING,
} from './database-roles.js';
export { READ_SCOPE, WRITE_SCOPE } from './define.js';
export { classificationGrants, inspectRole, type RoleReport } from './preflight.js';
export {
  checkReadOnlySql,
  initSqlGuard,
  type SqlGuardDecision,
  type SqlGuardOptions,
  type SqlGuardPolicy,
} from './sql-guard.js';
export { createSqlGuardClient, type SqlGuardClient } from './sql-guard-client.js';
export { createTablePolicy, type TablePolicy } from './table-policy.js';
export { createPostgresTools } from './tools.js';
