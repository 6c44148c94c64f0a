import { Buffer } from 'node:buffer';
import process from 'node:process';
import { describe, expect, it } from 'vitest';
import {
  createRedactor,
  DEFAULT_KEY_RULES,
  mergeCounts,
  normalizeForMatching,
  RedactionError,
} from './redactor.js';

// Token-shaped fixtures are assembled at run time so secret scanners do not flag this file.
const cat = (...parts: string[]): string => parts.join('');
const b64url = (s: string): string => Buffer.from(s).toString('base64url');

const JWT = cat(
  b64url('{"alg":"HS256","typ":"JWT"}'),
  '.',
  b64url('{"sub":"1234567890","name":"John Doe","iat":1516239022}'),
  '.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
);
const PEM = [
  cat('-----BEGIN ', 'RSA PRIVATE KEY-----'),
  'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun',
  'VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK',
  cat('-----END ', 'RSA PRIVATE KEY-----'),
].join('\n');

/** Chinook `Customer` table (first rows), as a SQL connector returns it. */
const CUSTOMER_COLUMNS = [
  'CustomerId',
  'FirstName',
  'LastName',
  'Company',
  'City',
  'Country',
  'Phone',
  'Fax',
  'Email',
] as const;
const CUSTOMER_ROWS = [
  [
    1,
    'Luís',
    'Gonçalves',
    'Embraer - Empresa Brasileira de Aeronáutica S.A.',
    'São José dos Campos',
    'Brazil',
    '+55 (12) 3923-5555',
    '+55 (12) 3923-5566',
    'luisg@embraer.com.br',
  ],
  [
    2,
    'Leonie',
    'Köhler',
    null,
    'Stuttgart',
    'Germany',
    '+49 0711 2842222',
    null,
    'leonekohler@surfeu.de',
  ],
  [
    3,
    'François',
    'Tremblay',
    null,
    'Montréal',
    'Canada',
    '+1 (514) 721-4711',
    null,
    'ftremblay@gmail.com',
  ],
  [
    5,
    'František',
    'Wichterlová',
    'JetBrains s.r.o.',
    'Prague',
    'Czech Republic',
    '+420 2 4172 5555',
    '+420 2 4172 5555',
    'frantisekw@jetbrains.com',
  ],
] as const;

describe('createRedactor: boxed primitives', () => {
  it('redacts a boxed string as the string JSON.stringify writes, not as its index keys', () => {
    const r = createRedactor();
    const boxed = new String('card 4111 1111 1111 1111');
    const hidden = Object.setPrototypeOf(new String('4111 1111 1111 1111'), Object.prototype);
    Object.defineProperty(hidden, Symbol.toStringTag, { value: 'Object' });
    const counts: Record<string, number> = {};
    const out = JSON.stringify(
      r.redactValue({ boxed, list: [boxed], n: new Number(4111111111111111) }, counts),
    );
    expect(out).not.toMatch(/4111/);
    expect(out).toContain('"boxed":"card [REDACTED');
    const table = r.redactTable(['c', 'd'], [[boxed, hidden]], {});
    expect(JSON.stringify(table)).not.toMatch(/4111/);
    expect(r.redactValue(new Boolean(false), {})).toBe(false);
    expect(r.redactValue(new String('plain'), {})).toBe('plain');
  });
});

