import type { BucketRule } from './keys.js';

/**
 * The inline session policy passed to `sts:AssumeRole`: the effective permissions of the
 * temporary credentials are the intersection of the role's own policies and this policy (IAM
 * User Guide, "Session policies"), so even a broadly privileged role can only touch the
 * allowlist. Generated from configuration only; never contains a `*` resource.
 *
 * - read: `s3:GetObject` (which also authorizes `HeadObject`, S3 API Reference "HeadObject:
 *   Permissions") on `arn:<partition>:s3:::<bucket>/<prefix>*` for every allowed prefix, and
 *   `s3:ListBucket` on `arn:<partition>:s3:::<bucket>` with a `StringLike` condition on
 *   `s3:prefix` (S3 User Guide, "Condition key examples: s3:prefix") limited to `<prefix>*`.
 * - write: the read statements plus `s3:PutObject` and `s3:DeleteObject` on the same object
 *   ARNs.
 */
export interface SessionPolicy {
  readonly Version: '2012-10-17';
  readonly Statement: readonly SessionPolicyStatement[];
}

/** One `Allow` statement of a {@link SessionPolicy}. */
export interface SessionPolicyStatement {
  readonly Sid: string;
  readonly Effect: 'Allow';
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
  readonly Condition?: {
    readonly StringLike: { readonly 's3:prefix': readonly string[] };
  };
}

/**
 * Maximum plain-text size of an inline session policy, in characters (STS API Reference,
 * "AssumeRole: Policy": "The plaintext that you use for both inline and managed session
 * policies can't exceed 2,048 characters"). STS additionally limits the packed binary size;
 * a policy over that fails `AssumeRole` with `PackedPolicyTooLarge` at startup.
 */
export const MAX_SESSION_POLICY_CHARS = 2048;

/** The object ARNs of the allowlist: `arn:<partition>:s3:::<bucket>/<prefix>*`. */
export function objectArns(buckets: readonly BucketRule[], partition = 'aws'): string[] {
  return buckets.flatMap((b) => b.prefixes.map((p) => `arn:${partition}:s3:::${b.name}/${p}*`));
}

/**
 * Builds the session policy for one credential scope from the allowlist.
 *
 * @param buckets - the allowlist (validated: bucket names per the S3 rules, prefixes ending
 *   with `/` and free of `*`, `?` and `$`)
 * @param access - `read` or `write` (write includes read)
 * @param partition - the AWS partition of the role (`aws`, `aws-us-gov`, `aws-cn`)
 * @throws Error when the allowlist is empty (a policy with no resources would be meaningless)
 */
export function buildSessionPolicy(
  buckets: readonly BucketRule[],
  access: 'read' | 'write',
  partition = 'aws',
): SessionPolicy {
  if (buckets.length === 0 || buckets.some((b) => b.prefixes.length === 0))
    throw new Error('the allowlist is empty');
  const objects = objectArns(buckets, partition);
  const statements: SessionPolicyStatement[] = [
    { Sid: 'ReadObjects', Effect: 'Allow', Action: ['s3:GetObject'], Resource: objects },
    ...buckets.map(
      (b, i): SessionPolicyStatement => ({
        Sid: `ListAllowedPrefixes${i}`,
        Effect: 'Allow',
        Action: ['s3:ListBucket'],
        Resource: [`arn:${partition}:s3:::${b.name}`],
        Condition: { StringLike: { 's3:prefix': b.prefixes.map((p) => `${p}*`) } },
      }),
    ),
  ];
  if (access === 'write') {
    statements.push({
      Sid: 'WriteObjects',
      Effect: 'Allow',
      Action: ['s3:PutObject', 's3:DeleteObject'],
      Resource: objects,
    });
  }
  return { Version: '2012-10-17', Statement: statements };
}

/** The compact JSON sent as the `Policy` parameter of `AssumeRole`. */
export function serializeSessionPolicy(policy: SessionPolicy): string {
  return JSON.stringify(policy);
}

/** The partition of an IAM role ARN (`arn:<partition>:iam::<account>:role/<name>`). */
export function partitionOf(roleArn: string): string {
  return roleArn.split(':')[1] ?? 'aws';
}
