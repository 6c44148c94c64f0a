import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  coreConfigShape,
  credentialSourceSchema,
  deepFreeze,
  defineConfigSchema,
  parseConfig,
  readConfigFile,
  roleNameSchema,
  scopeSchema,
  toolNameSchema,
} from './config.js';
import { StartupError } from './errors.js';

const section = z
  .strictObject({
    database: z.string().max(63).default('app'),
    schemas: z.array(z.string()).default(['public']),
  })
  .prefault({});
const schema = defineConfigSchema('test', section);

const DEFAULTS = {
  mode: 'read-only',
  identity: {},
  defaultRoles: ['reader'],
  roles: {},
  tools: { settings: {} },
  rateLimit: { points: 120, durationSeconds: 60 },
  policies: {
    files: [],
    claims: { groups: 'groups', department: 'department', clearance: 'clearance' },
    timeZone: 'UTC',
  },
  classification: {
    labels: {},
    default: 'internal',
    clearance: { default: 'internal', roles: {} },
    restricted: { maxRows: 50, maxBytes: 64 * 1024, approval: true },
    taint: { threshold: 'confidential', egress: 'refuse', ttlSeconds: 86_400 },
  },
  output: { maxRows: 500, maxBytes: 256 * 1024, redaction: { pii: true, keyRules: [] } },
  audit: {
    stderr: true,
    durability: 'group',
    groupCommitWindowMs: 0,
    onFileChange: 'stay_closed',
    remote: [],
  },
  log: { level: 'info' },
  credentials: {},
  transport: 'stdio',
  http: {
    host: '127.0.0.1',
    port: 3000,
    allowedHosts: ['localhost', '127.0.0.1', '[::1]'],
    maxBodyBytes: 1024 * 1024,
    maxJsonDepth: 64,
    stateless: false,
    sessionIdleSeconds: 900,
    maxSessions: 1000,
    maxSessionsPerPrincipal: 64,
    unauthenticatedAuditIntervalSeconds: 60,
    trustedProxies: [],
    shutdownGraceMs: 10_000,
    management: { enabled: true, host: '127.0.0.1', port: 9464 },
  },
  auth: { mode: 'none', apiKeys: [] },
  redis: { url: { env: 'REDIS_URL' } },
  test: { database: 'app', schemas: ['public'] },
};

