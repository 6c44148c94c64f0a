import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  ALLOW,
  type CursorBinding,
  CursorSealer,
  deny,
  ErrorCode,
  jsonBytes,
  type OutputLimits,
  type Tool,
  ToolError,
} from '@hardened-mcp/core';
import { z } from 'zod';
import {
  type BodyStream,
  type ByteRange,
  charsetOf,
  classifyContentType,
  decodeText,
  readBounded,
  resolveRange,
  utf8Boundary,
} from './body.js';
import { type S3Handle, toToolError } from './client.js';
import type { S3Settings } from './config.js';
import {
  bucketArg,
  keyArg,
  kit,
  listingResource,
  objectPolicy,
  objectResource,
  ownerOf,
  s3Url,
} from './define.js';
import {
  authorizeListing,
  authorizeObject,
  type BucketRule,
  checkListPrefix,
  escapeForDisplay,
  type ListingTarget,
  type ObjectTarget,
} from './keys.js';
import { createWriteTools } from './writes.js';

/**
 * The share of `output.maxBytes` a tool fills itself, leaving room for the core's redaction
 * markers (which can be longer than what they replace) and the JSON envelope.
 */
const OUTPUT_SHARE = 0.8;
const ENVELOPE_BYTES = 2048;

/** Bytes of result a tool may produce under the core's output cap. */
export function outputBudget(limits: OutputLimits): number {
  return Math.max(512, Math.floor(limits.maxBytes * OUTPUT_SHARE) - ENVELOPE_BYTES);
}

/** The configured buckets as allowlist rules. */
export function allowlistOf(settings: S3Settings): BucketRule[] {
  return settings.buckets.map((b) => ({
    name: b.name,
    prefixes: [...b.prefixes],
    expectedOwner: b.expectedOwner,
  }));
}

// ------------------------------------------------------------------------------------------
// Listing cursors

/**
 * A listing cursor's state: `{ v: 1, b: bucket, p: prefix, t?: ContinuationToken,
 * a?: StartAfter }`. `t` is S3's own `NextContinuationToken` (a full page was returned); `a` is
 * the last key returned when the page was cut short by the byte budget. The client only ever
 * sees it sealed by the core's `CursorSealer` (AES-256-GCM): opaque, so a key the redactor hid
 * (an e-mail in a key) cannot be read back from the cursor, and bound to the tool, the bucket
 * and prefix, and the principal it was issued for.
 */
const cursorSchema = z.strictObject({
  v: z.literal(1),
  b: z.string().max(255),
  p: z.string().max(4096),
  t: z.string().min(1).max(4096).optional(),
  a: z.string().min(1).max(4096).optional(),
});
type Cursor = z.infer<typeof cursorSchema>;

function cursorBinding(bucket: string, prefix: string, principal: string): CursorBinding {
  return { tool: 's3_list_objects', principal, resource: [bucket, prefix] };
}

/** Seals a listing cursor for `principal` (opaque to clients). */
export function encodeCursor(sealer: CursorSealer, c: Cursor, principal: string): string {
  return sealer.seal(cursorBinding(c.b, c.p, principal), c);
}

/**
 * Opens a listing cursor issued to `principal` for `target`, or `undefined` when it is
 * malformed, forged, expired, or issued for another listing or principal.
 */
export function decodeCursor(
  sealer: CursorSealer,
  raw: string,
  target: ListingTarget,
  principal: string,
): Cursor | undefined {
  const opened = sealer.open(raw, cursorBinding(target.bucket.name, target.prefix, principal));
  if (!opened.ok) return undefined;
  const c = cursorSchema.safeParse(opened.state);
  if (!c.success || (c.data.t === undefined) === (c.data.a === undefined)) return undefined;
  if (c.data.b !== target.bucket.name || c.data.p !== target.prefix) return undefined;
  return c.data;
}

// ------------------------------------------------------------------------------------------
// Reading objects

async function send<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toToolError(err);
  }
}

/** HeadObject of an authorized target. */
export function headObject(
  client: S3Client,
  t: ObjectTarget,
  signal: AbortSignal,
): Promise<HeadObjectCommandOutput> {
  return send(() =>
    client.send(new HeadObjectCommand({ Bucket: t.bucket.name, Key: t.key, ...ownerOf(t) }), {
      abortSignal: signal,
    }),
  );
}

