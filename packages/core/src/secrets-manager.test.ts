/**
 * The Secrets Manager credential source, driven through the real AWS SDK client against the test
 * kit's local Secrets Manager (real JSON protocol, endpoint override, fake static credentials
 * from the environment, i.e. the SDK's default chain).
 */
import { inspect } from 'node:util';
import { type FakeSecretsManager, startFakeSecretsManager } from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { credentialSourceSchema, parseConfig, secretsManagerSourceSchema } from './config.js';
import { loadCredentials, Secret, secretFragments } from './credentials.js';
import { StartupError } from './errors.js';
import { createRedactor } from './redaction/index.js';
import {
  CredentialError,
  openSecretsManagerCredential,
  SecretsManagerCredential,
  type SecretsManagerCredentialOptions,
} from './secrets-manager.js';

const PASSWORD_1 = 'Rot4te-Me-Pa55word-One';
const PASSWORD_2 = 'Rot4te-Me-Pa55word-Two';
const url = (password: string) => `postgres://app:${password}@db.internal:5432/prod`;

let sm: FakeSecretsManager;
const savedEnv: Record<string, string | undefined> = {};
let n = 0;
/** A fresh secret name per test. */
const name = () => `hmcp/test/secret-${++n}`;

beforeAll(async () => {
  sm = await startFakeSecretsManager();
  for (const [k, v] of Object.entries(sm.env)) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await sm?.close();
});

/** A manual clock. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function credential(
  secretId: string,
  extra: Partial<Parameters<typeof openSecretsManagerCredential>[0]> = {},
  options: SecretsManagerCredentialOptions = {},
) {
  return new SecretsManagerCredential(
    { secretId, endpoint: sm.endpoint, region: sm.region, ...extra },
    { clientConfig: { maxAttempts: 1 }, ...options },
  );
}

/** Resolves once the background fetch started by `current()` has landed (or failed). */
async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 10));
}

/** The rejection of `p`, which must reject. */
async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

/** Every rendering of an error a log line or a client could see. */
function renderings(err: Error): string {
  return [
    err.message,
    String(err),
    inspect(err, { depth: 10 }),
    JSON.stringify(err),
    err.stack ?? '',
  ].join('\n');
}

describe('fetching', () => {
  it('fetches AWSCURRENT through the real SDK client with the default credential chain', async () => {
    const id = name();
    sm.putSecret(id, url(PASSWORD_1));
    const before = sm.requests.length;
    const c = await openSecretsManagerCredential({
      secretId: id,
      endpoint: sm.endpoint,
      region: sm.region,
    });
    expect(c.current()).toBeInstanceOf(Secret);
    expect(c.current().reveal()).toBe(url(PASSWORD_1));
    expect(c.source).toBe(`secretsManager ${id}`);
    expect(c.current().source).toBe(`secretsManager ${id}`);
    const [req] = sm.requests.slice(before);
    expect(req).toMatchObject({
      target: 'secretsmanager.GetSecretValue',
      secretId: id,
      versionStage: 'AWSCURRENT',
      accessKeyId: sm.credentials.accessKeyId,
      status: 200,
    });
    expect(sm.requestCount(id)).toBe(1);
    expect(c.fetches).toBe(1);
  });

  it('accepts the ARN as secretId', async () => {
    const id = name();
    const { arn } = sm.putSecret(id, 'by-arn-value-123');
    const c = credential(arn);
    expect((await c.get()).reveal()).toBe('by-arn-value-123');
  });

  it('never prints the value through the handle', async () => {
    const id = name();
    sm.putSecret(id, url(PASSWORD_1));
    const c = credential(id);
    await c.get();
    const text = [
      String(c),
      JSON.stringify(c),
      inspect(c, { depth: 10, showHidden: true }),
      JSON.stringify({ c, v: c.current() }),
      inspect(c.current()),
    ].join('\n');
    expect(text).not.toContain(PASSWORD_1);
    expect(text).not.toContain('db.internal');
  });

  it('reads the version of another staging label (versionStage)', async () => {
    const id = name();
    sm.putSecret(id, 'the-current-value-1');
    sm.putSecret(id, 'the-pending-value-2', { stages: ['AWSPENDING'] });
    const current = credential(id);
    const pending = credential(id, { versionStage: 'AWSPENDING' });
    expect((await current.get()).reveal()).toBe('the-current-value-1');
    expect((await pending.get()).reveal()).toBe('the-pending-value-2');
    expect(pending.source).toBe(`secretsManager ${id} stage AWSPENDING`);
    expect(sm.requests.filter((r) => r.secretId === id).map((r) => r.versionStage)).toEqual([
      'AWSCURRENT',
      'AWSPENDING',
    ]);
    // After rotation, AWSPREVIOUS names the old value.
    sm.putSecret(id, 'the-next-value-3');
    const previous = credential(id, { versionStage: 'AWSPREVIOUS' });
    expect((await previous.get()).reveal()).toBe('the-current-value-1');
  });

  it('SDK retries of a transient AWS error count as one fetch', async () => {
    const id = name();
    sm.putSecret(id, 'after-a-retry-value');
    sm.failRequests(id, { status: 500, type: 'InternalServiceError', times: 1 });
    const c = credential(id, {}, { clientConfig: { maxAttempts: 2 } });
    expect((await c.get()).reveal()).toBe('after-a-retry-value');
    expect(sm.requestCount(id)).toBe(2);
    expect(c.fetches).toBe(1);
  });
});

