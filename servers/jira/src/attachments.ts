import { createHash } from 'node:crypto';
import {
  ApprovalText,
  allow,
  createUpstreamClient,
  deny,
  ErrorCode,
  type Tool,
  ToolError,
  UpstreamCallError,
  type UpstreamClient,
  type UpstreamResponse,
  upstreamPath,
  upstreamPathOf,
} from '@hardened-mcp/core';
import { z } from 'zod';
import { type JiraClient, jiraError } from './client.js';
import { issueKeySchema, type JiraSettings } from './config.js';
import { classifyReturned, type FieldLabels, withFields } from './field-labels.js';
import { fetchIssueInScope, userOf } from './issues.js';
import { kit } from './kit.js';
import { issueRef, projectOfIssueKey, projectType } from './resources.js';

/** An attachment as listed in an issue's `attachment` field (REST v3 `AttachmentMetadata`). */
interface AttachmentMeta {
  readonly id: string;
  readonly filename: string;
  readonly mimeType: string;
  readonly size: number;
  readonly created: string | null;
  readonly author: { accountId: string; displayName: string } | null;
}

/** The media type without parameters, lower case (`Text/Plain; charset=x` → `text/plain`). */
export function baseMimeType(value: string): string {
  return (value.split(';')[0] ?? '').trim().toLowerCase();
}

/**
 * A file name as given to an upload: one path segment (no `/`, `\`, `..`), no control, bidi or
 * line-separator characters, at most 200 characters.
 */
const fileNameSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(
    /^[^/\\\p{Cc}\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]+$/u,
    'a file name: no path separators or control characters',
  )
  .refine((n) => n !== '.' && n !== '..', 'a file name, not . or ..');

function metaOf(x: unknown): AttachmentMeta | undefined {
  const a = (x ?? {}) as Record<string, unknown>;
  if (typeof a.id !== 'string' || !/^\d{1,18}$/.test(a.id)) return undefined;
  return {
    id: a.id,
    filename: typeof a.filename === 'string' ? a.filename : '',
    mimeType: typeof a.mimeType === 'string' ? baseMimeType(a.mimeType) : '',
    size: typeof a.size === 'number' && Number.isFinite(a.size) ? a.size : -1,
    created: typeof a.created === 'string' ? a.created : null,
    author: userOf(a.author),
  };
}

/**
 * The attachment tools (only with `jira.attachments.enabled`):
 *
 * - `jira_get_attachment { key, attachmentId }`: the issue is fetched and its project checked as
 *   returned (moved issues keep old keys); the attachment must be listed on that issue; its size
 *   (≤ `maxBytes` and the core's output cap) and media type (on `mimeTypes`) are checked before
 *   a byte is downloaded. Jira answers the content URL with a `303` to its media host: the target
 *   is followed once, with the credential only when it is the site origin, and WITHOUT it when
 *   it is one of `mediaOrigins`; any other target is refused. The bytes are returned as the
 *   core's binary output (an embedded resource blob) with the metadata fenced beside them.
 * - `jira_add_attachment { key, fileName, mimeType, contentBase64 }`: bytes in the call, never a
 *   path on the server; media type on `mimeTypes`; size ≤ `maxBytes`; the issue's live project
 *   in the write allowlist (checked before approval with the read client and again with the
 *   write client); the approval prompt shows issue key, file name, size, media type and SHA-256.
 *   Sent as `multipart/form-data` with `X-Atlassian-Token: no-check` (Jira's XSRF rule for
 *   `POST /rest/api/3/issue/{key}/attachments`).
 */
