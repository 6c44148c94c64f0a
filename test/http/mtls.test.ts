/**
 * Mutual TLS (issue 16 §2), black-box against the built example server: real certificates made
 * for the test with the `openssl` command (`openssl ca`, with a CA database so that one
 * certificate can be revoked and a CRL issued): a valid client certificate mapped by its SAN URI,
 * one mapped by its subject CN, an expired one, a revoked one (CRL), one from another CA, one no
 * rule maps; and, with OAuth, certificate-bound tokens (RFC 8705 `cnf.x5t#S256`) over the right
 * and the wrong certificate. A third server proves the SIGHUP reload of the CRL: a certificate
 * revoked after startup is refused once the server is signalled; an unparsable CRL keeps the old.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn } from '../support/audit.ts';
import {
  type HttpServerProcess,
  initializeBody,
  type JwksServer,
  makeSigningKey,
  mintToken,
  type SigningKey,
  startHttpServer,
  startJwksServer,
  toolCallBody,
} from '../support/http.ts';
import { REPO_ROOT } from '../support/server.ts';

const EXAMPLE_BIN = join(REPO_ROOT, 'servers', 'example', 'dist', 'bin.js');

let openssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = false;
}
if (!openssl) console.warn('[mtls] skipped: the openssl command is needed to make certificates');

const dir = mkdtempSync(join(tmpdir(), 'hmcp-mtls-'));
const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
const file = (name: string) => join(dir, name);
const read = (name: string) => readFileSync(file(name), 'utf8');

/** A CA with an `openssl ca` database (index, serial, CRL number). */
function makeCa(name: string): void {
  const base = file(name);
  writeFileSync(`${base}.index`, '');
  writeFileSync(`${base}.serial`, '1000\n');
  writeFileSync(`${base}.crlnumber`, '1000\n');
  writeFileSync(
    `${base}.cnf`,
    `[ ca ]
default_ca = this
[ this ]
database = ${base}.index
serial = ${base}.serial
crlnumber = ${base}.crlnumber
new_certs_dir = ${dir}
certificate = ${base}.pem
private_key = ${base}.key
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
default_crl_days = 1
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth, serverAuth
`,
  );
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.pem`,
    '-subj',
    `/CN=${name}`,
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
}

/** A leaf certificate `name` issued by `ca`, with optional SAN and validity window. */
function makeLeaf(
  ca: string,
  name: string,
  opts: { cn: string; san?: string; start?: string; end?: string },
): void {
  const base = file(name);
  const req = ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  req.push('-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${opts.cn}`);
  if (opts.san) req.push('-addext', `subjectAltName=${opts.san}`);
  run(...req);
  const sign = ['ca', '-batch', '-config', `${file(ca)}.cnf`, '-extensions', 'leaf'];
  sign.push('-in', `${base}.csr`, '-out', `${base}.pem`, '-notext');
  if (opts.start && opts.end) sign.push('-startdate', opts.start, '-enddate', opts.end);
  else sign.push('-days', '1');
  run(...sign);
}

const thumbprint = (name: string) =>
  createHash('sha256')
    .update(new X509Certificate(read(`${name}.pem`)).raw)
    .digest('base64url');

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly wwwAuthenticate: string | undefined;
  readonly session: string | undefined;
}

/** One HTTPS POST (default: `initialize`) with a client certificate (or none). */
function post(
  url: string,
  client: string | undefined,
  headers: Record<string, string> = {},
  message: unknown = initializeBody(),
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        // A fresh connection (and handshake) per request: a reused one keeps its verification.
        agent: false,
        ca: read('server-ca.pem'),
        servername: 'localhost',
        ...(client ? { cert: read(`${client}.pem`), key: read(`${client}.key`) } : {}),
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          host: `localhost:${new URL(url).port}`,
          ...headers,
        },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString('utf8');
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            wwwAuthenticate: res.headers['www-authenticate'],
            session: res.headers['mcp-session-id'] as string | undefined,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(message));
  });
}

let mtlsServer: HttpServerProcess;
let oauthServer: HttpServerProcess;
/** Serves with `reload.crl`, which the reload test rewrites. */
let reloadServer: HttpServerProcess;
let jwks: JwksServer;
let key: SigningKey;