describe('jsonKey', () => {
  const doc = {
    engine: 'postgres',
    host: 'db.internal',
    username: 'app',
    password: PASSWORD_1,
    url: url(PASSWORD_1),
  };

  it('picks a string field of a JSON SecretString', async () => {
    const id = name();
    sm.putSecret(id, JSON.stringify(doc));
    const c = credential(id, { jsonKey: 'url' });
    expect((await c.get()).reveal()).toBe(url(PASSWORD_1));
    expect(c.source).toBe(`secretsManager ${id} key url`);
  });

  it('hands the picked value, the whole SecretString and secret-looking fields to onSecret', async () => {
    const id = name();
    sm.putSecret(id, JSON.stringify(doc));
    const seen: Secret[] = [];
    const c = credential(id, { jsonKey: 'url' }, { onSecret: (s) => seen.push(s) });
    await c.get();
    expect(seen.map((s) => s.reveal())).toEqual([url(PASSWORD_1), JSON.stringify(doc), PASSWORD_1]);
    expect(seen[0]).toBe(c.current());
  });

  it.each([
    ['not JSON', url(PASSWORD_1), /the SecretString is not JSON \(jsonKey is set\)$/],
    ['a JSON array', JSON.stringify([PASSWORD_1]), /the SecretString is not a JSON object$/],
    [
      'no such field',
      JSON.stringify({ password: PASSWORD_1 }),
      /the SecretString has no non-empty string field "url"$/,
    ],
    [
      'a non-string field',
      JSON.stringify({ url: 12345678, password: PASSWORD_1 }),
      /the SecretString has no non-empty string field "url"$/,
    ],
    [
      'an empty field',
      JSON.stringify({ url: '', password: PASSWORD_1 }),
      /the SecretString has no non-empty string field "url"$/,
    ],
  ])('refuses %s without quoting the value', async (_what, value, message) => {
    const id = name();
    sm.putSecret(id, value);
    const err = await rejectionOf(credential(id, { jsonKey: 'url' }).get());
    expect(err).toBeInstanceOf(CredentialError);
    expect(err.message).toMatch(message);
    expect(renderings(err)).not.toContain(PASSWORD_1);
    expect(renderings(err)).not.toContain('postgres:');
  });
});

