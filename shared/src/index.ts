/**
 * @hardened-mcp/test-kit: a real PostgreSQL (embedded PostgreSQL 18, or `DATABASE_URL`) loaded
 * with the Chinook sample database and least-privilege roles, for every test suite and the demo;
 * and a local AWS Secrets Manager stand-in (`startFakeSecretsManager`) for credential rotation.
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
  createRole,
  ROLE_CONNECTION_LIMIT,
  type TestRole,
} from './chinook.js';
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
  type FakeSecretsManager,
  type FakeSecretsManagerError,
  type FakeSecretsManagerRequest,
  type PutSecretOptions,
  startFakeSecretsManager,
} from './secrets-manager-fake.js';
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
