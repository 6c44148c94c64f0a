import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { format, inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCredentials, Secret, secretFragments } from './credentials.js';
import { StartupError } from './errors.js';
import { createLogger } from './logger.js';
import { createRedactor } from './redaction/index.js';

const URL_SECRET = 'postgres://app:S3cr3t-Pa55word@db.internal:5432/prod';

describe('Secret', () => {
  const secret = new Secret(URL_SECRET, 'env POSTGRES_URL');

  it('reveals its value only through reveal()', () => {
    expect(secret.reveal()).toBe(URL_SECRET);
    expect(secret.source).toBe('env POSTGRES_URL');
  });

  it('never prints its value', () => {
    const renderings = [
      String(secret),
      `${secret}`,
      // biome-ignore lint/style/useTemplate: string concatenation is what is tested
      '' + secret,
      secret.toString(),
      JSON.stringify(secret),
      JSON.stringify({ url: secret }),
      JSON.stringify([secret], null, 2),
      inspect(secret),
      inspect({ nested: { deeper: secret } }, { depth: 10 }),
      inspect(secret, { showHidden: true, customInspect: true }),
      format('%s %o %O %j', secret, secret, secret, secret),
      format(secret),
      Object.keys(secret).join(','),
      JSON.stringify(Object.entries(secret)),
      JSON.stringify({ ...secret }),
      JSON.stringify(structuredClone({ ...secret })),
      new Error(`failed with ${secret}`).message,
    ];
    for (const r of renderings) {
      expect(r).not.toContain('S3cr3t');
      expect(r).not.toContain('db.internal');
    }
    expect(String(secret)).toBe('[secret]');
    expect(JSON.stringify(secret)).toBe('"[secret]"');
    expect(JSON.stringify({ url: secret })).toBe('{"url":"[secret]"}');
    expect(inspect(secret)).toBe('Secret(env POSTGRES_URL)');
    expect(inspect({ url: secret })).toBe('{ url: Secret(env POSTGRES_URL) }');
  });

  it('is not printed by the server log either', () => {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    });
    const logger = createLogger('info', createRedactor(), stream);
    logger.info({ credential: secret, nested: { s: secret } }, `loaded ${secret}`);
    const line = chunks.join('');
    expect(line).not.toContain('S3cr3t');
    expect(JSON.parse(line)).toMatchObject({
      credential: '[secret]',
      nested: { s: '[secret]' },
      msg: 'loaded [secret]',
    });
  });
});

describe('secretFragments', () => {
  const fragments = (value: string) => secretFragments(new Secret(value, 'test'));

  it('returns the value itself for a non-URL secret', () => {
    expect(fragments('an-api-token-0123456789')).toEqual(['an-api-token-0123456789']);
  });

  it('adds the password of a URL', () => {
    expect(fragments(URL_SECRET)).toEqual([URL_SECRET, 'S3cr3t-Pa55word']);
  });

  it('adds the encoded and the decoded password', () => {
    const value = 'postgres://app:p%40ss%2Fw0rd%21@db:5432/x';
    const result = fragments(value);
    expect(result).toContain(value);
    expect(result).toContain('p%40ss%2Fw0rd%21');
    expect(result).toContain('p@ss/w0rd!');
    expect(result).toHaveLength(3);
  });

  it('decodes UTF-8 percent-encoding', () => {
    expect(fragments('mysql://u:p%C3%A4ssw%C3%B6rd1@h/d')).toContain('pässwörd1');
  });

  it('covers a raw password the URL parser re-encodes', () => {
    const result = fragments('postgres://app:pass word 1@db/x');
    expect(result).toContain('pass%20word%201');
    expect(result).toContain('pass word 1');
  });

  it('keeps the encoded password when it cannot be decoded', () => {
    expect(fragments('postgres://app:abc%zzdefgh@db/x')).toEqual([
      'postgres://app:abc%zzdefgh@db/x',
      'abc%zzdefgh',
    ]);
  });

  it('adds nothing for a URL without a password', () => {
    expect(fragments('postgres://app@db.internal:5432/prod')).toEqual([
      'postgres://app@db.internal:5432/prod',
    ]);
    expect(fragments('https://example.com/path?q=1')).toEqual(['https://example.com/path?q=1']);
  });

  it('drops fragments shorter than 8 characters', () => {
    expect(fragments('postgres://app:short@db/x')).toEqual(['postgres://app:short@db/x']);
    expect(fragments('1234567')).toEqual([]);
    expect(fragments('12345678')).toEqual(['12345678']);
    expect(fragments('')).toEqual([]);
  });
});