describe('cache and TTL', () => {
  it('serves the cached value within the TTL and fetches again after it', async () => {
    const id = name();
    sm.putSecret(id, 'ttl-value-number-1');
    const t = clock();
    const c = credential(id, { ttlSeconds: 60 }, { now: t.now });
    expect((await c.get()).reveal()).toBe('ttl-value-number-1');
    sm.putSecret(id, 'ttl-value-number-2');
    t.advance(59_000);
    expect((await c.get()).reveal()).toBe('ttl-value-number-1');
    expect(c.current().reveal()).toBe('ttl-value-number-1');
    expect(sm.requestCount(id)).toBe(1);
    t.advance(1_000);
    expect((await c.get()).reveal()).toBe('ttl-value-number-2');
    expect(sm.requestCount(id)).toBe(2);
  });

  it('defaults to a 300 s TTL', async () => {
    const id = name();
    sm.putSecret(id, 'default-ttl-value-1');
    const t = clock();
    const c = credential(id, {}, { now: t.now });
    await c.get();
    t.advance(299_999);
    await c.get();
    expect(sm.requestCount(id)).toBe(1);
    t.advance(1);
    await c.get();
    expect(sm.requestCount(id)).toBe(2);
  });

  it('current() is synchronous: past the TTL it returns the old value and fetches in the background', async () => {
    const id = name();
    sm.putSecret(id, 'background-value-1');
    const t = clock();
    const c = credential(id, { ttlSeconds: 10 }, { now: t.now });
    await c.get();
    sm.putSecret(id, 'background-value-2');
    t.advance(10_000);
    expect(c.current().reveal()).toBe('background-value-1');
    expect(c.current().reveal()).toBe('background-value-1'); // one fetch in flight, not two
    await settle();
    expect(c.current().reveal()).toBe('background-value-2');
    expect(sm.requestCount(id)).toBe(2);
  });

  it('concurrent get() calls share one request', async () => {
    const id = name();
    sm.putSecret(id, 'shared-fetch-value');
    const c = credential(id);
    const values = await Promise.all(Array.from({ length: 8 }, () => c.get()));
    expect(new Set(values).size).toBe(1);
    expect(sm.requestCount(id)).toBe(1);
  });

  it('invalidate() makes the next get() fetch', async () => {
    const id = name();
    sm.putSecret(id, 'invalidate-value-1');
    const c = credential(id);
    await c.get();
    await c.get();
    expect(sm.requestCount(id)).toBe(1);
    sm.putSecret(id, 'invalidate-value-2');
    c.invalidate();
    expect(c.current().reveal()).toBe('invalidate-value-1');
    expect((await c.get()).reveal()).toBe('invalidate-value-2');
    expect(await c.get()).toBe(c.current());
    expect(sm.requestCount(id)).toBe(2);
  });

  it('current() before the first fetch is an error', () => {
    expect(() => credential(name()).current()).toThrow(CredentialError);
  });
});

describe('refresh()', () => {
  it('fetches again, once for concurrent callers', async () => {
    const id = name();
    sm.putSecret(id, 'refresh-value-1');
    const t = clock();
    const c = credential(id, {}, { now: t.now });
    await c.get();
    sm.putSecret(id, 'refresh-value-2');
    t.advance(5_000);
    const values = await Promise.all(Array.from({ length: 5 }, () => c.refresh()));
    expect(values.map((v) => v.reveal())).toEqual(Array(5).fill('refresh-value-2'));
    expect(sm.requestCount(id)).toBe(2);
    expect(c.current().reveal()).toBe('refresh-value-2');
  });

  it('fetches at once after a recent fetch, but not again within a second of finding the value unchanged', async () => {
    const id = name();
    sm.putSecret(id, 'floor-value-1');
    const t = clock();
    const c = credential(id, {}, { now: t.now });
    await c.get();
    sm.putSecret(id, 'floor-value-2');
    expect((await c.refresh()).reveal()).toBe('floor-value-2'); // right after a fetch
    expect(sm.requestCount(id)).toBe(2);
    expect((await c.refresh()).reveal()).toBe('floor-value-2'); // unchanged
    expect(sm.requestCount(id)).toBe(3);
    sm.putSecret(id, 'floor-value-3');
    t.advance(999);
    expect((await c.refresh()).reveal()).toBe('floor-value-2'); // no request
    expect(sm.requestCount(id)).toBe(3);
    t.advance(1);
    expect((await c.refresh()).reveal()).toBe('floor-value-3');
    expect(sm.requestCount(id)).toBe(4);
  });

  it('a failed refresh rejects with a secret-free error and keeps the value in hand', async () => {
    const id = name();
    sm.putSecret(id, url(PASSWORD_1));
    const c = credential(id);
    await c.get();
    sm.failRequests(id, { status: 400, type: 'AccessDeniedException', message: 'nope' });
    const err = await rejectionOf(c.refresh());
    expect(err).toBeInstanceOf(CredentialError);
    expect(err.message).toBe(
      `cannot fetch secretsManager ${id}: AccessDeniedException (HTTP 400): access denied`,
    );
    expect(renderings(err)).not.toContain(PASSWORD_1);
    expect(c.current().reveal()).toBe(url(PASSWORD_1));
    sm.failRequests(id, undefined);
  });

  it('a failed background fetch is reported once and retried after a pause', async () => {
    const id = name();
    sm.putSecret(id, 'background-fail-1');
    const t = clock();
    const errors: Error[] = [];
    const c = credential(
      id,
      { ttlSeconds: 60 },
      { now: t.now, onRefreshError: (e) => errors.push(e) },
    );
    await c.get();
    sm.failRequests(id, { status: 500, type: 'InternalServiceError' });
    t.advance(60_000);
    expect(c.current().reveal()).toBe('background-fail-1');
    await settle();
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/InternalServiceError \(HTTP 500\)$/);
    c.current();
    await settle();
    expect(sm.requestCount(id)).toBe(2); // paused
    sm.failRequests(id, undefined);
    sm.putSecret(id, 'background-fail-2');
    t.advance(30_000);
    c.current();
    await settle();
    expect(c.current().reveal()).toBe('background-fail-2');
    expect(errors).toHaveLength(1);
  });
});

