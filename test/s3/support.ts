import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { startFauxqs } from 'fauxqs';
import {
  REPO_ROOT,
  runBinToExit,
  type ServerSession,
  startStdioServer,
  writeTempConfig,
} from '../support/server.ts';

/** The built S3 server bin. */
export const S3_BIN = join(REPO_ROOT, 'servers', 's3', 'dist', 'bin.js');

/** Static credentials for the store (fauxqs accepts any signature). */
export const TEST_AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'test-base-key',
  AWS_SECRET_ACCESS_KEY: 'test-base-secret',
  AWS_REGION: 'us-east-1',
};

/** A running fauxqs with an admin client (outside the server under test). */
export interface TestStore {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly admin: S3Client;
  createBucket(name: string): Promise<void>;
  put(bucket: string, key: string, body: string | Uint8Array, contentType?: string): Promise<void>;
  /** The object's body as text, or `undefined` when it does not exist. */
  read(bucket: string, key: string): Promise<string | undefined>;
  /** Every key of a bucket with its ETag: for "the store is unchanged" assertions. */
  snapshot(bucket: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/** Starts fauxqs on a random port (it binds all interfaces; nothing else is exposed). */
export async function startTestStore(): Promise<TestStore> {
  const server = await startFauxqs({ port: 0, logger: false });
  const endpoint = `http://127.0.0.1:${server.port}`;
  const admin = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'admin', secretAccessKey: 'admin' },
  });
  return {
    endpoint,
    admin,
    async createBucket(name) {
      await admin.send(new CreateBucketCommand({ Bucket: name }));
    },
    async put(bucket, key, body, contentType) {
      await admin.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }),
      );
    },
    async read(bucket, key) {
      try {
        const out = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return await out.Body?.transformToString('utf8');
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
        throw err;
      }
    },
    async snapshot(bucket) {
      const out: Record<string, string> = {};
      let token: string | undefined;
      do {
        const page = await admin.send(
          new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) if (o.Key) out[o.Key] = o.ETag ?? '';
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out;
    },
    async stop() {
      admin.destroy();
      await server.stop();
    },
  };
}

/** One `AssumeRole` call the fake STS received (form parameters). */
export type StsRequest = Readonly<Record<string, string>> & { readonly authorization: string };

/** A fake STS endpoint. */
export interface FakeSts {
  readonly endpoint: string;
  readonly requests: StsRequest[];
  /** The access key id it hands out for a role session name (`ASIA` + 16 characters). */
  accessKeyFor(sessionName: string): string;
  stop(): Promise<void>;
}

/**
 * A local STS that speaks the Query API (STS API Reference, "AssumeRole": form-encoded
 * `Action=AssumeRole&Version=2011-06-15&RoleArn=…&Policy=…`, XML response). Hands out
 * deterministic fake credentials per session name and records every request.
 */
export async function startFakeSts(): Promise<FakeSts> {
  const requests: StsRequest[] = [];
  const keys = new Map<string, string>();
  const accessKeyFor = (session: string) => {
    let k = keys.get(session);
    if (!k) {
      k = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
      keys.set(session, k);
    }
    return k;
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
      requests.push({ ...params, authorization: String(req.headers.authorization ?? '') });
      if (params.Action !== 'AssumeRole') {
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end(
          '<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>unsupported</Message></Error></ErrorResponse>',
        );
        return;
      }
      const session = params.RoleSessionName ?? 'session';
      const expires = new Date(Date.now() + Number(params.DurationSeconds ?? 900) * 1000);
      const roleName = (params.RoleArn ?? '').split('/').pop();
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:${session}</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/${roleName}/${session}</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>${accessKeyFor(session)}</AccessKeyId>
      <SecretAccessKey>fake-secret-${session}</SecretAccessKey>
      <SessionToken>fake-session-token-${session}</SessionToken>
      <Expiration>${expires.toISOString()}</Expiration>
    </Credentials>
    <PackedPolicySize>12</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>`);
    });
  });
  const endpoint = await listen(server);
  return { endpoint, requests, accessKeyFor, stop: () => close(server) };
}

/** What the proxy saw of one request. */
export interface ProxiedRequest {
  readonly method: string;
  readonly url: string;
  /** The SigV4 access key id of the `Authorization` header. */
  readonly accessKeyId: string | undefined;
  readonly securityToken: string | undefined;
  readonly headers: IncomingHttpHeaders;
}

/** A recording HTTP proxy in front of the store. */
export interface RecordingProxy {
  readonly endpoint: string;
  readonly requests: ProxiedRequest[];
  stop(): Promise<void>;
}

/** Forwards every request to `target` unchanged and records its method, path and credentials. */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const requests: ProxiedRequest[] = [];
  const t = new URL(target);
  const server = createServer((req, res) => {
    const auth = String(req.headers.authorization ?? '');
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      accessKeyId: /Credential=([^/]+)\//.exec(auth)?.[1],
      securityToken: req.headers['x-amz-security-token'] as string | undefined,
      headers: req.headers,
    });
    const upstream = request(
      {
        host: t.hostname,
        port: t.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: t.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  const endpoint = await listen(server);
  return { endpoint, requests, stop: () => close(server) };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Options for {@link startS3Server}. */
export interface StartS3Options {
  readonly env?: Record<string, string>;
  /** Written to a temp file and passed as `--config`. */
  readonly config: Record<string, unknown>;
  readonly args?: readonly string[];
  /** Client capabilities, e.g. `{ elicitation: {} }`. */
  readonly capabilities?: Record<string, unknown>;
  readonly clientName?: string;
}

/**
 * Starts the built `hardened-mcp-s3` bin on Node 24 (this process's `node`) and connects the MCP
 * SDK `Client` over stdio. The environment is minimal: PATH, HOME and the test AWS variables.
 */
export function startS3Server(opts: StartS3Options): Promise<ServerSession> {
  return startStdioServer(S3_BIN, {
    ...opts,
    clientName: opts.clientName ?? 'hardened-mcp-s3-e2e',
    env: { HOME: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true', ...TEST_AWS_ENV, ...opts.env },
  });
}

/** Runs the S3 bin until it exits (startup failures); stdin is closed after 10 s. */
export function runS3Bin(
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stderr: string }> {
  return runBinToExit(
    S3_BIN,
    { HOME: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true', ...env },
    ['--config', writeTempConfig(config)],
    10_000,
  );
}

/** `structuredContent` of a tool result, typed loosely. */
export function dataOf<T = Record<string, unknown>>(result: unknown): T {
  return (result as { structuredContent?: unknown }).structuredContent as T;
}
