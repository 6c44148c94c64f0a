/**
 * @hardened-mcp/test-kit: a real PostgreSQL (embedded PostgreSQL 18, or `DATABASE_URL`) loaded
 * with the Chinook sample database (from the `../shared` kit) or a generated sample database
 * (`createSampleDatabase`, no kit needed) and least-privilege roles, for every test suite and the
 * demo; and a local AWS Secrets Manager stand-in (`startFakeSecretsManager`) for credential
 * rotation.
 *
 * Typical use:
 * ```ts
 * const server = await startTestPostgres();
 * const db = await createChinookDatabase(server);
 * // ... connect with db.readUrl / db.writeUrl ...
 * await db.drop();
 * await server.stop();
 * ```
 */
export {
  type ChinookDatabase,
  type CreateChinookOptions,
  type CreateRoleOptions,
  createChinookDatabase,
  createLeastPrivilegeDatabase,
  createRole,
  type LeastPrivilegeDatabaseOptions,
  ROLE_CONNECTION_LIMIT,
  type TestDatabase,
  type TestRole,
} from './chinook.js';
export { FAKE_PASTED_GITHUB_TOKEN } from './fake-secrets.js';
export {
  type AdfDoc,
  adfText,
  FAKE_JIRA_PASTED_SECRET,
  FAKE_JIRA_USERS,
  FAKE_PNG,
  type FakeJiraAttachment,
  type FakeJiraComment,
  type FakeJiraIssue,
  type FakeJiraOAuth,
  type FakeJiraRequest,
  type FakeJiraUser,
  type FakeMediaRequest,
  type JiraFake,
  type JiraFakeOptions,
  startJiraFake,
} from './jira-fake.js';
export {
  chinookSqlPath,
  readChinookSql,
  repoRoot,
  sharedKitDir,
  testKitPackageDir,
} from './paths.js';
export {
  type StartTestPostgresOptions,
  startTestPostgres,
  type TestPostgres,
} from './postgres-server.js';
export {
  type CreateSampleDatabaseOptions,
  createSampleDatabase,
  type PlantedCredential,
  SAMPLE_DATABASE_SEED,
  SAMPLE_DEFAULT_CUSTOMERS,
  type SampleDatabaseOptions,
  type SampleDatabaseScript,
  type SampleTable,
  sampleDatabaseSql,
} from './sample-database.js';
export {
  type FakeSecretsManager,
  type FakeSecretsManagerError,
  type FakeSecretsManagerRequest,
  type PutSecretOptions,
  startFakeSecretsManager,
} from './secrets-manager-fake.js';
export {
  FAKE_SLACK_BOT_SCOPES,
  FAKE_SLACK_CONVERSATIONS,
  FAKE_SLACK_MOVED_THREAD_TS,
  FAKE_SLACK_PASTED_SECRET,
  FAKE_SLACK_USERS,
  type FakeSlackConversation,
  type FakeSlackMessage,
  type FakeSlackRequest,
  type FakeSlackToken,
  type FakeSlackUser,
  type SlackFake,
  type SlackFakeOptions,
  startSlackFake,
} from './slack-fake.js';
export {
  auditRecordsIn,
  runBinToExit,
  type ServerSession,
  type StartOptions,
  startStdioServer,
  textOf,
  waitFor,
  writeTempConfig,
} from './stdio-server.js';
export {
  startTokenEndpoint,
  type TokenEndpoint,
  type TokenEndpointOptions,
  type TokenExchangeRequest,
} from './token-endpoint.js';
