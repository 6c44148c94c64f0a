/**
 * File sink failures, simulated by making the real file handle's `write` fail (EIO) on demand.
 */
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditLog, type AuditSinkFailure } from './audit-log.js';
import { verifyAuditFile } from './hash-chain.js';
import { captureStream, entry, parse, tempDir } from './test-support/fixtures.js';

const io = vi.hoisted(() => ({ failWrites: false }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    open: async (...args: Parameters<typeof actual.open>) => {
      const handle = await actual.open(...args);
      const write = handle.write.bind(handle) as (...a: unknown[]) => Promise<unknown>;
      Object.defineProperty(handle, 'write', {
        value: (...a: unknown[]) =>
          io.failWrites
            ? Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }))
            : write(...a),
      });
      return handle;
    },
  };
});

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  io.failWrites = false;
  tmp = await tempDir();
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('file sink failure', () => {
  it('is reported through onError; later writes are refused; stderr keeps the records', async () => {
    const path = tmp.file('audit.jsonl');
    const failures: Array<{ error: unknown; failure: AuditSinkFailure }> = [];
    const { stream, text } = captureStream();
    const log = await AuditLog.open({
      sinks: { file: path, stderr: true },
      stderrStream: stream,
      onError: (error, failure) => failures.push({ error, failure }),
    });
    log.record(entry(0));
    await log.flush();
    io.failWrites = true;
    const r1 = log.record(entry(1));
    await log.flush();
    io.failWrites = false;
    const r2 = log.record(entry(2));
    await log.close();

    const writes = failures.filter((f) => f.failure.operation === 'write');
    expect(writes.map((f) => f.failure)).toEqual([
      { sink: 'file', operation: 'write', seq: 1, auditId: r1.auditId },
      { sink: 'file', operation: 'write', seq: 2, auditId: r2.auditId },
    ]);
    expect(writes[0]!.error).toMatchObject({ code: 'EIO' });
    // After a failure the file is never extended (it might end in a torn line).
    expect(writes[1]!.error).toMatchObject({ code: 'sink_failed' });
    expect(log.healthy).toBe(false);

    const fileLines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(fileLines.map((l) => parse(l).seq)).toEqual([0]);
    expect(await verifyAuditFile(path)).toMatchObject({ ok: true, records: 1 });
    expect(
      text()
        .trimEnd()
        .split('\n')
        .map((l) => parse(l).seq),
    ).toEqual([0, 1, 2]);
  });

  it('with failClosed, the next record() throws so the caller withholds the result', async () => {
    const path = tmp.file('audit.jsonl');
    const onError = vi.fn();
    const log = await AuditLog.open({ sinks: { file: path }, onError, failClosed: true });
    io.failWrites = true;
    log.record(entry(0));
    await log.flush();
    expect(onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'EIO' }),
      expect.objectContaining({ sink: 'file', operation: 'write', seq: 0 }),
    );
    expect(() => log.record(entry(1))).toThrow(expect.objectContaining({ code: 'unavailable' }));
    await log.close();
  });
});