/**
 * Reads `length` bytes from `start` of an object, pinned to `etag` (`If-Match`, so a
 * concurrent replacement fails with `PreconditionFailed` instead of mixing versions). The
 * request carries a `Range` unless it is the whole object (whole-object reads are
 * checksum-validated by the SDK), and the body is read with {@link readBounded} either way, so
 * a server that ignores `Range` still cannot make us buffer more than `length + 1` bytes.
 */
async function readObjectBytes(
  client: S3Client,
  t: ObjectTarget,
  range: { start: number; length: number; size: number; etag: string | undefined },
  signal: AbortSignal,
): Promise<Buffer> {
  const whole = range.start === 0 && range.length === range.size;
  const out: GetObjectCommandOutput = await send(() =>
    client.send(
      new GetObjectCommand({
        Bucket: t.bucket.name,
        Key: t.key,
        Range: whole ? undefined : `bytes=${range.start}-${range.start + range.length - 1}`,
        IfMatch: range.etag,
        ...ownerOf(t),
      }),
      { abortSignal: signal },
    ),
  );
  if (!out.Body) return Buffer.alloc(0);
  try {
    const { bytes } = await readBounded(out.Body as unknown as BodyStream, range.length);
    return bytes;
  } catch (err) {
    throw toToolError(err);
  }
}

/**
 * The text that fits `budget` JSON bytes: shrinks the byte slice (at UTF-8 boundaries) until
 * the decoded text's JSON encoding fits (escapes can make JSON longer than the bytes).
 */
function fitText(
  bytes: Buffer,
  decoded: { text: string; bytes: number },
  budget: number,
  charset: string | undefined,
): { text: string; bytes: number; cut: boolean } {
  let cur = decoded;
  let cut = false;
  for (let i = 0; i < 20; i++) {
    const size = jsonBytes(cur.text);
    if (size <= budget) return { ...cur, cut };
    cut = true;
    let n = Math.floor((cur.bytes * budget) / size / 1.05);
    n = utf8Boundary(bytes.subarray(0, n));
    const next = decodeText(bytes.subarray(0, n), { truncated: true, charset });
    if (!next) break;
    cur = next;
  }
  return { text: '', bytes: 0, cut: true };
}

/** The result of `s3_get_object`. */
export interface GetObjectResult {
  readonly data: Record<string, unknown>;
  readonly truncated: boolean;
  /** Binary content (`encoding: 'binary'`), returned as the core's binary output, never as text. */
  readonly binary?: Buffer | undefined;
}

/**
 * `s3_get_object`'s logic: HeadObject (size, type, ETag), then at most one bounded, ranged
 * GetObject pinned to that ETag.
 *
 * - text (by content type, or by content when the type is generic: valid UTF-8 without NUL, or
 *   the declared charset) → `encoding: 'text'`, at most `maxObjectBytes` (and the output
 *   budget), `truncated` when the object (or range) is longer;
 * - binary → `encoding: 'binary'` with the bytes in `binary` (an MCP embedded resource, never
 *   base64 passed off as text) when the object (or range) is at most `maxBinaryBytes`, otherwise
 *   `encoding: 'none'` (metadata only: nothing is downloaded).
 *
 * @throws ToolError `invalid_input` for an unsatisfiable range; S3 errors via {@link toToolError}
 */
