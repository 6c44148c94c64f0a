import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  isCardNetworkNumber,
  isJoseHeader,
  isLuhnValid,
  isPlausibleUsSsn,
  isValidIban,
  keywordWindowUnits,
  REDACTION_TYPES,
  redactionMarker,
} from './patterns.js';

describe('isLuhnValid (ISO/IEC 7812-1 Annex B)', () => {
  it('accepts published test card numbers', () => {
    for (const n of [
      '4111111111111111', // Visa
      '5555555555554444', // Mastercard
      '2223003122003222', // Mastercard 2-series
      '378282246310005', // American Express
      '6011111111111117', // Discover
      '3530111333300000', // JCB
      '30569309025904', // Diners Club
      '4222222222222', // Visa, 13 digits
    ]) {
      expect(isLuhnValid(n), n).toBe(true);
    }
  });

  it('rejects a changed last digit, empty input and non-digits', () => {
    expect(isLuhnValid('4111111111111112')).toBe(false);
    expect(isLuhnValid('378282246310006')).toBe(false);
    expect(isLuhnValid('')).toBe(false);
    expect(isLuhnValid('4111 1111 1111 1111')).toBe(false);
  });
});

describe('isCardNetworkNumber', () => {
  it('knows network ranges and lengths', () => {
    expect(isCardNetworkNumber('4111111111111111')).toBe(true);
    expect(isCardNetworkNumber('378282246310005')).toBe(true);
    expect(isCardNetworkNumber('3782822463100050')).toBe(false); // Amex is 15 digits
    expect(isCardNetworkNumber('5555555555554444')).toBe(true);
    expect(isCardNetworkNumber('1234567812345670')).toBe(false); // MII 1: airlines, not cards here
    expect(isCardNetworkNumber('9234567812345670')).toBe(false);
    expect(isCardNetworkNumber('411111111111')).toBe(false); // 12 digits
    expect(isCardNetworkNumber('4111x11111111111')).toBe(false); // only ASCII digits
    expect(isCardNetworkNumber('4111 1111 1111 1111')).toBe(false);
  });
});

describe('isValidIban (ISO 13616, MOD 97-10)', () => {
  it('accepts valid IBANs with or without spaces', () => {
    expect(isValidIban('GB82 WEST 1234 5698 7654 32')).toBe(true);
    expect(isValidIban('GB82WEST12345698765432')).toBe(true);
    expect(isValidIban('DE89370400440532013000')).toBe(true);
    expect(isValidIban('FR1420041010050500013M02606')).toBe(true);
    expect(isValidIban('NO9386011117947')).toBe(true);
    expect(isValidIban('be68 5390 0754 7034')).toBe(true);
  });

  it('rejects bad check digits, wrong lengths and unknown countries', () => {
    expect(isValidIban('GB83 WEST 1234 5698 7654 32')).toBe(false);
    expect(isValidIban('DE89370400440532013001')).toBe(false);
    expect(isValidIban('DE8937040044053201300')).toBe(false); // 21 chars, DE is 22
    expect(isValidIban('QQ82WEST12345698765432')).toBe(false);
    expect(isValidIban('')).toBe(false);
    expect(isValidIban('G182WEST12345698765432')).toBe(false); // digit in the country code
    expect(isValidIban('GBX2WEST12345698765432')).toBe(false); // letter in the check digits
    expect(isValidIban('GB82WEST1234569876543_')).toBe(false);
    expect(isValidIban('gb82west12345698765432')).toBe(true);
  });

  it('agrees with a BigInt MOD 97-10 reference for every length, with letters anywhere', () => {
    // the check reduces the remainder every few characters instead of per character; compare
    // against the textbook computation on random IBANs (fixed seed) of lengths 15 to 33
    let seed = 20261207;
    const next = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const alnum = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    const reference = (iban: string): boolean => {
      const moved = iban.slice(4) + iban.slice(0, 4);
      const digits = [...moved].map((c) => String(alnum.indexOf(c))).join('');
      return BigInt(digits) % 97n === 1n;
    };
    const countries: [string, number][] = [
      ['NO', 15],
      ['BE', 16],
      ['GB', 22],
      ['FR', 27],
      ['MT', 31],
      ['LC', 32],
      ['RU', 33],
    ];
    let valid = 0;
    for (let i = 0; i < 3000; i++) {
      const [cc, len] = countries[i % countries.length] as [string, number];
      const bban = Array.from({ length: len - 4 }, () => alnum[next(i % 3 === 0 ? 36 : 10)]).join(
        '',
      );
      // right check digits for a third of them, random ones otherwise
      const check =
        i % 3 === 1
          ? String(
              98n -
                (BigInt([...`${bban}${cc}00`].map((c) => String(alnum.indexOf(c))).join('')) % 97n),
            ).padStart(2, '0')
          : String(next(100)).padStart(2, '0');
      const iban = `${cc}${check}${bban}`;
      expect(isValidIban(iban), iban).toBe(reference(iban));
      if (reference(iban)) valid++;
    }
    expect(valid).toBeGreaterThan(1000);
  });
});

