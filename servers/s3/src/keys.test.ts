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
  percentDecodedForms,
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

/** `n` rounds of percent-encoding of `%` applied to an already encoded `%XX` form. */
function encodeTimes(encoded: string, extraRounds: number): string {
  let s = encoded;
  for (let i = 0; i < extraRounds; i++) s = s.replaceAll('%', '%25');
  return s;
}

describe('percent-decoding walls (issue 10 §5)', () => {
  // Each row: a class, the reason it must give, and several spellings of it. Every spelling is
  // refused as an object key and as a listing prefix, before any prefix check.
  const TRAVERSAL: readonly [string, RegExp, readonly string[]][] = [
    [
      '.. segment',
      /percent-decoded, has a \.\. segment/,
      [
        'reports/%2e%2e/secret.txt',
        'reports/%2E%2E/secret.txt',
        'reports/%2e%2E/secret.txt',
        'reports/.%2e/secret.txt',
        'reports/%2e./secret.txt',
        'reports/..%2fsecret.txt',
        'reports/..%2Fsecret.txt',
        'reports/%2e%2e%2fsecret.txt',
        'reports/%252e%252e%252fsecret.txt',
        'reports/%25252e%25252e/secret.txt',
        `reports/${encodeTimes('%2e%2e%2f', 5)}secret.txt`,
        'reports/%%32e%%32e/secret.txt',
        'reports/%ef%bc%8e%ef%bc%8e/secret.txt',
        'reports/x/%2e%2e',
      ],
    ],
    [
      '. segment',
      /percent-decoded, has a \. segment/,
      ['reports/%2e/secret.txt', 'reports/.%2fsecret.txt', 'reports/%252E/secret.txt'],
    ],
    [
      'empty segment',
      /percent-decoded, has an empty segment/,
      [
        'reports/a%2f%2fb',
        'reports/a%2F/b',
        'reports/a/%2fb',
        'reports/a%252f%252fb',
        'reports/a%ef%bc%8f%ef%bc%8fb',
      ],
    ],
    [
      'backslash',
      /percent-decoded, contains a backslash/,
      [
        'reports/%2E%2e%5csecret.txt',
        'reports/..%5csecret.txt',
        'reports/a%5Cb',
        'reports/a%255cb',
        `reports/${encodeTimes('%5c', 3)}x`,
      ],
    ],
    [
      'control character',
      /percent-decoded, contains a control character/,
      [
        'reports/q1%00.txt',
        'reports/q1%0a.txt',
        'reports/q1%0D%0A.txt',
        'reports/q1%7f.txt',
        'reports/q1%c2%85.txt',
        'reports/q1%2500.txt',
        'reports/q1%25250A.txt',
        'reports/q1%09.txt',
      ],
    ],
    [
      'bidi control',
      /percent-decoded, contains a bidirectional control character/,
      ['reports/%e2%80%aetxt.exe', 'reports/%25E2%2580%25AEtxt.exe'],
    ],
    [
      'invalid UTF-8',
      /percent-decodes to invalid UTF-8/,
      [
        'reports/%c0%ae%c0%ae/secret.txt',
        'reports/%C0%AE./secret.txt',
        'reports/%c0%af',
        'reports/%e0%80%ae%e0%80%ae/x',
        'reports/%c1%9c',
        'reports/%c0%80',
        'reports/%80',
        'reports/%ed%a0%80',
        'reports/%25c0%25ae%25c0%25ae/x',
      ],
    ],
  ];

  for (const [name, why, spellings] of TRAVERSAL) {
    it.each(spellings)(`refuses a key that decodes to a ${name}: %j`, (key) => {
      const r = checkObjectKey(key);
      expect(r.ok).toBe(false);
      expect(reason(r)).toMatch(why);
      expect(reason(r)).not.toContain(key);
      expect(reason(authorizeObject(BUCKETS, 'acme-reports', key))).toMatch(why);
    });
    it.each(spellings)(`refuses a listing prefix that decodes to a ${name}: %j`, (key) => {
      expect(reason(checkListPrefix(key))).toMatch(why);
      expect(reason(authorizeListing(BUCKETS, 'acme-reports', key))).toMatch(why);
    });
  }

  it('refuses a decoded trailing or leading / in an object key, not in a listing prefix', () => {
    expect(reason(checkObjectKey('reports/2024%2f'))).toMatch(/percent-decoded, ends with \//);
    expect(reason(checkObjectKey('reports/2024%252F'))).toMatch(/percent-decoded, ends with \//);
    expect(reason(checkObjectKey('%2freports/x'))).toMatch(/percent-decoded, starts with \//);
    expect(checkListPrefix('reports/2024%2f').ok).toBe(true);
    expect(reason(checkListPrefix('reports/2024%2f%2f'))).toMatch(/empty segment/);
  });

  it.each([
    // a `%` not followed by two hex digits is a literal `%` (WHATWG percent-decode)
    'reports/100%.txt',
    'reports/50% off.pdf',
    'reports/%zz.txt',
    'reports/50%',
    'reports/5%2',
    // decodes to harmless text: accepted, and the key is sent as written
    'reports/100%25-done.txt',
    'reports/Q1%20summary.pdf',
    'reports/a%2fb.txt',
    'reports/caf%C3%A9.txt',
    'reports/%e6%97%a5%e6%9c%ac.txt',
    'reports/%2e%2ehidden',
    'reports/..%2ehidden',
    'reports/a%2e%2eb',
    'reports/x%2e',
    // `+` is a space only in form encoding, never a separator
    'reports/a+b.txt',
    'reports/%2b.txt',
  ])('accepts the honest key %j unchanged', (key) => {
    expect(checkObjectKey(key)).toEqual({ ok: true, value: key });
    expect(authorizeObject(BUCKETS, 'acme-reports', key)).toMatchObject({ ok: true, key });
  });

  it('decodes to a fixed point, with malformed % kept literal and invalid UTF-8 reported', () => {
    expect(percentDecodedForms('reports/q1.txt')).toEqual([]);
    expect(percentDecodedForms('100%.txt')).toEqual([]);
    expect(percentDecodedForms('%252e')).toEqual(['%2e', '.']);
    expect(percentDecodedForms('%%32e')).toEqual(['%2e', '.']);
    expect(percentDecodedForms('a+b%2B')).toEqual(['a+b+']);
    expect(percentDecodedForms('%c0%ae')).toBeUndefined();
    expect(percentDecodedForms('%2580')).toBeUndefined();
    const deep = encodeTimes('%2e', 300);
    const forms = percentDecodedForms(deep);
    expect(forms).toHaveLength(301);
    expect(forms?.at(-1)).toBe('.');
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
    ['reports/%2e%2e/', /percent-decoded, has a \.\. segment/],
    ['reports%2f%2f/', /percent-decoded, has an empty segment/],
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
