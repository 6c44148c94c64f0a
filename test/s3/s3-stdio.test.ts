/**
 * The built `hardened-mcp-s3` bin over stdio, driven by the MCP SDK `Client`, against a real
 * S3-compatible server (fauxqs, embedded on a random port) with the real `@aws-sdk/client-s3`.
 * Credentials come from a local fake STS (`AssumeRole` with the generated session policy); a
 * recording proxy in front of the store shows which credentials signed each request.
 */

import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSessionPolicy, serializeSessionPolicy } from '@hardened-mcp/s3';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn, waitFor } from '../support/audit.ts';
import { type ServerSession, textOf } from '../support/server.ts';
import {
  dataOf,
  type FakeSts,
  type RecordingProxy,
  runS3Bin,
  startFakeSts,
  startRecordingProxy,
  startS3Server,
  startTestStore,
  TEST_AWS_ENV,
  type TestStore,
} from './support.ts';

const BUCKET = 'acme-reports';
const OTHER = 'acme-other';
const READ_ROLE = 'arn:aws:iam::123456789012:role/mcp-s3-read';
const WRITE_ROLE = 'arn:aws:iam::123456789012:role/mcp-s3-write';
const ALLOWLIST = [{ name: BUCKET, prefixes: ['reports/'] }];

const CONTACTS = JSON.stringify(
  {
    team: 'billing',
    contacts: ['alice@example.com', 'bob.smith@example.org'],
    apiKey: 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd',
  },
  null,
  2,
);
const BIG_TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(120); // 5,400 bytes
const SMALL_BINARY = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  randomBytes(120),
]);
const LARGE_BINARY = Buffer.concat([Buffer.from([0, 0, 0]), randomBytes(10_000)]);

/**
 * Keys that percent-decode (once or repeatedly) to a `.`/`..`/empty segment, a backslash, a
 * control character or invalid UTF-8 (issue 10 §5); each must be refused before any request
 * reaches S3, as a key and as a listing prefix.
 */
const PERCENT_KEY_TRICKS: readonly string[] = [
  'reports/%2e%2e/reports-private/salaries.csv',
  'reports/%2E%2e/reports-private/salaries.csv',
  'reports/..%2freports-private/salaries.csv',
  'reports/%2e%2e%2Freports-private/salaries.csv',
  'reports/%252e%252e%252freports-private/salaries.csv',
  'reports/%25252e%25252e%25252freports-private/salaries.csv',
  'reports/%%32e%%32e/reports-private/salaries.csv',
  'reports/%2E%2e%5creports-private%5csalaries.csv',
  'reports/%2e/2024/q1.txt',
  'reports/2024%2f%2fq1.txt',
  'reports/2024/q1%00.txt',
  'reports/2024/q1%0a.txt',
  'reports/2024/q1%25250D.txt',
  'reports/%e2%80%aetxt.exe',
  'reports/%c0%ae%c0%ae/reports-private/salaries.csv',
  'reports/%ef%bc%8e%ef%bc%8e/reports-private/salaries.csv',
];

/** Every key trick from the issue; each must be refused before any request reaches S3. */
const KEY_TRICKS: readonly string[] = [
  ...PERCENT_KEY_TRICKS,
  'reports/../reports-private/salaries.csv',
  '../reports-private/salaries.csv',
  'reports/./2024/q1.txt',
  'reports//2024/q1.txt',
  '/reports/2024/q1.txt',
  'reports/',
  'reports/2024/q1\u0000.txt',
  'reports/2024/q1\n.txt',
  'reports/2024/\u007fq1.txt',
  'reports/\u202Etxt.exe',
  'reports/\u202Aa',
  'reports/\u2066a\u2069',
  'reports/\u2067a',
  'reports-private/salaries.csv',
  'reportsx/q1.txt',
  'reports\\..\\reports-private\\salaries.csv',
  'reports/\uFF0E\uFF0E/reports-private/salaries.csv',
  `reports/${'é'.repeat(600)}`,
  'reports/\uD800.txt',
];

let store: TestStore;
let sts: FakeSts;
let proxy: RecordingProxy;

beforeAll(async () => {
  store = await startTestStore();
  sts = await startFakeSts();
  proxy = await startRecordingProxy(store.endpoint);
  await store.createBucket(BUCKET);
  await store.createBucket(OTHER);
  for (let i = 1; i <= 5; i++)
    await store.put(BUCKET, `reports/2024/q${i}.txt`, `quarter ${i}\n`, 'text/plain');
  await store.put(BUCKET, 'reports/contacts.json', CONTACTS, 'application/json');
  await store.put(BUCKET, 'reports/big.txt', BIG_TEXT, 'text/plain; charset=utf-8');
  await store.put(BUCKET, 'reports/logo.png', SMALL_BINARY, 'image/png');
  await store.put(BUCKET, 'reports/archive.bin', LARGE_BINARY, 'application/octet-stream');
  await store.put(BUCKET, 'reports-private/salaries.csv', 'name,salary\nalice,1\n', 'text/csv');
  await store.put(OTHER, 'reports/other.txt', 'other bucket', 'text/plain');
});
afterAll(async () => {
  await proxy?.stop();
  await sts?.stop();
  await store?.stop();
});