describe('createRedactor: PII', () => {
  const r = createRedactor();

  it('redacts a Chinook customer table per cell and counts exactly', () => {
    const counts: Record<string, number> = {};
    const out = r.redactTable(CUSTOMER_COLUMNS, CUSTOMER_ROWS, counts);
    expect(out[0]).toEqual([
      1,
      'Luís',
      'Gonçalves',
      'Embraer - Empresa Brasileira de Aeronáutica S.A.',
      'São José dos Campos',
      'Brazil',
      '[REDACTED:phone]',
      '[REDACTED:phone]',
      '[REDACTED:email]',
    ]);
    expect(out[1]).toEqual([
      2,
      'Leonie',
      'Köhler',
      null,
      'Stuttgart',
      'Germany',
      '[REDACTED:phone]',
      null,
      '[REDACTED:email]',
    ]);
    expect(out[3]?.slice(6)).toEqual(['[REDACTED:phone]', '[REDACTED:phone]', '[REDACTED:email]']);
    expect(counts).toEqual({ phone: 6, email: 4 });
    // input untouched
    expect(CUSTOMER_ROWS[0][8]).toBe('luisg@embraer.com.br');
  });

  it('redacts e-mail addresses inside text and keeps the surrounding text', () => {
    expect(r.redactString('Contact Luís Gonçalves <luisg@embraer.com.br>.')).toEqual({
      value: 'Contact Luís Gonçalves <[REDACTED:email]>.',
      counts: { email: 1 },
    });
    expect(r.redactString('mail: José.Pérez+billing@exämple.co.uk, cc a.b@c.io').value).toBe(
      'mail: [REDACTED:email], cc [REDACTED:email]',
    );
  });

  it('redacts phone numbers in international and national forms', () => {
    const cases: [string, string][] = [
      ['+1 (403) 262-3443', '[REDACTED:phone]'],
      ['Call +55 (12) 3923-5555 today', 'Call [REDACTED:phone] today'],
      ['+49 0711 2842222', '[REDACTED:phone]'],
      ['+420 2 4172 5555', '[REDACTED:phone]'],
      ['(555) 123-4567', '[REDACTED:phone]'],
      ['tel. +56 (0)2 635 4444', 'tel. [REDACTED:phone]'],
      ['+33 01 49 70 65 65', '[REDACTED:phone]'],
      ['+4915112345678', '[REDACTED:phone]'],
      ['+1-403-262-3443', '[REDACTED:phone]'],
      ['office 403-262-3443 or 020 7976 5722', 'office [REDACTED:phone] or [REDACTED:phone]'],
      // a year right after a +1 number is not part of it (NANP numbers have 11 digits)
      ['+1 (403) 262-3443 2021', '[REDACTED:phone] 2021'],
    ];
    for (const [input, expected] of cases) {
      expect(r.redactString(input).value, input).toBe(expected);
    }
  });

  it('redacts a Luhn-valid card number and keeps a Luhn-invalid one', () => {
    expect(r.redactString('card 4111 1111 1111 1111 exp 12/27')).toEqual({
      value: 'card [REDACTED:card_number] exp 12/27',
      counts: { card_number: 1 },
    });
    expect(r.redactString('card 4111 1111 1111 1112 exp 12/27')).toEqual({
      value: 'card 4111 1111 1111 1112 exp 12/27',
      counts: {},
    });
    expect(r.redactString('4111111111111111').value).toBe('[REDACTED:card_number]');
    expect(r.redactString('4111111111111112').value).toBe('4111111111111112');
    expect(r.redactString('amex 3782-822463-10005').value).toBe('amex [REDACTED:card_number]');
    expect(r.redactString('5555-5555-5555-4444').value).toBe('[REDACTED:card_number]');
    expect(r.redactString('4111111111111111,5555555555554444,4111111111111112').value).toBe(
      '[REDACTED:card_number],[REDACTED:card_number],4111111111111112',
    );
    // mixed separators and odd groupings are not printed card numbers
    expect(r.redactString('4111 1111-1111 1111').value).toBe('4111 1111-1111 1111');
    expect(r.redactString('41 11 11 11 11 11 11 11').value).toBe('41 11 11 11 11 11 11 11');
    // a valid card behind an invalid prefix group is still found
    expect(r.redactString('ref 1234 4111 1111 1111 1111').value).toBe(
      'ref 1234 [REDACTED:card_number]',
    );
  });

  it('redacts IBANs with a valid ISO 13616 check and keeps a bad one', () => {
    expect(r.redactString('Pay to GB82 WEST 1234 5698 7654 32 by Friday')).toEqual({
      value: 'Pay to [REDACTED:iban] by Friday',
      counts: { iban: 1 },
    });
    expect(r.redactString('IBAN: DE89370400440532013000').value).toBe('IBAN: [REDACTED:iban]');
    expect(r.redactString('IBAN: DE89370400440532013001').value).toBe(
      'IBAN: DE89370400440532013001',
    );
    expect(r.redactString('GB83 WEST 1234 5698 7654 32').value).toBe('GB83 WEST 1234 5698 7654 32');
    // trailing currency code is not swallowed
    expect(r.redactString('BE68 5390 0754 7034 EUR').value).toBe('[REDACTED:iban] EUR');
  });

  it('redacts US SSNs except never-issued ranges', () => {
    expect(r.redactString('SSN 123-45-6789').value).toBe('SSN [REDACTED:us_ssn]');
    expect(r.redactString('ssn 078 05 1120').value).toBe('ssn [REDACTED:us_ssn]');
    for (const s of ['000-12-3456', '666-12-3456', '900-12-3456', '123-00-4567', '123-45-0000']) {
      expect(r.redactString(`SSN ${s}`).value, s).toBe(`SSN ${s}`);
    }
  });

  it('redacts UK National Insurance numbers and keeps invalid prefixes', () => {
    expect(r.redactString('NI number: AB 12 34 56 C').value).toBe('NI number: [REDACTED:uk_nino]');
    expect(r.redactString('NINO JG103759A').value).toBe('NINO [REDACTED:uk_nino]');
    expect(r.redactString('code BG123456A').value).toBe('code BG123456A');
    expect(r.redactString('code DA123456A').value).toBe('code DA123456A');
  });

  it('catches zero-width and fullwidth obfuscation', () => {
    const zw = 'mail luisg\u200b@\u200dembraer\u2060.com.br\ufeff now';
    expect(r.redactString(zw)).toEqual({
      value: 'mail [REDACTED:email] now',
      counts: { email: 1 },
    });
    expect(r.redactString('ｌｕｉｓｇ＠ｅｍｂｒａｅｒ．ｃｏｍ．ｂｒ').value).toBe(
      '[REDACTED:email]',
    );
    expect(r.redactString('card ４１１１ １１１１ １１１１ １１１１').value).toBe(
      'card [REDACTED:card_number]',
    );
    expect(r.redactString('＋５５ （１２） ３９２３－５５５５').value).toBe('[REDACTED:phone]');
    expect(r.redactString('4111\u00ad1111\u200c1111\u202e1111').value).toBe(
      '[REDACTED:card_number]',
    );
  });

  it('returns the original string, not its normalization, when nothing is redacted', () => {
    const innocent = 'ﬁnance ＡＢＣ Cafe\u0301 \u200bzero-width x²';
    const out = r.redactString(innocent);
    expect(out.value).toBe(innocent);
    expect(out.counts).toEqual({});
    // when something is redacted the rest is normalized
    expect(r.redactString('ＡＢＣ luisg@embraer.com.br').value).toBe('ABC [REDACTED:email]');
  });

  it('does not flag dates, times, prices, timestamps, UUIDs, ids, totals or durations', () => {
    const innocent = [
      '2021-03-04',
      '2021-03-04T12:30:00Z',
      '2021-03-04T12:30:00.123+05:30',
      '2009-01-01 00:00:00',
      '12:30:00',
      '04/03/2021',
      '1234.56',
      '$1,234,567.89',
      '+1234.5678',
      '+12345678',
      'Total: 13.86',
      'INV-2021-000123',
      'Invoice 2021-000123 total 1,234.56 EUR',
      'order ORD-20210304-123456',
      '550e8400-e29b-41d4-a716-446655440000',
      '123e4567-e89b-12d3-a456-426614174000',
      'Milliseconds: 343719, Bytes: 11170334, UnitPrice: 0.99',
      'track 05:43 / album 1:02:03',
      '1614862200000',
      '1614862200000000',
      'v1.2.3 192.168.100.200 10.0.0.1',
      'score 3 4 5 6 7 8 9 10 11 12 13 14 15',
      'year 1999 and 2021 and 2022',
      'Posted 1 000 000 rows in 12 345 ms',
      'ISBN 978-0-596-52068-7',
      'price +25 % then -3.5 %',
      'sk-learn-compatible-estimator-wrapper',
      'icon@2x.png and git@github.com:org/repo.git',
      'The bearer instrument is payable to the holder',
    ];
    for (const s of innocent) {
      const out = r.redactString(s);
      expect(out.value, s).toBe(s);
      expect(out.counts, s).toEqual({});
    }
  });

  it('can switch PII off while secrets stay on', () => {
    const noPii = createRedactor({ pii: false });
    expect(
      noPii.redactString('luisg@embraer.com.br +55 (12) 3923-5555 password=hunter2!').value,
    ).toBe('luisg@embraer.com.br +55 (12) 3923-5555 password=[REDACTED:password_assignment]');
  });
});

