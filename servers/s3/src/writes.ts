import {
  DeleteObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { deny, ErrorCode, type Tool, ToolError } from '@hardened-mcp/core';
import { z } from 'zod';
import { type S3Handle, toToolError } from './client.js';
import type { S3Settings } from './config.js';
import { bucketArg, keyArg, kit, objectPolicy, objectResource, ownerOf, s3Url } from './define.js';
import { type BucketRule, escapeForDisplay, type ObjectTarget } from './keys.js';

/** Content type of a put without one. */
export const DEFAULT_CONTENT_TYPE = 'text/plain; charset=utf-8';

/**
 * A media type as `Content-Type` carries it (RFC 9110 §8.3.1): `type/subtype` of token
 * characters and at most four `; name=value` parameters of token characters. No quotes,
 * controls or line breaks can reach the header.
 */
const contentTypeArg = z
  .string()
  .max(200)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;\s*[A-Za-z0-9!#$&^_.+-]{1,64}=[A-Za-z0-9!#$&^_.+-]{1,64}){0,4}$/,
    'a media type like text/csv or application/json; charset=utf-8',
  );

const OVERWRITE_REFUSED =
  'the object already exists and overwriting is disabled (s3.allowOverwrite is false); nothing was changed';

/**
 * Whether the object exists (HeadObject: 200 → true, 404 → false).
 *
 * @throws ToolError for any other failure (via {@link toToolError})
 */
export async function objectExists(
  client: S3Client,
  t: ObjectTarget,
  signal: AbortSignal,
): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: t.bucket.name, Key: t.key, ...ownerOf(t) }), {
      abortSignal: signal,
    });
    return true;
  } catch (err) {
    if (err instanceof S3ServiceException && err.$metadata?.httpStatusCode === 404) return false;
    throw toToolError(err);
  }
}

/** A preview of text for the approval prompt: first `max` characters, controls escaped. */
function preview(text: string, max = 400): string {
  const chars = [...text];
  const shown = escapeForDisplay(chars.slice(0, max).join(''));
  const more = chars.length > max ? `\n  … and ${chars.length - max} more characters` : '';
  return `${shown
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n')}${more}`;
}

/**
 * The write tools (read-write mode, write credential, approval): `s3_put_object` (text
 * content; refuses to replace an existing object unless `s3.allowOverwrite`) and
 * `s3_delete_object`. Both address one object inside the allowlist, checked by keys.ts.
 */
export function createWriteTools(
  settings: S3Settings,
  buckets: readonly BucketRule[],
): Tool<S3Handle>[] {
  const policy = objectPolicy(buckets);
  const overwrite = settings.allowOverwrite;
  const maxBytes = settings.maxObjectBytes;

  const put = kit.write({
    name: 'put_object',
    title: 'Write an object',
    description:
      `Writes text content to an object inside an allowed prefix. Needs approval; at most ${maxBytes} bytes (UTF-8). ` +
      (overwrite
        ? 'Replaces an existing object.'
        : 'Refuses to replace an existing object (the write is conditional: If-None-Match: *).'),
    destructive: overwrite,
    idempotent: overwrite,
    // An upload sends data out of the conversation: refused once the session is tainted.
    egress: true,
    resource: objectResource,
    output: 'json',
    input: z.strictObject({
      bucket: bucketArg,
      key: keyArg,
      content: z.string().max(maxBytes).describe('The object content (text, stored as UTF-8).'),
      contentType: contentTypeArg
        .optional()
        .describe(`Content-Type (default ${DEFAULT_CONTENT_TYPE}).`),
    }),
    policy(input) {
      const d = policy(input);
      if (!d.ok) return d;
      const bytes = Buffer.byteLength(input.content, 'utf8');
      return bytes > maxBytes
        ? deny(
            ErrorCode.LimitExceeded,
            `the content is ${bytes} bytes; at most ${maxBytes} may be written`,
          )
        : d;
    },
    describeChange(input, t) {
      const bytes = Buffer.byteLength(input.content, 'utf8');
      return (
        `PUT ${s3Url(t)}\n` +
        `  ${bytes} bytes, Content-Type ${input.contentType ?? DEFAULT_CONTENT_TYPE}; ` +
        `${overwrite ? 'REPLACES the object if it exists' : 'refused if the object already exists'}\n` +
        `  content:\n${preview(input.content)}`
      );
    },
    async execute(input, ctx) {
      const t = ctx.authorized;
      const client = ctx.client.client;
      // Best effort for servers without conditional writes; If-None-Match below is the atomic guard on S3.
      if (!overwrite && (await objectExists(client, t, ctx.signal)))
        throw new ToolError(ErrorCode.PolicyDenied, OVERWRITE_REFUSED);
      const body = Buffer.from(input.content, 'utf8');
      const contentType = input.contentType ?? DEFAULT_CONTENT_TYPE;
      let etag: string | undefined;
      try {
        const out = await client.send(
          new PutObjectCommand({
            Bucket: t.bucket.name,
            Key: t.key,
            Body: body,
            ContentLength: body.byteLength,
            ContentType: contentType,
            IfNoneMatch: overwrite ? undefined : '*',
            ...ownerOf(t),
          }),
          { abortSignal: ctx.signal },
        );
        etag = out.ETag;
      } catch (err) {
        const status = err instanceof S3ServiceException ? err.$metadata?.httpStatusCode : 0;
        if (status === 412) throw new ToolError(ErrorCode.PolicyDenied, OVERWRITE_REFUSED);
        if (status === 409)
          throw new ToolError(
            ErrorCode.UpstreamError,
            'a concurrent write to the same key is in progress; nothing was changed; retry',
            { cause: err },
          );
        throw toToolError(err);
      }
      return {
        kind: 'json',
        data: {
          bucket: t.bucket.name,
          key: t.key,
          bytes: body.byteLength,
          contentType,
          etag: etag ?? null,
        },
      };
    },
  });

  const remove = kit.write({
    name: 'delete_object',
    title: 'Delete an object',
    description:
      'Deletes one object inside an allowed prefix. Needs approval. (On a versioned bucket, S3 adds a delete marker; older versions stay.)',
    destructive: true,
    idempotent: true,
    output: 'json',
    input: z.strictObject({ bucket: bucketArg, key: keyArg }),
    policy,
    resource: objectResource,
    describeChange(_input, t) {
      return `DELETE ${s3Url(t)}\n  the object is removed (on a versioned bucket a delete marker hides it)`;
    },
    async execute(_input, ctx) {
      const t = ctx.authorized;
      const client = ctx.client.client;
      if (!(await objectExists(client, t, ctx.signal)))
        return {
          kind: 'json',
          data: { bucket: t.bucket.name, key: t.key, deleted: false, existed: false },
        };
      try {
        await client.send(
          new DeleteObjectCommand({ Bucket: t.bucket.name, Key: t.key, ...ownerOf(t) }),
          { abortSignal: ctx.signal },
        );
      } catch (err) {
        throw toToolError(err);
      }
      return {
        kind: 'json',
        data: { bucket: t.bucket.name, key: t.key, deleted: true, existed: true },
      };
    },
  });

  return [put, remove];
}