function s3Config(extra: Record<string, unknown> = {}) {
  return {
    endpoint: proxy.endpoint,
    forcePathStyle: true,
    stsEndpoint: sts.endpoint,
    roles: { read: READ_ROLE, write: WRITE_ROLE },
    buckets: ALLOWLIST,
    maxObjectBytes: 1024,
    maxBinaryBytes: 2048,
    ...extra,
  };
}

/** The error code of a failed tool result (`code: message (correlation id …)`). */
function codeOf(result: unknown): string | undefined {
  return /^([a-z_]+):/.exec(textOf(result))?.[1];
}

/** The embedded resource of a binary result (MCP `EmbeddedResource`), if any. */
function blobOf(r: unknown): { uri: string; mimeType: string; blob: string } | undefined {
  const content = (r as { content?: { type: string; resource?: unknown }[] }).content ?? [];
  return content.find((c) => c.type === 'resource')?.resource as
    | { uri: string; mimeType: string; blob: string }
    | undefined;
}

describe('read-only session (assumed read role)', () => {
  let s: ServerSession;
  beforeAll(async () => {
    sts.requests.length = 0;
    s = await startS3Server({
      config: {
        identity: { principal: 'alice', roles: ['analyst'] },
        roles: { analyst: ['s3:read'] },
        s3: s3Config(),
      },
    });
  });
  afterAll(async () => s?.close());

  it('lists exactly the read tools, read-only annotations, strict schemas', async () => {
    const { tools } = await s.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      's3_get_object',
      's3_head_object',
      's3_list_buckets',
      's3_list_objects',
    ]);
    for (const t of tools) {
      expect(t.annotations).toMatchObject({
        readOnlyHint: true,
        destructiveHint: false,
        openWorldHint: false,
      });
      expect(t.inputSchema.additionalProperties).toBe(false);
    }
  });

  it('assumed only the read role, with exactly the generated read session policy', () => {
    expect(sts.requests).toHaveLength(1);
    const r = sts.requests[0]!;
    expect(r).toMatchObject({
      Action: 'AssumeRole',
      RoleArn: READ_ROLE,
      RoleSessionName: 'hardened-mcp-s3-read',
      DurationSeconds: '900',
    });
    expect(r.Policy).toBe(serializeSessionPolicy(buildSessionPolicy(ALLOWLIST, 'read')));
    expect(r.Policy).not.toMatch(/"\*"|PutObject|DeleteObject/);
    // STS itself was called with the base credentials from the environment
    expect(r.authorization).toContain(`Credential=${TEST_AWS_ENV.AWS_ACCESS_KEY_ID}/`);
  });

  it('signs every S3 request with the temporary credentials from STS', async () => {
    await s.client.callTool({ name: 's3_list_objects', arguments: { bucket: BUCKET } });
    const key = sts.accessKeyFor('hardened-mcp-s3-read');
    expect(proxy.requests.length).toBeGreaterThan(0);
    for (const r of proxy.requests) {
      expect(r.accessKeyId).toBe(key);
      expect(r.securityToken).toBe('fake-session-token-hardened-mcp-s3-read');
    }
  });

  it('s3_list_buckets reports the allowlist without calling S3', async () => {
    const before = proxy.requests.length;
    const r = await s.client.callTool({ name: 's3_list_buckets', arguments: {} });
    expect(dataOf<{ rows: unknown[][] }>(r).rows).toEqual([[BUCKET, ['reports/'], 'us-east-1']]);
    expect(proxy.requests.length).toBe(before);
  });

  it('lists with pagination (ContinuationToken as cursor) and only inside the allowed prefix', async () => {
    const keys: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await s.client.callTool({
        name: 's3_list_objects',
        arguments: {
          bucket: BUCKET,
          prefix: 'reports/2024/',
          maxKeys: 2,
          ...(cursor ? { cursor } : {}),
        },
      });
      expect(r.isError).toBeFalsy();
      const d = dataOf<{ objects: { key: string; size: number }[]; nextCursor: string | null }>(r);
      expect(d.objects.length).toBeLessThanOrEqual(2);
      keys.push(...d.objects.map((o) => o.key));
      cursor = d.nextCursor ?? undefined;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(keys).toEqual([1, 2, 3, 4, 5].map((i) => `reports/2024/q${i}.txt`));
    const listed = proxy.requests.filter((q) => q.url.includes('list-type=2'));
    expect(listed.some((q) => q.url.includes('continuation-token='))).toBe(true);

    const all = await s.client.callTool({ name: 's3_list_objects', arguments: { bucket: BUCKET } });
    const allKeys = dataOf<{ objects: { key: string }[] }>(all).objects.map((o) => o.key);
    expect(allKeys).toContain('reports/contacts.json');
    expect(allKeys.every((k) => k.startsWith('reports/'))).toBe(true);

    const folders = await s.client.callTool({
      name: 's3_list_objects',
      arguments: { bucket: BUCKET, delimiter: '/' },
    });
    expect(dataOf<{ folders: string[] }>(folders).folders).toEqual(['reports/2024/']);
  });

  it('refuses listings outside the allowlist and foreign cursors', async () => {
    const first = await s.client.callTool({
      name: 's3_list_objects',
      arguments: { bucket: BUCKET, prefix: 'reports/2024/', maxKeys: 1 },
    });
    const cursor = dataOf<{ nextCursor: string }>(first).nextCursor;
    const before = proxy.requests.length;
    for (const args of [
      { bucket: BUCKET, prefix: 'reports' },
      { bucket: BUCKET, prefix: 'reports-private/' },
      { bucket: BUCKET, prefix: 'reports/../' },
      { bucket: BUCKET, prefix: '' },
      { bucket: OTHER },
      { bucket: `arn:aws:s3:::${BUCKET}` },
    ]) {
      const r = await s.client.callTool({ name: 's3_list_objects', arguments: args });
      expect(r.isError).toBe(true);
      expect(['policy_denied', 'invalid_input']).toContain(codeOf(r));
    }
    const foreign = await s.client.callTool({
      name: 's3_list_objects',
      arguments: { bucket: BUCKET, prefix: 'reports/', cursor },
    });
    expect(codeOf(foreign)).toBe('invalid_input');
    const forged = await s.client.callTool({
      name: 's3_list_objects',
      arguments: { bucket: BUCKET, cursor: 'not-a-cursor' },
    });
    expect(codeOf(forged)).toBe('invalid_input');
    expect(proxy.requests.length).toBe(before);
  });

  it('reads text as redacted, fenced text and audits the redactions', async () => {
    const r = await s.client.callTool({
      name: 's3_get_object',
      arguments: { bucket: BUCKET, key: 'reports/contacts.json' },
    });
    expect(r.isError).toBeFalsy();
    const d = dataOf<{ encoding: string; text: string; truncated: boolean; size: number }>(r);
    expect(d).toMatchObject({ encoding: 'text', truncated: false, size: CONTACTS.length });
    expect(d.text).toContain('"team": "billing"');
    expect(d.text).toContain('[REDACTED:email]');
    expect(d.text).not.toMatch(/alice@example\.com|bob\.smith|sk-proj-/);
    const text = textOf(r);
    expect(text).toMatch(/<<<UNTRUSTED-DATA ([0-9a-f]{32})>>>[\s\S]*<<<END-UNTRUSTED-DATA \1>>>/);
    expect(text).not.toContain('alice@example.com');
    await waitFor(() =>
      auditRecordsIn(s.stderr()).some((a) => a.tool === 's3_get_object' && a.outcome === 'success'),
    );
    const rec = auditRecordsIn(s.stderr()).find(
      (a) => a.tool === 's3_get_object' && a.outcome === 'success',
    );
    expect(rec?.redactions.email).toBe(2);
    expect(rec).toMatchObject({ principal: 'alice', access: 'read' });
  });

  it('reads a byte range', async () => {
    const r = await s.client.callTool({
      name: 's3_get_object',
      arguments: { bucket: BUCKET, key: 'reports/big.txt', range: 'bytes=4-18' },
    });
    expect(dataOf(r)).toMatchObject({
      encoding: 'text',
      text: 'quick brown fox',
      range: { start: 4, end: 18 },
      returnedBytes: 15,
      truncated: false,
    });
    const suffix = await s.client.callTool({
      name: 's3_get_object',
      arguments: { bucket: BUCKET, key: 'reports/2024/q1.txt', range: 'bytes=-2' },
    });
    expect(dataOf(suffix)).toMatchObject({ text: '1\n' });
    const bad = await s.client.callTool({
      name: 's3_get_object',
      arguments: { bucket: BUCKET, key: 'reports/big.txt', range: 'bytes=99999-' },
    });
    expect(codeOf(bad)).toBe('invalid_input');
  });

  it('caps text at maxObjectBytes with truncated, requesting only the capped range from S3', async () => {
    const before = proxy.requests.length;
    const r = await s.client.callTool({
      name: 's3_get_object',
      arguments: { bucket: BUCKET, key: 'reports/big.txt' },
    });
    const d = dataOf<{ text: string; truncated: boolean; returnedBytes: number; size: number }>(r);
    expect(d.size).toBe(BIG_TEXT.length);
    expect(d.truncated).toBe(true);
    expect(d.returnedBytes).toBe(1024);
    expect(d.text).toBe(BIG_TEXT.slice(0, 1024));
    const get = proxy.requests.slice(before).find((q) => q.method === 'GET');
    expect(get?.headers.range).toBe('bytes=0-1023');
    expect(get?.headers['if-match']).toBeDefined();
  });

  it('returns small binaries as an embedded resource (never base64 text) and large ones as metadata only', async () => {
    const small = await s.client.callTool({
      name: 's3_get_object',
      arguments: { bucket: BUCKET, key: 'reports/logo.png' },
    });
    expect(small.structuredContent).toMatchObject({
      encoding: 'binary',
      contentType: 'image/png',
      mimeType: 'image/png',
      bytes: SMALL_BINARY.length,
    });
    expect(blobOf(small)).toEqual({
      uri: `s3://${BUCKET}/reports/logo.png`,
      mimeType: 'image/png',
      blob: SMALL_BINARY.toString('base64'),
    });
    // The text rendering (what a model reads as prose) carries no base64 of the content.
    expect(textOf(small)).not.toContain(SMALL_BINARY.toString('base64'));
    const before = proxy.requests.length;
    const large = await s.client.callTool({
      name: 's3_get_object',
      arguments: { bucket: BUCKET, key: 'reports/archive.bin' },
    });
    const d = dataOf<Record<string, unknown>>(large);
    expect(d).toMatchObject({ encoding: 'none', size: LARGE_BINARY.length, truncated: true });
    expect(d.base64).toBeUndefined();
    // sniffed (generic content type): at most max(text cap, binary cap) bytes were requested
    const get = proxy.requests.slice(before).find((q) => q.method === 'GET');
    expect(get?.headers.range).toBe('bytes=0-2047');
    const slice = await s.client.callTool({
      name: 's3_get_object',
      arguments: { bucket: BUCKET, key: 'reports/archive.bin', range: 'bytes=0-99' },
    });
    expect(blobOf(slice)?.blob).toBe(LARGE_BINARY.subarray(0, 100).toString('base64'));
  });

  it('describes an object', async () => {
    const r = await s.client.callTool({
      name: 's3_head_object',
      arguments: { bucket: BUCKET, key: 'reports/contacts.json' },
    });
    expect(dataOf(r)).toMatchObject({
      size: CONTACTS.length,
      contentType: 'application/json',
      etag: expect.stringMatching(/^"[0-9a-f]{32}"$/),
    });
    const missing = await s.client.callTool({
      name: 's3_head_object',
      arguments: { bucket: BUCKET, key: 'reports/nope.txt' },
    });
    expect(textOf(missing)).toMatch(/^upstream_error: the object does not exist/);
  });

  it('refuses every key trick before any request reaches S3', async () => {
    const before = proxy.requests.length;
    for (const key of KEY_TRICKS) {
      for (const name of ['s3_get_object', 's3_head_object']) {
        const r = await s.client.callTool({ name, arguments: { bucket: BUCKET, key } });
        expect(r.isError, `${name} ${JSON.stringify(key)}`).toBe(true);
        expect(codeOf(r), `${name} ${JSON.stringify(key)}`).toBe('policy_denied');
      }
    }
    for (const bucket of [OTHER, `arn:aws:s3:::${BUCKET}`, BUCKET.toUpperCase()]) {
      const r = await s.client.callTool({
        name: 's3_get_object',
        arguments: { bucket, key: 'reports/other.txt' },
      });
      expect(textOf(r)).toMatch(/^policy_denied: the bucket is not in the allowlist/);
    }
    expect(proxy.requests.length).toBe(before);
  });
});