/** The StartupError message parseConfig throws for `raw`. */
function problems(raw: unknown): string {
  try {
    parseConfig(schema, raw);
  } catch (err) {
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message.startsWith('invalid configuration: ')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected parseConfig to throw');
}

describe('parseConfig: defaults', () => {
  it('fills every default from an empty object', () => {
    expect(parseConfig(schema, {})).toEqual(DEFAULTS);
  });

  it.each([null, undefined])('treats %s (e.g. an empty YAML file) as an empty object', (raw) => {
    expect(parseConfig(schema, raw)).toEqual(DEFAULTS);
  });

  it('keeps given values and fills the rest', () => {
    const config = parseConfig(schema, {
      mode: 'read-write',
      identity: { principal: 'svc-reporting', roles: ['analyst'] },
      roles: { analyst: ['test:read', 'test:read.reports'] },
      tools: {
        allow: ['test_list_rows'],
        settings: {
          test_update_row: { approval: 'none', rateLimit: { points: 5, durationSeconds: 10 } },
        },
      },
      output: { maxRows: 50, redaction: { pii: false, keyRules: ['iban', '/^x_/i'] } },
      audit: { file: '/var/log/hmcp/audit.jsonl' },
      log: { level: 'debug' },
      credentials: { read: { env: 'TEST_URL' }, write: { file: '/run/secrets/test-write' } },
      test: { database: 'sales' },
    });
    expect(config).toEqual({
      ...DEFAULTS,
      mode: 'read-write',
      identity: { principal: 'svc-reporting', roles: ['analyst'] },
      roles: { analyst: ['test:read', 'test:read.reports'] },
      tools: {
        allow: ['test_list_rows'],
        settings: {
          test_update_row: { approval: 'none', rateLimit: { points: 5, durationSeconds: 10 } },
        },
      },
      output: {
        maxRows: 50,
        maxBytes: 256 * 1024,
        redaction: { pii: false, keyRules: ['iban', '/^x_/i'] },
      },
      audit: { ...DEFAULTS.audit, file: '/var/log/hmcp/audit.jsonl' },
      log: { level: 'debug' },
      credentials: { read: { env: 'TEST_URL' }, write: { file: '/run/secrets/test-write' } },
      test: { database: 'sales', schemas: ['public'] },
    });
  });

  it('does not share default arrays/objects between parses', () => {
    const a = parseConfig(schema, {});
    const b = parseConfig(schema, {});
    expect(a).not.toBe(b);
    expect(a.defaultRoles).toEqual(b.defaultRoles);
  });

  it('the core shape has exactly the documented keys', () => {
    expect(Object.keys(coreConfigShape).sort()).toEqual(
      [
        'audit',
        'auth',
        'classification',
        'credentials',
        'defaultRoles',
        'http',
        'policies',
        'redis',
        'transport',
        'identity',
        'log',
        'mode',
        'output',
        'principalCredentials',
        'rateLimit',
        'roles',
        'tools',
      ].sort(),
    );
  });
});

describe('parseConfig: unknown keys are errors at every level', () => {
  it('at the top level, naming the key', () => {
    expect(problems({ mdoe: 'read-write' })).toBe(
      'invalid configuration: (top level): unknown key mdoe',
    );
  });

  it('several at once', () => {
    expect(problems({ a: 1, b: 2 })).toBe('invalid configuration: (top level): unknown keys a, b');
  });

  it.each([
    [{ identity: { principal: 'x', role: ['a'] } }, 'identity: unknown key role'],
    [{ tools: { deny: ['x_y_z'] } }, 'tools: unknown key deny'],
    [
      { tools: { settings: { test_list_rows: { aproval: 'none' } } } },
      'tools.settings.test_list_rows: unknown key aproval',
    ],
    [
      {
        tools: {
          settings: { test_list_rows: { rateLimit: { points: 1, durationSeconds: 1, burst: 2 } } },
        },
      },
      'tools.settings.test_list_rows.rateLimit: unknown key burst',
    ],
    [{ rateLimit: { points: 1, durationSeconds: 1, window: 1 } }, 'rateLimit: unknown key window'],
    [{ output: { maxRow: 10 } }, 'output: unknown key maxRow'],
    [
      { output: { redaction: { pii: true, secrets: false } } },
      'output.redaction: unknown key secrets',
    ],
    [{ audit: { syslog: true } }, 'audit: unknown key syslog'],
    [{ log: { level: 'info', pretty: true } }, 'log: unknown key pretty'],
    [{ credentials: { admin: { env: 'X' } } }, 'credentials: unknown key admin'],
    [{ test: { database: 'x', host: 'db' } }, 'test: unknown key host'],
  ])('nested: %j', (raw, message) => {
    expect(problems(raw)).toBe(`invalid configuration: ${message}`);
  });

  it('a __proto__ key is an unknown key, not a prototype change', () => {
    expect(problems(JSON.parse('{"__proto__": {"mode": "read-write"}}'))).toBe(
      'invalid configuration: (top level): unknown key __proto__',
    );
  });

  it('a credential source with both env and file is refused', () => {
    expect(problems({ credentials: { read: { env: 'X', file: '/x' } } })).toBe(
      'invalid configuration: credentials.read: Invalid input',
    );
  });
});

describe('parseConfig: redis.url is a credential source', () => {
  it('refuses a URL written into the configuration (it may carry a password)', () => {
    expect(problems({ redis: { url: 'redis://:hunter2hunter2@cache:6379' } })).toMatch(
      /^invalid configuration: redis\.url: /,
    );
    expect(problems({ redis: { url: 'redis://:hunter2hunter2@cache:6379' } })).not.toContain(
      'hunter2',
    );
  });

  it('takes env, file and secretsManager sources, REDIS_URL by default', () => {
    expect(parseConfig(schema, {}).redis.url).toEqual({ env: 'REDIS_URL' });
    expect(
      parseConfig(schema, { redis: { url: { file: '/run/secrets/redis_url' } } }).redis.url,
    ).toEqual({
      file: '/run/secrets/redis_url',
    });
  });
});

describe('parseConfig: invalid values', () => {
  it.each([
    [{ mode: 'admin' }, 'mode: Invalid option'],
    [{ identity: { principal: '' } }, 'identity.principal: '],
    [{ identity: { roles: ['Admin'] } }, 'identity.roles.0: role names are lower-case identifiers'],
    [{ defaultRoles: 'reader' }, 'defaultRoles: '],
    [{ roles: { Admin: ['test:read'] } }, 'roles.Admin: '],
    [
      { roles: { analyst: ['postgres'] } },
      'roles.analyst.0: scopes look like connector:permission',
    ],
    [{ tools: { allow: ['drop'] } }, 'tools.allow.0: not a tool name'],
    [
      { tools: { settings: { test_list_rows: { approval: 'maybe' } } } },
      'tools.settings.test_list_rows.approval: ',
    ],
    [{ tools: { settings: { 'Bad-Name': {} } } }, 'tools.settings.Bad-Name: '],
    [{ rateLimit: { points: 0, durationSeconds: 60 } }, 'rateLimit.points: Too small'],
    [{ rateLimit: { points: 1.5, durationSeconds: 60 } }, 'rateLimit.points: '],
    [{ rateLimit: { points: 10 } }, 'rateLimit.durationSeconds: '],
    [{ output: { maxRows: 0 } }, 'output.maxRows: Too small'],
    [{ output: { maxBytes: 100 } }, 'output.maxBytes: Too small: expected number to be >=1024'],
    [{ output: { maxBytes: 64 * 1024 * 1024 + 1 } }, 'output.maxBytes: Too big'],
    [{ output: { redaction: { keyRules: [''] } } }, 'output.redaction.keyRules.0: '],
    [
      { audit: { stderr: 'yes' } },
      'audit.stderr: Invalid input: expected boolean, received string',
    ],
    [{ audit: { file: '' } }, 'audit.file: '],
    [{ log: { level: 'verbose' } }, 'log.level: Invalid option'],
    [
      { credentials: { read: { env: 'lower_case' } } },
      'credentials.read.env: not an environment variable name',
    ],
    [{ credentials: { read: { file: '' } } }, 'credentials.read.file: Too small'],
    [{ test: { database: 42 } }, 'test.database: '],
  ])('%j', (raw, message) => {
    expect(problems(raw)).toContain(message);
  });

  it.each([[[]], ['mode: read-write'], [42]])('refuses a non-object configuration %j', (raw) => {
    expect(problems(raw)).toMatch(
      /^invalid configuration: \(top level\): Invalid input: expected object/,
    );
  });

  it('lists every problem, joined by "; "', () => {
    const message = problems({ mode: 'rw', output: { maxBytes: 1 }, zzz: true });
    expect(message.split('; ')).toHaveLength(3);
    expect(message).toContain('mode: ');
    expect(message).toContain('output.maxBytes: ');
    expect(message).toContain('(top level): unknown key zzz');
  });

  it('does not echo the offending values', () => {
    const message = problems({
      mode: 'postgres://app:hunter2-S3cret@db/prod',
      log: { level: 'sk-live-abcdef0123456789' },
      credentials: { read: { env: 'postgres://app:hunter2-S3cret@db/prod' } },
    });
    expect(message).not.toContain('hunter2');
    expect(message).not.toContain('sk-live');
  });

  it('YAML 1.2 semantics: `no` is a string, not false', () => {
    expect(problems({ audit: { stderr: 'no' } })).toContain(
      'audit.stderr: Invalid input: expected boolean, received string',
    );
  });
});

describe('parseConfig: the result is deeply frozen', () => {
  it('freezes every level', () => {
    const config = parseConfig(schema, {
      roles: { analyst: ['test:read'] },
      tools: { settings: { test_list_rows: { approval: 'none' } } },
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.output)).toBe(true);
    expect(Object.isFrozen(config.output.redaction)).toBe(true);
    expect(Object.isFrozen(config.output.redaction.keyRules)).toBe(true);
    expect(Object.isFrozen(config.roles)).toBe(true);
    expect(Object.isFrozen(config.roles.analyst)).toBe(true);
    expect(Object.isFrozen(config.tools.settings.test_list_rows)).toBe(true);
    expect(Object.isFrozen(config.test)).toBe(true);
    expect(Object.isFrozen(config.test.schemas)).toBe(true);
    expect(() => {
      (config as { mode: string }).mode = 'read-write';
    }).toThrow(TypeError);
    expect(() => {
      (config.roles.analyst as string[]).push('test:write');
    }).toThrow(TypeError);
    expect(config.mode).toBe('read-only');
  });

  it('does not freeze the raw input', () => {
    const raw = { roles: { analyst: ['test:read'] } };
    parseConfig(schema, raw);
    expect(Object.isFrozen(raw)).toBe(false);
    expect(Object.isFrozen(raw.roles.analyst)).toBe(false);
  });
});

describe('deepFreeze', () => {
  it('returns its argument, frozen through arrays and objects', () => {
    const value = { a: [{ b: 1 }, [2]], c: { d: { e: 'x' } } };
    expect(deepFreeze(value)).toBe(value);
    expect(Object.isFrozen(value.a)).toBe(true);
    expect(Object.isFrozen(value.a[0])).toBe(true);
    expect(Object.isFrozen(value.a[1])).toBe(true);
    expect(Object.isFrozen(value.c.d)).toBe(true);
  });

  it('passes primitives and null through', () => {
    expect(deepFreeze(1)).toBe(1);
    expect(deepFreeze('s')).toBe('s');
    expect(deepFreeze(null)).toBe(null);
    expect(deepFreeze(undefined)).toBe(undefined);
  });

  it('terminates on cycles', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    a.child = { parent: a };
    deepFreeze(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.child)).toBe(true);
  });

  // Regression test (was a bug): config.ts:168 skips already-frozen objects entirely (`!Object.isFrozen(value)`), so a
  // shallow-frozen object's children are never frozen: deepFreeze(Object.freeze({ inner: {} }))
  // leaves `inner` mutable. Expected: `inner` frozen ("Freezes an object graph"); actual: not.
  // (The frozen check doubles as the cycle guard; a visited set would fix both.)
  it('freezes the children of an object that was only shallow-frozen', () => {
    const value = Object.freeze({ inner: { x: 1 } });
    deepFreeze(value);
    expect(Object.isFrozen(value.inner)).toBe(true);
  });
});

