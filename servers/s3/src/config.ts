import { z } from 'zod';
import { configuredPrefixProblem, isValidBucketName } from './keys.js';

/**
 * An IAM role ARN (IAM User Guide, "IAM identifiers": `arn:<partition>:iam::<12-digit
 * account>:role/<path/><name>`, names of `[\w+=,.@-]`, at most 64 characters per name and 512
 * for path and name together).
 */
export const roleArnSchema = z
  .string()
  .max(2048)
  .regex(
    /^arn:(aws|aws-us-gov|aws-cn):iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/,
    'not an IAM role ARN (arn:aws:iam::123456789012:role/name)',
  );

/** An http(s) URL (S3-compatible endpoints, VPC interface endpoints, a local test STS). */
const endpointSchema = z
  .string()
  .max(2048)
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http:// or https:// URL');

/** One allowlisted bucket and its key prefixes. */
export const bucketRuleSchema = z.strictObject({
  /** The bucket name (S3 general purpose bucket naming rules; no ARNs, no aliases). */
  name: z
    .string()
    .max(63)
    .refine(isValidBucketName, 'not a valid S3 bucket name (lower-case, 3–63 characters, no ARNs)'),
  /** Key prefixes inside the bucket, each ending with `/` (e.g. `reports/`). */
  prefixes: z
    .array(
      z
        .string()
        .min(1)
        .max(512)
        .superRefine((p, ctx) => {
          const problem = configuredPrefixProblem(p);
          if (problem) ctx.addIssue({ code: 'custom', message: `prefix ${problem}` });
        }),
    )
    .min(1)
    .max(50),
  /** The AWS account id that must own the bucket (`ExpectedBucketOwner` on every request). */
  expectedOwner: z
    .string()
    .regex(/^\d{12}$/, 'a 12-digit AWS account id')
    .optional(),
});

/** The `s3:` section of the configuration file. Every key has a safe default. */
export const s3SectionSchema = z
  .strictObject({
    /** AWS region of the buckets (and of STS unless `stsEndpoint` says otherwise). */
    region: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'not a region name')
      .default('us-east-1'),
    /** An S3-compatible endpoint (MinIO, Ceph, a local emulator); default: AWS. */
    endpoint: endpointSchema.optional(),
    /** Path-style URLs (`endpoint/bucket/key`); most S3-compatible servers need this. */
    forcePathStyle: z.boolean().default(false),
    /** The allowlist. Nothing outside it is ever requested. */
    buckets: z.array(bucketRuleSchema).max(50).default([]),
    /** Roles assumed with a generated session policy; without one, the default provider chain is used (warned). */
    roles: z
      .strictObject({
        /** Role for the read tools. */
        read: roleArnSchema.optional(),
        /** Role for the write tools. */
        write: roleArnSchema.optional(),
        /** `ExternalId` for `AssumeRole`, when the role's trust policy requires one. */
        externalId: z
          .string()
          .regex(/^[\w+=,.@:/-]{2,1224}$/, 'not a valid external id')
          .optional(),
      })
      .prefault({}),
    /** STS endpoint (a VPC interface endpoint, a FIPS endpoint); default: the regional STS endpoint. */
    stsEndpoint: endpointSchema.optional(),
    /** Lifetime of the assumed-role sessions, in seconds (STS AssumeRole minimum 900). */
    sessionDurationSeconds: z.int().min(900).max(43_200).default(900),
    /** Text objects: at most this many bytes are returned (`truncated` says more exist). */
    maxObjectBytes: z
      .int()
      .min(1)
      .max(16 * 1024 * 1024)
      .default(128 * 1024),
    /** Binary objects (or ranges) up to this size are returned as an embedded resource (blob); larger ones as metadata only. */
    maxBinaryBytes: z
      .int()
      .min(0)
      .max(8 * 1024 * 1024)
      .default(64 * 1024),
    /** Let `s3_put_object` replace existing objects. Off: the put is conditional (`If-None-Match: *`). */
    allowOverwrite: z.boolean().default(false),
    /** Per-request timeout (connect + response), in ms. */
    requestTimeoutMs: z.int().min(100).max(300_000).default(30_000),
    /** `s3_presign_get`: off by default (a presigned URL is a bearer credential). */
    presign: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** Longest expiry a caller may ask for, in seconds (SigV4 maximum: 7 days). */
        maxExpiresSeconds: z.int().min(1).max(604_800).default(300),
      })
      .prefault({}),
  })
  .prefault({})
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.buckets.forEach((b, i) => {
      if (seen.has(b.name))
        ctx.addIssue({ code: 'custom', path: ['buckets', i, 'name'], message: 'duplicate bucket' });
      seen.add(b.name);
    });
    const partitions = new Set(
      [s.roles.read, s.roles.write].flatMap((r) => (r ? [r.split(':')[1]] : [])),
    );
    if (partitions.size > 1)
      ctx.addIssue({
        code: 'custom',
        path: ['roles'],
        message: 'the read and write roles are in different AWS partitions',
      });
  });

/** The parsed `s3:` section. */
export type S3Settings = z.infer<typeof s3SectionSchema>;
