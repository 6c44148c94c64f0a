import {
  ALLOW,
  ApprovalText,
  allow,
  type CursorBinding,
  CursorSealer,
  deny,
  ErrorCode,
  type Tool,
  ToolError,
  toolKit,
} from '@hardened-mcp/core';
import { z } from 'zod';
import type { ExampleClient } from './client.js';
import type { ExampleSettings } from './config.js';

/**
 * The tool kit: tool names get the `example_` prefix, read tools the `example:read` scope and
 * the read client, write tools `example:write` and the write client.
 */
export const kit = toolKit<ExampleClient>('example');

const folderArg = z
  .string()
  .min(1)
  .max(63)
  .describe('A folder id (example_list_folders lists them).');
/** What the listing's policy step authorizes: the cursor binding and where to continue. */
interface ListPosition {
  readonly binding: CursorBinding;
  /** The last note id of the previous page; undefined for the first page. */
  readonly after: string | undefined;
}

const noteIdArg = z
  .string()
  .regex(/^n-\d{4,9}$/, 'note ids look like n-0001')
  .describe('A note id, e.g. n-0001.');

/**
 * Declares every tool of the example connector from configuration alone: no client is in reach
 * here. The core enables them (mode, `tools.allow`, credentials) and runs each call through the
 * pipeline.
 */
