import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  charsetOf,
  classifyContentType,
  decodeText,
  readBounded,
  resolveRange,
  utf8Boundary,
} from './body.js';

/** A stream of `total` bytes in `chunk`-byte pieces that counts what was pulled from it. */
function countingStream(total: number, chunk: number) {
  let produced = 0;
  const stream = new Readable({
    highWaterMark: chunk,
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk, total - produced);
      produced += n;
      this.push(Buffer.alloc(n, 0x61));
    },
  });
  return { stream, produced: () => produced };
}

describe('readBounded', () => {
  it('keeps at most the limit, says more exist, and stops reading early', async () => {
    const s = countingStream(10 * 1024 * 1024, 16 * 1024);
    const r = await readBounded(s.stream, 1000);
    expect(r.bytes.byteLength).toBe(1000);
    expect(r.more).toBe(true);
    expect(s.stream.destroyed).toBe(true);
    // far less than the 10 MiB object was ever produced
    expect(s.produced()).toBeLessThan(200 * 1024);
  });

  it('returns everything when the stream fits', async () => {
    const r = await readBounded(Readable.from([Buffer.from('abc'), Buffer.from('def')]), 6);
    expect(r).toEqual({ bytes: Buffer.from('abcdef'), more: false });
  });

  it('limit 0 only proves whether the stream is empty', async () => {
    expect((await readBounded(Readable.from([Buffer.from('x')]), 0)).more).toBe(true);
    expect((await readBounded(Readable.from([]), 0)).more).toBe(false);
  });
});

describe('classifyContentType', () => {
  it.each([
    ['text/plain', 'text'],
    ['text/csv; charset=utf-8', 'text'],
    ['application/json', 'text'],
    ['application/ld+json', 'text'],
    ['application/vnd.api+json', 'text'],
    ['application/xml', 'text'],
    ['image/svg+xml', 'text'],
    ['application/x-yaml', 'text'],
    ['image/png', 'binary'],
    ['application/pdf', 'binary'],
    ['application/zip', 'binary'],
    ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'binary'],
    ['application/octet-stream', 'unknown'],
    ['binary/octet-stream', 'unknown'],
    [undefined, 'unknown'],
    ['', 'unknown'],
  ])('%s → %s', (ct, cls) => {
    expect(classifyContentType(ct)).toBe(cls);
  });

  it('reads the charset parameter', () => {
    expect(charsetOf('text/plain; charset=ISO-8859-1')).toBe('iso-8859-1');
    expect(charsetOf('text/plain')).toBeUndefined();
  });
});

describe('decodeText', () => {
  it('decodes valid UTF-8, refuses invalid UTF-8 and NUL bytes', () => {
    expect(decodeText(Buffer.from('héllo'), { truncated: false })).toEqual({
      text: 'héllo',
      bytes: 6,
    });
    expect(decodeText(Buffer.from([0xff, 0xfe, 0x41]), { truncated: false })).toBeUndefined();
    expect(decodeText(Buffer.from('a\u0000b'), { truncated: false })).toBeUndefined();
  });

  it('drops an incomplete sequence at the cut when truncated, fails on it otherwise', () => {
    const bytes = Buffer.from('ab日'); // 2 + 3 bytes
    const cut = bytes.subarray(0, 4);
    expect(decodeText(cut, { truncated: true })).toEqual({ text: 'ab', bytes: 2 });
    expect(decodeText(cut, { truncated: false })).toBeUndefined();
  });

  it('honours a declared non-UTF-8 charset', () => {
    expect(
      decodeText(Buffer.from([0x63, 0x61, 0x66, 0xe9]), {
        truncated: false,
        charset: 'iso-8859-1',
      }),
    ).toEqual({ text: 'café', bytes: 4 });
  });
});

describe('utf8Boundary', () => {
  it('never ends inside a multi-byte sequence', () => {
    const b = Buffer.from('a😀b'); // 1 + 4 + 1
    expect(utf8Boundary(b.subarray(0, 1))).toBe(1);
    expect(utf8Boundary(b.subarray(0, 2))).toBe(1);
    expect(utf8Boundary(b.subarray(0, 4))).toBe(1);
    expect(utf8Boundary(b.subarray(0, 5))).toBe(5);
    expect(utf8Boundary(b)).toBe(6);
  });
});

describe('resolveRange', () => {
  it.each([
    ['bytes=0-9', 100, { start: 0, end: 9 }],
    ['bytes=90-', 100, { start: 90, end: 99 }],
    ['bytes=-10', 100, { start: 90, end: 99 }],
    ['bytes=-1000', 100, { start: 0, end: 99 }],
    ['bytes=50-5000', 100, { start: 50, end: 99 }],
  ])('%s of %d bytes', (spec, size, want) => {
    expect(resolveRange(spec, size)).toEqual(want);
  });
  it.each([
    ['bytes=100-', 100],
    ['bytes=9-3', 100],
    ['bytes=-0', 100],
    ['bytes=-', 100],
    ['bytes=0-1', 0],
    ['bytes=0-1,5-6', 100],
    ['items=0-1', 100],
  ])('%s of %d bytes is not satisfiable', (spec, size) => {
    expect(resolveRange(spec, size)).toBeUndefined();
  });
});