export async function getObject(
  client: S3Client,
  t: ObjectTarget,
  rangeSpec: string | undefined,
  settings: Pick<S3Settings, 'maxObjectBytes' | 'maxBinaryBytes'>,
  limits: OutputLimits,
  signal: AbortSignal,
): Promise<GetObjectResult> {
  const head = await headObject(client, t, signal);
  const size = head.ContentLength ?? 0;
  const contentType = head.ContentType;
  let range: ByteRange | undefined;
  if (rangeSpec !== undefined) {
    range = resolveRange(rangeSpec, size);
    if (!range)
      throw new ToolError(
        ErrorCode.InvalidInput,
        `the range is not satisfiable (the object is ${size} bytes)`,
      );
  }
  const start = range?.start ?? 0;
  const selected = range ? range.end - range.start + 1 : size;
  const budget = outputBudget(limits);
  const textCap = Math.min(settings.maxObjectBytes, budget);
  const binCap = Math.min(settings.maxBinaryBytes, Math.floor((budget * 3) / 4));
  const cls = classifyContentType(contentType);
  const charset = charsetOf(contentType);
  const want =
    cls === 'text'
      ? Math.min(selected, textCap)
      : cls === 'binary'
        ? selected <= binCap
          ? selected
          : 0
        : Math.min(selected, Math.max(textCap, binCap));
  const bytes =
    want > 0
      ? await readObjectBytes(client, t, { start, length: want, size, etag: head.ETag }, signal)
      : Buffer.alloc(0);
  const base = {
    bucket: t.bucket.name,
    key: t.key,
    contentType: contentType ?? null,
    size,
    etag: head.ETag ?? null,
    lastModified: head.LastModified?.toISOString() ?? null,
    range: range ? { start: range.start, end: range.end } : null,
  };
  if (cls !== 'binary') {
    const slice = bytes.subarray(0, Math.min(bytes.byteLength, textCap));
    const decoded =
      selected === 0
        ? { text: '', bytes: 0 }
        : decodeText(slice, { truncated: selected > slice.byteLength, charset });
    if (decoded) {
      const fitted = fitText(slice, decoded, budget, charset);
      const truncated = fitted.cut || fitted.bytes < selected;
      return {
        data: {
          ...base,
          encoding: 'text',
          text: fitted.text,
          returnedBytes: fitted.bytes,
          truncated,
        },
        truncated,
      };
    }
  }
  if (selected <= binCap && bytes.byteLength === selected) {
    return {
      data: { ...base, encoding: 'binary', returnedBytes: bytes.byteLength, truncated: false },
      truncated: false,
      binary: bytes,
    };
  }
  return {
    data: {
      ...base,
      encoding: 'none',
      returnedBytes: 0,
      truncated: true,
      reason: `binary content larger than the ${binCap}-byte binary cap; ask for a smaller range`,
    },
    truncated: true,
  };
}

/**
 * Declares every tool of the S3 connector as data. The core decides which are enabled (mode,
 * allowlist, credentials) and runs each call through the pipeline.
 */
