import { describe, expect, it } from 'vitest';
import {
  authorizeListing,
  authorizeObject,
  type BucketRule,
  checkListPrefix,
  checkObjectKey,
  configuredPrefixProblem,
  escapeForDisplay,
  isValidBucketName,
  MAX_KEY_BYTES,
} from './keys.js';

const BUCKETS: BucketRule[] = [
  { name: 'acme-reports', prefixes: ['reports/', 'exports/daily/'] },
  { name: 'acme-public', prefixes: ['docs/'] },
];

function reason(r: { ok: boolean; reason?: string }): string | undefined {
  return r.ok ? undefined : r.reason;
}

describe('checkObjectKey', () => {
  it.each([
    'reports/q1.csv',
    'reports/2024/Q1 summary (final).pdf',
    'reports/.hidden',
    'reports/..hidden',
    'reports/a..b/c',
    'reports/ünïcödé/日本語.txt',
    'reports/emoji-😀.txt',
    'a',
  ])('accepts %j', (key) => {
    expect(checkObjectKey(key)).toEqual({ ok: true, value: key.normalize('NFC') });
  });

  it.each([
    ['', /empty/],
    ['/reports/q1.csv', /starts with \//],
    ['reports/../secret.txt', /\.\. segment/],
    ['../reports/q1.csv', /\.\. segment/],
    ['reports/..', /\.\. segment/],
    ['reports/./q1.csv', /\. segment/],
    ['./reports/q1.csv', /\. segment/],
    ['reports//q1.csv', /empty segment/],
    ['reports/', /ends with \//],
    ['reports/q1\u0000.csv', /control character/],
    ['reports/q1\n.csv', /control character/],
    ['reports/q1\r.csv', /control character/],
    ['reports/q1\u007f.csv', /control character/],
    ['reports/q1\u0085.csv', /control character/],
    ['reports/q1\u009b.csv', /control character/],
    ['reports/\u202Evsc.exe', /bidirectional/],
    ['reports/\u202A', /bidirectional/],
    ['reports/\u202B', /bidirectional/],
    ['reports/\u202C', /bidirectional/],
    ['reports/\u202D', /bidirectional/],
    ['reports/\u2066x\u2069', /bidirectional/],
    ['reports/\u2067', /bidirectional/],
    ['reports/\u2068', /bidirectional/],
    ['reports/\u200Fx', /bidirectional/],
    ['reports\\..\\secret', /backslash/],
    ['reports/\uD800x', /lone surrogate/],
    // compatibility look-alikes that NFKC folds into `.`, `..` or `/`
    ['reports/\uFF0E\uFF0E/secret', /\.\. segment/],
    ['reports/\u2025/secret', /\.\. segment/],
    ['reports\uFF0F\uFF0Fsecret', /empty segment/],
  ])('refuses %j', (key, why) => {
    const r = checkObjectKey(key);
    expect(r.ok).toBe(false);
    expect(reason(r)).toMatch(why);
    // the reason never echoes the key
    if (key.length > 3) expect(reason(r)).not.toContain(key);
  });

  it('measures the 1024-byte limit in UTF-8 bytes after NFC', () => {
    expect(checkObjectKey(`reports/${'a'.repeat(MAX_KEY_BYTES - 8)}`).ok).toBe(true);
    expect(reason(checkObjectKey(`reports/${'a'.repeat(MAX_KEY_BYTES - 7)}`))).toMatch(
      /longer than 1024 bytes/,
    );
    // 3 bytes per character: 342 × 3 = 1026 bytes in 342 characters
    expect(reason(checkObjectKey('日'.repeat(342)))).toMatch(/longer than 1024 bytes/);
  });

  it('normalizes to NFC before checking', () => {
    const nfd = 'reports/cafe\u0301.txt';
    const r = checkObjectKey(nfd);
    expect(r).toEqual({ ok: true, value: 'reports/caf\u00e9.txt' });
  });
});

describe('checkListPrefix', () => {
  it('accepts prefixes ending with / or mid-segment', () => {
    expect(checkListPrefix('reports/').ok).toBe(true);
    expect(checkListPrefix('reports/2024-').ok).toBe(true);
    expect(checkListPrefix('reports/2024/').ok).toBe(true);
  });
  it.each([
    '/reports/',
    'reports//',
    'reports/../',
    'reports/./',
    'reports/..',
    'reports/\u202E',
    'reports/\u0001',
  ])('refuses %j', (p) => {
    expect(checkListPrefix(p).ok).toBe(false);
  });
});

describe('configuredPrefixProblem', () => {
  it('accepts plain prefixes ending with /', () => {
    expect(configuredPrefixProblem('reports/')).toBeUndefined();
    expect(configuredPrefixProblem('exports/daily/')).toBeUndefined();
  });
  it.each([
    ['reports', /end with \//],
    ['reports*/', /\*, \? or \$/],
    ['rep?rts/', /\*, \? or \$/],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, on purpose
    ['${aws:username}/', /\*, \? or \$/],
    ['/reports/', /starts with \//],
    ['reports/../', /\.\. segment/],
    ['cafe\u0301/', /NFC/],
  ])('refuses %j', (p, why) => {
    expect(configuredPrefixProblem(p)).toMatch(why);
  });
});

describe('isValidBucketName', () => {
  it.each(['acme-reports', 'abc', 'a.b.c', 'my-bucket-123', 'a'.repeat(63)])('accepts %j', (n) => {
    expect(isValidBucketName(n)).toBe(true);
  });
  it.each([
    'ab',
    'a'.repeat(64),
    'Acme',
    'acme_reports',
    '-acme',
    'acme-',
    'acme..reports',
    '192.168.1.10',
    'xn--acme',
    'sthree-acme',
    'amzn-s3-demo-bucket',
    'acme-s3alias',
    'acme--ol-s3',
    'acme.mrap',
    'acme--x-s3',
    'acme--table-s3',
    'arn:aws:s3:::acme-reports',
    'arn:aws:s3:us-east-1:123456789012:accesspoint/ap',
    'acme/reports',
    '',
  ])('refuses %j', (n) => {
    expect(isValidBucketName(n)).toBe(false);
  });
});

describe('authorizeObject', () => {
  it('allows keys inside an allowed prefix of an allowlisted bucket', () => {
    const r = authorizeObject(BUCKETS, 'acme-reports', 'reports/2024/q1.csv');
    expect(r).toMatchObject({ ok: true, key: 'reports/2024/q1.csv' });
    expect(authorizeObject(BUCKETS, 'acme-reports', 'exports/daily/x.json').ok).toBe(true);
    expect(authorizeObject(BUCKETS, 'acme-public', 'docs/readme.md').ok).toBe(true);
  });

  it('the prefix check includes the trailing slash', () => {
    expect(reason(authorizeObject(BUCKETS, 'acme-reports', 'reports-private/x.csv'))).toMatch(
      /outside the allowed prefixes/,
    );
    expect(reason(authorizeObject(BUCKETS, 'acme-reports', 'reportsx'))).toMatch(
      /outside the allowed prefixes/,
    );
    expect(reason(authorizeObject(BUCKETS, 'acme-reports', 'exports/daily-private/x'))).toMatch(
      /outside/,
    );
    // a prefix of another bucket does not count
    expect(authorizeObject(BUCKETS, 'acme-public', 'reports/q1.csv').ok).toBe(false);
  });

  it('buckets only from the allowlist, by exact name (no ARNs, aliases or case tricks)', () => {
    for (const b of [
      'other-bucket',
      'ACME-REPORTS',
      'acme-reports ',
      'arn:aws:s3:::acme-reports',
      'arn:aws:s3:us-east-1:999999999999:accesspoint/acme-reports',
      'acme-reports/reports',
    ]) {
      expect(reason(authorizeObject(BUCKETS, b, 'reports/q1.csv'))).toMatch(/not in the allowlist/);
    }
  });

  it('key tricks never reach the prefix check', () => {
    for (const key of [
      'reports/../reports-private/x',
      'reports/./x',
      'reports//x',
      '/reports/x',
      'reports/\u202Ex',
      'reports/x\u0000',
    ]) {
      expect(authorizeObject(BUCKETS, 'acme-reports', key).ok).toBe(false);
    }
  });

  it('compares the NFC form against the prefixes', () => {
    const buckets: BucketRule[] = [{ name: 'acme-reports', prefixes: ['caf\u00e9/'] }];
    expect(authorizeObject(buckets, 'acme-reports', 'cafe\u0301/menu.txt')).toMatchObject({
      ok: true,
      key: 'caf\u00e9/menu.txt',
    });
  });
});

describe('authorizeListing', () => {
  it('defaults to the only prefix, requires one when there are several', () => {
    expect(authorizeListing(BUCKETS, 'acme-public', undefined)).toMatchObject({
      ok: true,
      prefix: 'docs/',
    });
    expect(reason(authorizeListing(BUCKETS, 'acme-reports', undefined))).toMatch(/give a prefix/);
  });
  it('accepts sub-prefixes, refuses look-alike prefixes', () => {
    expect(authorizeListing(BUCKETS, 'acme-reports', 'reports/2024/').ok).toBe(true);
    expect(authorizeListing(BUCKETS, 'acme-reports', 'reports/').ok).toBe(true);
    expect(authorizeListing(BUCKETS, 'acme-reports', 'reports').ok).toBe(false);
    expect(authorizeListing(BUCKETS, 'acme-reports', 'reports-private/').ok).toBe(false);
    expect(authorizeListing(BUCKETS, 'acme-reports', 'r').ok).toBe(false);
    expect(authorizeListing(BUCKETS, 'acme-reports', 'reports/../').ok).toBe(false);
    expect(authorizeListing(BUCKETS, 'nope', 'reports/').ok).toBe(false);
  });
});

describe('escapeForDisplay', () => {
  it('escapes controls, bidi and zero-width characters but keeps newlines, tabs and text', () => {
    expect(escapeForDisplay('a\u202Eb\u200Bc\u0007d\ne\tf日本')).toBe(
      'a\\u{202E}b\\u{200B}c\\u{0007}d\ne\tf日本',
    );
  });
});
