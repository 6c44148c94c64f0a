/**
 * The S3 server's container image (servers/s3/Dockerfile) through the shared image check
 * (image-check.ts), against a real S3-compatible server (fauxqs, embedded on a random port) and
 * a local STS (test/s3). The configuration is a file mounted read-only at
 * /etc/hardened-mcp/config.yaml that points `s3.endpoint` at fauxqs and `s3.stsEndpoint` at the
 * fake STS, with a read role; the base AWS credentials that sign `AssumeRole` come from the
 * environment (`-e NAME`, the value in podman's environment, never on its command line; the
 * shared check proves both, and that none is baked into the image).
 * S3-specific: the read credentials come from `AssumeRole` with the read role, signed with the
 * base credentials; `s3_list_objects` lists the allowed prefix.
 */
import { expect, it } from 'vitest';
import {
  dataOf,
  type FakeSts,
  startFakeSts,
  startTestStore,
  TEST_AWS_ENV,
  type TestStore,
} from '../s3/support.ts';
import { textOf } from '../support/server.ts';
import { CONFIG_IN_CONTAINER, describeImageCheck, httpServiceConfig } from './image-check.ts';
import { urlFromContainer } from './podman.ts';

const BUCKET = 'acme-reports';
const READ_ROLE = 'arn:aws:iam::123456789012:role/mcp-s3-read';
const DOCUMENT_KEY = 'reports/contacts.json';
const DOCUMENT = JSON.stringify(
  { team: 'billing', contacts: ['alice@example.com', 'bob.smith@example.org'] },
  null,
  2,
);

/** The server's S3 section, with the endpoints as the container reaches them. */
function s3Config(endpoint: string, stsEndpoint: string): string[] {
  return [
    's3:',
    '  region: us-east-1',
    `  endpoint: ${endpoint}`,
    '  forcePathStyle: true',
    `  stsEndpoint: ${stsEndpoint}`,
    `  roles: { read: ${READ_ROLE} }`,
    `  buckets: [{ name: ${BUCKET}, prefixes: [reports/] }]`,
  ];
}

describeImageCheck<{ store: TestStore; sts?: FakeSts }>({
  server: 's3',
  describes: 'S3',
  tools: ['s3_get_object', 's3_head_object', 's3_list_buckets', 's3_list_objects'],
  // The metadata service is off: the default provider chain stops at the environment.
  env: { ...TEST_AWS_ENV, AWS_EC2_METADATA_DISABLED: 'true' },
  credentialEnv: /^AWS_/,
  start: async () => {
    const store = await startTestStore();
    try {
      const sts = await startFakeSts();
      await store.createBucket(BUCKET);
      await store.put(BUCKET, DOCUMENT_KEY, DOCUMENT, 'application/json');
      await store.put(BUCKET, 'reports/2024/q1.txt', 'quarter 1\n', 'text/plain');
      return { store, sts };
    } catch (err) {
      await store.stop();
      throw err;
    }
  },
  stop: async ({ store, sts }) => {
    await sts?.stop();
    await store.stop();
  },
  // The container shares the host's network: 127.0.0.1 is ours. The file holds no secret.
  stdio: async ({ store, sts }, files) => {
    if (!sts) throw new Error('no STS');
    const config = files.config(
      'config.yaml',
      `${s3Config(store.endpoint, sts.endpoint).join('\n')}\n`,
    );
    return { flags: ['-v', `${config}:${CONFIG_IN_CONTAINER}:ro`] };
  },
  http: async ({ store, sts }, files, apiKeySha256, publishedPort) => {
    if (!sts) throw new Error('no STS');
    const principal = 'image-check';
    const config = files.config(
      'config-http.yaml',
      `${[
        ...s3Config(urlFromContainer(store.endpoint), urlFromContainer(sts.endpoint)),
        ...httpServiceConfig(apiKeySha256, principal, publishedPort),
      ].join('\n')}\n`,
    );
    return { principal, flags: ['-v', `${config}:${CONFIG_IN_CONTAINER}:ro`] };
  },
  readCall: {
    name: 's3_get_object',
    arguments: { bucket: BUCKET, key: DOCUMENT_KEY },
    verify: (r) => {
      const doc = dataOf<{ encoding: string; text: string }>(r);
      expect(doc.encoding).toBe('text');
      expect(doc.text).toContain('"team": "billing"');
      expect(doc.text).toContain('[REDACTED:email]');
    },
    pii: /alice@example\.com|bob\.smith@example\.org/,
    redactions: { email: 2 },
  },
  // The S3 black-box tests' store is a dev dependency of the test package only.
  extraDevPackages: ['fauxqs'],
  extra: (ctx) => {
    it('over stdio, assumes the read role with the base credentials from -e, and lists the allowed prefix', async () => {
      const sts = ctx.upstream.sts;
      if (!sts) throw new Error('no STS');
      const stsCalls = sts.requests.length;
      const session = await ctx.connectStdio();
      try {
        // The read credentials came from AssumeRole with the read role, signed with the base
        // credentials passed in with `-e`.
        const assumed = sts.requests.slice(stsCalls);
        expect(assumed).toHaveLength(1);
        expect(assumed[0]).toMatchObject({ Action: 'AssumeRole', RoleArn: READ_ROLE });
        expect(assumed[0]?.authorization).toContain(
          `Credential=${TEST_AWS_ENV.AWS_ACCESS_KEY_ID}/`,
        );

        const listed = await session.client.callTool({
          name: 's3_list_objects',
          arguments: { bucket: BUCKET },
        });
        expect(listed.isError, textOf(listed)).toBeFalsy();
        expect(
          dataOf<{ objects: { key: string }[] }>(listed)
            .objects.map((o) => o.key)
            .sort(),
        ).toEqual(['reports/2024/q1.txt', DOCUMENT_KEY]);
        expect(session.protocolErrors).toEqual([]);
      } finally {
        await session.close();
      }
    });
  },
});
