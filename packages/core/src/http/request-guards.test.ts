import { createServer, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import {
  accessTokenParams,
  authorizationHeaders,
  createHostAllowlist,
  createHostCheck,
  hostHeaderLines,
  parseAuthority,
} from './request-guards.js';

describe('parseAuthority (RFC 9110 §7.2)', () => {
  it.each([
    ['localhost:3000', 80, { name: 'localhost', port: 3000 }],
    ['LocalHost:3000', 80, { name: 'localhost', port: 3000 }],
    ['localhost', 80, { name: 'localhost', port: 80 }],
    ['mcp.example.com', 443, { name: 'mcp.example.com', port: 443 }],
    ['[::1]:3000', 80, { name: '[::1]', port: 3000 }],
    ['[::1]', 443, { name: '[::1]', port: 443 }],
    ['127.0.0.1:65535', 80, { name: '127.0.0.1', port: 65535 }],
    [' \tlocalhost:3000\t ', 80, { name: 'localhost', port: 3000 }],
  ])('%j → %o', (value, def, expected) => {
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
    // Not HTTP whitespace (a NO-BREAK SPACE, which Node keeps in a header value): invalid.
    '\u00a0localhost:3000',
    'localhost:3000\u00a0',
    '\u00a0localhost',
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

describe('createHostCheck: remembers admitted Host values only', () => {
  const table = [
    'localhost:3000',
    'LOCALHOST:3000',
    ' localhost:3000 ',
    'localhost',
    'localhost:3001',
    '127.0.0.1:3000',
    '[::1]:3000',
    'evil.example:3000',
    'localhost:3000x',
    '',
  ];

  it('gives the same verdict as parse + allowlist, first and second time, for both default ports', () => {
    const allowlist = createHostAllowlist(['localhost', '127.0.0.1', '[::1]'], [3000, 80]);
    const check = createHostCheck(allowlist);
    for (const round of [1, 2])
      for (const value of table)
        for (const def of [80, 443]) {
          const a = parseAuthority(value, def);
          expect(check(value, def), `${value} ${def} round ${round}`).toBe(
            a !== undefined && allowlist(a),
          );
        }
  });

  it('asks the allowlist again for refused values and past its bound', () => {
    const allowlist = vi.fn((a: { name: string; port: number }) => a.name === 'localhost');
    const check = createHostCheck(allowlist, 2);
    check('localhost:1', 80);
    check('localhost:1', 80);
    expect(allowlist).toHaveBeenCalledTimes(1);
    check('evil:1', 80);
    check('evil:1', 80);
    expect(allowlist).toHaveBeenCalledTimes(3);
    check('localhost:2', 80);
    check('localhost:3', 80);
    check('localhost:3', 80);
    expect(allowlist).toHaveBeenCalledTimes(6);
    expect(check('localhost:3', 80)).toBe(true);
  });
});

describe('authorizationHeaders: the same list as headersDistinct', () => {
  /** Sends each raw header block to a real server and compares both readings of the request. */
  async function compare(blocks: string[]): Promise<void> {
    const seen: { ours: string[]; node: string[] }[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      seen.push({ ours: authorizationHeaders(req), node: req.headersDistinct.authorization ?? [] });
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      for (const block of blocks)
        await new Promise<void>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () =>
            socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n${block}Connection: close\r\n\r\n`),
          );
          socket.on('data', () => undefined);
          socket.once('close', () => resolve());
          socket.once('error', reject);
        });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    expect(seen).toHaveLength(blocks.length);
    for (const s of seen) expect(s.ours).toEqual(s.node);
  }

  it('on none, one, repeated, differently spelled, listed and empty headers', async () => {
    await compare([
      '',
      'Authorization: Bearer a\r\n',
      'authorization: Bearer a\r\nAUTHORIZATION: Bearer b\r\n',
      'AuThOrIzAtIoN:   Bearer   c  \r\n',
      'Authorization: Bearer a, Bearer b\r\n',
      'Authorization:\r\n',
      'X-Authorization: Bearer x\r\nAuthorizations: y\r\n',
      'Authorization: Bearer a\r\nX-Other: 1\r\nAuthorization: Basic b\r\nAuthorization: Bearer c\r\n',
    ]);
  });
});

describe('hostHeaderLines: every Host line, whatever the spelling', () => {
  it('counts what a real server received (req.headers.host keeps only the first)', async () => {
    const seen: { lines: number; host: string | undefined }[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      seen.push({ lines: hostHeaderLines(req), host: req.headers.host });
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const blocks = [
      'Host: a\r\n',
      'Host: a\r\nhOsT: b\r\n',
      'Host: a\r\nHost: a\r\n',
      'Host: a\r\nX-Host: b\r\nHosts: c\r\n',
    ];
    try {
      for (const block of blocks)
        await new Promise<void>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () =>
            socket.write(`GET / HTTP/1.1\r\n${block}Connection: close\r\n\r\n`),
          );
          socket.on('data', () => undefined);
          socket.once('close', () => resolve());
          socket.once('error', reject);
        });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    expect(seen).toEqual([
      { lines: 1, host: 'a' },
      { lines: 2, host: 'a' },
      { lines: 2, host: 'a' },
      { lines: 1, host: 'a' },
    ]);
  });
});
