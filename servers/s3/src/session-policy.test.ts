import { describe, expect, it } from 'vitest';
import { s3SectionSchema } from './config.js';
import { sessionPolicies } from './connector.js';
import type { BucketRule } from './keys.js';
import {
  buildSessionPolicy,
  MAX_SESSION_POLICY_CHARS,
  objectArns,
  serializeSessionPolicy,
} from './session-policy.js';
import { allowlistOf } from './tools.js';

const BUCKETS: BucketRule[] = [
  { name: 'acme-reports', prefixes: ['reports/', 'exports/daily/'] },
  { name: 'acme-public', prefixes: ['docs/'] },
];

/** Every resource string of a policy. */
function resources(p: ReturnType<typeof buildSessionPolicy>): string[] {
  return p.Statement.flatMap((s) => s.Resource);
}

/** Action → resources granted, flattened. */
function grants(p: ReturnType<typeof buildSessionPolicy>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of p.Statement) {
    expect(s.Effect).toBe('Allow');
    for (const a of s.Action) out[a] = [...(out[a] ?? []), ...s.Resource].sort();
  }
  return out;
}

describe('buildSessionPolicy', () => {
  it('read: GetObject on exactly the allowed prefixes, ListBucket per bucket with s3:prefix conditions', () => {
    const p = buildSessionPolicy(BUCKETS, 'read');
    expect(p).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ReadObjects',
          Effect: 'Allow',
          Action: ['s3:GetObject'],
          Resource: [
            'arn:aws:s3:::acme-reports/reports/*',
            'arn:aws:s3:::acme-reports/exports/daily/*',
            'arn:aws:s3:::acme-public/docs/*',
          ],
        },
        {
          Sid: 'ListAllowedPrefixes0',
          Effect: 'Allow',
          Action: ['s3:ListBucket'],
          Resource: ['arn:aws:s3:::acme-reports'],
          Condition: { StringLike: { 's3:prefix': ['reports/*', 'exports/daily/*'] } },
        },
        {
          Sid: 'ListAllowedPrefixes1',
          Effect: 'Allow',
          Action: ['s3:ListBucket'],
          Resource: ['arn:aws:s3:::acme-public'],
          Condition: { StringLike: { 's3:prefix': ['docs/*'] } },
        },
      ],
    });
  });

  it('write: read plus PutObject and DeleteObject on exactly the allowed prefixes', () => {
    const p = buildSessionPolicy(BUCKETS, 'write');
    const objects = objectArns(BUCKETS).sort();
    expect(grants(p)).toEqual({
      's3:GetObject': objects,
      's3:ListBucket': ['arn:aws:s3:::acme-public', 'arn:aws:s3:::acme-reports'],
      's3:PutObject': objects,
      's3:DeleteObject': objects,
    });
    // nothing else: no ACLs, versions, tagging, bucket configuration
    expect(Object.keys(grants(p)).sort()).toEqual([
      's3:DeleteObject',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
    ]);
  });

  it('never grants a * resource or a wildcard outside the prefix suffix', () => {
    for (const access of ['read', 'write'] as const) {
      const p = buildSessionPolicy(BUCKETS, access);
      for (const r of resources(p)) {
        expect(r).not.toBe('*');
        expect(r).toMatch(/^arn:aws:s3:::[a-z0-9.-]+(\/[^*?]+\/\*)?$/);
      }
      const json = serializeSessionPolicy(p);
      expect(json).not.toMatch(/"\*"|s3:\*|"Deny"|NotAction|NotResource/);
    }
  });

  it('read tools get no write action', () => {
    const p = buildSessionPolicy(BUCKETS, 'read');
    expect(Object.keys(grants(p)).sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
  });

  it('uses the role partition in ARNs', () => {
    const p = buildSessionPolicy(BUCKETS, 'read', 'aws-us-gov');
    for (const r of resources(p)) expect(r.startsWith('arn:aws-us-gov:s3:::')).toBe(true);
  });

  it('refuses an empty allowlist', () => {
    expect(() => buildSessionPolicy([], 'read')).toThrow(/empty/);
  });
});

describe('configuration → session policies', () => {
  it('the configuration schema keeps wildcards and policy variables out of the policy', () => {
    for (const prefix of ['re*/', 'r?/', '$' + '{aws:username}/', 'reports']) {
      const r = s3SectionSchema.safeParse({
        buckets: [{ name: 'acme-reports', prefixes: [prefix] }],
      });
      expect(r.success).toBe(false);
    }
    expect(
      s3SectionSchema.safeParse({ buckets: [{ name: 'arn:aws:s3:::acme', prefixes: ['a/'] }] })
        .success,
    ).toBe(false);
  });

  it('generates both policies from the parsed section and checks the 2,048-character STS limit', () => {
    const settings = s3SectionSchema.parse({
      buckets: [{ name: 'acme-reports', prefixes: ['reports/'] }],
      roles: { read: 'arn:aws:iam::123456789012:role/mcp-read' },
    });
    const p = sessionPolicies(settings, allowlistOf(settings));
    expect(JSON.parse(p.read)).toEqual(buildSessionPolicy(allowlistOf(settings), 'read'));
    expect(JSON.parse(p.write)).toEqual(buildSessionPolicy(allowlistOf(settings), 'write'));
    const big = s3SectionSchema.parse({
      buckets: [
        {
          name: 'acme-reports',
          prefixes: Array.from({ length: 40 }, (_, i) => `department-${i}/reports/`),
        },
      ],
      roles: { read: 'arn:aws:iam::123456789012:role/mcp-read' },
    });
    expect(() => sessionPolicies(big, allowlistOf(big))).toThrow(
      new RegExp(`at most ${MAX_SESSION_POLICY_CHARS}`),
    );
  });
});