describe('read-write session (assumed write role, approval)', () => {
  let s: ServerSession;
  const asked: string[] = [];
  let answer: 'accept' | 'decline' = 'accept';
  beforeAll(async () => {
    sts.requests.length = 0;
    s = await startS3Server({
      config: {
        mode: 'read-write',
        identity: { principal: 'bob', roles: ['writer'] },
        s3: s3Config(),
      },
      capabilities: { elicitation: {} },
    });
    s.client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(String(req.params.message));
      return answer === 'accept'
        ? { action: 'accept', content: { approve: true } }
        : { action: 'decline' };
    });
  });
  afterAll(async () => s?.close());

  it('lists the write tools with annotations derived from access', async () => {
    const { tools } = await s.client.listTools();
    expect(tools.find((t) => t.name === 's3_put_object')?.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: false,
    });
    expect(tools.find((t) => t.name === 's3_delete_object')?.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: true,
      idempotentHint: true,
    });
  });

  it('assumed the write role with exactly the generated write session policy', () => {
    const write = sts.requests.find((r) => r.RoleArn === WRITE_ROLE);
    expect(write?.RoleSessionName).toBe('hardened-mcp-s3-write');
    expect(write?.Policy).toBe(serializeSessionPolicy(buildSessionPolicy(ALLOWLIST, 'write')));
    expect(sts.requests.find((r) => r.RoleArn === READ_ROLE)?.Policy).toBe(
      serializeSessionPolicy(buildSessionPolicy(ALLOWLIST, 'read')),
    );
  });

  it('puts a new object after approval, conditionally (If-None-Match: *), with the write credentials', async () => {
    asked.length = 0;
    answer = 'accept';
    const before = proxy.requests.length;
    const r = await s.client.callTool({
      name: 's3_put_object',
      arguments: {
        bucket: BUCKET,
        key: 'reports/notes/summary.md',
        content: '# Summary\nAll good.\u202E',
        contentType: 'text/markdown; charset=utf-8',
      },
    });
    expect(r.isError).toBeFalsy();
    expect(dataOf(r)).toMatchObject({ key: 'reports/notes/summary.md', bytes: 22 });
    expect(await store.read(BUCKET, 'reports/notes/summary.md')).toBe('# Summary\nAll good.\u202E');
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain('PUT s3://acme-reports/reports/notes/summary.md');
    expect(asked[0]).toContain('refused if the object already exists');
    // the bidi override in the content is shown escaped to the human
    expect(asked[0]).toContain('\\u{202E}');
    expect(asked[0]).not.toContain('\u202E');
    const put = proxy.requests.slice(before).find((q) => q.method === 'PUT');
    expect(put?.headers['if-none-match']).toBe('*');
    expect(put?.accessKeyId).toBe(sts.accessKeyFor('hardened-mcp-s3-write'));
  });

  it('refuses to overwrite an existing object (allowOverwrite: false)', async () => {
    const r = await s.client.callTool({
      name: 's3_put_object',
      arguments: { bucket: BUCKET, key: 'reports/2024/q1.txt', content: 'overwritten' },
    });
    expect(textOf(r)).toMatch(/^policy_denied: the object already exists/);
    expect(await store.read(BUCKET, 'reports/2024/q1.txt')).toBe('quarter 1\n');
  });

  it('deletes only after approval', async () => {
    await store.put(BUCKET, 'reports/tmp/delete-me.txt', 'bye', 'text/plain');
    asked.length = 0;
    answer = 'decline';
    const declined = await s.client.callTool({
      name: 's3_delete_object',
      arguments: { bucket: BUCKET, key: 'reports/tmp/delete-me.txt' },
    });
    expect(codeOf(declined)).toBe('approval_declined');
    expect(await store.read(BUCKET, 'reports/tmp/delete-me.txt')).toBe('bye');
    answer = 'accept';
    const ok = await s.client.callTool({
      name: 's3_delete_object',
      arguments: { bucket: BUCKET, key: 'reports/tmp/delete-me.txt' },
    });
    expect(dataOf(ok)).toMatchObject({ deleted: true, existed: true });
    expect(await store.read(BUCKET, 'reports/tmp/delete-me.txt')).toBeUndefined();
    expect(asked).toHaveLength(2);
    expect(asked[1]).toContain('DELETE s3://acme-reports/reports/tmp/delete-me.txt');
    await waitFor(
      () => auditRecordsIn(s.stderr()).filter((a) => a.tool === 's3_delete_object').length >= 2,
    );
    const recs = auditRecordsIn(s.stderr()).filter((a) => a.tool === 's3_delete_object');
    expect(recs.map((a) => a.decision.approval)).toEqual(['declined', 'approved']);
  });

  it('refuses every key trick for put and delete, without asking, with the store unchanged', async () => {
    answer = 'accept';
    asked.length = 0;
    const before = { mine: await store.snapshot(BUCKET), other: await store.snapshot(OTHER) };
    const requests = proxy.requests.length;
    for (const key of KEY_TRICKS) {
      const put = await s.client.callTool({
        name: 's3_put_object',
        arguments: { bucket: BUCKET, key, content: 'pwned' },
      });
      expect(codeOf(put), `put ${JSON.stringify(key)}`).toBe('policy_denied');
      const del = await s.client.callTool({
        name: 's3_delete_object',
        arguments: { bucket: BUCKET, key },
      });
      expect(codeOf(del), `delete ${JSON.stringify(key)}`).toBe('policy_denied');
    }
    for (const bucket of [OTHER, `arn:aws:s3:::${OTHER}`]) {
      const del = await s.client.callTool({
        name: 's3_delete_object',
        arguments: { bucket, key: 'reports/other.txt' },
      });
      expect(codeOf(del)).toBe('policy_denied');
    }
    expect(asked).toHaveLength(0);
    expect(proxy.requests.length).toBe(requests);
    expect(await store.snapshot(BUCKET)).toEqual(before.mine);
    expect(await store.snapshot(OTHER)).toEqual(before.other);
  });

  it('refuses content over maxObjectBytes', async () => {
    const r = await s.client.callTool({
      name: 's3_put_object',
      arguments: { bucket: BUCKET, key: 'reports/too-big.txt', content: 'é'.repeat(600) },
    });
    expect(codeOf(r)).toBe('limit_exceeded');
    expect(await store.read(BUCKET, 'reports/too-big.txt')).toBeUndefined();
  });
});