describe('createRedactor: secrets', () => {
  const r = createRedactor();

  it('redacts JWTs whose header decodes to JSON with alg', () => {
    expect(r.redactString(`token: ${JWT}`).value).toBe('token: [REDACTED:jwt]');
    expect(r.redactString(`Authorization: Bearer ${JWT}`)).toEqual({
      value: 'Authorization: Bearer [REDACTED:jwt]',
      counts: { jwt: 1 },
    });
    const notJwt = `${b64url('{"kind":"cursor"}')}.${b64url('{"page":2}')}.abc`;
    expect(r.redactString(`cursor ${notJwt}`).value).toBe(`cursor ${notJwt}`);
  });

  it('redacts a whole PEM private key block, also when truncated', () => {
    const text = `key:\n${PEM}\ntrailing text`;
    expect(r.redactString(text)).toEqual({
      value: 'key:\n[REDACTED:private_key]\ntrailing text',
      counts: { private_key: 1 },
    });
    const escaped = `{"private_key":"${PEM.replace(/\n/g, '\\n')}\\n","client_email":"svc@proj.iam.gserviceaccount.com"}`;
    expect(r.redactString(escaped).value).toBe(
      '{"private_key":"[REDACTED:private_key]\\n","client_email":"[REDACTED:email]"}',
    );
    const truncated = PEM.split('\n').slice(0, 2).join('\n');
    expect(r.redactString(`head ${truncated}`).value).toBe('head [REDACTED:private_key]');
    const publicKey =
      '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1L\n-----END PUBLIC KEY-----';
    expect(r.redactString(publicKey).value).toBe(publicKey);
  });

  it('redacts only the password of a connection string', () => {
    expect(r.redactString('postgres://reader:s3cr3t-pass@db:5432/app')).toEqual({
      value: 'postgres://reader:[REDACTED:connection_string_password]@db:5432/app',
      counts: { connection_string_password: 1 },
    });
    expect(
      r.redactString('DSN=mongodb+srv://admin:P%40ss:w0rd@cluster0.x.mongodb.net/db').value,
    ).toBe(
      'DSN=mongodb+srv://admin:[REDACTED:connection_string_password]@cluster0.x.mongodb.net/db',
    );
    expect(r.redactString('redis://:hunter22@cache.internal:6379/0').value).toBe(
      'redis://:[REDACTED:connection_string_password]@cache.internal:6379/0',
    );
    // no password, port only, plain URLs: untouched
    for (const s of [
      'https://user@example.com/path',
      'https://example.com:8443/a?b=c',
      'postgres://db:5432/app',
    ]) {
      expect(r.redactString(s).value, s).toBe(s);
    }
  });

  it('redacts password assignments in env, query, ODBC, JSON and XML forms', () => {
    const cases: [string, string][] = [
      ['DB_PASSWORD=hunter2!', 'DB_PASSWORD=[REDACTED:password_assignment]'],
      ['pwd: s3cret', 'pwd: [REDACTED:password_assignment]'],
      [
        'Server=db;User Id=sa;Password=Pa$$w0rd;Encrypt=true',
        'Server=db;User Id=sa;Password=[REDACTED:password_assignment];Encrypt=true',
      ],
      [
        'jdbc:mysql://db/app?user=app&password=t0psecret&ssl=true',
        'jdbc:mysql://db/app?user=app&password=[REDACTED:password_assignment]&ssl=true',
      ],
      [
        '{"user":"app","password":"correct horse battery"}',
        '{"user":"app","password":"[REDACTED:password_assignment]"}',
      ],
      [
        '{\\"dbPassword\\":\\"hunter2\\"}',
        '{\\"dbPassword\\":\\"[REDACTED:password_assignment]\\"}',
      ],
      ["passphrase = 'open sesame'", "passphrase = '[REDACTED:password_assignment]'"],
      ['<password>hunter2</password>', '<password>[REDACTED:password_assignment]</password>'],
      ['export PGPASSWORD=hunter2', 'export PGPASSWORD=[REDACTED:password_assignment]'],
      ['if password == "hunter2":', 'if password == "[REDACTED:password_assignment]":'],
      ['MYSQL_PWD=r00tpw', 'MYSQL_PWD=[REDACTED:password_assignment]'],
    ];
    for (const [input, expected] of cases) {
      expect(r.redactString(input).value, input).toBe(expected);
    }
    // not passwords
    for (const s of [
      'PWD=/home/app',
      '{"password": null, "password_reset_required": true}',
      'password: ********',
      'compass=north bypass: yes',
      'Forgot your password? Reset it.',
    ]) {
      expect(r.redactString(s).value, s).toBe(s);
    }
  });

  it('redacts vendor tokens with their own type ids', () => {
    const ghp = cat('ghp', '_', 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8');
    const pat = cat('github', '_pat_', '11ABCDEFG0123456789abc_', 'x'.repeat(59));
    const slack = cat('xox', 'b-', '1234567890-1234567890123-', 'AbCdEfGhIjKlMnOpQrStUvWx');
    const hook = cat(
      'https://hooks.',
      'slack.com/services/',
      'T00000000/B00000000/',
      'XXXXXXXXXXXXXXXXXXXXXXXX',
    );
    const stripe = cat('sk', '_live_', '4eC39HqLyjWDarjtT1zdp7dc');
    const anthropic = cat('sk', '-ant-', 'api03-', 'Ab1_'.repeat(20));
    const openai = cat('sk', '-proj-', 'T3BlbkFJ', 'a1B2c3D4e5F6g7H8i9J0');
    const google = cat('AI', 'za', 'SyD-1234567890abcdefghijklmnopqrstu');
    const akid = cat('AK', 'IA', 'IOSFODNN7EXAMPLE');
    const awsSecret = cat('wJalrXUtnFEMI/K7MDENG/', 'bPxRfiCYEXAMPLEKEY');
    const text = [
      `gh ${ghp}`,
      `fine ${pat}`,
      `slack ${slack}`,
      `hook ${hook}`,
      `stripe ${stripe}`,
      `anthropic ${anthropic}`,
      `openai ${openai}`,
      `google ${google}`,
      `aws_access_key_id = ${akid}`,
      `aws_secret_access_key = ${awsSecret}`,
      '"SecretAccessKey": "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/Ab"',
    ].join('\n');
    const out = r.redactString(text);
    expect(out.value).toBe(
      [
        'gh [REDACTED:github_token]',
        'fine [REDACTED:github_token]',
        'slack [REDACTED:slack_token]',
        'hook [REDACTED:slack_webhook_url]',
        'stripe [REDACTED:stripe_key]',
        'anthropic [REDACTED:anthropic_api_key]',
        'openai [REDACTED:openai_api_key]',
        'google [REDACTED:google_api_key]',
        'aws_access_key_id = [REDACTED:aws_access_key_id]',
        'aws_secret_access_key = [REDACTED:aws_secret_access_key]',
        '"SecretAccessKey": "[REDACTED:aws_secret_access_key]"',
      ].join('\n'),
    );
    expect(out.counts).toEqual({
      github_token: 2,
      slack_token: 1,
      slack_webhook_url: 1,
      stripe_key: 1,
      anthropic_api_key: 1,
      openai_api_key: 1,
      google_api_key: 1,
      aws_access_key_id: 1,
      aws_secret_access_key: 2,
    });
  });

  it('redacts Authorization credentials and named API keys', () => {
    expect(r.redactString('Authorization: Bearer abc.DEF-123_x').value).toBe(
      'Authorization: Bearer [REDACTED:bearer_token]',
    );
    expect(r.redactString("-H 'authorization: Basic dXNlcjpwYXNzd29yZA=='").value).toBe(
      "-H 'authorization: Basic [REDACTED:basic_auth]'",
    );
    expect(r.redactString('curl -H "Bearer 0123456789abcdefXYZ"').value).toBe(
      'curl -H "Bearer [REDACTED:bearer_token]"',
    );
    expect(r.redactString('X-Api-Key: 9f8e7d6c5b4a39281706').value).toBe(
      'X-Api-Key: [REDACTED:generic_api_key]',
    );
    expect(r.redactString('https://api.example.com/v1?api_key=AbC123xYz789QwE&q=1').value).toBe(
      'https://api.example.com/v1?api_key=[REDACTED:generic_api_key]&q=1',
    );
    expect(r.redactString('{"client_secret": "c1i3nt-s3cr3t-value"}').value).toBe(
      '{"client_secret": "[REDACTED:generic_api_key]"}',
    );
    // pagination cursors are not credentials
    expect(r.redactString('next_page_token=CAESBggBEAEYAQ').value).toBe(
      'next_page_token=CAESBggBEAEYAQ',
    );
  });

  it('finds keyword-anchored secrets in long texts wherever they sit (windowed keyword hint)', () => {
    // the widest distances between a keyword and its `:`/`=`/`<` that the patterns allow
    const cases = [
      'passphrase_confirmation\\\\"    := hunter2-value',
      'PASSWORD_CONFIRMATION=hunter2-value',
      'aws_secret_access_key\\\\`    => AbCdEfGhIjKlMnOpQrSt0123',
      'x-api-key  \t: 9f8e7d6c5b4a39281706',
      "proxy-authorization\\\\'    =    Basic dXNlcjpwYXNzd29yZA==",
      `<${'n'.repeat(32)}:password>hunter2-value</${'n'.repeat(32)}:password>`,
      'curl -H "Bearer 0123456789abcdefXYZ"',
    ];
    const filler = (n: number, every: number): string =>
      Array.from({ length: n }, (_, i) => (every > 0 && i % every === every - 1 ? ':' : 'x')).join(
        '',
      );
    for (const secret of cases) {
      const alone = r.redactString(secret);
      expect(alone.value, secret).toContain('[REDACTED:');
      for (const before of [0, 100, 700, 1500]) {
        for (const every of [0, 200, 7]) {
          const head = filler(before, every);
          const tail = filler(2000, every);
          const out = r.redactString(`${head} ${secret} ${tail}`);
          expect(out.value, `${secret} after ${before} (':' every ${every})`).toBe(
            `${head} ${alone.value} ${tail}`,
          );
        }
      }
    }
  });

  it('redacts known secrets first, including URL-encoded forms', () => {
    const kr = createRedactor({ knownSecrets: ['s3cr3t-pass', 'short'] });
    expect(kr.redactString('postgres://reader:s3cr3t-pass@db:5432/app')).toEqual({
      value: 'postgres://reader:[REDACTED:known_secret]@db:5432/app',
      counts: { known_secret: 1 },
    });
    expect(kr.redactString('echo s3cr3t-pass; echo short').value).toBe(
      'echo [REDACTED:known_secret]; echo short',
    );
    kr.addKnownSecret('p@ss w0rd!9');
    expect(kr.redactString('q=p%40ss%20w0rd!9 and p@ss w0rd!9').value).toBe(
      'q=[REDACTED:known_secret] and [REDACTED:known_secret]',
    );
    // even inside an otherwise innocent word, and with zero-width characters inserted
    expect(kr.redactString('xs3cr3t-pass\u200b and s3cr3t\u200b-pass').value).toBe(
      'x[REDACTED:known_secret] and [REDACTED:known_secret]',
    );
  });

  it('is idempotent: redacting redacted text changes nothing', () => {
    const text = `postgres://u:pw12345@h/db password=hunter2 ${JWT} luisg@embraer.com.br 4111111111111111 <pwd>x1</pwd>`;
    const once = r.redactString(text);
    expect(once.counts).toEqual({
      connection_string_password: 1,
      password_assignment: 2,
      jwt: 1,
      email: 1,
      card_number: 1,
    });
    const twice = r.redactString(once.value);
    expect(twice.value).toBe(once.value);
    expect(twice.counts).toEqual({});
  });
});

describe('createRedactor: key rules', () => {
  it('replaces values under sensitive keys whatever their type', () => {
    const r = createRedactor();
    const counts: Record<string, number> = {};
    const input = {
      user: { name: 'Luís Gonçalves', email: 'luisg@embraer.com.br', password: 'x' },
      apiKey: 12345,
      'API-KEY': { nested: true },
      token: ['a', 'b'],
      dbPassword: 'hunter2',
      password_hash: '$2b$12$abcdefghijklmnopqrstuv',
      password_reset_required: true,
      secret: null,
      total: 13.86,
      when: new Date('2021-03-04T12:30:00Z'),
      tags: ['rock', 'call +1 (403) 262-3443'],
    };
    expect(r.redactValue(input, counts)).toEqual({
      user: {
        name: 'Luís Gonçalves',
        email: '[REDACTED:email]',
        password: '[REDACTED:column_rule]',
      },
      apiKey: '[REDACTED:column_rule]',
      'API-KEY': '[REDACTED:column_rule]',
      token: '[REDACTED:column_rule]',
      dbPassword: '[REDACTED:column_rule]',
      password_hash: '[REDACTED:column_rule]',
      password_reset_required: true,
      secret: null,
      total: 13.86,
      when: '2021-03-04T12:30:00.000Z',
      tags: ['rock', 'call [REDACTED:phone]'],
    });
    expect(counts).toEqual({ email: 1, column_rule: 6, phone: 1 });
    expect(input.user.password).toBe('x');
  });

  it('applies key rules per table column, with custom names and /regex/ rules', () => {
    const r = createRedactor({ keyRules: ['Phone', '/^billing_/i'] });
    const counts: Record<string, number> = { email: 1 };
    const out = r.redactTable(
      ['InvoiceId', 'phone', 'BILLING_ADDRESS', 'Total', 'card_number', 'notes'],
      [
        [98, '+55 (12) 3923-5555', 'Av. Brigadeiro Faria Lima, 2170', 3.98, 4111111111111111, 'ok'],
        [121, null, 'Theodor-Heuss-Straße 34', 13.86, null, 'mail leonekohler@surfeu.de', 'extra'],
      ],
      counts,
    );
    expect(out).toEqual([
      [
        98,
        '[REDACTED:column_rule]',
        '[REDACTED:column_rule]',
        3.98,
        '[REDACTED:column_rule]',
        'ok',
      ],
      [121, null, '[REDACTED:column_rule]', 13.86, null, 'mail [REDACTED:email]', 'extra'],
    ]);
    expect(counts).toEqual({ email: 2, column_rule: 4 });
  });

  it('applies key rules in redactString and keeps defaults when rules are added', () => {
    const r = createRedactor({ keyRules: ['internal_notes'] });
    expect(r.redactString('anything', 'Internal-Notes')).toEqual({
      value: '[REDACTED:column_rule]',
      counts: { column_rule: 1 },
    });
    expect(r.redactString('hunter2', 'PASSWORD').value).toBe('[REDACTED:column_rule]');
    expect(r.redactString('Stuttgart', 'City').value).toBe('Stuttgart');
    expect(DEFAULT_KEY_RULES).toContain('password');
  });

  it('rejects an invalid /regex/ key rule', () => {
    expect(() => createRedactor({ keyRules: ['/(unclosed/'] })).toThrow(TypeError);
  });

  it('deep-redacts JSON cells in tables and fails closed on cycles', () => {
    const r = createRedactor();
    const counts: Record<string, number> = {};
    const out = r.redactTable(
      ['id', 'payload'],
      [[1, { contact: { email: 'ftremblay@gmail.com' }, auth: { token: 'abc' } }]],
      counts,
    );
    expect(out).toEqual([
      [1, { contact: { email: '[REDACTED:email]' }, auth: { token: '[REDACTED:column_rule]' } }],
    ]);
    expect(counts).toEqual({ email: 1, column_rule: 1 });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => r.redactValue(cyclic, {})).toThrow(RedactionError);
    const shared = { email: 'a.b@c.io' };
    expect(r.redactValue([shared, shared], {})).toEqual([
      { email: '[REDACTED:email]' },
      { email: '[REDACTED:email]' },
    ]);
  });

  it('does not let a __proto__ key change the prototype of the result', () => {
    const r = createRedactor();
    const input = JSON.parse('{"__proto__": {"polluted": "luisg@embraer.com.br"}}') as unknown;
    const out = r.redactValue(input, {}) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({
      polluted: '[REDACTED:email]',
    });
  });
});

