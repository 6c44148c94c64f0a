import {
  type Authorization,
  allow,
  deny,
  ErrorCode,
  type ResourceDeclaration,
  ToolError,
  toolKit,
} from '@hardened-mcp/core';
import { z } from 'zod';
import type { S3Handle } from './client.js';
import { authorizeListing, authorizeObject, type BucketRule, type ObjectTarget } from './keys.js';

/** The S3 tool kit: `s3_` names, `s3:read`/`s3:write` scopes, an {@link S3Handle} per scope. */
export const kit = toolKit<S3Handle>('s3');

/** Scope of every read tool. */
export const READ_SCOPE = kit.readScope;
/** Scope of every write tool. */
export const WRITE_SCOPE = kit.writeScope;

/** A bucket argument: checked against the allowlist by exact name in the policy step. */
export const bucketArg = z
  .string()
  .min(1)
  .max(255)
  .describe('An allowlisted bucket name (s3_list_buckets lists them).');
/** An object key argument: normalized (NFC) and checked by keys.ts in the policy step. */
export const keyArg = z
  .string()
  .min(1)
  .max(1024)
  .describe(
    'Object key inside an allowed prefix, e.g. reports/2024/q1.csv (no leading /, no . or .. segments).',
  );

/**
 * The policy step of every tool addressing one object: bucket allowlist + key walls. It
 * authorizes the normalized target, which `execute` gets as `ctx.authorized`.
 */
export function objectPolicy(buckets: readonly BucketRule[]) {
  return (input: {
    readonly bucket: string;
    readonly key: string;
  }): Authorization<ObjectTarget> => {
    const t = authorizeObject(buckets, input.bucket, input.key);
    return t.ok ? allow(t) : deny(ErrorCode.PolicyDenied, t.reason);
  };
}

/**
 * The authorized target of a call, recomputed in `execute` from the same pure checks the policy
 * step ran (so execute only ever sees the normalized key).
 *
 * @throws ToolError `policy_denied` if the checks fail (they cannot once the policy step passed).
 */
export function objectTarget(
  buckets: readonly BucketRule[],
  input: { readonly bucket: string; readonly key: string },
): ObjectTarget {
  const t = authorizeObject(buckets, input.bucket, input.key);
  if (!t.ok) throw new ToolError(ErrorCode.PolicyDenied, t.reason);
  return t;
}

/** `s3://bucket/key` for messages shown to the human (keys are already free of controls). */
export function s3Url(target: ObjectTarget): string {
  return `s3://${target.bucket.name}/${target.key}`;
}

/** `ExpectedBucketOwner` for requests to the target's bucket, when configured. */
export function ownerOf(target: { readonly bucket: BucketRule }): {
  ExpectedBucketOwner?: string;
} {
  return target.bucket.expectedOwner ? { ExpectedBucketOwner: target.bucket.expectedOwner } : {};
}

/**
 * The Cedar resource of a call on one object (type `Object`, id `bucket/key`), for policies and
 * classification: label paths are `bucket/prefix/…`, the most specific wins (e.g.
 * `reports/payroll/: restricted`).
 */
export const objectResource: ResourceDeclaration<unknown, ObjectTarget> = Object.freeze({
  type: 'Object',
  attributes: { bucket: 'String', key: 'String' } as const,
  of: (_input: unknown, t: ObjectTarget) => ({
    id: `${t.bucket.name}/${t.key}`,
    attrs: { bucket: t.bucket.name, key: t.key },
  }),
});

/** The Cedar resource of a listing (type `Prefix`, id `bucket/prefix`). */
export function listingResource(
  buckets: readonly BucketRule[],
): ResourceDeclaration<{ readonly bucket: string; readonly prefix?: string | undefined }, unknown> {
  return Object.freeze({
    type: 'Prefix',
    attributes: { bucket: 'String', prefix: 'String' } as const,
    of: (input: { readonly bucket: string; readonly prefix?: string | undefined }) => {
      const t = authorizeListing(buckets, input.bucket, input.prefix);
      const prefix = t.ok ? t.prefix : (input.prefix ?? '');
      return { id: `${input.bucket}/${prefix}`, attrs: { bucket: input.bucket, prefix } };
    },
  });
}