describe('building blocks', () => {
  it.each(['reader', 'writer', 'data-team_2', 'a'])('role name %j is valid', (n) => {
    expect(roleNameSchema.safeParse(n).success).toBe(true);
  });
  it.each(['Reader', '2team', '', 'a b', `a${'b'.repeat(64)}`])('role name %j is invalid', (n) => {
    expect(roleNameSchema.safeParse(n).success).toBe(false);
  });
  it.each(['postgres:read', 'postgres:write', 'my-conn:read.schema_x'])(
    'scope %j is valid',
    (s) => {
      expect(scopeSchema.safeParse(s).success).toBe(true);
    },
  );
  it.each(['postgres', ':read', 'Postgres:read', 'postgres:Read', 'postgres:read:all'])(
    'scope %j is invalid',
    (s) => {
      expect(scopeSchema.safeParse(s).success).toBe(false);
    },
  );
  it.each(['postgres_list_tables', 'x_y', 'pg2_run_query'])('tool name %j is valid', (n) => {
    expect(toolNameSchema.safeParse(n).success).toBe(true);
  });
  it.each(['postgres', 'Postgres_list', 'postgres-list-tables', 'postgres_', '_x_y'])(
    'tool name %j is invalid',
    (n) => {
      expect(toolNameSchema.safeParse(n).success).toBe(false);
    },
  );
  it('credential sources are env or file, nothing else', () => {
    expect(credentialSourceSchema.parse({ env: 'PG_URL' })).toEqual({ env: 'PG_URL' });
    expect(credentialSourceSchema.parse({ file: '/run/secrets/pg' })).toEqual({
      file: '/run/secrets/pg',
    });
    expect(credentialSourceSchema.safeParse({ value: 'postgres://u:p@h/db' }).success).toBe(false);
    expect(credentialSourceSchema.safeParse({ env: '1BAD' }).success).toBe(false);
    expect(credentialSourceSchema.safeParse({ file: 'x'.repeat(4097) }).success).toBe(false);
  });
  it('the connector section is required when it has no default', () => {
    const strict = defineConfigSchema('pg', z.strictObject({ host: z.string() }));
    expect(() => parseConfig(strict, {})).toThrow(/^invalid configuration: pg: /);
    expect(parseConfig(strict, { pg: { host: 'db' } }).pg).toEqual({ host: 'db' });
  });
});

