/**
 * A local stand-in for AWS Secrets Manager that speaks its real JSON protocol (AWS JSON 1.1), so
 * tests drive the real AWS SDK client at it with an endpoint override:
 *
 * - `POST /` with `X-Amz-Target: secretsmanager.GetSecretValue` and
 *   `Content-Type: application/x-amz-json-1.1`, body `{"SecretId": …, "VersionId"?: …,
 *   "VersionStage"?: …}`;
 * - answer `{ARN, Name, VersionId, SecretString | SecretBinary, VersionStages, CreatedDate}`
 *   (`CreatedDate` in epoch seconds, as the protocol encodes timestamps);
 * - errors in the AWS shape: HTTP 400 with `{"__type": "ResourceNotFoundException", "message": …}`
 *   (and an `x-amzn-ErrorType` header), e.g. for an unknown secret or staging label.
 *
 * Requests must carry a SigV4 `Authorization` header for the fake's access key id
 * ({@link FakeSecretsManager.env}); the signature itself is not checked. Listens on 127.0.0.1
 * only, on a free port.
 *
 * ```ts
 * const sm = await startFakeSecretsManager();
 * sm.putSecret('prod/pg-read', url);          // version 1, AWSCURRENT
 * // spawn a server with env { ...sm.env } and credentials.read:
 * //   { secretsManager: { secretId: 'prod/pg-read', endpoint: sm.endpoint, region: sm.region } }
 * sm.putSecret('prod/pg-read', rotatedUrl);   // rotation: new AWSCURRENT, old one AWSPREVIOUS
 * sm.requestCount('prod/pg-read');            // GetSecretValue calls so far
 * await sm.close();
 * ```
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the fake received. */
export interface FakeSecretsManagerRequest {
  /** The `X-Amz-Target` header, e.g. `secretsmanager.GetSecretValue`. */
  readonly target: string;
  readonly secretId?: string | undefined;
  readonly versionStage?: string | undefined;
  readonly versionId?: string | undefined;
  /** The access key id of the `Authorization` header, if any. */
  readonly accessKeyId?: string | undefined;
  /** HTTP status of the answer. */
  readonly status: number;
}

/** An injected failure: the next matching requests get this AWS error instead of an answer. */
export interface FakeSecretsManagerError {
  /** HTTP status, e.g. 400 (client errors) or 500 (`InternalServiceError`). */
  readonly status: number;
  /** The AWS error type (`__type`), e.g. `AccessDeniedException`. */
  readonly type: string;
  readonly message?: string;
  /** How many requests fail (default: every one until cleared). */
  readonly times?: number;
}

/** Options of {@link FakeSecretsManager.putSecret}. */
export interface PutSecretOptions {
  /**
   * Staging labels of the new version. Default `['AWSCURRENT']`: the label moves from the
   * current version, which becomes `AWSPREVIOUS` (what a rotation's `finishSecret` does).
   * A label given here is removed from every other version of the secret.
   */
  readonly stages?: readonly string[];
  /** Store the value as `SecretBinary` instead of `SecretString`. */
  readonly binary?: boolean;
}

