import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { authConfigSchema } from '../config.js';
import { createAuthenticator } from './auth.js';
import { identityFromAuthInfo } from './edge-auth.js';

// The verified token's claims reach the call's identity, where policies read department, groups
// and clearance (policies.claims names them).
describe('JWT claims become identity claims for policies', () => {
  it('a verified token carries its claims to the identity; an unverified one gets nothing', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), alg: 'ES256', kid: 'k1' };
    const auth = authConfigSchema.parse({
      mode: 'oauth',
      oauth: {
        issuer: 'https://issuer.example',
        audience: 'https://mcp.example/mcp',
        keys: [{ jwk }],
        scopeRoles: { 'example:read': ['reader'] },
      },
    });
    const authenticator = await createAuthenticator(auth, () => 'https://mcp.example/mcp');
    const token = await new SignJWT({
      scope: 'example:read',
      department: 'sales',
      groups: ['ops'],
      clearance: 'confidential',
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('https://issuer.example')
      .setAudience('https://mcp.example/mcp')
      .setSubject('ana')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    const result = await authenticator.authenticate(`Bearer ${token}`);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.principal.attributes).toMatchObject({
      department: 'sales',
      groups: ['ops'],
      clearance: 'confidential',
    });
    const identity = identityFromAuthInfo(
      {
        scopes: [...result.principal.scopes],
        extra: {
          principal: result.principal.principal,
          roles: [...result.principal.roles],
          attributes: result.principal.attributes,
        },
      },
      {},
    );
    expect(identity?.attributes).toMatchObject({ department: 'sales', clearance: 'confidential' });
    // Only `auth.oauth.forwardClaims` reach the data source; none are configured here.
    expect(identity?.claims).toBeUndefined();
    const forged = await authenticator.authenticate(`Bearer ${token.slice(0, -4)}AAAA`);
    expect(forged.ok).toBe(false);
  });
});