describe('without roles: the default provider chain (warned), and presigned URLs', () => {
  it('warns at startup, signs with the base credentials, and presigns within the maximum expiry', async () => {
    const stsCalls = sts.requests.length;
    const s = await startS3Server({
      config: {
        s3: {
          endpoint: store.endpoint,
          forcePathStyle: true,
          buckets: ALLOWLIST,
          presign: { enabled: true, maxExpiresSeconds: 120 },
        },
      },
    });
    try {
      expect(s.stderr()).toMatch(
        /no s3\.roles\.read configured: the read tools use the AWS default credential provider chain WITHOUT a session policy/,
      );
      expect(sts.requests.length).toBe(stsCalls);
      const tooLong = await s.client.callTool({
        name: 's3_presign_get',
        arguments: { bucket: BUCKET, key: 'reports/2024/q2.txt', expiresSeconds: 3600 },
      });
      expect(codeOf(tooLong)).toBe('invalid_input');
      const trick = await s.client.callTool({
        name: 's3_presign_get',
        arguments: {
          bucket: BUCKET,
          key: 'reports/../reports-private/salaries.csv',
          expiresSeconds: 60,
        },
      });
      expect(codeOf(trick)).toBe('policy_denied');
      const r = await s.client.callTool({
        name: 's3_presign_get',
        arguments: { bucket: BUCKET, key: 'reports/2024/q2.txt', expiresSeconds: 60 },
      });
      const { url } = dataOf<{ url: string }>(r);
      const u = new URL(url);
      expect(u.pathname).toBe('/acme-reports/reports/2024/q2.txt');
      expect(u.searchParams.get('X-Amz-Expires')).toBe('60');
      expect(u.searchParams.get('X-Amz-Credential')).toMatch(/^test-base-key\//);
      const res = await fetch(url);
      expect(await res.text()).toBe('quarter 2\n');
    } finally {
      await s.close();
    }
  });
});

describe('presigned URLs signed with AWS-shaped temporary keys', () => {
  it('returns the URL intact (a declared bearer field), redacts the same key elsewhere, and audits only its digest', async () => {
    // ASIA…: the shape of an STS temporary access key id, which the redactor always catches.
    const keyId = 'ASIAQ3EGQ7EXAMPLE2AB';
    const sessionToken = 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQEXAMPLEtoken';
    const s = await startS3Server({
      config: {
        s3: {
          endpoint: store.endpoint,
          forcePathStyle: true,
          buckets: ALLOWLIST,
          presign: { enabled: true, maxExpiresSeconds: 120 },
        },
      },
      env: {
        AWS_ACCESS_KEY_ID: keyId,
        AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
        AWS_SESSION_TOKEN: sessionToken,
      },
    });
    try {
      const r = await s.client.callTool({
        name: 's3_presign_get',
        arguments: { bucket: BUCKET, key: 'reports/2024/q2.txt', expiresSeconds: 60 },
      });
      const { url } = dataOf<{ url: string }>(r);
      const u = new URL(url);
      expect(u.searchParams.get('X-Amz-Credential')).toMatch(new RegExp(`^${keyId}/`));
      expect(u.searchParams.get('X-Amz-Security-Token')).toBe(sessionToken);
      expect(await (await fetch(url)).text()).toBe('quarter 2\n');
      // The audit record says a bearer credential was issued, by digest, never its value.
      const record = s
        .stderr()
        .split('\n')
        .filter((l) => l.includes('"tool":"s3_presign_get"'))
        .map((l) => JSON.parse(l) as { bearerCredential?: { field: string; sha256: string } })
        .at(-1);
      expect(record?.bearerCredential).toEqual({
        field: 'url',
        sha256: createHash('sha256').update(url).digest('hex'),
      });
      expect(s.stderr()).not.toContain(keyId);
      expect(s.stderr()).not.toContain(sessionToken);
    } finally {
      await s.close();
    }
  });
});

describe('temporary credentials the connector obtains itself', () => {
  it('are registered with the redactor: an upstream error echoing the STS session token leaks it nowhere', async () => {
    // An S3 endpoint that refuses every request and echoes the caller's session token back, as
    // a misbehaving proxy or a verbose error page might.
    const echo = createServer((req, res) => {
      const token = String(req.headers['x-amz-security-token'] ?? '');
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(
        `<Error><Code>AccessDenied</Code><Message>session ${token} is not allowed</Message><RequestId>1</RequestId></Error>`,
      );
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    const s = await startS3Server({ config: { s3: s3Config({ endpoint }) } });
    try {
      const r = await s.client.callTool({
        name: 's3_get_object',
        arguments: { bucket: BUCKET, key: 'reports/2024/q2.txt' },
      });
      expect(codeOf(r)).toBe('forbidden');
      // The fake STS hands out fake-session-token-<session name> and fake-secret-<session name>.
      for (const leak of ['fake-session-token-', 'fake-secret-']) {
        expect(JSON.stringify(r)).not.toContain(leak);
        expect(s.stderr()).not.toContain(leak);
      }
    } finally {
      await s.close();
      echo.closeAllConnections();
      await new Promise((r) => echo.close(r));
    }
  });
});

describe('listing cursors are sealed', () => {
  // Keys with e-mail addresses, in a bucket and prefix of their own so the other suites' listings
  // are unchanged. A 1 KiB output cap makes every page stop after one object, so the cursor must
  // carry the last key (StartAfter): the old base64url cursor gave it back intact.
  const PEOPLE = ['people/ana.lopez@example.com.csv', 'people/bob.smith@example.org.csv'];
  let s: ServerSession;
  beforeAll(async () => {
    // Different sizes tell the two pages apart once both keys are redacted.
    for (const [i, key] of PEOPLE.entries())
      await store.put(OTHER, key, 'x'.repeat(i + 1), 'text/csv');
    s = await startS3Server({
      config: {
        identity: { principal: 'alice', roles: ['analyst'] },
        roles: { analyst: ['s3:read'] },
        output: { maxBytes: 1024 },
        s3: s3Config({ buckets: [{ name: OTHER, prefixes: ['people/'] }] }),
      },
    });
  });
  afterAll(async () => s?.close());

  it('redacts an e-mail in a key and the cursor does not give it back when decoded', async () => {
    const first = await s.client.callTool({
      name: 's3_list_objects',
      arguments: { bucket: OTHER },
    });
    expect(first.isError).toBeFalsy();
    type Page = { objects: { key: string; size: number }[]; nextCursor: string | null };
    const page = dataOf<Page>(first);
    expect(page.objects).toHaveLength(1);
    expect(page.objects[0]?.key).toContain('[REDACTED:email]');
    const cursor = page.nextCursor;
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    for (const decoded of [
      cursor ?? '',
      Buffer.from(cursor ?? '', 'base64url').toString('utf8'),
      Buffer.from(cursor ?? '', 'base64url').toString('latin1'),
    ]) {
      expect(decoded).not.toMatch(/ana\.lopez|example\.com|people\//);
    }
    expect(textOf(first)).not.toMatch(/ana\.lopez@example\.com/);

    // The sealed cursor still pages: the second page holds the other key.
    const second = await s.client.callTool({
      name: 's3_list_objects',
      arguments: { bucket: OTHER, cursor },
    });
    expect(second.isError).toBeFalsy();
    const next = dataOf<Page>(second);
    expect(next.objects).toHaveLength(1);
    expect(next.objects[0]?.key).toMatch(/^people\/.*\[REDACTED:email\]/);
    expect([page.objects[0]?.size, next.objects[0]?.size]).toEqual([1, 2]);
    expect(next.nextCursor).toBeNull();

    // A cursor of the old, readable format is refused before any request reaches S3.
    const before = proxy.requests.length;
    const old = Buffer.from(
      JSON.stringify({ v: 1, b: OTHER, p: 'people/', a: PEOPLE[0] }),
      'utf8',
    ).toString('base64url');
    const refused = await s.client.callTool({
      name: 's3_list_objects',
      arguments: { bucket: OTHER, cursor: old },
    });
    expect(codeOf(refused)).toBe('invalid_input');
    expect(proxy.requests.length).toBe(before);
  });
});

describe('startup checks', () => {
  it('refuses an empty allowlist, the credentials section, and wildcard prefixes', async () => {
    const [empty, creds, wildcard] = await Promise.all([
      runS3Bin({ s3: { endpoint: store.endpoint } }, TEST_AWS_ENV),
      runS3Bin(
        { credentials: { read: { env: 'AWS_ACCESS_KEY_ID' } }, s3: { buckets: ALLOWLIST } },
        TEST_AWS_ENV,
      ),
      runS3Bin({ s3: { buckets: [{ name: BUCKET, prefixes: ['re*/'] }] } }, TEST_AWS_ENV),
    ]);
    expect(empty).toMatchObject({ code: 1 });
    expect(empty.stderr).toMatch(/s3\.buckets is empty/);
    expect(creds).toMatchObject({ code: 1 });
    expect(creds.stderr).toMatch(/obtains its own credentials: remove the credentials section/);
    expect(wildcard).toMatchObject({ code: 1 });
    expect(wildcard.stderr).toMatch(
      /invalid configuration: s3\.buckets\.0\.prefixes\.0: prefix must not contain \*/,
    );
  });
});

describe('keys that percent-decode to traversal (issue 10 §5)', () => {
  // Objects written by others (straight to the store, not through the server) under a prefix of
  // their own, so the other suites' listings are unchanged.
  const WRITTEN_BY_OTHERS = [
    'odd/%2e%2e/salaries.csv',
    'odd/%252e%252e%252fsalaries.csv',
    'odd/a%2f%2fb.txt',
    'odd/%c0%ae%c0%ae/x.txt',
    'odd/%2E%2E%5Cx.txt',
  ];
  const HONEST = ['odd/100%25-done.txt', 'odd/50% off.txt', 'odd/plain.txt'];
  let s: ServerSession;
  beforeAll(async () => {
    for (const key of [...WRITTEN_BY_OTHERS, ...HONEST, 'odd/%2e%2e%2fdir/y.txt'])
      await store.put(OTHER, key, 'x', 'text/plain');
    s = await startS3Server({
      config: {
        identity: { principal: 'alice', roles: ['analyst'] },
        roles: { analyst: ['s3:read'] },
        s3: s3Config({
          buckets: [...ALLOWLIST, { name: OTHER, prefixes: ['odd/'] }],
          presign: { enabled: true, maxExpiresSeconds: 120 },
        }),
      },
    });
  });
  afterAll(async () => s?.close());

  it('refuses every spelling as a key (get, head, presign) and as a listing prefix, with no request to S3', async () => {
    const before = proxy.requests.length;
    for (const key of PERCENT_KEY_TRICKS) {
      for (const [name, extra] of [
        ['s3_get_object', {}],
        ['s3_head_object', {}],
        ['s3_presign_get', { expiresSeconds: 60 }],
      ] as const) {
        const r = await s.client.callTool({ name, arguments: { bucket: BUCKET, key, ...extra } });
        expect(codeOf(r), `${name} ${JSON.stringify(key)}`).toBe('policy_denied');
        expect(textOf(r)).toMatch(/percent-decode/);
        expect(textOf(r)).not.toContain(key);
      }
      const list = await s.client.callTool({
        name: 's3_list_objects',
        arguments: { bucket: BUCKET, prefix: key },
      });
      expect(codeOf(list), `list ${JSON.stringify(key)}`).toBe('policy_denied');
    }
    for (const prefix of ['reports/%2e%2e/', 'reports/%252e%252e%252f', 'reports/a%2f%2f']) {
      const r = await s.client.callTool({
        name: 's3_list_objects',
        arguments: { bucket: BUCKET, prefix, delimiter: '/' },
      });
      expect(codeOf(r), `list ${JSON.stringify(prefix)}`).toBe('policy_denied');
    }
    expect(proxy.requests.length).toBe(before);
  });

  it('reads honest keys with a literal %, sent to S3 as written', async () => {
    for (const key of HONEST) {
      const r = await s.client.callTool({
        name: 's3_get_object',
        arguments: { bucket: OTHER, key },
      });
      expect(r.isError, key).toBeFalsy();
      expect(textOf(r)).toContain('x');
    }
  });

  it('withholds listed keys and folders written by others that decode to traversal', async () => {
    type Entry = { key: string | null; size: number; withheld?: string };
    const r = await s.client.callTool({ name: 's3_list_objects', arguments: { bucket: OTHER } });
    expect(r.isError).toBeFalsy();
    const objects = dataOf<{ objects: Entry[] }>(r).objects;
    const shown = objects.flatMap((o) => (o.key === null ? [] : [o.key]));
    expect(shown.sort()).toEqual([...HONEST].sort());
    const withheld = objects.filter((o) => o.key === null);
    expect(withheld).toHaveLength(WRITTEN_BY_OTHERS.length + 1);
    for (const o of withheld) {
      expect(o.withheld).toMatch(/percent-decode/);
      expect(o.size).toBe(1);
    }
    // Nothing listed decodes to a traversal, however often it is decoded.
    const text = textOf(r);
    for (const key of WRITTEN_BY_OTHERS) expect(text).not.toContain(key);
    for (let decoded = text, i = 0; i < 4; i++) {
      decoded = decoded.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
        try {
          return decodeURIComponent(run);
        } catch {
          return run;
        }
      });
      expect(decoded).not.toMatch(/odd\/[^"]*\.\.|odd\/a\/\/b/);
    }

    const folders = await s.client.callTool({
      name: 's3_list_objects',
      arguments: { bucket: OTHER, delimiter: '/' },
    });
    const d = dataOf<{ folders: string[]; withheldFolders?: number; objects: Entry[] }>(folders);
    expect(d.folders).toEqual([]);
    // `odd/%2e%2e/`, `odd/%c0%ae%c0%ae/` and `odd/%2e%2e%2fdir/` are folders under the
    // delimiter: all withheld; the keys directly under `odd/` are listed or withheld as above.
    expect(d.withheldFolders).toBe(3);
    expect(d.objects.filter((o) => o.key !== null)).toHaveLength(HONEST.length);
    expect(d.objects.filter((o) => o.key === null)).toHaveLength(3);
    expect(textOf(folders)).not.toMatch(/%2e%2e|%c0%ae/i);
  });
});
