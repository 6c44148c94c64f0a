/**
 * The audit file changed under the server (deleted, replaced, truncated), and hostile
 * characters in arguments; all on real files.
 */
import { readdir, readFile, rename, truncate, unlink, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from './audit-log.js';
import { verifyAuditFile } from './hash-chain.js';
import { entry, parse, tempDir } from './test-support/fixtures.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await tmp.cleanup();
});

const changes: Array<[string, (path: string) => Promise<void>]> = [
  ['deleted', (path) => unlink(path)],
  [
    'replaced',
    async (path) => {
      await rename(path, `${path}.old`);
      await writeFile(path, '');
    },
  ],
  ['truncated', (path) => truncate(path, 10)],
];

describe('audit file changed under the server', () => {
  for (const [change, mutate] of changes) {
    it(`${change}, stay_closed: the next record is refused, for good; not healthy`, async () => {
      const path = tmp.file('audit.jsonl');
      const log = await AuditLog.open({ sinks: { file: path }, onError: () => {} });
      await log.record(entry(0));
      await mutate(path);
      await expect(log.record(entry(1))).rejects.toMatchObject({ code: 'file_changed' });
      expect(log.healthy).toBe(false);
      await expect(log.record(entry(2))).rejects.toMatchObject({ code: 'file_changed' });
      expect(log.healthy).toBe(false);
      await log.close();
    });

    it(`${change}, reopen: refused once, then a new file continues the chain`, async () => {
      const path = tmp.file('audit.jsonl');
      const log = await AuditLog.open({
        sinks: { file: path },
        onFileChange: 'reopen',
        onError: () => {},
      });
      const first = await log.record(entry(0));
      await mutate(path);
      await expect(log.record(entry(1))).rejects.toMatchObject({ code: 'file_changed' });
      // The configured action is done (the continuation record is durable): ready again.
      expect(log.healthy).toBe(true);
      const next = await log.record(entry(2));
      expect(log.healthy).toBe(true);
      await log.close();
      const lines = (await readFile(path, 'utf8')).trimEnd().split('\n').map(parse);
      expect(lines.map((r) => r.tool)).toEqual(['audit:chain_continued', 'query']);
      expect(lines[0]).toMatchObject({
        seq: 1,
        prevHash: first.hash,
        arguments: { reason: change },
      });
      expect(next).toMatchObject({ seq: 2, prevHash: lines[0]!.hash });
      expect(await verifyAuditFile(path)).toMatchObject({
        ok: true,
        records: 2,
        continuesFrom: { seq: 0, prevHash: first.hash },
      });
      // Whatever was at the path was kept aside as evidence (unless it was deleted).
      const aside = (await readdir(tmp.dir)).filter((n) => n.includes('.displaced-'));
      expect(aside).toHaveLength(change === 'deleted' ? 0 : 1);
    });
  }

  it('a file that only starts with a continuation record verifies; a forged one does not', async () => {
    const path = tmp.file('audit.jsonl');
    const log = await AuditLog.open({ sinks: { file: path }, onFileChange: 'reopen' });
    await log.record(entry(0));
    await unlink(path);
    await log.record(entry(1)).catch(() => {});
    await log.record(entry(2));
    await log.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    const forged = { ...parse(lines[1]!), tool: 'query' };
    await writeFile(tmp.file('forged.jsonl'), `${JSON.stringify(forged)}\n`);
    expect(await verifyAuditFile(tmp.file('forged.jsonl'))).toMatchObject({ ok: false });
  });
});

describe('hostile characters in arguments', () => {
  it('escapes DEL, C1, bidi, zero-width and line separators; the hash still verifies', async () => {
    const path = tmp.file('audit.jsonl');
    const log = await AuditLog.open({ sinks: { file: path } });
    const nasty =
      'a\u0007b\u001b[31mc\u007fd\u0085e\u009bf\u202eg\u2066h\u200bi\u200dj\ufeffk\u2028l\u2029m\u00adn';
    const rec = await log.record(entry(0, { arguments: { sql: nasty, 'k\u202e': 1 } }));
    await log.close();
    const text = await readFile(path, 'utf8');
    // Nothing but printable ASCII and the final newline in the file.
    expect(text.slice(0, -1)).toMatch(/^[\x20-\x7e]*$/);
    expect(text).toContain('\\u202e');
    expect(text).toContain('\\u0085');
    expect(parse(text.trimEnd()).arguments).toEqual({ sql: nasty, 'k\u202e': 1 });
    expect(parse(text.trimEnd()).hash).toBe(rec.hash);
    expect(await verifyAuditFile(path)).toMatchObject({ ok: true, records: 1 });
  });
});
