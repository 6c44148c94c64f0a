import { appendFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditSpool, AuditSpoolFullError } from './spool.js';
import { tempDir } from './test-support/fixtures.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await tmp.cleanup();
});

const lines = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => `{"time":"2026-01-01T00:00:00.000Z","seq":${from + i}}`);

describe('AuditSpool', () => {
  it('reads in order across segments, acks, and deletes delivered segments', async () => {
    const dir = tmp.file('spool');
    const spool = await AuditSpool.open(dir, { segmentBytes: 200 });
    for (let i = 0; i < 10; i++) await spool.append(lines(i * 3, 3));
    expect((await readdir(dir)).filter((n) => n.startsWith('seg-')).length).toBeGreaterThan(3);
    const got: string[] = [];
    for (;;) {
      const batch = await spool.read(4);
      if (batch.lines.length === 0) break;
      got.push(...batch.lines);
      await spool.ack(batch.next);
    }
    expect(got).toEqual(lines(0, 30));
    expect(spool.pendingBytes).toBe(0);
    // Only the segment still appended to is left.
    expect((await readdir(dir)).filter((n) => n.startsWith('seg-'))).toHaveLength(1);
    await spool.close();
  });

  it('resumes after a restart from the acked position; a torn last line is cut', async () => {
    const dir = tmp.file('spool');
    let spool = await AuditSpool.open(dir);
    await spool.append(lines(0, 5));
    const first = await spool.read(2);
    await spool.ack(first.next);
    await spool.close();
    const seg = (await readdir(dir)).find((n) => n.startsWith('seg-')) as string;
    await appendFile(join(dir, seg), '{"time":"2026-01-01T00:00:00.000Z","se');
    spool = await AuditSpool.open(dir);
    expect((await readFile(join(dir, seg), 'utf8')).endsWith('\n')).toBe(true);
    const rest = await spool.read(100);
    expect(rest.lines).toEqual(lines(2, 3));
    await spool.close();
  });

  it('is bounded: an append that does not fit is refused whole', async () => {
    const spool = await AuditSpool.open(tmp.file('spool'), { maxBytes: 300 });
    await spool.append(lines(0, 5));
    const before = spool.pendingBytes;
    await expect(spool.append(lines(5, 5))).rejects.toBeInstanceOf(AuditSpoolFullError);
    expect(spool.pendingBytes).toBe(before);
    await spool.close();
  });
});
