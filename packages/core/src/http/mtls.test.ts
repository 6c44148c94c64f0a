import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mtlsRuleSchema } from '../config.js';
import {
  certificateThumbprint,
  describeCertificateFailure,
  principalFromCertificate,
} from './mtls.js';

let openssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = false;
}
if (!openssl) console.warn('[mtls] skipped: the openssl command is needed to make a certificate');

/** A self-signed certificate (DER) with the given subject CN and subjectAltName. */
function certificate(cn: string, san: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-mtls-unit-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'k.pem'),
      '-out',
      join(dir, 'c.pem'),
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=${san}`,
    ],
    { stdio: 'pipe' },
  );
  return new X509Certificate(readFileSync(join(dir, 'c.pem'))).raw;
}

const rules = (list: unknown[]) => list.map((r) => mtlsRuleSchema.parse(r));

describe.skipIf(!openssl)('client certificate → principal', () => {
  const der = openssl
    ? certificate('ops-bot', 'DNS:bot.ops.internal,email:bot@ops.example,URI:spiffe://ops/bot')
    : Buffer.alloc(0);

  it('the first matching rule wins; the principal is the matching value', async () => {
    expect(
      await principalFromCertificate(
        der,
        rules([
          { field: 'san.email', pattern: '.*@ops\\.example', roles: ['writer'] },
          { field: 'san.dns', pattern: '.*\\.internal', roles: ['reader'] },
        ]),
      ),
    ).toEqual({ principal: 'bot@ops.example', roles: ['writer'], scopes: [] });
    expect(
      await principalFromCertificate(
        der,
        rules([{ field: 'san.dns', pattern: 'bot\\.ops\\.internal', scopes: ['x:read'] }]),
      ),
    ).toEqual({ principal: 'bot.ops.internal', roles: [], scopes: ['x:read'] });
  });

  it('patterns are anchored: a partial match is no match', async () => {
    expect(
      await principalFromCertificate(der, rules([{ field: 'subject.CN', pattern: 'ops' }])),
    ).toBeUndefined();
    expect(
      await principalFromCertificate(der, rules([{ field: 'san.uri', pattern: 'spiffe://ops' }])),
    ).toBeUndefined();
    expect(
      (await principalFromCertificate(der, rules([{ field: 'subject.CN', pattern: 'ops-.*' }])))
        ?.principal,
    ).toBe('ops-bot');
  });

  it('garbage is no certificate; the thumbprint is RFC 8705 x5t#S256', async () => {
    expect(
      await principalFromCertificate(
        Buffer.from('nope'),
        rules([{ field: 'subject.CN', pattern: '.*' }]),
      ),
    ).toBeUndefined();
    expect(certificateThumbprint(der)).toBe(createHash('sha256').update(der).digest('base64url'));
    expect(describeCertificateFailure(undefined)).toBe('a client certificate is required');
    expect(
      describeCertificateFailure({
        authorized: false,
        authorizationError: 'CERT_REVOKED',
        certificate: der,
      }),
    ).toBe('the client certificate is revoked');
  });

  it('a rule with an invalid regular expression is a configuration error', () => {
    expect(() => mtlsRuleSchema.parse({ field: 'san.dns', pattern: '(' })).toThrow(
      /regular expression/,
    );
  });
});