beforeAll(async () => {
  if (!openssl) return;
  makeCa('server-ca');
  makeLeaf('server-ca', 'server', { cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' });
  makeCa('client-ca');
  makeCa('other-ca');
  makeLeaf('client-ca', 'billing', { cn: 'billing', san: 'URI:spiffe://test.internal/billing' });
  makeLeaf('client-ca', 'reports', { cn: 'reports.svc' });
  makeLeaf('client-ca', 'stranger', { cn: 'stranger', san: 'URI:spiffe://test.internal/other' });
  makeLeaf('client-ca', 'expired', {
    cn: 'expired',
    san: 'URI:spiffe://test.internal/billing',
    start: '20200101000000Z',
    end: '20200102000000Z',
  });
  makeLeaf('client-ca', 'revoked', { cn: 'revoked', san: 'URI:spiffe://test.internal/billing' });
  makeLeaf('other-ca', 'foreign', { cn: 'foreign', san: 'URI:spiffe://test.internal/billing' });
  makeLeaf('client-ca', 'later', { cn: 'later', san: 'URI:spiffe://test.internal/billing' });
  run('ca', '-config', `${file('client-ca')}.cnf`, '-revoke', file('revoked.pem'));
  run('ca', '-config', `${file('client-ca')}.cnf`, '-gencrl', '-out', file('client-ca.crl'));
  copyFileSync(file('client-ca.crl'), file('reload.crl'));

  // A credential source file must not be readable by others (core credentials.ts).
  chmodSync(file('client-ca.pem'), 0o600);
  const tls = { certFile: file('server.pem'), keyFile: file('server.key') };
  const mtls = {
    ca: { file: file('client-ca.pem') },
    crlFile: file('client-ca.crl'),
    rules: [
      { field: 'san.uri', pattern: 'spiffe://test\\.internal/billing', roles: ['reader'] },
      { field: 'subject.CN', pattern: '[a-z]+\\.svc', roles: ['reader'] },
    ],
  };
  key = await makeSigningKey('mtls');
  jwks = await startJwksServer([key.publicJwk]);
  const env = { EXAMPLE_READ_TOKEN: 'example-service-token' };
  [mtlsServer, oauthServer, reloadServer] = await Promise.all([
    startHttpServer({
      bin: EXAMPLE_BIN,
      env,
      config: { auth: { mode: 'mtls', mtls }, http: { tls }, log: { level: 'info' } },
    }),
    startHttpServer({
      bin: EXAMPLE_BIN,
      env,
      config: {
        auth: {
          mode: 'oauth',
          mtls: { ...mtls, rules: [] },
          oauth: { issuer: jwks.origin, jwksUrl: jwks.jwksUrl('mtls') },
        },
        http: { tls },
        log: { level: 'info' },
      },
    }),
    startHttpServer({
      bin: EXAMPLE_BIN,
      env,
      config: {
        auth: { mode: 'mtls', mtls: { ...mtls, crlFile: file('reload.crl') } },
        http: { tls },
        log: { level: 'info' },
      },
    }),
  ]);
});

afterAll(async () => {
  await mtlsServer?.stop();
  await oauthServer?.stop();
  await reloadServer?.stop();
  await jwks?.close();
});

describe.skipIf(!openssl)('auth.mode mtls', () => {
  it('a valid certificate is the credential; the principal is its SAN URI', async () => {
    const r = await post(mtlsServer.url, 'billing');
    expect(r.status, r.body).toBe(200);
    const session = { 'mcp-session-id': r.session ?? '', 'mcp-protocol-version': '2025-11-25' };
    await post(mtlsServer.url, 'billing', session, {
      jsonrpc: '2.0',
      method: 'notifications/initialized',
    });
    const call = await post(
      mtlsServer.url,
      'billing',
      session,
      toolCallBody('example_list_folders', {}),
    );
    expect(call.status, call.body).toBe(200);
    expect(call.body).toMatch(/general/);
    const record = auditRecordsIn(mtlsServer.stderr()).find(
      (a) => a.tool === 'example_list_folders',
    );
    expect(record?.principal).toBe('spiffe://test.internal/billing');
  });

  it('a subject CN rule maps a certificate without a SAN', async () => {
    const r = await post(mtlsServer.url, 'reports');
    expect(r.status, r.body).toBe(200);
  });

  const refused: [string, string | undefined, RegExp][] = [
    ['no certificate', undefined, /a client certificate is required/],
    ['an expired certificate', 'expired', /the client certificate has expired/],
    ['a revoked certificate (CRL)', 'revoked', /the client certificate is revoked/],
    ['a certificate of another CA', 'foreign', /not issued by a trusted CA/],
    ['a certificate no rule maps', 'stranger', /maps to no principal/],
  ];
  for (const [what, client, reason] of refused) {
    it(`refuses ${what} with 401 and audits it`, async () => {
      const r = await post(mtlsServer.url, client);
      expect(r.status).toBe(401);
      expect(r.body).toMatch(reason);
      expect(r.body).not.toMatch(/BEGIN|stack|at .*\.js/);
    });
  }

  it('the audit trail names the certificate principal and the refusals', async () => {
    const records = auditRecordsIn(mtlsServer.stderr());
    const refusals = records.filter((r) => r.tool === 'http:authenticate');
    expect(refusals.length).toBeGreaterThan(0);
    expect(mtlsServer.stderr()).not.toContain('BEGIN CERTIFICATE');
  });
});

describe.skipIf(!openssl)('OAuth over mutual TLS with certificate-bound tokens (RFC 8705)', () => {
  const token = (cnf?: string) =>
    mintToken(key, {
      sub: 'svc-billing',
      iss: jwks.origin,
      aud: oauthServer.resource,
      scope: 'example:read',
      ...(cnf ? { cnf: { 'x5t#S256': cnf } } : {}),
    });

  it('a token bound to the presented certificate is accepted', async () => {
    const r = await post(oauthServer.url, 'billing', {
      authorization: `Bearer ${await token(thumbprint('billing'))}`,
    });
    expect(r.status, r.body).toBe(200);
  });

  it('a token bound to another certificate is refused', async () => {
    const r = await post(oauthServer.url, 'reports', {
      authorization: `Bearer ${await token(thumbprint('billing'))}`,
    });
    expect(r.status).toBe(401);
    expect(r.wwwAuthenticate).toMatch(/invalid_token/);
    expect(r.body).toMatch(/bound to another client certificate/);
  });

  it('an unbound token is accepted with a verified certificate; without one nothing is', async () => {
    const ok = await post(oauthServer.url, 'reports', { authorization: `Bearer ${await token()}` });
    expect(ok.status, ok.body).toBe(200);
    const none = await post(oauthServer.url, undefined, {
      authorization: `Bearer ${await token()}`,
    });
    expect(none.status).toBe(401);
    expect(none.body).toMatch(/a client certificate is required/);
    const expired = await post(oauthServer.url, 'expired', {
      authorization: `Bearer ${await token(thumbprint('expired'))}`,
    });
    expect(expired.status).toBe(401);
    expect(expired.body).toMatch(/expired/);
  });
});

/** Sends SIGHUP and waits until the server logs the outcome of its `n`-th reload of the CRL. */
async function hangUp(server: HttpServerProcess, n: number): Promise<void> {
  const outcomes = () =>
    (
      server
        .stderr()
        .match(/"(reloaded auth\.mtls ca\/crl|reload of auth\.mtls ca\/crl failed[^"]*)"/g) ?? []
    ).length;
  expect(outcomes()).toBe(n - 1);
  server.child.kill('SIGHUP');
  for (let i = 0; i < 600 && outcomes() < n; i++) await new Promise((r) => setTimeout(r, 50));
  expect(outcomes()).toBe(n);
}

describe.skipIf(!openssl)('SIGHUP reloads the CRL', () => {
  it('a certificate revoked after startup is refused after SIGHUP; others are still served', async () => {
    // startHttpServer spawns process.execPath: the real node binary (node_modules/node/bin/node
    // resolved), not the .bin/node wrapper, so the signal reaches the server.
    expect((await post(reloadServer.url, 'later')).status).toBe(200);
    run('ca', '-config', `${file('client-ca')}.cnf`, '-revoke', file('later.pem'));
    run('ca', '-config', `${file('client-ca')}.cnf`, '-gencrl', '-out', file('reload.crl'));
    await hangUp(reloadServer, 1);
    expect(reloadServer.stderr()).toContain('reloaded auth.mtls ca/crl');
    const later = await post(reloadServer.url, 'later');
    expect(later.status).toBe(401);
    expect(later.body).toMatch(/the client certificate is revoked/);
    expect((await post(reloadServer.url, 'billing')).status).toBe(200);
    expect((await post(reloadServer.url, 'reports')).status).toBe(200);
    expect((await post(reloadServer.url, 'revoked')).status).toBe(401);
  });

  it('an unparsable new CRL keeps the old one in force and logs why', async () => {
    writeFileSync(
      file('reload.crl'),
      '-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n',
    );
    await hangUp(reloadServer, 2);
    expect(reloadServer.stderr()).toMatch(
      /reload of auth\.mtls ca\/crl failed: keeping the previous one/,
    );
    expect(reloadServer.stderr()).toMatch(/"reason":"[^"]*CRL/);
    expect(reloadServer.child.exitCode).toBeNull();
    const later = await post(reloadServer.url, 'later');
    expect(later.status).toBe(401);
    expect(later.body).toMatch(/the client certificate is revoked/);
    expect((await post(reloadServer.url, 'billing')).status).toBe(200);
  });
});