export function createS3Tools(settings: S3Settings): Tool<S3Handle>[] {
  const buckets = allowlistOf(settings);
  const policy = objectPolicy(buckets);
  // A per-process key: cursors do not outlive the server process.
  const cursors = new CursorSealer();

  const listBuckets = kit.read({
    name: 'list_buckets',
    title: 'List allowed buckets',
    description:
      'Lists the buckets and key prefixes this server may access (its allowlist). Nothing outside them can be read or written.',
    output: 'table',
    input: z.strictObject({}),
    async execute() {
      return {
        kind: 'table',
        columns: [
          { name: 'bucket', type: 'text' },
          { name: 'prefixes', type: 'text[]' },
          { name: 'region', type: 'text' },
        ],
        rows: buckets.map((b) => [b.name, [...b.prefixes], settings.region]),
        truncated: false,
      };
    },
  });

  const listObjects = kit.read({
    name: 'list_objects',
    title: 'List objects',
    description:
      'Lists objects under an allowed prefix (ListObjectsV2), one page at a time: pass nextCursor back as cursor for the next page. ' +
      'With delimiter "/", keys below the next "/" are grouped into folders. Without prefix, a bucket with one allowed prefix lists that prefix.',
    output: 'json',
    input: z.strictObject({
      bucket: bucketArg,
      prefix: z
        .string()
        .min(1)
        .max(1024)
        .optional()
        .describe('Key prefix inside an allowed prefix, e.g. reports/2024/.'),
      cursor: z.string().min(1).max(8192).optional().describe('nextCursor of the previous page.'),
      maxKeys: z
        .int()
        .min(1)
        .max(1000)
        .optional()
        .describe('Objects per page (default 100, capped by the server).'),
      delimiter: z.literal('/').optional().describe('"/" groups keys into folders.'),
    }),
    resource: listingResource(buckets),
    policy(input, ctx) {
      const t = authorizeListing(buckets, input.bucket, input.prefix);
      if (!t.ok) return deny(ErrorCode.PolicyDenied, t.reason);
      if (
        input.cursor !== undefined &&
        !decodeCursor(cursors, input.cursor, t, ctx.identity.principal)
      )
        return deny(
          ErrorCode.InvalidInput,
          'the cursor is not a current nextCursor of this listing (same bucket, prefix and principal); list again without a cursor',
        );
      return ALLOW;
    },
    async execute(input, ctx) {
      const t = authorizeListing(buckets, input.bucket, input.prefix);
      if (!t.ok) throw new ToolError(ErrorCode.PolicyDenied, t.reason);
      const cursor =
        input.cursor === undefined
          ? undefined
          : decodeCursor(cursors, input.cursor, t, ctx.identity.principal);
      const maxKeys = Math.min(input.maxKeys ?? 100, ctx.limits.maxRows, 1000);
      const page: ListObjectsV2CommandOutput = await send(() =>
        ctx.client.client.send(
          new ListObjectsV2Command({
            Bucket: t.bucket.name,
            Prefix: t.prefix,
            MaxKeys: maxKeys,
            Delimiter: input.delimiter,
            ContinuationToken: cursor?.t,
            StartAfter: cursor?.a,
            ...ownerOf(t),
          }),
          { abortSignal: ctx.signal },
        ),
      );
      const budget = outputBudget(ctx.limits);
      // A folder or key written by others (not through us) that fails the key walls, e.g. one
      // that percent-decodes to a `..` segment, is withheld: never shown, even escaped, so a
      // consumer that URL-decodes what we listed cannot see a traversal in it.
      let withheldFolders = 0;
      const folders = (page.CommonPrefixes ?? []).flatMap((p) => {
        if (!p.Prefix) return [];
        if (!checkListPrefix(p.Prefix).ok) {
          withheldFolders++;
          return [];
        }
        return [escapeForDisplay(p.Prefix)];
      });
      let used = jsonBytes(folders) + 512;
      const objects: Record<string, unknown>[] = [];
      let lastKey: string | undefined;
      let cut = false;
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        // Defence in depth: S3 filters by Prefix, but never show a key outside it.
        if (!o.Key.startsWith(t.prefix)) continue;
        const checked = authorizeObject(buckets, t.bucket.name, o.Key);
        const entry: Record<string, unknown> = {
          key: checked.ok ? escapeForDisplay(o.Key) : null,
          size: o.Size ?? null,
          lastModified: o.LastModified?.toISOString() ?? null,
          etag: o.ETag ?? null,
          storageClass: o.StorageClass ?? null,
        };
        if (!checked.ok) entry.withheld = checked.reason;
        else if (checked.key !== o.Key) entry.unreadable = 'the key is not NFC-normalized';
        const size = jsonBytes(entry) + 1;
        if (used + size > budget && objects.length > 0) {
          cut = true;
          break;
        }
        used += size;
        objects.push(entry);
        lastKey = o.Key;
      }
      let next: Cursor | undefined;
      if (cut && lastKey !== undefined) next = { v: 1, b: t.bucket.name, p: t.prefix, a: lastKey };
      else if (page.IsTruncated && page.NextContinuationToken)
        next = { v: 1, b: t.bucket.name, p: t.prefix, t: page.NextContinuationToken };
      return {
        kind: 'json',
        data: {
          bucket: t.bucket.name,
          prefix: t.prefix,
          objects,
          ...(input.delimiter ? { folders } : {}),
          ...(withheldFolders > 0 ? { withheldFolders } : {}),
          nextCursor: next ? encodeCursor(cursors, next, ctx.identity.principal) : null,
        },
        rowCount: objects.length,
        truncated: next !== undefined,
        note: next
          ? `${objects.length} object(s); more exist: pass nextCursor as cursor for the next page.`
          : `${objects.length} object(s); this is the last page.`,
      };
    },
  });

  const headObjectTool = kit.read({
    name: 'head_object',
    title: 'Describe an object',
    description:
      "Returns an object's metadata (HeadObject): size in bytes, content type, ETag, last modified, storage class and user metadata.",
    output: 'json',
    input: z.strictObject({ bucket: bucketArg, key: keyArg }),
    policy,
    resource: objectResource,
    async execute(_input, ctx) {
      const t = ctx.authorized;
      const h = await headObject(ctx.client.client, t, ctx.signal);
      return {
        kind: 'json',
        data: {
          bucket: t.bucket.name,
          key: t.key,
          size: h.ContentLength ?? null,
          contentType: h.ContentType ?? null,
          etag: h.ETag ?? null,
          lastModified: h.LastModified?.toISOString() ?? null,
          storageClass: h.StorageClass ?? 'STANDARD',
          contentEncoding: h.ContentEncoding ?? null,
          metadata: { ...(h.Metadata ?? {}) },
        },
      };
    },
  });

  const getObjectTool = kit.read({
    name: 'get_object',
    title: 'Read an object',
    description:
      `Reads an object (or a byte range of it). Text is returned as text, at most ${settings.maxObjectBytes} bytes (truncated says more exist; read on with range). ` +
      `Binary content is returned as an embedded resource (blob) when it is at most ${settings.maxBinaryBytes} bytes, otherwise only metadata.`,
    output: 'json',
    binaryOutput: true,
    input: z.strictObject({
      bucket: bucketArg,
      key: keyArg,
      range: z
        .string()
        .max(40)
        .regex(
          /^bytes=\d{0,15}-\d{0,15}$/,
          'a byte range like bytes=0-1023, bytes=1024- or bytes=-500',
        )
        .optional()
        .describe('HTTP byte range: bytes=first-last, bytes=first- or bytes=-suffixLength.'),
    }),
    policy,
    resource: objectResource,
    async execute(input, ctx) {
      const t = ctx.authorized;
      const r = await getObject(
        ctx.client.client,
        t,
        input.range,
        settings,
        ctx.limits,
        ctx.signal,
      );
      if (r.binary)
        return {
          kind: 'binary',
          mimeType: (r.data.contentType as string | null) ?? 'application/octet-stream',
          data: r.binary,
          uri: s3Url(t),
          metadata: r.data,
        };
      return { kind: 'json', data: r.data, truncated: r.truncated };
    },
  });

  const tools: Tool<S3Handle>[] = [listBuckets, listObjects, headObjectTool, getObjectTool];

  if (settings.presign.enabled) {
    const maxExpires = settings.presign.maxExpiresSeconds;
    const presign = kit.read({
      name: 'presign_get',
      title: 'Create a presigned download URL',
      description: `Creates a presigned GET URL for an object (anyone holding it can download the object until it expires; at most ${maxExpires} s, and never beyond the server's current credentials).`,
      output: 'json',
      // A presigned URL is an intended bearer credential: exempt from redaction, audited by digest.
      bearerField: 'url',
      input: z.strictObject({
        bucket: bucketArg,
        key: keyArg,
        expiresSeconds: z
          .int()
          .min(1)
          .max(maxExpires)
          .describe(`Lifetime of the URL in seconds (at most ${maxExpires}).`),
      }),
      policy,
      resource: objectResource,
      async execute(input, ctx) {
        const t = ctx.authorized;
        const creds = await send(() => ctx.client.resolveCredentials());
        const credsLeft = creds.expiration
          ? Math.floor((creds.expiration.getTime() - Date.now()) / 1000)
          : Number.POSITIVE_INFINITY;
        const expiresIn = Math.max(1, Math.min(input.expiresSeconds, credsLeft));
        const url = await send(() =>
          getSignedUrl(
            ctx.client.client,
            new GetObjectCommand({ Bucket: t.bucket.name, Key: t.key, ...ownerOf(t) }),
            { expiresIn },
          ),
        );
        return {
          kind: 'json',
          data: {
            bucket: t.bucket.name,
            key: t.key,
            url,
            expiresSeconds: expiresIn,
            expiresAt: new Date(Date.now() + expiresIn * 1000).toISOString(),
          },
        };
      },
    });
    tools.push(presign);
  }
  return [...tools, ...createWriteTools(settings, buckets)];
}
