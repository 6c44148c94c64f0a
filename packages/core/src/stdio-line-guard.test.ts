import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { depthOf, guardStdioLines, type LineRefusal } from './stdio-line-guard.js';

/** Feeds `chunks` through the guard; returns what passed and what was refused. */
async function run(
  chunks: (string | Buffer)[],
  options: { maxLineBytes?: number; maxDepth?: number } = {},
): Promise<{ passed: string; refused: LineRefusal[] }> {
  const input = new PassThrough();
  const refused: LineRefusal[] = [];
  const out = guardStdioLines(input, (r) => refused.push(r), options);
  let passed = '';
  out.on('data', (d: Buffer) => {
    passed += d.toString('utf8');
  });
  const ended = new Promise<void>((r) => out.once('end', () => r()));
  for (const c of chunks) input.write(c);
  input.end();
  await ended;
  return { passed, refused };
}

describe('guardStdioLines', () => {
  it('passes ordinary lines unchanged, across chunk boundaries', async () => {
    const a = '{"jsonrpc":"2.0","id":1,"method":"ping"}';
    const b = '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"x":["[{"]}}';
    const text = `${a}\n${b}\n`;
    const { passed, refused } = await run([text.slice(0, 7), text.slice(7, 50), text.slice(50)]);
    expect(passed).toBe(text);
    expect(refused).toEqual([]);
  });

  it.each([
    ['one chunk', (line: string) => [line]],
    ['many small chunks', (line: string) => line.match(/.{1,1000}/gs) ?? []],
  ])('refuses an over-long line without buffering it (%s), then keeps going', async (_, split) => {
    const long = `{"jsonrpc":"2.0","id":7,"method":"x","params":{"s":"${'y'.repeat(10_000)}"}}\n`;
    const next = '{"jsonrpc":"2.0","id":8,"method":"ping"}\n';
    const { passed, refused } = await run([...split(long), next], { maxLineBytes: 5_000 });
    expect(passed).toBe(next);
    expect(refused).toEqual([
      {
        jsonrpc: '2.0',
        id: null,
        error: { code: -32600, message: 'Invalid Request: message larger than 5000 bytes' },
      },
    ]);
  });

  it.each([
    ['arrays', `{"jsonrpc":"2.0","id":3,"params":${'['.repeat(65)}${']'.repeat(65)}}`, 3],
    ['objects', `{"jsonrpc":"2.0","id":"a","params":${'{"k":'.repeat(65)}1${'}'.repeat(65)}}`, 'a'],
    ['mixed, unparsable', `{"id":4,"p":${'[{"k":'.repeat(40)}`, null],
  ])('refuses JSON nested too deep (%s) with the id when readable', async (_, line, id) => {
    const { passed, refused } = await run([`${line}\n`]);
    expect(passed).toBe('');
    expect(refused[0]?.id).toBe(id);
    expect(refused[0]?.error.code).toBe(-32600);
  });

  it('passes the accepted lines of one chunk in order around a refused one', () => {
    const input = new PassThrough();
    const events: string[] = [];
    const out = guardStdioLines(input, (r) => events.push(`refused ${r.id}`), { maxDepth: 2 });
    out.on('data', (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n').filter(Boolean))
        events.push(`passed ${JSON.parse(line).id}`);
    });
    const line = (id: number, params: string) => `{"jsonrpc":"2.0","id":${id},"params":${params}}`;
    input.write(
      `${line(1, '{}')}\n${line(2, '[]')}\n${line(3, '[[[]]]')}\n${line(4, '{}')}\n{"jsonrpc":"2.0","id":5,"params":[`,
    );
    input.write(`]}\n${line(6, '[[[]]]')}\n${line(7, '{}')}\n`);
    expect(events).toEqual([
      'passed 1',
      'passed 2',
      'refused 3',
      'passed 4',
      'passed 5',
      'refused 6',
      'passed 7',
    ]);
  });

  it('counts no brackets inside strings, escaped quotes included', () => {
    expect(depthOf(Buffer.from('{"a":"[[[[\\"[[[[","b":[1,[2]]}'))).toBe(3);
  });
});
