import { afterEach, describe, expect, it, vi } from 'vitest';
import { AuditSinkError, createStderrSink } from './sinks.js';
import { captureStream } from './test-support/fixtures.js';

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

  it('writes a batch as one chunk of newline-terminated lines, refusing it whole for one bad line', async () => {
    const { stream, text } = captureStream();
    const sink = createStderrSink(stream);
    const write = vi.spyOn(stream, 'write');
    await sink.writeBatch?.(['{"a":1}', '{"b":2}']);
    expect(write).toHaveBeenCalledTimes(1);
    expect(text()).toBe('{"a":1}\n{"b":2}\n');
    expect(() => sink.writeBatch?.(['{"c":3}', 'x\ry'])).toThrow(AuditSinkError);
    expect(text()).toBe('{"a":1}\n{"b":2}\n');
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