export function createExampleTools(settings: ExampleSettings): Tool<ExampleClient>[] {
  const readable = new Set(settings.folders.read);
  const writable = new Set(settings.folders.write);
  // Cursors are sealed (AES-256-GCM) and bound to the tool, the principal and the folder.
  const cursors = new CursorSealer();
  const channels = new Set(settings.channels);
  /** The Cedar `Folder` resource of a call on one folder (classification path: the folder id). */
  const folderResource = (folder: string) => ({
    id: folder,
    attrs: { folder, department: settings.departments[folder] ?? '' },
  });
  const folderType = {
    type: 'Folder',
    attributes: { folder: 'String', department: 'String' },
  } as const;

  const listFolders = kit.read({
    name: 'list_folders',
    title: 'List folders',
    description: 'Lists the folders this server may read, with their note counts.',
    output: 'table',
    input: z.strictObject({}),
    async execute(_input, ctx) {
      // The allowlist applies to results too: folders outside it are never shown.
      const rows = ctx.client.notes
        .listFolders()
        .filter((f) => readable.has(f.folder))
        .map((f) => [f.folder, f.notes]);
      return {
        kind: 'table',
        columns: [
          { name: 'folder', type: 'text' },
          { name: 'notes', type: 'int4' },
        ],
        rows,
        truncated: false,
      };
    },
  });

  const listNotes = kit.read({
    name: 'list_notes',
    title: 'List notes',
    description:
      'Lists the notes of a folder, oldest first, one page at a time: pass nextCursor back as cursor for the next page.',
    output: 'json',
    input: z.strictObject({
      folder: folderArg,
      cursor: z.string().min(1).max(4096).optional().describe('nextCursor of the previous page.'),
      limit: z.int().min(1).max(500).optional().describe('Notes per page (capped by the server).'),
    }),
    resource: { ...folderType, of: (input) => folderResource(input.folder) },
    policy(input, { identity }) {
      if (!readable.has(input.folder))
        return deny(ErrorCode.PolicyDenied, `folder ${input.folder} is not in the allowed folders`);
      const binding = {
        tool: 'example_list_notes',
        principal: identity.principal,
        resource: input.folder,
      };
      if (input.cursor === undefined) return allow<ListPosition>({ binding, after: undefined });
      const opened = cursors.open<string>(input.cursor, binding);
      if (!opened.ok || typeof opened.state !== 'string')
        return deny(
          ErrorCode.InvalidInput,
          opened.ok || opened.reason === 'invalid'
            ? 'the cursor is not a nextCursor of this listing'
            : 'the cursor has expired; list again from the start',
        );
      return allow<ListPosition>({ binding, after: opened.state });
    },
    async execute(input, ctx) {
      const limit = Math.min(input.limit ?? 20, settings.maxPageSize, ctx.limits.maxRows);
      const page = ctx.client.notes.listNotes(input.folder, ctx.authorized.after, limit);
      return {
        kind: 'json',
        data: {
          folder: input.folder,
          notes: page.notes.map((n) => ({
            id: n.id,
            title: n.title,
            author: n.author,
            updatedAt: n.updatedAt,
          })),
          nextCursor:
            page.nextAfter === undefined
              ? null
              : cursors.seal(ctx.authorized.binding, page.nextAfter),
        },
        rowCount: page.notes.length,
        truncated: page.nextAfter !== undefined,
      };
    },
  });

  const getNote = kit.read({
    name: 'get_note',
    title: 'Read a note',
    description:
      'Reads one note: title, author, body and last update. Give its folder when known (a classified folder may require it).',
    output: 'json',
    input: z.strictObject({ id: noteIdArg, folder: folderArg.optional() }),
    // Without a folder the note could be in any readable folder: the call is classified as the
    // highest of them (fail closed), so a principal cleared for less must name the folder.
    resource: {
      ...folderType,
      of: (input) =>
        input.folder !== undefined
          ? folderResource(input.folder)
          : { id: '*', attrs: { folder: '*', department: '' }, classify: [...readable] },
    },
    async execute(input, ctx) {
      const note = ctx.client.notes.getNote(input.id);
      // The folder is only known once the note is fetched: check the result, and answer the same
      // for "absent", "not allowed" and "not in the folder given" so the model cannot probe.
      if (
        !note ||
        !readable.has(note.folder) ||
        (input.folder !== undefined && note.folder !== input.folder)
      )
        throw new ToolError(
          ErrorCode.UpstreamError,
          `note ${input.id} does not exist in an allowed folder`,
        );
      return { kind: 'json', data: { ...note } };
    },
  });

  const createNote = kit.write({
    name: 'create_note',
    title: 'Create a note',
    description: `Creates a note in a writable folder (needs the human's approval; at most ${settings.maxNoteChars} characters).`,
    destructive: false,
    output: 'json',
    input: z.strictObject({
      folder: folderArg,
      title: z.string().min(1).max(200),
      body: z.string().min(1).max(100_000),
    }),
    resource: { ...folderType, of: (input) => folderResource(input.folder) },
    // Refused before the human is asked: an approval prompt only shows a change that would run.
    policy(input) {
      if (!writable.has(input.folder))
        return deny(ErrorCode.PolicyDenied, `folder ${input.folder} is not writable by policy`);
      if (input.body.length > settings.maxNoteChars)
        return deny(
          ErrorCode.LimitExceeded,
          `the body is longer than ${settings.maxNoteChars} characters`,
        );
      return ALLOW;
    },
    describeChange: (input) =>
      new ApprovalText()
        .line('Create a note in folder', input.folder)
        .field('title', input.title)
        .field('body', input.body)
        .toString(),
    async execute(input, ctx) {
      const writer = ctx.client.writer;
      if (!writer) throw new ToolError(ErrorCode.Internal, 'internal error; see the server log');
      const note = writer.createNote({ ...input, author: ctx.identity.principal });
      return { kind: 'json', data: { id: note.id, folder: note.folder, title: note.title } };
    },
  });

  const sendNote = kit.write({
    name: 'send_note',
    title: 'Send a message out',
    description:
      'Posts a message to an outbound channel (like a chat post or an e-mail; needs approval). Refused in a session that has read confidential data.',
    destructive: false,
    egress: true,
    output: 'json',
    input: z.strictObject({
      channel: z.string().min(1).max(63).describe('An outbound channel id.'),
      text: z.string().min(1).max(4000),
    }),
    resource: {
      type: 'Channel',
      attributes: { channel: 'String' },
      of: (input) => ({ id: input.channel, attrs: { channel: input.channel } }),
    },
    policy(input) {
      return channels.has(input.channel)
        ? ALLOW
        : deny(
            ErrorCode.PolicyDenied,
            `channel ${input.channel} is not an allowed outbound channel`,
          );
    },
    describeChange: (input) =>
      new ApprovalText()
        .line('Send a message out to channel', input.channel)
        .field('text', input.text)
        .toString(),
    async execute(input, ctx) {
      const writer = ctx.client.writer;
      if (!writer) throw new ToolError(ErrorCode.Internal, 'internal error; see the server log');
      const sent = writer.send({ ...input, author: ctx.identity.principal });
      return { kind: 'json', data: { channel: sent.channel, sentAt: sent.sentAt } };
    },
  });

  return [listFolders, listNotes, getNote, createNote, sendNote];
}