describe('mergeCounts', () => {
  it('adds counts per type in place', () => {
    const into: Record<string, number> = { email: 1 };
    mergeCounts(into, { email: 2, phone: 1 });
    mergeCounts(into, {});
    expect(into).toEqual({ email: 3, phone: 1 });
  });
});

describe('normalizeForMatching', () => {
  it('strips invisible format characters and applies NFKC', () => {
    expect(normalizeForMatching('a\u200bb\u00adc\u202ed\u2066e\ufefff')).toBe('abcdef');
    expect(normalizeForMatching('４１１１＠ｘ')).toBe('4111@x');
    const ascii = 'plain ascii';
    expect(normalizeForMatching(ascii)).toBe(ascii);
  });
});

describe('linear-time behaviour on adversarial input', () => {
  const MiB = 1024 * 1024;
  const fill = (unit: string): string => unit.repeat(Math.ceil(MiB / unit.length)).slice(0, MiB);
  const r = createRedactor({ knownSecrets: ['a-known-secret-value'] });

  it.each([
    ['@ runs', fill('a@')],
    ['local part without @ then @', `${fill('a.')}@`],
    ['dotted domain', `x@${fill('b.')}`],
    ['plus signs', fill('+1 ')],
    ['spaced digits', fill('1 ')],
    ['digits', fill('4')],
    ['card-like groups', fill('4111 ')],
    ['dashes', fill('1-')],
    ['parens', fill('(12) ')],
    ['PEM begins', fill('-----BEGIN PRIVATE KEY-----')],
    ['jwt heads', fill('eyJ.')],
    ['password keys', fill('password=')],
    ['quoted password', `password="${fill('x')}`],
    ['schemes', fill('a://b:')],
    ['authorization', fill('Authorization: Bearer ')],
    ['iban-like', fill('GB82 ')],
    ['alnum run', fill('AKIAsk-ghp_xoxb-')],
    ['zero-width', fill('\u200b1')],
  ])(
    'completes on 1 MiB of %s',
    (_name, input) => {
      const out = r.redactString(input);
      expect(typeof out.value).toBe('string');
      expect(out.value.length).toBeGreaterThan(0);
    },
    60_000,
  );

  it('processes a long string fully (no truncation)', () => {
    const big = `${'lorem ipsum '.repeat(100_000)}luisg@embraer.com.br`;
    const out = r.redactString(big);
    expect(out.value.endsWith('[REDACTED:email]')).toBe(true);
    expect(out.counts).toEqual({ email: 1 });
  });
});

