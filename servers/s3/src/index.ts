/**
 * `@hardened-mcp/s3`: the hardened S3 MCP connector. Run it as the `hardened-mcp-s3` bin;
 * import it to embed or extend the connector.
 */
export {
  AssumeRoleError,
  type AssumeRoleOptions,
  type AssumeRoleProvider,
  type AwsCredentials,
  type AwsCredentialsProvider,
  createAssumeRoleProvider,
  type TemporaryCredentials,
} from './assume-role.js';
export {
  type BoundedRead,
  type ByteRange,
  classifyContentType,
  decodeText,
  readBounded,
  resolveRange,
} from './body.js';
export { createS3Handle, type S3Handle, type S3HandleOptions, toToolError } from './client.js';
export { roleArnSchema, type S3Settings, s3SectionSchema } from './config.js';
export {
  s3Connector,
  sessionPolicies,
  VERSION,
} from './connector.js';
export { READ_SCOPE, WRITE_SCOPE } from './define.js';
export {
  authorizeListing,
  authorizeObject,
  type BucketRule,
  type Checked,
  checkListPrefix,
  checkObjectKey,
  configuredPrefixProblem,
  escapeForDisplay,
  isValidBucketName,
  MAX_KEY_BYTES,
} from './keys.js';
export {
  buildSessionPolicy,
  MAX_SESSION_POLICY_CHARS,
  objectArns,
  partitionOf,
  type SessionPolicy,
  type SessionPolicyStatement,
  serializeSessionPolicy,
} from './session-policy.js';
export { createS3Tools, decodeCursor, encodeCursor, getObject } from './tools.js';
export { createWriteTools, DEFAULT_CONTENT_TYPE } from './writes.js';