describe('isJoseHeader (RFC 7519 / RFC 7515)', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64url');

  it('requires a JSON object with a string alg', () => {
    expect(isJoseHeader(b64('{"alg":"HS256","typ":"JWT"}'))).toBe(true);
    expect(isJoseHeader(b64('{"alg":"none"}'))).toBe(true);
    expect(isJoseHeader(b64('{"typ":"JWT"}'))).toBe(false);
    expect(isJoseHeader(b64('{"alg":256}'))).toBe(false);
    expect(isJoseHeader(b64('["alg"]'))).toBe(false);
    expect(isJoseHeader('eyJub3QganNvbg')).toBe(false);
    // escaped member names are still "alg" (RFC 8259 §7)
    expect(isJoseHeader(b64('{"\\u0061lg":"HS256"}'))).toBe(true);
    expect(isJoseHeader(b64(' {"alg":"HS256"} '))).toBe(true);
  });
});

describe('isPlausibleUsSsn (SSA never-issued ranges)', () => {
  it('excludes area 000/666/9xx, group 00 and serial 0000', () => {
    expect(isPlausibleUsSsn('123456789')).toBe(true);
    expect(isPlausibleUsSsn('078051120')).toBe(true);
    expect(isPlausibleUsSsn('000456789')).toBe(false);
    expect(isPlausibleUsSsn('666456789')).toBe(false);
    expect(isPlausibleUsSsn('900456789')).toBe(false);
    expect(isPlausibleUsSsn('123006789')).toBe(false);
    expect(isPlausibleUsSsn('123450000')).toBe(false);
    expect(isPlausibleUsSsn('12345678')).toBe(false);
  });
});

describe('type ids and markers', () => {
  it('formats markers as [REDACTED:<type>]', () => {
    expect(redactionMarker('email')).toBe('[REDACTED:email]');
  });

  it('lists every stable snake_case type id once', () => {
    expect(REDACTION_TYPES).toEqual([
      'known_secret',
      'private_key',
      'jwt',
      'connection_string_password',
      'aws_access_key_id',
      'aws_secret_access_key',
      'github_token',
      'slack_token',
      'slack_webhook_url',
      'stripe_key',
      'anthropic_api_key',
      'openai_api_key',
      'google_api_key',
      'bearer_token',
      'basic_auth',
      'generic_api_key',
      'password_assignment',
      'email',
      'card_number',
      'iban',
      'us_ssn',
      'uk_nino',
      'phone',
      'column_rule',
    ]);
    for (const t of REDACTION_TYPES) expect(t).toMatch(/^[a-z][a-z0-9_]*$/);
  });
});

describe('keyword windows (the long-text keyword hint)', () => {
  const fill = (unit: string, size: number): string =>
    unit.repeat(Math.ceil(size / unit.length)).slice(0, size);

  it.each([
    ['colon storm', ':'],
    ['spaced colons', 'x: '],
    ['equals and angles', '=<'],
    ['sparse context', `${'x'.repeat(100)}=`],
    ['context every window', `${'x'.repeat(64)}:`],
  ])('searches a linear amount of %s: doubling the input doubles the work', (_name, unit) => {
    // operation counts, not times: the code units the windows cover
    const small = keywordWindowUnits(fill(unit, 1 << 20));
    const large = keywordWindowUnits(fill(unit, 2 << 20));
    expect(small).toBeGreaterThan(0);
    expect(small).toBeLessThanOrEqual(2 * (1 << 20));
    expect(large / small).toBeGreaterThan(1.9);
    expect(large / small).toBeLessThan(2.1);
  });

  it('covers nothing on text without context characters', () => {
    expect(keywordWindowUnits(fill('lorem ipsum ', 1 << 20))).toBe(0);
  });
});