describe('createRedactor: object keys and column names', () => {
  const r = createRedactor();

  it('redacts object keys like strings and counts them', () => {
    const counts: Record<string, number> = {};
    const input = { 'alice@example.com': 1, nested: { 'bob@example.org': { ok: true } } };
    expect(r.redactValue(input, counts)).toEqual({
      '[REDACTED:email]': 1,
      nested: { '[REDACTED:email]': { ok: true } },
    });
    expect(counts).toEqual({ email: 2 });
    expect(Object.keys(input)).toEqual(['alice@example.com', 'nested']);
  });

  it('makes colliding redacted keys unique with #2, #3 … in key order', () => {
    const counts: Record<string, number> = {};
    const out = r.redactValue(
      {
        'a@example.com': 1,
        '[REDACTED:email]': 'already a marker',
        'b@example.com': 2,
        '[REDACTED:email]#2': 'taken suffix',
        'c@example.com': 3,
        plain: 4,
      },
      counts,
    );
    expect(out).toEqual({
      '[REDACTED:email]#3': 1,
      '[REDACTED:email]': 'already a marker',
      '[REDACTED:email]#4': 2,
      '[REDACTED:email]#2': 'taken suffix',
      '[REDACTED:email]#5': 3,
      plain: 4,
    });
    expect(Object.keys(out as object)).toHaveLength(6);
    expect(counts).toEqual({ email: 3 });
  });

  it('redacts keys that hold secrets and keeps key rules on the original key', () => {
    const key = cat('ghp', '_', 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8');
    const out = r.redactValue({ [key]: 'x', password: 'hunter2', 'user password=hunter2': 1 }, {});
    expect(out).toEqual({
      '[REDACTED:github_token]': 'x',
      password: '[REDACTED:column_rule]',
      'user password=[REDACTED:password_assignment]': 1,
    });
    // what PostgreSQL's jsonb_object_agg(email, id) returns
    const agg = JSON.parse('{"luisg@embraer.com.br": 1, "leonekohler@surfeu.de": 2}') as unknown;
    expect(JSON.stringify(r.redactValue(agg, {}))).not.toMatch(/@/);
  });

  it('redacts column names with the same collision rule and leaves clean names alone', () => {
    const counts: Record<string, number> = {};
    const columns = ['id', 'luisg@embraer.com.br', 'ftremblay@gmail.com', 'Email'];
    expect(r.redactColumnNames(columns, counts)).toEqual([
      'id',
      '[REDACTED:email]',
      '[REDACTED:email]#2',
      'Email',
    ]);
    expect(counts).toEqual({ email: 2 });
    const clean = ['CustomerId', 'Email'];
    const same = r.redactColumnNames(clean, counts);
    expect(same).toEqual(clean);
    expect(same).not.toBe(clean);
  });

  it('forgets cached clean names when a known secret is added', () => {
    const kr = createRedactor();
    expect(kr.redactValue({ 'tenant-zebra-42': 1 }, {})).toEqual({ 'tenant-zebra-42': 1 });
    kr.addKnownSecret('tenant-zebra-42');
    expect(kr.redactValue({ 'tenant-zebra-42': 1 }, {})).toEqual({ '[REDACTED:known_secret]': 1 });
  });
});

describe('createRedactor: numbers rendered as text', () => {
  const r = createRedactor();

  it('catches a card number stored as a number, a bigint or a numeric string', () => {
    for (const value of [
      4111111111111111,
      4111111111111111n,
      '4111111111111111',
      '4111111111111111.00',
      5555555555554444,
      4111111111111111110n, // 19-digit Visa
      '6222222222222222222', // 19-digit UnionPay
    ]) {
      const counts: Record<string, number> = {};
      expect(r.redactValue(value, counts), String(value)).toBe('[REDACTED:card_number]');
      expect(counts).toEqual({ card_number: 1 });
    }
  });

  it('catches it in a numeric table column and in a JSON number', () => {
    const counts: Record<string, number> = {};
    const out = r.redactTable(
      ['id', 'card', 'payload'],
      [[1, 4111111111111111, { pan: 378282246310005, amount: 39.62 }]],
      counts,
    );
    expect(out).toEqual([
      [1, '[REDACTED:card_number]', { pan: '[REDACTED:card_number]', amount: 39.62 }],
    ]);
    expect(counts).toEqual({ card_number: 2 });
  });

  it('keeps other numbers, with their type', () => {
    for (const value of [
      0,
      -1,
      39.62,
      1614862200000, // a millisecond timestamp
      4111111111111112, // Luhn-invalid
      1234567812345670, // not a card network range
      -4111111111111111.5,
      1e21,
      Number.NaN,
      123456789n,
      1614862200000000n,
    ]) {
      const counts: Record<string, number> = {};
      expect(r.redactValue(value, counts), String(value)).toBe(value);
      expect(counts).toEqual({});
    }
    // a decimal inside text is not a card (prices, measurements)
    expect(r.redactString('total 4111111111111111.00 EUR').value).toBe(
      'total 4111111111111111.00 EUR',
    );
  });

  it('applies the phone rules to numbers as to text: digits alone are not a phone number', () => {
    // 13+ digits are tested as a card (4915112345678 is a Luhn-valid 13-digit Visa number)
    expect(r.redactValue(4915112345678, {})).toBe('[REDACTED:card_number]');
    expect(r.redactString('4915112345678').value).toBe('[REDACTED:card_number]');
    expect(r.redactString('4930123456').value).toBe('4930123456');
    expect(r.redactValue(4930123456, {})).toBe(4930123456);
    expect(r.redactValue(4930123456n, {})).toBe(4930123456n);
    expect(r.redactString('+4915112345678').value).toBe('[REDACTED:phone]');
  });

  it('leaves numbers alone when PII is off (cards are PII)', () => {
    expect(createRedactor({ pii: false }).redactValue(4111111111111111, {})).toBe(4111111111111111);
  });
});

describe('createRedactor: failures', () => {
  const r = createRedactor();

  it('throws only RedactionError, with a stable code and no input in the message', () => {
    const cyclic: unknown[] = ['luisg@embraer.com.br'];
    cyclic.push(cyclic);
    const err = (() => {
      try {
        r.redactValue(cyclic, {});
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(RedactionError);
    expect(err).toMatchObject({ name: 'RedactionError', code: 'cyclic_value' });

    let deep: unknown = 'x';
    for (let i = 0; i < 600; i++) deep = [deep];
    expect(() => r.redactValue(deep, {})).toThrow(
      expect.objectContaining({ name: 'RedactionError', code: 'too_deep' }),
    );

    const hostile = {
      toJSON() {
        throw new Error('luisg@embraer.com.br leaked');
      },
    };
    try {
      r.redactTable(['c'], [[hostile]], {});
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(RedactionError);
      expect(e).toMatchObject({ code: 'internal', message: 'Redaction failed' });
    }
  });
});

describe('normalizeForMatching fast path', () => {
  it('skips only characters that NFKC keeps and that are not format characters', () => {
    const fast = [...Array(0x180).keys()].filter(
      (c) =>
        (c >= 0xc0 && c <= 0x131) ||
        (c >= 0x134 && c <= 0x13e) ||
        (c >= 0x141 && c <= 0x148) ||
        (c >= 0x14a && c <= 0x17e),
    );
    for (const c of fast) {
      const ch = String.fromCharCode(c);
      expect(ch.normalize('NFKC'), c.toString(16)).toBe(ch);
      expect(/\p{Cf}/u.test(ch)).toBe(false);
      expect(normalizeForMatching(`a${ch}b`)).toBe(`a${ch}b`);
    }
    // and around it everything is still normalized
    expect(normalizeForMatching('Ĳssel ſ Luís\u00ad')).toBe('IJssel s Luís');
    // the redactor's short-text path draws the same line
    const r = createRedactor();
    for (const c of fast) {
      const ch = String.fromCharCode(c);
      expect(r.redactString(`${ch} a.b@c.io`).value).toBe(`${ch} [REDACTED:email]`);
    }
    for (const [ch, nfkc] of [
      ['\u0132', 'IJ'],
      ['\u0149', 'ʼn'],
      ['\u017f', 's'],
      ['\u00aa', 'a'],
      ['\u00bd', '1⁄2'],
    ]) {
      expect(r.redactString(`${ch} a.b@c.io`).value).toBe(`${nfkc} [REDACTED:email]`);
    }
  });
});

describe('bounded stack and linear time on adversarial input', () => {
  const MiB = 1024 * 1024;
  const r = createRedactor();
  /** `unit` repeated to exactly `size` code units */
  const fill = (unit: string, size: number): string =>
    unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
  const big = Math.round(5.5 * MiB);

  it.each([
    ['xoxb- token', cat('xox', 'b-'), 'a', 'slack_token'],
    ['xapp- token', cat('xapp', '-1-'), 'A1', 'slack_token'],
    ['Slack webhook', cat('https://hooks.', 'slack.com/services/'), 'T0/', 'slack_webhook_url'],
    ['ghp_ token', cat('gh', 'p_'), 'A', 'github_token'],
    ['github_pat_ token', cat('github', '_pat_'), 'a_', 'github_token'],
    ['Stripe key', cat('sk', '_live_'), 'a', 'stripe_key'],
    ['Anthropic key', cat('sk', '-ant-'), 'a1', 'anthropic_api_key'],
    ['OpenAI-style key', cat('sk', '-proj-'), 'a1', 'openai_api_key'],
    ['Bearer token', 'Bearer ', 'a1', 'bearer_token'],
    ['Authorization header', 'Authorization: Basic ', 'QW', 'basic_auth'],
    ['e-mail local part', '', 'a.', 'email'],
  ])('redacts a 5.5 MB %s whole without exception', (_name, prefix, unit, type) => {
    const body = fill(unit, big);
    const input = type === 'email' ? `${body}@example.com` : `${prefix}${body}`;
    const out = r.redactString(input);
    const marker = `[REDACTED:${type}]`;
    expect(out.value.length).toBeLessThan(64);
    expect(out.value.endsWith(marker)).toBe(true);
    expect(out.counts).toEqual({ [type]: 1 });
  });

  it('redacts a JWT with multi-megabyte segments whole', () => {
    const jwt = `${JWT.split('.')[0]}.${fill('a', 3 * MiB)}.${fill('b', 3 * MiB)}`;
    expect(r.redactString(`x ${jwt} y`).value).toBe('x [REDACTED:jwt] y');
  });

  it.each([
    ['digit run', '4'],
    ['@ storm', 'a@'],
    ['dotted domain', 'b.'],
    ['JWT heads', 'eyJa.'],
    ['plus digits', '+1 '],
    ['spaced card groups', '4111 '],
    ['IBAN-like groups', 'GB82 '],
    ['password keys', 'password='],
    ['fullwidth digits', '４'],
    ['header-like JWT parts', 'eyJhbGcifQ.'],
  ])(
    'completes on 5.5 MB of %s',
    (_name, unit) => {
      const out = r.redactString(fill(unit, big));
      expect(typeof out.value).toBe('string');
    },
    60_000,
  );

  it('handles 64 MiB strings (a token and a digit run)', () => {
    const token = `${cat('xox', 'b-')}${fill('a', 64 * MiB)}`;
    expect(r.redactString(token).value).toBe('[REDACTED:slack_token]');
    const digits = fill('4', 64 * MiB);
    expect(r.redactString(digits).value).toBe(digits);
  }, 120_000);

  /**
   * Time grows linearly: one 8 MiB input must cost about what eight 1 MiB inputs cost (ratio
   * ≈ 1; quadratic time would make it ≈ 8). The bound (4×) leaves room for machine load and
   * memory effects; CPU time of this process (not wall time, so other processes do not count),
   * medians of three interleaved runs. Both sizes exceed the CPU caches.
   */
  it.each([
    ['digit run', (n: number) => fill('4', n)],
    ['@ storm', (n: number) => fill('a@', n)],
    ['local part then @', (n: number) => `${fill('a.', n - 12)}@example.com`],
    ['xoxb- token', (n: number) => `${cat('xox', 'b-')}${fill('a', n - 5)}`],
    ['Bearer tokens', (n: number) => fill('Bearer a1b2c3d4e5f6g7h8 ', n)],
    ['spaced card groups', (n: number) => fill('4111 ', n)],
    ['phone-like groups', (n: number) => fill('+1 (555) ', n)],
    ['IBAN-like groups', (n: number) => fill('GB82 ', n)],
    ['password keys', (n: number) => fill('password=', n)],
    ['JWT heads', (n: number) => fill('eyJa.', n)],
    ['colon storm (keyword windows)', (n: number) => fill('x: ', n)],
    ['mixed text', (n: number) => fill('Luís ｍａｉｌ 2021-03-04 +1 x@y.io sk-a1 ', n)],
  ])(
    'time grows linearly on %s',
    (_name, make) => {
      const small = make(MiB);
      const large = make(8 * MiB);
      const cpuMs = (s: string, times: number): number => {
        const start = process.cpuUsage();
        for (let i = 0; i < times; i++) r.redactString(s);
        const used = process.cpuUsage(start);
        return (used.user + used.system) / 1000;
      };
      cpuMs(small, 1);
      const ts: number[] = [];
      const tl: number[] = [];
      for (let i = 0; i < 3; i++) {
        ts.push(cpuMs(small, 8));
        tl.push(cpuMs(large, 1));
      }
      const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[1] ?? 0;
      expect(median(tl) / median(ts)).toBeLessThan(4);
    },
    120_000,
  );
});
