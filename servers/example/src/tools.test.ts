import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ApprovalChannel,
  assemble,
  type CallResponse,
  defineConfigSchema,
  type Identity,
  NO_APPROVAL_CHANNEL,
  parseConfig,
} from '@hardened-mcp/core';
import { afterEach, describe, expect, it } from 'vitest';
import { exampleSectionSchema } from './config.js';
import { exampleConnector } from './connector.js';

const ENV = { EXAMPLE_READ_TOKEN: 'read-token-0001', EXAMPLE_WRITE_TOKEN: 'write-token-0001' };
const closers: (() => Promise<void>)[] = [];
/** A fresh audit file per server (every call is audited; the records are not under test here). */
const auditFile = () => join(mkdtempSync(join(tmpdir(), 'hmcp-example-')), 'audit.jsonl');
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** The connector assembled in-process, as the bin does it, with audit records kept off stderr. */
async function server(raw: Record<string, unknown> = {}) {
  const config = parseConfig(defineConfigSchema('example', exampleSectionSchema), {
    audit: { stderr: false, file: auditFile() },
    log: { level: 'silent' },
    ...raw,
  });
  const s = await assemble(exampleConnector, config as never, { env: ENV });
  closers.push(() => s.close());
  const call = (
    name: string,
    args: unknown,
    who: Partial<Identity> = {},
    approval: ApprovalChannel = NO_APPROVAL_CHANNEL,
  ) =>
    s.pipeline.callTool({
      name,
      arguments: args,
      identity: { principal: 'ana', roles: ['writer'], transport: 'stdio', client: {}, ...who },
      approval,
      signal: new AbortController().signal,
    });
  return { s, call };
}

function result(r: CallResponse) {
  if (r.kind !== 'result') throw new Error('unknown tool');
  return r.result;
}
const codeOf = (r: CallResponse) =>
  (result(r)._meta?.['hardened-mcp/error'] as { code?: string } | undefined)?.code;
const dataOf = <T>(r: CallResponse) => result(r).structuredContent as T;

describe('example tools', () => {
  it('lists only allowlisted folders, and refuses the others', async () => {
    const { call } = await server();
    const folders = dataOf<{ rows: unknown[][] }>(await call('example_list_folders', {}));
    expect(folders.rows.map((r) => r[0])).toEqual(['general', 'support']);
    expect(codeOf(await call('example_list_notes', { folder: 'finance' }))).toBe('policy_denied');
    // The folder of a note is checked on the result: a finance note reads as absent.
    const hidden = await call('example_get_note', { id: 'n-0005' });
    expect(codeOf(hidden)).toBe('upstream_error');
    expect(JSON.stringify(result(hidden))).not.toContain('budget');
  });

  it('pages with sealed cursors bound to the folder and the principal', async () => {
    const { call } = await server();
    const first = dataOf<{ notes: { id: string }[]; nextCursor: string }>(
      await call('example_list_notes', { folder: 'general', limit: 5 }),
    );
    expect(first.notes).toHaveLength(5);
    expect(Buffer.from(first.nextCursor, 'base64url').toString('latin1')).not.toContain('n-00');
    const second = dataOf<{ notes: { id: string }[] }>(
      await call('example_list_notes', { folder: 'general', limit: 5, cursor: first.nextCursor }),
    );
    expect((second.notes[0]?.id ?? '') > (first.notes.at(-1)?.id ?? '~')).toBe(true);
    expect(
      codeOf(await call('example_list_notes', { folder: 'support', cursor: first.nextCursor })),
    ).toBe('invalid_input');
    expect(
      codeOf(
        await call(
          'example_list_notes',
          { folder: 'general', cursor: first.nextCursor },
          { principal: 'bob' },
        ),
      ),
    ).toBe('invalid_input');
  });

  it('refuses a write outside the write allowlist before asking the human, and writes what was approved', async () => {
    const { call } = await server({ mode: 'read-write' });
    const asked: string[] = [];
    const approve: ApprovalChannel = {
      supported: true,
      async request(message) {
        asked.push(message);
        return 'approved';
      },
    };
    expect(
      codeOf(
        await call(
          'example_create_note',
          { folder: 'general', title: 't', body: 'b' },
          {},
          approve,
        ),
      ),
    ).toBe('policy_denied');
    expect(asked).toHaveLength(0);
    const created = dataOf<{ id: string }>(
      await call(
        'example_create_note',
        { folder: 'support', title: 'Line\u2028break', body: 'ok' },
        {},
        approve,
      ),
    );
    expect(asked).toHaveLength(1);
    expect(asked[0]).not.toContain('\u2028');
    const note = dataOf<{ author: string; title: string }>(
      await call('example_get_note', { id: created.id }),
    );
    expect(note).toMatchObject({ author: 'ana', title: 'Line\u2028break' });
  });

  it('has no write tools without the write credential, even in read-write mode', async () => {
    const config = parseConfig(defineConfigSchema('example', exampleSectionSchema), {
      mode: 'read-write',
      audit: { stderr: false, file: auditFile() },
      log: { level: 'silent' },
    });
    const s = await assemble(exampleConnector, config as never, {
      env: { EXAMPLE_READ_TOKEN: ENV.EXAMPLE_READ_TOKEN },
    });
    closers.push(() => s.close());
    expect(s.pipeline.enabledTools).not.toContain('example_create_note');
  });

  it('refuses to start when the write allowlist is not inside the read allowlist', () => {
    expect(() =>
      parseConfig(defineConfigSchema('example', exampleSectionSchema), {
        example: { folders: { read: ['general'], write: ['finance'] } },
      }),
    ).toThrow(/every folders.write entry must also be in folders.read/);
  });
});
