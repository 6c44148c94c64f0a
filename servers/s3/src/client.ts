import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { type CredentialScope, ErrorCode, ToolError } from '@hardened-mcp/core';
import {
  AssumeRoleError,
  type AssumeRoleProvider,
  type AwsCredentials,
  type AwsCredentialsProvider,
  createAssumeRoleProvider,
  safeErrorName,
} from './assume-role.js';
import type { S3Settings } from './config.js';

/**
 * The credential handle of one scope: an S3 client whose credentials are either temporary
 * assumed-role credentials restricted by the scope's session policy, or (no role configured)
 * the AWS SDK default provider chain.
 */
export interface S3Handle {
  readonly scope: CredentialScope;
  readonly client: S3Client;
  /** How the client gets credentials, for logs. */
  readonly credentialSource: 'assume-role' | 'default-chain';
  /** The assumed role, when `credentialSource` is `assume-role`. */
  readonly roleArn?: string | undefined;
  /** Resolves (and caches) the credentials now: a startup check. */
  resolveCredentials(): Promise<AwsCredentials>;
  /** The assumed-role session ARN, once known. */
  sessionArn(): string | undefined;
  close(): void;
}

/** Options of {@link createS3Handle}. */
export interface S3HandleOptions {
  /** The session policy (compact JSON) for `AssumeRole`. */
  readonly sessionPolicy: string;
  /** Credentials for STS (or for S3 when no role is configured); default: the default chain. */
  readonly baseCredentials?: AwsCredentials | AwsCredentialsProvider | undefined;
  /**
   * Called with every credential set the client resolves (new temporary credentials after each
   * refresh), before it is used: the connector registers the secret parts with the redactor.
   */
  readonly onCredentials?: ((credentials: AwsCredentials) => void) | undefined;
}

/**
 * Builds the S3 client of one credential scope from configuration: region, optional endpoint
 * and path style, bounded timeouts and retries, and credentials from `AssumeRole` of
 * `settings.roles[scope]` with the scope's session policy (refreshed before expiry), or the
 * default provider chain when no role is configured.
 */
export function createS3Handle(
  scope: CredentialScope,
  settings: S3Settings,
  options: S3HandleOptions,
): S3Handle {
  const roleArn = settings.roles[scope];
  const base = options.baseCredentials ?? fromNodeProviderChain();
  let assumed: AssumeRoleProvider | undefined;
  let credentials: AwsCredentialsProvider;
  if (roleArn) {
    assumed = createAssumeRoleProvider({
      roleArn,
      sessionName: `hardened-mcp-s3-${scope}`,
      durationSeconds: settings.sessionDurationSeconds,
      policy: options.sessionPolicy,
      region: settings.region,
      endpoint: settings.stsEndpoint,
      externalId: settings.roles.externalId,
      baseCredentials: base,
      requestTimeoutMs: settings.requestTimeoutMs,
    });
    credentials = assumed;
  } else {
    credentials = typeof base === 'function' ? base : async () => base;
  }
  const onCredentials = options.onCredentials;
  if (onCredentials) {
    const resolve = credentials;
    let seen: AwsCredentials | undefined;
    credentials = async () => {
      const c = await resolve();
      if (c !== seen) {
        onCredentials(c);
        seen = c;
      }
      return c;
    };
  }
  const client = new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    credentials,
    maxAttempts: 3,
    followRegionRedirects: false,
    requestHandler: {
      connectionTimeout: Math.min(settings.requestTimeoutMs, 10_000),
      requestTimeout: settings.requestTimeoutMs,
    },
  });
  return {
    scope,
    client,
    credentialSource: roleArn ? 'assume-role' : 'default-chain',
    roleArn,
    resolveCredentials: () => credentials(),
    sessionArn: () => assumed?.sessionArn(),
    close() {
      client.destroy();
      assumed?.close();
    },
  };
}

/** Node network error codes meaning "S3 could not be reached". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/**
 * Maps an error from the S3 client to a client-safe {@link ToolError} with a stable code. The
 * message names the S3 error code at most, never keys, hosts, credentials or S3's own message
 * text; the original error is the `cause` (server log only).
 *
 * | S3 / SDK error                                   | code                   |
 * | ------------------------------------------------ | ---------------------- |
 * | NoSuchKey, NotFound (404)                         | `upstream_error`       |
 * | NoSuchBucket                                      | `upstream_error`       |
 * | AccessDenied, Forbidden (403)                     | `forbidden`            |
 * | InvalidRange (416)                                | `invalid_input`        |
 * | PreconditionFailed (412)                          | `upstream_error`       |
 * | SlowDown, 5xx, network errors                     | `upstream_unavailable` |
 * | timeouts                                          | `timeout`              |
 * | AssumeRole / credential provider failures         | `upstream_unavailable` |
 */
export function toToolError(err: unknown): ToolError {
  if (err instanceof ToolError) return err;
  const cause = { cause: err };
  if (err instanceof AssumeRoleError || safeErrorName(err) === 'CredentialsProviderError')
    return new ToolError(
      ErrorCode.UpstreamUnavailable,
      'could not obtain AWS credentials; see the server log',
      cause,
    );
  const name = safeErrorName(err);
  if (err instanceof S3ServiceException) {
    const status = err.$metadata?.httpStatusCode ?? 0;
    if (name === 'NoSuchKey' || (name === 'NotFound' && status === 404))
      return new ToolError(ErrorCode.UpstreamError, 'the object does not exist', cause);
    if (name === 'NoSuchBucket')
      return new ToolError(ErrorCode.UpstreamError, 'the bucket does not exist', cause);
    if (status === 403 || name === 'AccessDenied' || name === 'Forbidden')
      return new ToolError(
        ErrorCode.Forbidden,
        'S3 denied access (the role or its session policy does not allow this request)',
        cause,
      );
    if (status === 416 || name === 'InvalidRange')
      return new ToolError(ErrorCode.InvalidInput, 'the range is not satisfiable', cause);
    if (status === 412 || name === 'PreconditionFailed')
      return new ToolError(
        ErrorCode.UpstreamError,
        'the object changed during the call; retry',
        cause,
      );
    if (name === 'RequestTimeout')
      return new ToolError(ErrorCode.Timeout, 'S3 did not answer in time', cause);
    if (status >= 500 || name === 'SlowDown')
      return new ToolError(
        ErrorCode.UpstreamUnavailable,
        'S3 is unavailable or throttling; retry later',
        cause,
      );
    return new ToolError(ErrorCode.UpstreamError, `S3 rejected the request (${name})`, cause);
  }
  if (name === 'TimeoutError' || name === 'ETIMEDOUT' || name === 'RequestTimeout')
    return new ToolError(ErrorCode.Timeout, 'S3 did not answer in time', cause);
  if (name === 'AbortError')
    return new ToolError(ErrorCode.Timeout, 'the call was cancelled', cause);
  if (NETWORK_CODES.has(name))
    return new ToolError(ErrorCode.UpstreamUnavailable, 'S3 could not be reached', cause);
  return new ToolError(ErrorCode.Internal, 'internal error; see the server log', cause);
}