describe('errors', () => {
  it.each([
    [
      'an unknown secret',
      (id: string) => id,
      {},
      ': ResourceNotFoundException (HTTP 400): no such secret or staging label',
    ],
    [
      'an unknown staging label',
      (id: string) => {
        sm.putSecret(id, url(PASSWORD_1));
        return id;
      },
      { versionStage: 'NOPE' },
      ': ResourceNotFoundException (HTTP 400): no such secret or staging label',
    ],
    [
      'a binary secret',
      (id: string) => {
        sm.putSecret(id, url(PASSWORD_1), { binary: true });
        return id;
      },
      {},
      ' has no SecretString (binary secrets are not supported)',
    ],
    [
      'an empty secret',
      (id: string) => {
        sm.putSecret(id, '');
        return id;
      },
      {},
      ' is empty',
    ],
  ])('%s', async (_what, setup, extra, tail) => {
    const id = setup(name());
    const c = credential(id, extra);
    const err = await rejectionOf(c.get());
    expect(err).toBeInstanceOf(CredentialError);
    expect(err.message).toBe(
      `${err.message.startsWith('cannot') ? 'cannot fetch ' : ''}${c.source}${tail}`,
    );
    expect(renderings(err)).not.toContain(PASSWORD_1);
  });

  it('rejected AWS credentials', async () => {
    const id = name();
    sm.putSecret(id, url(PASSWORD_1));
    const c = credential(
      id,
      {},
      {
        clientConfig: {
          maxAttempts: 1,
          credentials: { accessKeyId: 'AKIAWRONGWRONGWRONG1', secretAccessKey: 'x'.repeat(40) },
        },
      },
    );
    const err = await rejectionOf(c.get());
    expect(err.message).toBe(
      `cannot fetch secretsManager ${id}: UnrecognizedClientException (HTTP 400): the AWS credentials were rejected`,
    );
  });

  it('an unreachable endpoint', async () => {
    const c = credential(name(), { endpoint: 'http://127.0.0.1:1' });
    const err = await rejectionOf(c.get());
    expect(err.message).toMatch(/^cannot fetch secretsManager \S+: \w+: ECONNREFUSED$/);
  });
});

