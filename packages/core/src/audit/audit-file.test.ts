import { createHash } from 'node:crypto';
import {
  appendFile,
  chmod,
  readFile,
  rename,
  stat,
  symlink,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditFile } from './audit-file.js';
import { AuditLog } from './audit-log.js';
import { GENESIS_HASH } from './audit-record.js';
import { verifyAuditFile } from './hash-chain.js';
import { AuditSinkError } from './sinks.js';
import { entry, line, parse, tempDir } from './test-support/fixtures.js';

describe('AuditFile.open', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    tmp = await tempDir();
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  /** Writes a valid chain of `n` records to `path` through the real logger. */
  async function writeChain(path: string, n: number): Promise<void> {
    const log = await AuditLog.open({ sinks: { file: path } });
    for (let i = 0; i < n; i++) await log.record(entry(i));
    await log.close();
  }

  it('creates the file with mode 0600 and starts a new chain', async () => {
    const path = tmp.file('audit.jsonl');
    const { file, lastHash, nextSeq } = await AuditFile.open(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(lastHash).toBe(GENESIS_HASH);
    expect(nextSeq).toBe(0);
    await file.append(Buffer.from('{"a":1}\n'), true);
    expect(file.size).toBe(8);
    await file.close();
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n');
  });

  it('tightens an existing file with looser permissions to 0600', async () => {
    const path = tmp.file('audit.jsonl');
    await writeFile(path, '');
    await chmod(path, 0o644);
    const { file } = await AuditFile.open(path);
    await file.close();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('continues the chain of an existing file', async () => {
    const path = tmp.file('audit.jsonl');
    await writeChain(path, 3);
    const last = parse((await readFile(path, 'utf8')).trimEnd().split('\n')[2]!);
    const { file, lastHash, nextSeq } = await AuditFile.open(path);
    await file.close();
    expect(lastHash).toBe(last.hash);
    expect(nextSeq).toBe(3);
  });

  it('reads back a last line longer than one read chunk', async () => {
    const path = tmp.file('audit.jsonl');
    const log = await AuditLog.open({ sinks: { file: path } });
    await log.record(entry(0));
    const big = await log.record(entry(1, { arguments: { blob: 'x'.repeat(200_000) } }));
    await log.close();
    const { file, lastHash, nextSeq } = await AuditFile.open(path);
    await file.close();
    expect({ lastHash, nextSeq }).toEqual({ lastHash: big.hash, nextSeq: 2 });
  });

  it('rejects appends after close', async () => {
    const { file } = await AuditFile.open(tmp.file('audit.jsonl'));
    await file.close();
    await file.close(); // idempotent
    await expect(file.append(Buffer.from('{}\n'), true)).rejects.toMatchObject({
      code: 'sink_closed',
    });
  });

  it('reports a file deleted, replaced, truncated or extended under it', async () => {
    const path = tmp.file('audit.jsonl');
    const { file } = await AuditFile.open(path);
    await file.append(Buffer.from('{"a":1}\n'), true);
    expect(await file.change()).toBeUndefined();
    await appendFile(path, 'x');
    expect(await file.change()).toBe('extended');
    await truncate(path, 3);
    expect(await file.change()).toBe('truncated');
    await rename(path, tmp.file('moved'));
    expect(await file.change()).toBe('deleted');
    await writeFile(path, '{"a":1}\n');
    expect(await file.change()).toBe('replaced');
    await unlink(tmp.file('moved'));
    expect(await file.change()).toBe('deleted');
    await file.close();
  });

  it('refuses a symbolic link', async () => {
    const target = tmp.file('elsewhere.jsonl');
    const path = tmp.file('audit.jsonl');
    await writeFile(target, '');
    await symlink(target, path);
    await expect(AuditFile.open(path)).rejects.toMatchObject({ code: 'symlink' });
  });

  it('refuses something that is not a regular file', async () => {
    await expect(AuditFile.open('/dev/null')).rejects.toMatchObject({ code: 'not_regular_file' });
  });

  describe('refuses to continue a damaged file, leaving it untouched', () => {
    async function expectRefusal(mutate: (text: string) => string, code: string): Promise<void> {
      const path = tmp.file('audit.jsonl');
      await writeChain(path, 3);
      const damaged = mutate(await readFile(path, 'utf8'));
      await writeFile(path, damaged);
      const refusal = AuditFile.open(path);
      await expect(refusal).rejects.toBeInstanceOf(AuditSinkError);
      await expect(refusal).rejects.toMatchObject({ code });
      expect(await readFile(path, 'utf8')).toBe(damaged);
      await expect(AuditLog.open({ sinks: { file: path } })).rejects.toMatchObject({ code });
    }

    it('last line not JSON', async () => {
      await expectRefusal((t) => `${t}garbage\n`, 'unparseable_tail');
    });

    it('last line JSON but not an audit record', async () => {
      await expectRefusal((t) => `${t}{"v":1}\n`, 'unparseable_tail');
    });

    it('trailing empty line', async () => {
      await expectRefusal((t) => `${t}\n`, 'unparseable_tail');
    });

    it('edited last record', async () => {
      await expectRefusal((t) => {
        const lines = t.trimEnd().split('\n');
        lines[2] = line({ ...parse(lines[2]!), principal: 'forger' });
        return `${lines.join('\n')}\n`;
      }, 'tail_hash_mismatch');
    });
  });

  it('cuts a torn last line (a crash mid-write) and records the truncation as an audit event', async () => {
    const path = tmp.file('audit.jsonl');
    await writeChain(path, 3);
    const whole = await readFile(path, 'utf8');
    const torn = whole.slice(0, -30);
    await writeFile(path, torn);
    const cut = Buffer.from(torn.slice(torn.lastIndexOf('\n') + 1), 'utf8');
    const log = await AuditLog.open({ sinks: { file: path } });
    await log.record(entry(9));
    await log.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines.map((l) => parse(l).seq)).toEqual([0, 1, 2, 3]);
    const event = parse(lines[2]!);
    expect(event).toMatchObject({
      tool: 'audit:tail_truncated',
      principal: 'system',
      transport: 'internal',
      arguments: {
        reason: 'torn_tail',
        bytes: cut.length,
        sha256: createHash('sha256').update(cut).digest('hex'),
      },
    });
    expect(parse(lines[3]!).principal).toBe('user-9');
    expect(await verifyAuditFile(path)).toMatchObject({ ok: true, records: 4 });
  });

  it('cuts a file that is one torn line back to empty and starts the chain there', async () => {
    const path = tmp.file('audit.jsonl');
    await writeFile(path, '{"v":1,"ti');
    const log = await AuditLog.open({ sinks: { file: path } });
    await log.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines.map((l) => parse(l).tool)).toEqual(['audit:tail_truncated']);
    expect(await verifyAuditFile(path)).toMatchObject({ ok: true, records: 1 });
  });

  it('works with the logger end to end: whole file verifies after reopening', async () => {
    const path = tmp.file('audit.jsonl');
    await writeChain(path, 2);
    await writeChain(path, 3);
    expect(await verifyAuditFile(path)).toMatchObject({ ok: true, records: 5 });
    const seqs = (await readFile(path, 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => parse(l).seq);
    expect(seqs).toEqual([0, 1, 2, 3, 4]);
  });
});