export function createAttachmentTools(
  settings: JiraSettings,
  labels: FieldLabels,
): Tool<JiraClient>[] {
  const cfg = settings.attachments;
  if (!cfg.enabled) return [];
  const readable = new Set(settings.projects.read);
  const writable = new Set(settings.projects.write);
  const mimeTypes = new Set(cfg.mimeTypes);
  /** The resource of an attachment call: the issue's project, classified with its `attachment` field. */
  const attachmentRef = (key: string) =>
    withFields(
      issueRef(key),
      labels.active ? labels.paths([projectOfIssueKey(key)], ['attachment']) : [],
    );
  const media = new Map<string, UpstreamClient>(
    cfg.mediaOrigins.map((o) => {
      const origin = new URL(o).origin;
      // No credential: the media host gets only its own signed URL.
      return [origin, createUpstreamClient({ origin, maxResponseBytes: cfg.maxBytes })];
    }),
  );
  const keyArg = issueKeySchema.describe('The issue key, e.g. SUP-12.');

  /** The attachment `id` as listed on the issue `key` in a readable project. */
  async function attachmentOn(client: JiraClient, key: string, id: string, signal?: AbortSignal) {
    const issue = await fetchIssueInScope(client.api(signal), key, readable, ['attachment']);
    const list = Array.isArray(issue.fields?.attachment) ? issue.fields.attachment : [];
    const meta = list.map(metaOf).find((a) => a?.id === id);
    if (!meta)
      throw new ToolError(
        ErrorCode.UpstreamError,
        `attachment ${id} is not on issue ${key} in an allowed project, or is not visible to this server`,
      );
    return { issue, meta };
  }

  /** The content, following Jira's one redirect only to the site or a configured media origin. */
  async function download(
    client: JiraClient,
    id: string,
    cap: number,
    signal: AbortSignal,
  ): Promise<UpstreamResponse> {
    await client.prepare();
    const path = upstreamPath`/rest/api/3/attachment/content/${id}`;
    let res: UpstreamResponse;
    try {
      res = await client.upstream.request({
        method: 'GET',
        path,
        signal,
        maxResponseBytes: cap,
      });
    } catch (err) {
      if (!(err instanceof UpstreamCallError) || err.reason !== 'redirect' || !err.location)
        throw err;
      res = await followRedirect(client, err.location, cap, signal);
    }
    if (res.status !== 200) throw jiraError(res.status, res.text());
    return res;
  }

  async function followRedirect(
    client: JiraClient,
    location: string,
    cap: number,
    signal: AbortSignal,
  ): Promise<UpstreamResponse> {
    const site = client.upstream.base;
    let target: URL;
    try {
      target = new URL(location, site.origin + site.basePath);
    } catch {
      throw refusedTarget();
    }
    const to = target.origin === site.origin ? client.upstream : media.get(target.origin);
    if (!to) throw refusedTarget();
    const { path, query } = upstreamPathOf(to.base, target.href);
    // A second redirect is the client's `redirect` failure: never followed.
    return to.request({ method: 'GET', path, query, signal, maxResponseBytes: cap });
  }

  const getAttachment = kit.read({
    name: 'get_attachment',
    resource: { ...projectType, of: (input) => attachmentRef(input.key) },
    title: 'Read an attachment',
    description: `Downloads one attachment of an issue (ids from the issue's attachment list, see jira_get_issue with the attachment field) as an embedded resource. At most ${cfg.maxBytes} bytes; media types: ${cfg.mimeTypes.join(', ')}.`,
    output: 'json',
    binaryOutput: true,
    input: z.strictObject({
      key: keyArg,
      attachmentId: z
        .string()
        .regex(/^\d{1,18}$/)
        .describe('The attachment id.'),
    }),
    policy(input, { identity }) {
      return (
        labels.refuseAbove(
          identity,
          [projectOfIssueKey(input.key)],
          ['attachment'],
          'this tool returns attachments',
        ) ?? allow(undefined)
      );
    },
    async execute(input, ctx) {
      const { issue, meta } = await attachmentOn(ctx.client, input.key, input.attachmentId);
      await classifyReturned(ctx.classification, labels, input.key, issue.project, ['attachment']);
      const cap = Math.min(cfg.maxBytes, ctx.limits.maxBytes);
      if (!mimeTypes.has(meta.mimeType))
        throw new ToolError(
          ErrorCode.PolicyDenied,
          `attachments of type ${meta.mimeType || 'unknown'} are not allowed`,
        );
      if (meta.size < 0 || meta.size > cap)
        throw new ToolError(
          ErrorCode.LimitExceeded,
          `the attachment (${meta.size} bytes) exceeds the ${cap}-byte cap`,
        );
      let res: UpstreamResponse;
      try {
        res = await download(ctx.client, meta.id, cap, ctx.signal);
      } catch (err) {
        if (err instanceof UpstreamCallError && err.reason === 'response_too_large')
          throw new ToolError(
            ErrorCode.LimitExceeded,
            `the attachment exceeds the ${cap}-byte cap`,
          );
        throw err;
      }
      // The bytes' own media type must be allowed too, whatever the listing said.
      const served = baseMimeType(res.headers.get('content-type') ?? '');
      if (served !== '' && served !== 'application/octet-stream' && !mimeTypes.has(served))
        throw new ToolError(
          ErrorCode.PolicyDenied,
          `the attachment was served as ${served}, which is not allowed`,
        );
      return {
        kind: 'binary',
        mimeType: meta.mimeType,
        data: new Uint8Array(res.body),
        uri: `jira:${issue.key}/attachment/${meta.id}`,
        metadata: {
          key: issue.key,
          attachmentId: meta.id,
          filename: meta.filename,
          size: res.body.length,
          author: meta.author,
          created: meta.created,
        },
      };
    },
  });

  const maxBase64 = Math.ceil(cfg.maxBytes / 3) * 4;
  const addAttachment = kit.write({
    name: 'add_attachment',
    resource: { ...projectType, of: (input) => attachmentRef(input.key) },
    egress: true,
    title: 'Attach a file',
    description: `Attaches a file to an issue in a writable project (needs the human's approval). The bytes come base64-encoded in the call (at most ${cfg.maxBytes} bytes); media types: ${cfg.mimeTypes.join(', ')}.`,
    destructive: false,
    output: 'json',
    input: z.strictObject({
      key: keyArg,
      fileName: fileNameSchema.describe('The file name shown in Jira, e.g. report.csv.'),
      mimeType: z
        .string()
        .max(129)
        .describe(`The media type, one of ${cfg.mimeTypes.join(', ')}.`),
      contentBase64: z.base64().min(1).max(maxBase64).describe('The file content, base64-encoded.'),
    }),
    policy(input, { identity, readClient }) {
      const labelRefusal = labels.refuseAbove(
        identity,
        [projectOfIssueKey(input.key)],
        ['attachment'],
        'this call would write it',
      );
      if (labelRefusal) return labelRefusal;
      const mimeType = baseMimeType(input.mimeType);
      if (!mimeTypes.has(mimeType))
        return deny(ErrorCode.PolicyDenied, `attachments of type ${mimeType} are not allowed`);
      const bytes = Buffer.from(input.contentBase64, 'base64');
      if (bytes.length === 0) return deny(ErrorCode.InvalidInput, 'the file is empty');
      if (bytes.length > cfg.maxBytes)
        return deny(ErrorCode.LimitExceeded, `the file is larger than ${cfg.maxBytes} bytes`);
      return (async () => {
        try {
          const issue = await fetchIssueInScope(readClient.api(), input.key, readable, []);
          if (!writable.has(issue.project))
            return deny(
              ErrorCode.PolicyDenied,
              `project ${issue.project} is not writable by policy`,
            );
          return allow({
            key: issue.key,
            mimeType,
            bytes,
            sha256: createHash('sha256').update(bytes).digest('hex'),
          });
        } catch (err) {
          if (err instanceof ToolError) return deny(err.code, err.message);
          throw err;
        }
      })();
    },
    describeChange: (input, a) =>
      new ApprovalText({ maxChars: settings.limits.approvalChars, maxValueChars: 300 })
        .line('Attach a file to Jira issue', a.key)
        .field('file name', input.fileName)
        .field('size', `${a.bytes.length} bytes`)
        .field('media type', a.mimeType)
        .field('sha-256', a.sha256)
        .toString(),
    async execute(input, ctx) {
      const a = ctx.authorized;
      // Re-checked with the write credential: the issue may have moved since the approval.
      const issue = await fetchIssueInScope(ctx.client.api(ctx.signal), input.key, writable, []);
      await classifyReturned(ctx.classification, labels, input.key, issue.project, ['attachment']);
      const form = new FormData();
      form.append('file', new Blob([a.bytes], { type: a.mimeType }), input.fileName);
      const encoded = new Request('http://multipart.invalid/', { method: 'POST', body: form });
      const body = new Uint8Array(await encoded.arrayBuffer());
      await ctx.client.prepare();
      const res = await ctx.client.upstream.request({
        method: 'POST',
        path: upstreamPath`/rest/api/3/issue/${issue.key}/attachments`,
        headers: {
          'content-type': encoded.headers.get('content-type') ?? 'multipart/form-data',
          'x-atlassian-token': 'no-check',
        },
        body,
        access: 'write',
        signal: ctx.signal,
      });
      if (res.status < 200 || res.status >= 300) throw jiraError(res.status, res.text());
      const answered = res.json();
      const attachments = (Array.isArray(answered) ? answered : [])
        .map(metaOf)
        .filter((m) => m !== undefined)
        .map((m) => ({ id: m.id, filename: m.filename, size: m.size, mimeType: m.mimeType }));
      return { kind: 'json', data: { key: issue.key, attachments } };
    },
  });

  return [getAttachment, addAttachment];
}

function refusedTarget(): ToolError {
  return new ToolError(
    ErrorCode.UpstreamError,
    'Jira redirected the download to an origin this server does not allow',
  );
}