describe('loadCredentials with a secretsManager source', () => {
  it('returns a handle; env and file sources still return a Secret', async () => {
    const id = name();
    sm.putSecret(id, url(PASSWORD_1));
    const creds = await loadCredentials(
      {
        read: { secretsManager: { secretId: id, endpoint: sm.endpoint, region: sm.region } },
        write: { env: 'W' },
      },
      { W: 'the-write-url-value' },
    );
    expect(creds.read).toBeInstanceOf(SecretsManagerCredential);
    expect(creds.read?.current().reveal()).toBe(url(PASSWORD_1));
    expect(creds.read?.source).toBe(`secretsManager ${id}`);
    expect(creds.write).toBeInstanceOf(Secret);
    expect(creds.write?.reveal()).toBe('the-write-url-value');
    expect(creds.write?.current()).toBe(creds.write);
    expect(await creds.write?.refresh()).toBe(creds.write);
    expect(Object.isFrozen(creds)).toBe(true);
  });

  it('a failed first fetch is a StartupError naming the source, not the value', async () => {
    const id = name();
    const err = await rejectionOf(
      loadCredentials({
        read: { secretsManager: { secretId: id, endpoint: sm.endpoint, region: sm.region } },
      }),
    );
    expect(err).toBeInstanceOf(StartupError);
    expect(err.message).toBe(
      `cannot fetch secretsManager ${id}: ResourceNotFoundException (HTTP 400): no such secret or staging label`,
    );
  });

  it('registers every value with the redactor, also values fetched after rotation', async () => {
    const id = name();
    sm.putSecret(id, JSON.stringify({ url: url(PASSWORD_1), password: PASSWORD_1 }));
    const redactor = createRedactor();
    const creds = await loadCredentials(
      {
        read: {
          secretsManager: {
            secretId: id,
            jsonKey: 'url',
            endpoint: sm.endpoint,
            region: sm.region,
          },
        },
      },
      {},
      {
        onSecret: (s) => {
          for (const f of secretFragments(s)) redactor.addKnownSecret(f);
        },
      },
    );
    const leak = (p: string) => `error: ${url(p)} / password=${p} / raw ${p}!`;
    expect(redactor.redactString(leak(PASSWORD_1)).value).not.toContain(PASSWORD_1);
    // Rotation: not known before it is fetched…
    sm.putSecret(id, JSON.stringify({ url: url(PASSWORD_2), password: PASSWORD_2 }));
    expect(redactor.redactString(`raw ${PASSWORD_2}!`).value).toContain(PASSWORD_2);
    const fresh = await creds.read?.refresh();
    // …and known as soon as it is.
    expect(fresh?.reveal()).toBe(url(PASSWORD_2));
    const out = redactor.redactString(`raw ${PASSWORD_2}! and ${fresh?.reveal()}`);
    expect(out.value).not.toContain(PASSWORD_2);
    expect(out.counts.known_secret).toBeGreaterThanOrEqual(2);
  });

  it('a throwing onSecret fails the load (a value is never used unregistered)', async () => {
    const id = name();
    sm.putSecret(id, 'unregistrable-value');
    const err = await rejectionOf(
      loadCredentials(
        { read: { secretsManager: { secretId: id, endpoint: sm.endpoint, region: sm.region } } },
        {},
        {
          onSecret: () => {
            throw new Error('redactor unavailable');
          },
        },
      ),
    );
    expect(err).toBeInstanceOf(StartupError);
  });
});

describe('configuration', () => {
  const parse = (v: unknown) => credentialSourceSchema.safeParse(v);

  it('applies defaults', () => {
    expect(secretsManagerSourceSchema.parse({ secretId: 'prod/pg' })).toEqual({
      secretId: 'prod/pg',
      versionStage: 'AWSCURRENT',
      ttlSeconds: 300,
    });
    expect(parse({ secretsManager: { secretId: 'prod/pg' } }).success).toBe(true);
  });

  it('accepts every documented key', () => {
    expect(
      parse({
        secretsManager: {
          secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/pg-AbCdEf',
          jsonKey: 'url',
          versionStage: 'AWSPENDING',
          region: 'eu-west-1',
          endpoint: 'https://secretsmanager.eu-west-1.amazonaws.com',
          ttlSeconds: 60,
        },
      }).success,
    ).toBe(true);
    expect(
      parse({ secretsManager: { secretId: 'x', endpoint: 'http://127.0.0.1:4566' } }).success,
    ).toBe(true);
    expect(
      parse({ secretsManager: { secretId: 'x', endpoint: 'http://localhost:4566' } }).success,
    ).toBe(true);
  });

  it.each<[unknown, string]>([
    [{ secretsManager: { secretId: 'x', version: 'AWSCURRENT' } }, 'unknown key'],
    [{ secretsManager: {} }, 'no secretId'],
    [{ secretsManager: { secretId: '' } }, 'empty secretId'],
    [{ secretsManager: { secretId: 'x', endpoint: 'http://sm.example.com' } }, 'plain http'],
    [{ secretsManager: { secretId: 'x', endpoint: 'ftp://127.0.0.1' } }, 'other scheme'],
    [{ secretsManager: { secretId: 'x', ttlSeconds: 0 } }, 'ttl 0'],
    [{ secretsManager: { secretId: 'x', region: 'Mars' } }, 'bad region'],
    [{ secretsManager: { secretId: 'x' }, env: 'X' }, 'mixed with env'],
  ])('refuses %j (%s)', (value) => {
    expect(parse(value).success).toBe(false);
  });

  it('reports a problem inside the secretsManager source by its path', () => {
    const schema = credentialSourceSchema;
    const err = (() => {
      try {
        parseConfig(schema, { secretsManager: { secretId: 'x', ttlSeconds: -1 } });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toMatch(/secretsManager\.ttlSeconds/);
  });
});

describe('Secret as a CredentialHandle', () => {
  let secret: Secret;
  beforeEach(() => {
    secret = new Secret('static-value-1234', 'env X');
  });
  it('is its own current value and refreshes to itself', async () => {
    expect(secret.current()).toBe(secret);
    expect(await secret.refresh()).toBe(secret);
  });
});
