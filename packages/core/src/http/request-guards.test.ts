import { describe, expect, it } from 'vitest';
import { accessTokenParams, createHostAllowlist, parseAuthority } from './request-guards.js';

describe('parseAuthority (RFC 9110 §7.2)', () => {
  it.each([
    ['localhost:3000', 80, { name: 'localhost', port: 3000 }],
    ['LocalHost:3000', 80, { name: 'localhost', port: 3000 }],
    ['localhost', 80, { name: 'localhost', port: 80 }],
    ['mcp.example.com', 443, { name: 'mcp.example.com', port: 443 }],
    ['[::1]:3000', 80, { name: '[::1]', port: 3000 }],
    ['[::1]', 443, { name: '[::1]', port: 443 }],
    ['127.0.0.1:65535', 80, { name: '127.0.0.1', port: 65535 }],
  ])('%s → %o', (value, def, expected) => {
    expect(parseAuthority(value, def)).toEqual(expected);
  });

  it.each([
    '',
    ':3000',
    'localhost:',
    'localhost:0',
    'localhost:65536',
    'localhost:3000x',
    'localhost:3000:1',
    '::1',
    '[::1',
    '[evil]:80',
    'user@localhost:3000',
    'local host:3000',
    'localhost.:3000',
    '-evil:3000',
  ])('%j → refused', (value) => {
    expect(parseAuthority(value, 80)).toBeUndefined();
  });
});

describe('createHostAllowlist: name and port', () => {
  const allowed = createHostAllowlist(
    ['localhost', '127.0.0.1', '[::1]', 'proxy.example:8443'],
    [3000, 443],
  );
  it.each([
    ['localhost:3000', true],
    ['localhost:443', true],
    ['localhost:3001', false],
    ['localhost:80', false],
    ['127.0.0.1:3000', true],
    ['[::1]:3000', true],
    ['proxy.example:8443', true],
    ['proxy.example:3000', false],
    ['evil.example:3000', false],
    ['10.0.0.1:3000', false],
  ])('%s → %s', (value, ok) => {
    const a = parseAuthority(value, 80);
    expect(a !== undefined && allowed(a)).toBe(ok);
  });

  it('anyIpLiteral (management): IP literals on any port, names only on the port', () => {
    const mgmt = createHostAllowlist(['localhost'], [9464], true);
    const check = (v: string) => {
      const a = parseAuthority(v, 80);
      return a !== undefined && mgmt(a);
    };
    expect(check('10.1.2.3:9464')).toBe(true);
    expect(check('[fd00::1]:9464')).toBe(true);
    expect(check('10.1.2.3:32768')).toBe(true);
    expect(check('localhost:9465')).toBe(false);
    expect(check('evil.example:9464')).toBe(false);
    expect(check('localhost:9464')).toBe(true);
  });
});

describe('accessTokenParams (RFC 6750 §2.2-2.3)', () => {
  it.each([
    ['access_token=x', 1],
    ['a=1&access_token=x&access_token=y', 2],
    ['ACCESS_TOKEN=x', 1],
    ['access%5Ftoken=x', 1],
    ['access_tokens=x', 0],
    ['', 0],
  ])('%j → %i', (encoded, n) => {
    expect(accessTokenParams(encoded)).toBe(n);
  });
});
