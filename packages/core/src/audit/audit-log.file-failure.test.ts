/**
 * File failures, simulated on the real file handle: a write that lands part of its bytes and
 * then fails with ENOSPC (a full disk), and a failing fdatasync (EIO).
 */
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditLog, type AuditSinkFailure } from './audit-log.js';
import { verifyAuditFile } from './hash-chain.js';
import { captureStream, entry, parse, tempDir } from './test-support/fixtures.js';

const io = vi.hoisted(() => ({ fullDisk: false, failSync: false, syncs: 0 }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    open: async (...args: Parameters<typeof actual.open>) => {
      const handle = await actual.open(...args);
      const write = handle.write.bind(handle) as (
        buf: Buffer,
        offset: number,
        length: number,
        position: null,
      ) => Promise<{ bytesWritten: number }>;
      const datasync = handle.datasync.bind(handle);
      Object.defineProperty(handle, 'write', {
        value: async (buf: Buffer, offset: number, length: number, position: null) => {
          if (!io.fullDisk) return write(buf, offset, length, position);
          // A full disk: part of the line lands, then ENOSPC.
          if (length > 1) return write(buf, offset, Math.floor(length / 2), position);
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
            code: 'ENOSPC',
          });
        },
      });
      Object.defineProperty(handle, 'datasync', {
        value: () => {
          io.syncs += 1;
          return io.failSync
            ? Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))
            : datasync();
        },
      });
      return handle;
    },
  };
});

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  io.fullDisk = false;
  io.failSync = false;
  io.syncs = 0;
  tmp = await tempDir();
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('file failure (injected ENOSPC / EIO on the real file)', () => {
  it('a partial write is cut back, the record rejected, and the log resumes by itself', async () => {
    const path = tmp.file('audit.jsonl');
    const failures: AuditSinkFailure[] = [];
    const { stream, text } = captureStream();
    const log = await AuditLog.open({
      sinks: { file: path, stderr: true },
      stderrStream: stream,
      onError: (_error, failure) => failures.push(failure),
    });
    await log.record(entry(0));
    const sizeBefore = (await readFile(path)).length;
    io.fullDisk = true;
    await expect(log.record(entry(1))).rejects.toMatchObject({
      code: 'unavailable',
      message: 'audit record could not be made durable: ENOSPC',
    });
    expect(log.healthy).toBe(false);
    // No torn line: the file is exactly as before the failed append.
    expect((await readFile(path)).length).toBe(sizeBefore);
    expect(failures).toEqual([{ sink: 'file', operation: 'write', seq: 1 }]);
    io.fullDisk = false;
    // The chain did not advance: the next record takes seq 1 and the log is healthy again.
    await expect(log.record(entry(2))).resolves.toMatchObject({ seq: 1 });
    expect(log.healthy).toBe(true);
    await log.close();

    const fileLines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(fileLines.map((l) => parse(l).principal)).toEqual(['user-0', 'user-2']);
    expect(await verifyAuditFile(path)).toMatchObject({ ok: true, records: 2 });
    // stderr only ever saw durable records.
    expect(text().trimEnd().split('\n')).toEqual(fileLines);
  });

  it('a failed fdatasync also cuts back and rejects every record of the batch', async () => {
    const path = tmp.file('audit.jsonl');
    const log = await AuditLog.open({ sinks: { file: path }, onError: () => {} });
    await log.record(entry(0));
    io.failSync = true;
    const results = await Promise.allSettled([1, 2, 3].map((i) => log.record(entry(i))));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    io.failSync = false;
    await log.record(entry(4));
    await log.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines.map((l) => parse(l).principal)).toEqual(['user-0', 'user-4']);
    expect(await verifyAuditFile(path)).toMatchObject({ ok: true, records: 2 });
  });
});

describe('durability modes (fdatasync calls counted on the real file)', () => {
  it('fsync: one fdatasync per record; group: concurrent records share them', async () => {
    const counts: Record<string, number> = {};
    for (const durability of ['fsync', 'group'] as const) {
      const path = tmp.file(`${durability}.jsonl`);
      const log = await AuditLog.open({ sinks: { file: path }, durability });
      io.syncs = 0;
      const records = await Promise.all(Array.from({ length: 50 }, (_, i) => log.record(entry(i))));
      counts[durability] = io.syncs;
      expect(records.map((r) => r.seq)).toEqual([...Array(50).keys()]);
      await log.close();
      expect(await verifyAuditFile(path)).toMatchObject({ ok: true, records: 50 });
    }
    expect(counts.fsync).toBe(50);
    // The first record is synced alone; the 49 that queued meanwhile share the next sync.
    expect(counts.group).toBeLessThanOrEqual(2);
  });
});
