import { chmod, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditLog } from './audit-log.js';
import { GENESIS_HASH } from './audit-record.js';
import { verifyAuditFile } from './hash-chain.js';
import { AuditSinkError, createStderrSink, openFileSink } from './sinks.js';
import { captureStream, entry, line, parse, tempDir } from './test-support/fixtures.js';

describe('createStderrSink', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('writes each line plus a newline to the given stream', async () => {
    const { stream, text } = captureStream();
    const sink = createStderrSink(stream);
    await sink.write('{"a":1}');
    await sink.write('{"b":2}');
    await sink.close?.();
    expect(text()).toBe('{"a":1}\n{"b":2}\n');
    expect(stream.writable).toBe(true); // close() leaves the stream open
  });

  it('defaults to process.stderr, never stdout', async () => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(((
      _chunk: unknown,
      cb?: unknown,
    ) => {
      if (typeof cb === 'function') cb();
      return true;
    }) as typeof process.stderr.write);
    const out = vi.spyOn(process.stdout, 'write');
    await createStderrSink().write('{"x":1}');
    expect(err).toHaveBeenCalledWith('{"x":1}\n', expect.any(Function));
    expect(out).not.toHaveBeenCalled();
  });

  it('refuses lines containing a line terminator', () => {
    const { stream, text } = captureStream();
    expect(() => createStderrSink(stream).write('a\nb')).toThrow(AuditSinkError);
    expect(text()).toBe('');
  });

  it('rejects when the stream is no longer writable', async () => {
    const { stream } = captureStream();
    stream.end();
    await expect(createStderrSink(stream).write('x')).rejects.toMatchObject({
      code: 'stream_not_writable',
    });
  });
});

describe('openFileSink', () => {
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
    for (let i = 0; i < n; i++) log.record(entry(i));
    await log.close();
  }

  it('creates the file with mode 0600 and starts a new chain', async () => {
    const path = tmp.file('audit.jsonl');
    const { sink, lastHash, nextSeq } = await openFileSink(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(lastHash).toBe(GENESIS_HASH);
    expect(nextSeq).toBe(0);
    await sink.write('{"a":1}');
    await sink.close?.();
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n');
  });

  it('tightens an existing file with looser permissions to 0600', async () => {
    const path = tmp.file('audit.jsonl');
    await writeFile(path, '');
    await chmod(path, 0o644);
    const { sink } = await openFileSink(path);
    await sink.close?.();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('continues the chain of an existing file', async () => {
    const path = tmp.file('audit.jsonl');
    await writeChain(path, 3);
    const last = parse((await readFile(path, 'utf8')).trimEnd().split('\n')[2]!);
    const { sink, lastHash, nextSeq } = await openFileSink(path);
    await sink.close?.();
    expect(lastHash).toBe(last.hash);
    expect(nextSeq).toBe(3);
  });

  it('reads back a last line longer than one read chunk', async () => {
    const path = tmp.file('audit.jsonl');
    const log = await AuditLog.open({ sinks: { file: path } });
    log.record(entry(0));
    const big = log.record(entry(1, { arguments: { blob: 'x'.repeat(200_000) } }));
    await log.close();
    const { sink, lastHash, nextSeq } = await openFileSink(path);
    await sink.close?.();
    expect({ lastHash, nextSeq }).toEqual({ lastHash: big.hash, nextSeq: 2 });
  });

  it('appends one line per write, in call order, and never interleaves', async () => {
    const path = tmp.file('audit.jsonl');
    const { sink } = await openFileSink(path);
    const lines = Array.from({ length: 200 }, (_, i) => `{"i":${i},"pad":"${'p'.repeat(i * 50)}"}`);
    await Promise.all(lines.map((l) => sink.write(l)));
    await sink.close?.();
    expect(await readFile(path, 'utf8')).toBe(`${lines.join('\n')}\n`);
  });

  it('rejects writes after close', async () => {
    const { sink } = await openFileSink(tmp.file('audit.jsonl'));
    await sink.close?.();
    await sink.close?.(); // idempotent
    await expect(sink.write('{}')).rejects.toMatchObject({ code: 'sink_closed' });
  });

  it('refuses a symbolic link', async () => {
    const target = tmp.file('elsewhere.jsonl');
    const path = tmp.file('audit.jsonl');
    await writeFile(target, '');
    await symlink(target, path);
    await expect(openFileSink(path)).rejects.toMatchObject({ code: 'symlink' });
  });

  it('refuses something that is not a regular file', async () => {
    await expect(openFileSink('/dev/null')).rejects.toMatchObject({ code: 'not_regular_file' });
  });

  describe('refuses to continue a damaged file, leaving it untouched', () => {
    async function expectRefusal(mutate: (text: string) => string, code: string): Promise<void> {
      const path = tmp.file('audit.jsonl');
      await writeChain(path, 3);
      const damaged = mutate(await readFile(path, 'utf8'));
      await writeFile(path, damaged);
      const refusal = openFileSink(path);
      await expect(refusal).rejects.toBeInstanceOf(AuditSinkError);
      await expect(refusal).rejects.toMatchObject({ code });
      expect(await readFile(path, 'utf8')).toBe(damaged);
      await expect(AuditLog.open({ sinks: { file: path } })).rejects.toMatchObject({ code });
    }

    it('torn last line (no final newline)', async () => {
      await expectRefusal((t) => t.slice(0, -30), 'torn_tail');
    });

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