describe('readConfigFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hmcp-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const file = async (name: string, content: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, content);
    return path;
  };

  it('reads YAML', async () => {
    const path = await file(
      'config.yaml',
      [
        '# hardened-mcp test server',
        'mode: read-write',
        'roles:',
        '  analyst: [test:read]',
        'tools:',
        '  settings:',
        '    test_update_row:',
        '      approval: none',
        'output:',
        '  maxRows: 50',
        'test:',
        '  database: sales',
        '',
      ].join('\n'),
    );
    const raw = await readConfigFile(path);
    expect(raw).toEqual({
      mode: 'read-write',
      roles: { analyst: ['test:read'] },
      tools: { settings: { test_update_row: { approval: 'none' } } },
      output: { maxRows: 50 },
      test: { database: 'sales' },
    });
    const config = parseConfig(schema, raw);
    expect(config.mode).toBe('read-write');
    expect(config.output.maxRows).toBe(50);
    expect(config.output.maxBytes).toBe(256 * 1024);
  });

  it('reads .yml and extension-less files as YAML', async () => {
    expect(await readConfigFile(await file('c.yml', 'mode: read-only\n'))).toEqual({
      mode: 'read-only',
    });
    expect(await readConfigFile(await file('hmcprc', 'log: {level: warn}\n'))).toEqual({
      log: { level: 'warn' },
    });
  });

  it('reads YAML 1.2: yes/no/on/off are strings', async () => {
    expect(
      await readConfigFile(await file('bools.yaml', 'a: yes\nb: no\nc: on\nd: true\n')),
    ).toEqual({ a: 'yes', b: 'no', c: 'on', d: true });
  });

  it('an empty YAML file parses to null, i.e. all defaults', async () => {
    const raw = await readConfigFile(await file('empty.yaml', ''));
    expect(raw).toBeNull();
    expect(parseConfig(schema, raw)).toEqual(DEFAULTS);
  });

  it('reads JSON (also with an upper-case extension)', async () => {
    const json = { mode: 'read-write', audit: { stderr: false, file: '/tmp/a.jsonl' } };
    expect(await readConfigFile(await file('config.json', JSON.stringify(json)))).toEqual(json);
    expect(await readConfigFile(await file('CONFIG.JSON', JSON.stringify(json)))).toEqual(json);
  });

  it('a JSON file is not parsed as YAML', async () => {
    // Valid YAML, invalid JSON.
    await expect(readConfigFile(await file('yamlish.json', 'mode: read-write\n'))).rejects.toThrow(
      /is not valid JSON$/,
    );
  });

  it('names the file but never its content when the YAML is invalid', async () => {
    const path = await file(
      'bad.yaml',
      'credentials:\n  read: {env: PG_URL\npassword: "hunter2-S3cret\n',
    );
    const err = await readConfigFile(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe(
      `config file ${path} is not valid YAML (YAML syntax error)`,
    );
    expect((err as Error).message).not.toContain('hunter2');
    expect((err as Error).cause).toBeUndefined();
  });

  it('refuses duplicate YAML keys', async () => {
    await expect(
      readConfigFile(await file('dup.yaml', 'mode: read-only\nmode: read-write\n')),
    ).rejects.toThrow(StartupError);
  });

  it('names the file but never its content when the JSON is invalid', async () => {
    const path = await file(
      'bad.json',
      '{"credentials": {"read": "postgres://app:hunter2-S3cret@db/x"},}',
    );
    const err = await readConfigFile(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe(`config file ${path} is not valid JSON`);
    expect((err as Error).message).not.toContain('hunter2');
  });

  // Regression test (was a bug): config.ts:142 picks the format name with the case-sensitive `extname(path) === '.json'`
  // while config.ts:139 parses case-insensitively, so an invalid `CONFIG.JSON` (parsed as JSON)
  // is reported as "is not valid YAML". Expected "… is not valid JSON"; actual "… is not valid YAML".
  it('names the right format for an invalid upper-case .JSON file', async () => {
    const path = await file('BROKEN.JSON', '{"mode": ');
    await expect(readConfigFile(path)).rejects.toThrow(`config file ${path} is not valid JSON`);
  });

  it('reports a missing file with its errno code', async () => {
    const path = join(dir, 'missing.yaml');
    const err = await readConfigFile(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe(`cannot read config file ${path} (ENOENT)`);
  });

  it('reports an unreadable path (a directory) without content', async () => {
    const path = join(dir, 'a-directory.yaml');
    await mkdir(path);
    await expect(readConfigFile(path)).rejects.toThrow(`cannot read config file ${path} (EISDIR)`);
  });

  it('reports YAML anchors/merge keys as unknown keys after parsing (no silent merge)', async () => {
    const raw = await readConfigFile(
      await file('merge.yaml', 'base: &b\n  stderr: false\naudit:\n  <<: *b\n'),
    );
    expect(problems(raw)).toContain('(top level): unknown key base');
  });
});

describe('forwarded claims (identity.claims, auth.oauth.forwardClaims)', () => {
  const oauth = { issuer: 'https://auth.example.com', jwksUrl: 'https://auth.example.com/jwks' };

  it('accepts bounded strings, numbers and arrays of strings', () => {
    const config = parseConfig(schema, {
      identity: { principal: 'ana', claims: { country: 'Brazil', level: 3, groups: ['a', 'b'] } },
      auth: { mode: 'oauth', oauth: { ...oauth, forwardClaims: ['country', 'tenant'] } },
    });
    expect(config.identity.claims).toEqual({ country: 'Brazil', level: 3, groups: ['a', 'b'] });
    expect(config.auth.oauth?.forwardClaims).toEqual(['country', 'tenant']);
  });

  it('refuses reserved names, other shapes and oversized values', () => {
    expect(problems({ identity: { claims: { principal: 'steve' } } })).toMatch(/identity\.claims/);
    expect(problems({ identity: { claims: { nested: { a: 1 } } } })).toMatch(/identity\.claims/);
    expect(problems({ identity: { claims: { flag: true } } })).toMatch(/identity\.claims/);
    expect(problems({ identity: { claims: { c: 'x'.repeat(257) } } })).toMatch(/identity\.claims/);
    expect(
      problems({ identity: { claims: { g: Array.from({ length: 33 }, () => 'x') } } }),
    ).toMatch(/identity\.claims/);
    expect(
      problems({ auth: { mode: 'oauth', oauth: { ...oauth, forwardClaims: ['roles'] } } }),
    ).toMatch(/forwardClaims/);
  });
});
