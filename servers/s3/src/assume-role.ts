import { AssumeRoleCommand, type AssumeRoleCommandOutput, STSClient } from '@aws-sdk/client-sts';

/** AWS credentials (structurally the SDK's `AwsCredentialIdentity`). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
  readonly expiration?: Date | undefined;
}

/** A function resolving AWS credentials (structurally the SDK's `AwsCredentialIdentityProvider`). */
export type AwsCredentialsProvider = () => Promise<AwsCredentials>;

/** Temporary credentials with their expiry (as returned by STS). */
export interface TemporaryCredentials extends AwsCredentials {
  readonly expiration: Date;
}

/** Options of {@link createAssumeRoleProvider}. */
export interface AssumeRoleOptions {
  /** The role to assume (`arn:aws:iam::123456789012:role/name`). */
  readonly roleArn: string;
  /** `RoleSessionName` (2–64 of `[\w+=,.@-]`; shows up in CloudTrail). */
  readonly sessionName: string;
  /** `DurationSeconds` (900 to the role's maximum session duration). */
  readonly durationSeconds: number;
  /** The inline session policy (compact JSON, at most 2,048 characters). */
  readonly policy: string;
  /** STS region (the regional endpoint is used). */
  readonly region: string;
  /** STS endpoint override (VPC interface endpoint, FIPS, a local test STS). */
  readonly endpoint?: string | undefined;
  /** `ExternalId`, when the role's trust policy requires one. */
  readonly externalId?: string | undefined;
  /** Credentials that call STS; default: the AWS SDK default provider chain. */
  readonly baseCredentials?: AwsCredentials | AwsCredentialsProvider | undefined;
  /** Per-request timeout for STS, in ms. */
  readonly requestTimeoutMs?: number | undefined;
  /** Clock, for tests (ms since the epoch). */
  readonly now?: (() => number) | undefined;
}

/**
 * `AssumeRole` failed or returned no credentials. `message` names the role and the STS error
 * code only (both safe to log); the SDK error is the `cause`.
 */
export class AssumeRoleError extends Error {
  readonly roleArn: string;
  constructor(roleArn: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AssumeRoleError';
    this.roleArn = roleArn;
  }
}

/** A credential provider with a handle on the STS client (to release its sockets). */
export interface AssumeRoleProvider {
  (): Promise<TemporaryCredentials>;
  /** The ARN of the last assumed-role session (`arn:aws:sts::…:assumed-role/<role>/<session>`). */
  readonly sessionArn: () => string | undefined;
  close(): void;
}

/**
 * A small refresher around `sts:AssumeRole` (`@aws-sdk/client-sts`): returns cached temporary
 * credentials until `refreshMargin` before they expire (5 minutes, or a third of the session
 * for short sessions — the same window the SDK's own credential memoization uses), then
 * assumes the role again. Concurrent callers share one `AssumeRole` call. Every call carries the
 * session policy, so every credential it ever hands out is scoped to the allowlist.
 *
 * @throws AssumeRoleError (from the returned provider) when STS refuses or cannot be reached.
 */
export function createAssumeRoleProvider(options: AssumeRoleOptions): AssumeRoleProvider {
  const now = options.now ?? Date.now;
  const marginMs = Math.min(300_000, Math.floor((options.durationSeconds * 1000) / 3));
  const sts = new STSClient({
    region: options.region,
    endpoint: options.endpoint,
    credentials: options.baseCredentials,
    maxAttempts: 3,
    requestHandler: {
      connectionTimeout: Math.min(options.requestTimeoutMs ?? 10_000, 10_000),
      requestTimeout: options.requestTimeoutMs ?? 10_000,
    },
  });
  let current: TemporaryCredentials | undefined;
  let sessionArn: string | undefined;
  let pending: Promise<TemporaryCredentials> | undefined;

  async function assume(): Promise<TemporaryCredentials> {
    let out: AssumeRoleCommandOutput;
    try {
      out = await sts.send(
        new AssumeRoleCommand({
          RoleArn: options.roleArn,
          RoleSessionName: options.sessionName,
          DurationSeconds: options.durationSeconds,
          Policy: options.policy,
          ExternalId: options.externalId,
        }),
      );
    } catch (err) {
      const code = safeErrorName(err);
      throw new AssumeRoleError(
        options.roleArn,
        `sts:AssumeRole of ${options.roleArn} failed (${code})`,
        { cause: err },
      );
    }
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.Expiration) {
      throw new AssumeRoleError(
        options.roleArn,
        `sts:AssumeRole of ${options.roleArn} returned no credentials`,
      );
    }
    sessionArn = out.AssumedRoleUser?.Arn;
    current = {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
    };
    return current;
  }

  const provider = (async () => {
    if (current && current.expiration.getTime() - now() > marginMs) return current;
    pending ??= assume().finally(() => {
      pending = undefined;
    });
    return pending;
  }) as AssumeRoleProvider;
  Object.assign(provider, {
    sessionArn: () => sessionArn,
    close: () => sts.destroy(),
  });
  return provider;
}

/** An AWS error code (`AccessDenied`, `ExpiredToken`, …) or a Node error code, safe to show. */
export function safeErrorName(err: unknown): string {
  const e = err as { name?: unknown; code?: unknown } | null;
  for (const v of [e?.code, e?.name]) {
    if (typeof v === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(v) && v !== 'Error') return v;
  }
  return 'unknown error';
}
