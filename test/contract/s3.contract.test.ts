/**
 * The shared connector contract (test kit) against the built `hardened-mcp-s3` bin over stdio,
 * with a real S3-compatible store (fauxqs) and the AWS SDK's default credential chain.
 */
import { configArgs, describeConnectorContract } from '@hardened-mcp/test-kit/contract';
import { afterAll, beforeAll } from 'vitest';
import {
  S3_BIN,
  startS3Server,
  startTestStore,
  TEST_AWS_ENV,
  type TestStore,
} from '../s3/support.ts';

const BUCKET = 'contract-bucket';
const PII = 'maria.jensen@example.com';
let store: TestStore;
beforeAll(async () => {
  store = await startTestStore();
  await store.createBucket(BUCKET);
  await store.put(BUCKET, 'docs/contact.txt', `Contact: ${PII}\n`, 'text/plain');
});
afterAll(async () => store?.stop());

const config = (mode: string) => ({
  mode,
  identity: { principal: 'contract', roles: ['writer'] },
  s3: {
    endpoint: store.endpoint,
    forcePathStyle: true,
    buckets: [{ name: BUCKET, prefixes: ['docs/'] }],
  },
});

describeConnectorContract({
  connector: 's3',
  start: ({ mode, capabilities }) => startS3Server({ config: config(mode), capabilities }),
  rawCommand: async () => ({
    args: [S3_BIN, ...configArgs(config('read-only'))],
    env: { HOME: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true', ...TEST_AWS_ENV },
  }),
  readCall: {
    name: 's3_get_object',
    arguments: { bucket: BUCKET, key: 'docs/contact.txt' },
    pii: PII,
  },
  failingCall: { name: 's3_get_object', arguments: { bucket: BUCKET, key: 'docs/missing.txt' } },
  writeCall: {
    name: 's3_put_object',
    arguments: {
      bucket: BUCKET,
      key: 'docs/contract.txt',
      content: 'written by the contract suite',
    },
    unchanged: async () => (await store.read(BUCKET, 'docs/contract.txt')) === undefined,
  },
});