describe('loadCredentials: environment', () => {
  it('reads each scope from its variable', async () => {
    const creds = await loadCredentials(
      { read: { env: 'TEST_READ_URL' }, write: { env: 'TEST_WRITE_URL' } },
      { TEST_READ_URL: 'postgres://reader:r@db/x', TEST_WRITE_URL: 'postgres://writer:w@db/x' },
    );
    expect(creds.read).toBeInstanceOf(Secret);
    expect(creds.read?.reveal()).toBe('postgres://reader:r@db/x');
    expect(creds.read?.source).toBe('env TEST_READ_URL');
    expect(creds.write?.reveal()).toBe('postgres://writer:w@db/x');
    expect(creds.write?.source).toBe('env TEST_WRITE_URL');
    expect(Object.isFrozen(creds)).toBe(true);
  });

  it('treats an unset or empty variable as absent', async () => {
    const creds = await loadCredentials(
      { read: { env: 'UNSET_VAR' }, write: { env: 'EMPTY_VAR' } },
      { EMPTY_VAR: '' },
    );
    expect(creds).toEqual({});
    expect('read' in creds).toBe(false);
    expect('write' in creds).toBe(false);
  });

  it('loads nothing for unconfigured scopes', async () => {
    expect(await loadCredentials({}, { ANY: 'x' })).toEqual({});
    const creds = await loadCredentials({ read: { env: 'R' } }, { R: 'value-r', W: 'value-w' });
    expect(creds.read?.reveal()).toBe('value-r');
    expect(creds.write).toBeUndefined();
  });

  it('keeps the value verbatim (no trimming of environment values)', async () => {
    const creds = await loadCredentials({ read: { env: 'R' } }, { R: ' spaced \n' });
    expect(creds.read?.reveal()).toBe(' spaced \n');
  });

  it('defaults to process.env', async () => {
    process.env.HMCP_CREDENTIALS_TEST_VAR = 'from-process-env';
    try {
      const creds = await loadCredentials({ read: { env: 'HMCP_CREDENTIALS_TEST_VAR' } });
      expect(creds.read?.reveal()).toBe('from-process-env');
    } finally {
      delete process.env.HMCP_CREDENTIALS_TEST_VAR;
    }
  });
});

describe('loadCredentials: files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hmcp-creds-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const secretFile = async (name: string, content: string, mode: number): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, content);
    await chmod(path, mode); // explicit: writeFile's mode is subject to the umask
    return path;
  };

  it('reads a 0600 file and trims one trailing newline', async () => {
    const path = await secretFile('read.secret', `${URL_SECRET}\n`, 0o600);
    const creds = await loadCredentials({ read: { file: path } }, {});
    expect(creds.read?.reveal()).toBe(URL_SECRET);
    expect(creds.read?.source).toBe(`file ${path}`);
  });

  it.each([
    ['crlf', 'value-with-crlf\r\n', 'value-with-crlf'],
    ['no newline', 'value-no-newline', 'value-no-newline'],
    ['two newlines', 'value-two\n\n', 'value-two\n'],
    ['inner newline', 'line1\nline2\n', 'line1\nline2'],
    ['spaces', '  padded  \n', '  padded  '],
  ])('content with %s', async (name, content, expected) => {
    const path = await secretFile(`${name.replace(/ /g, '-')}.secret`, content, 0o600);
    expect((await loadCredentials({ write: { file: path } }, {})).write?.reveal()).toBe(expected);
  });

  it.each([0o400, 0o640, 0o660, 0o600])(
    'accepts mode %s (not readable by others)',
    async (mode) => {
      const path = await secretFile(`mode-${mode.toString(8)}.secret`, 'the-secret-value\n', mode);
      expect((await loadCredentials({ read: { file: path } }, {})).read?.reveal()).toBe(
        'the-secret-value',
      );
    },
  );

  it.each([0o644, 0o604, 0o666, 0o444])(
    'refuses mode %s (readable by others) without printing the content',
    async (mode) => {
      const path = await secretFile(`open-${mode.toString(8)}.secret`, `${URL_SECRET}\n`, mode);
      const err = await loadCredentials({ read: { file: path } }, {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartupError);
      expect((err as Error).message).toBe(
        `credential file ${path} is readable by other users; chmod 600 it`,
      );
      expect((err as Error).message).not.toContain('S3cr3t');
    },
  );

  it('treats a missing file as absent', async () => {
    const creds = await loadCredentials({ read: { file: join(dir, 'does-not-exist') } }, {});
    expect(creds).toEqual({});
  });

  it('treats an empty file (or a lone newline) as absent', async () => {
    const empty = await secretFile('empty.secret', '', 0o600);
    const newline = await secretFile('newline.secret', '\n', 0o600);
    expect(await loadCredentials({ read: { file: empty }, write: { file: newline } }, {})).toEqual(
      {},
    );
  });

  it('reports an unreadable path with its errno code', async () => {
    const sub = join(dir, 'a-dir');
    await mkdir(sub, { mode: 0o700 });
    await chmod(sub, 0o700);
    await expect(loadCredentials({ read: { file: sub } }, {})).rejects.toThrow(
      `cannot read credential file ${sub} (EISDIR)`,
    );

    const notDir = join(await secretFile('plain.secret', 'x', 0o600), 'child');
    const err = await loadCredentials({ write: { file: notDir } }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe(`cannot read credential file ${notDir} (ENOTDIR)`);
  });

  it('mixes env and file sources', async () => {
    const path = await secretFile('mixed.secret', 'file-value-1234\n', 0o600);
    const creds = await loadCredentials(
      { read: { env: 'R' }, write: { file: path } },
      { R: 'env-value-1234' },
    );
    expect(creds.read?.reveal()).toBe('env-value-1234');
    expect(creds.write?.reveal()).toBe('file-value-1234');
  });
});
