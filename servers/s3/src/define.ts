import {
  ALLOW,
  type Decision,
  defineTool,
  deny,
  ErrorCode,
  type ToolDefinition,
  ToolError,
} from '@hardened-mcp/core';
import { z } from 'zod';
import type { S3Handle } from './client.js';
import { authorizeObject, type BucketRule, type ObjectTarget } from './keys.js';

/** `defineTool` with the S3 handle type fixed, so `execute`'s context is fully typed. */
export function s3Tool<S extends z.ZodType>(
  tool: Omit<ToolDefinition<z.output<S>, S3Handle>, 'input'> & { readonly input: S },
): ToolDefinition<z.output<S>, S3Handle> {
  return defineTool<S, S3Handle>(tool);
}

/** Scope of every read tool. */
export const READ_SCOPE = 's3:read';
/** Scope of every write tool. */
export const WRITE_SCOPE = 's3:write';

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

/** The policy step of every tool addressing one object: bucket allowlist + key walls. */
export function objectPolicy(buckets: readonly BucketRule[]) {
  return (input: { readonly bucket: string; readonly key: string }): Decision => {
    const t = authorizeObject(buckets, input.bucket, input.key);
    return t.ok ? ALLOW : deny(ErrorCode.PolicyDenied, t.reason);
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