/** A running fake (see the module comment). */
export interface FakeSecretsManager {
  /** `http://127.0.0.1:<port>`: the endpoint override for the SDK client. */
  readonly endpoint: string;
  /** The region ARNs are made for (`us-east-1`); any region is accepted. */
  readonly region: string;
  /**
   * Environment for a process using the SDK's default chain: fake static credentials, the
   * region, and `AWS_EC2_METADATA_DISABLED=true` (never probe an instance metadata service).
   */
  readonly env: Readonly<Record<string, string>>;
  /** The fake AWS credentials the fake accepts. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /**
   * Creates the secret or adds a version of it (rotation). Returns the version id and the ARN.
   */
  putSecret(
    name: string,
    value: string,
    opts?: PutSecretOptions,
  ): { readonly versionId: string; readonly arn: string };
  /** Deletes a secret at once (later requests get `ResourceNotFoundException`). */
  deleteSecret(name: string): void;
  /** Makes requests for `name` (or for every secret with `'*'`) fail; `undefined` clears it. */
  failRequests(name: string, error: FakeSecretsManagerError | undefined): void;
  /** `GetSecretValue` requests received for `name`, or all requests without it. */
  requestCount(name?: string): number;
  /** Every request received, oldest first. */
  readonly requests: readonly FakeSecretsManagerRequest[];
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

interface Version {
  readonly versionId: string;
  readonly value: string;
  readonly binary: boolean;
  readonly createdDate: number;
  stages: string[];
}

interface StoredSecret {
  readonly name: string;
  readonly arn: string;
  readonly versions: Version[];
}

const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
const ACCOUNT_ID = '123456789012';
const MAX_BODY_BYTES = 64 * 1024;

/** Starts the fake on 127.0.0.1 and a free port. */
export async function startFakeSecretsManager(): Promise<FakeSecretsManager> {
  const region = 'us-east-1';
  const credentials = {
    accessKeyId: `AKIAFAKE${randomBytes(6).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
  };
  const secrets = new Map<string, StoredSecret>();
  const failures = new Map<string, { error: FakeSecretsManagerError; left: number }>();
  const requests: FakeSecretsManagerRequest[] = [];

  const find = (id: string): StoredSecret | undefined => {
    const byName = secrets.get(id);
    if (byName) return byName;
    for (const s of secrets.values()) {
      // A full ARN, or a partial ARN without the 6-character random suffix.
      if (s.arn === id || s.arn.slice(0, -7) === id) return s;
    }
    return undefined;
  };

  const takeFailure = (name: string): FakeSecretsManagerError | undefined => {
    for (const key of [name, '*']) {
      const f = failures.get(key);
      if (!f) continue;
      f.left -= 1;
      if (f.left <= 0) failures.delete(key);
      return f.error;
    }
    return undefined;
  };

  const handle = (req: IncomingMessage, body: string): { status: number; payload: unknown } => {
    const awsError = (status: number, type: string, message: string) => ({
      status,
      payload: { __type: type, message },
    });
    if (req.method !== 'POST' || (req.url ?? '/').split('?')[0] !== '/') {
      return awsError(404, 'UnknownOperationException', 'Only POST / is supported.');
    }
    const contentType = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim();
    if (contentType !== JSON_CONTENT_TYPE) {
      return awsError(400, 'SerializationException', `Content-Type must be ${JSON_CONTENT_TYPE}.`);
    }
    const accessKeyId = accessKeyOf(req);
    if (accessKeyId !== credentials.accessKeyId) {
      return awsError(
        400,
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    if (target !== 'secretsmanager.GetSecretValue') {
      return awsError(400, 'UnknownOperationException', `Unsupported operation ${target}.`);
    }
    let input: { SecretId?: unknown; VersionId?: unknown; VersionStage?: unknown };
    try {
      input = JSON.parse(body || '{}') as typeof input;
    } catch {
      return awsError(400, 'SerializationException', 'The request body is not valid JSON.');
    }
    if (typeof input.SecretId !== 'string' || input.SecretId === '') {
      return awsError(400, 'InvalidParameterException', 'SecretId is required.');
    }
    const secret = find(input.SecretId);
    const failure = takeFailure(secret?.name ?? input.SecretId);
    if (failure) {
      return awsError(failure.status, failure.type, failure.message ?? `${failure.type}.`);
    }
    if (!secret) {
      return awsError(
        400,
        'ResourceNotFoundException',
        "Secrets Manager can't find the specified secret.",
      );
    }
    const versionId = typeof input.VersionId === 'string' ? input.VersionId : undefined;
    const stage =
      typeof input.VersionStage === 'string'
        ? input.VersionStage
        : versionId === undefined
          ? 'AWSCURRENT'
          : undefined;
    const version = secret.versions.find(
      (v) =>
        (versionId === undefined || v.versionId === versionId) &&
        (stage === undefined || v.stages.includes(stage)),
    );
    if (!version) {
      return awsError(
        400,
        'ResourceNotFoundException',
        versionId === undefined
          ? `Secrets Manager can't find the specified secret value for staging label: ${stage}`
          : `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
      );
    }
    return {
      status: 200,
      payload: {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: version.versionId,
        ...(version.binary
          ? { SecretBinary: Buffer.from(version.value, 'utf8').toString('base64') }
          : { SecretString: version.value }),
        VersionStages: [...version.stages],
        CreatedDate: version.createdDate,
      },
    };
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const { status, payload } = handle(req, body);
      let parsed: { SecretId?: unknown; VersionStage?: unknown; VersionId?: unknown } = {};
      try {
        parsed = JSON.parse(body || '{}') as typeof parsed;
      } catch {
        // recorded without fields
      }
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const secretId = str(parsed.SecretId);
      requests.push({
        target: String(req.headers['x-amz-target'] ?? ''),
        secretId: secretId === undefined ? undefined : (find(secretId)?.name ?? secretId),
        versionStage: str(parsed.VersionStage),
        versionId: str(parsed.VersionId),
        accessKeyId: accessKeyOf(req),
        status,
      });
      const text = JSON.stringify(payload);
      const headers: Record<string, string | number> = {
        'content-type': JSON_CONTENT_TYPE,
        'content-length': Buffer.byteLength(text),
        'x-amzn-requestid': randomUUID(),
      };
      if (status !== 200) headers['x-amzn-errortype'] = (payload as { __type: string }).__type;
      res.writeHead(status, headers);
      res.end(text);
    });
  });
  server.keepAliveTimeout = 1_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;

  let closing: Promise<void> | undefined;
  return {
    endpoint,
    region,
    credentials,
    env: {
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: region,
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    requests,
    putSecret(name, value, opts = {}) {
      let secret = secrets.get(name);
      if (!secret) {
        const suffix = randomBytes(3).toString('hex');
        secret = {
          name,
          arn: `arn:aws:secretsmanager:${region}:${ACCOUNT_ID}:secret:${name}-${suffix}`,
          versions: [],
        };
        secrets.set(name, secret);
      }
      const stages = [...(opts.stages ?? ['AWSCURRENT'])];
      if (stages.includes('AWSCURRENT')) {
        for (const v of secret.versions) {
          v.stages = v.stages.filter((s) => s !== 'AWSPREVIOUS');
          if (v.stages.includes('AWSCURRENT')) {
            v.stages = [...v.stages.filter((s) => s !== 'AWSCURRENT'), 'AWSPREVIOUS'];
          }
        }
      }
      for (const v of secret.versions) v.stages = v.stages.filter((s) => !stages.includes(s));
      const versionId = randomUUID();
      secret.versions.push({
        versionId,
        value,
        binary: opts.binary === true,
        createdDate: Date.now() / 1000,
        stages,
      });
      return { versionId, arn: secret.arn };
    },
    deleteSecret(name) {
      secrets.delete(name);
    },
    failRequests(name, error) {
      if (error === undefined) failures.delete(name);
      else failures.set(name, { error, left: error.times ?? Number.POSITIVE_INFINITY });
    },
    requestCount(name) {
      return name === undefined
        ? requests.length
        : requests.filter((r) => r.secretId === name && r.target.endsWith('.GetSecretValue'))
            .length;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** The access key id of a SigV4 `Authorization` header (`… Credential=AKID/date/region/service/aws4_request, …`). */
function accessKeyOf(req: IncomingMessage): string | undefined {
  const auth = String(req.headers.authorization ?? '');
  return /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\//.exec(auth)?.[1];
}
