import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AssumeRoleError, createAssumeRoleProvider } from './assume-role.js';
import { createS3Handle } from './client.js';
import { s3SectionSchema } from './config.js';
import { buildSessionPolicy, serializeSessionPolicy } from './session-policy.js';

const ROLE = 'arn:aws:iam::123456789012:role/mcp-s3-read';
const BASE = { accessKeyId: 'AKIDBASEEXAMPLE', secretAccessKey: 'base-secret' };
const POLICY = serializeSessionPolicy(
  buildSessionPolicy([{ name: 'acme-reports', prefixes: ['reports/'] }], 'read'),
);

interface Seen {
  params: Record<string, string>;
  headers: IncomingHttpHeaders;
}

/** A local STS speaking the Query API; answers AssumeRole, or an AccessDenied error when `deny`. */
let sts: Server;
let stsUrl: string;
const seen: Seen[] = [];
let deny = false;
let counter = 0;

/** A local "S3" that records request headers and answers every HEAD with 200. */
let s3: Server;
let s3Url: string;
const s3Seen: IncomingHttpHeaders[] = [];

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  sts = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(body));
      seen.push({ params, headers: req.headers });
      if (deny) {
        res.writeHead(403, { 'content-type': 'text/xml' });
        res.end(
          '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User base is not authorized to perform sts:AssumeRole on SECRET-DETAIL</Message></Error><RequestId>r</RequestId></ErrorResponse>',
        );
        return;
      }
      counter++;
      const exp = new Date(Date.now() + Number(params.DurationSeconds) * 1000).toISOString();
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:${params.RoleSessionName}</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/mcp-s3-read/${params.RoleSessionName}</Arn></AssumedRoleUser>
<Credentials><AccessKeyId>ASIATESTKEY0000000${String(counter).padStart(2, '0')}</AccessKeyId><SecretAccessKey>temp-secret-${counter}</SecretAccessKey><SessionToken>temp-token-${counter}</SessionToken><Expiration>${exp}</Expiration></Credentials>
</AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`);
    });
  });
  stsUrl = await listen(sts);
  s3 = createServer((req, res) => {
    s3Seen.push(req.headers);
    res.writeHead(200, { 'content-length': '0', etag: '"e"' });
    res.end();
  });
  s3Url = await listen(s3);
});
afterAll(async () => {
  await new Promise((r) => sts.close(r));
  await new Promise((r) => s3.close(r));
});
beforeEach(() => {
  seen.length = 0;
  s3Seen.length = 0;
  deny = false;
});

describe('createAssumeRoleProvider', () => {
  it('calls sts:AssumeRole with the role, session name, duration, external id and the session policy', async () => {
    const provider = createAssumeRoleProvider({
      roleArn: ROLE,
      sessionName: 'hardened-mcp-s3-read',
      durationSeconds: 900,
      policy: POLICY,
      region: 'us-east-1',
      endpoint: stsUrl,
      externalId: 'ext-123',
      baseCredentials: BASE,
    });
    try {
      const creds = await provider();
      expect(seen).toHaveLength(1);
      const p = seen[0]!.params;
      expect(p).toMatchObject({
        Action: 'AssumeRole',
        Version: '2011-06-15',
        RoleArn: ROLE,
        RoleSessionName: 'hardened-mcp-s3-read',
        DurationSeconds: '900',
        ExternalId: 'ext-123',
      });
      // exactly the generated policy, byte for byte
      expect(p.Policy).toBe(POLICY);
      expect(JSON.parse(p.Policy!).Statement[0].Resource).toEqual([
        'arn:aws:s3:::acme-reports/reports/*',
      ]);
      // signed with the base credentials
      expect(String(seen[0]!.headers.authorization)).toContain('Credential=AKIDBASEEXAMPLE/');
      expect(creds.accessKeyId).toMatch(/^ASIATESTKEY/);
      expect(creds.sessionToken).toMatch(/^temp-token-/);
      expect(creds.expiration.getTime()).toBeGreaterThan(Date.now() + 800_000);
      expect(provider.sessionArn()).toBe(
        'arn:aws:sts::123456789012:assumed-role/mcp-s3-read/hardened-mcp-s3-read',
      );
    } finally {
      provider.close();
    }
  });

  it('caches until 5 minutes before expiry, then assumes the role again; concurrent callers share one call', async () => {
    let clock = Date.now();
    const provider = createAssumeRoleProvider({
      roleArn: ROLE,
      sessionName: 's',
      durationSeconds: 900,
      policy: POLICY,
      region: 'us-east-1',
      endpoint: stsUrl,
      baseCredentials: BASE,
      now: () => clock,
    });
    try {
      const [a, b] = await Promise.all([provider(), provider()]);
      expect(seen).toHaveLength(1);
      expect(b).toBe(a);
      clock += 500_000; // 400 s left: still outside the 300 s margin
      expect(await provider()).toBe(a);
      expect(seen).toHaveLength(1);
      clock += 150_000; // 250 s left: refresh
      const c = await provider();
      expect(seen).toHaveLength(2);
      expect(c.accessKeyId).not.toBe(a.accessKeyId);
      expect(seen[1]!.params.Policy).toBe(POLICY);
    } finally {
      provider.close();
    }
  });

  it('fails with an AssumeRoleError naming the role and the STS code, not STS message text', async () => {
    deny = true;
    const provider = createAssumeRoleProvider({
      roleArn: ROLE,
      sessionName: 's',
      durationSeconds: 900,
      policy: POLICY,
      region: 'us-east-1',
      endpoint: stsUrl,
      baseCredentials: BASE,
    });
    try {
      const err = await provider().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AssumeRoleError);
      expect((err as Error).message).toBe(`sts:AssumeRole of ${ROLE} failed (AccessDenied)`);
      expect((err as Error).message).not.toContain('SECRET-DETAIL');
    } finally {
      provider.close();
    }
  });
});

describe('createS3Handle', () => {
  it('signs S3 requests with the assumed-role credentials (session token included)', async () => {
    const settings = s3SectionSchema.parse({
      endpoint: s3Url,
      forcePathStyle: true,
      stsEndpoint: stsUrl,
      buckets: [{ name: 'acme-reports', prefixes: ['reports/'] }],
      roles: { read: ROLE },
    });
    const handle = createS3Handle('read', settings, {
      sessionPolicy: POLICY,
      baseCredentials: BASE,
    });
    try {
      expect(handle.credentialSource).toBe('assume-role');
      await handle.client.send(new HeadObjectCommand({ Bucket: 'acme-reports', Key: 'reports/x' }));
      expect(seen).toHaveLength(1);
      expect(seen[0]!.params.RoleSessionName).toBe('hardened-mcp-s3-read');
      expect(seen[0]!.params.Policy).toBe(POLICY);
      expect(s3Seen).toHaveLength(1);
      expect(String(s3Seen[0]!.authorization)).toMatch(/Credential=ASIATESTKEY\d+\//);
      expect(String(s3Seen[0]!['x-amz-security-token'])).toMatch(/^temp-token-/);
    } finally {
      handle.close();
    }
  });

  it('without a role uses the base credentials directly', async () => {
    const settings = s3SectionSchema.parse({
      endpoint: s3Url,
      forcePathStyle: true,
      buckets: [{ name: 'acme-reports', prefixes: ['reports/'] }],
    });
    const handle = createS3Handle('read', settings, {
      sessionPolicy: POLICY,
      baseCredentials: BASE,
    });
    try {
      expect(handle.credentialSource).toBe('default-chain');
      await handle.client.send(new HeadObjectCommand({ Bucket: 'acme-reports', Key: 'reports/x' }));
      expect(seen).toHaveLength(0);
      expect(String(s3Seen[0]!.authorization)).toContain('Credential=AKIDBASEEXAMPLE/');
    } finally {
      handle.close();
    }
  });
});
