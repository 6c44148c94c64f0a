import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { createRedactor } from './redaction/index.js';
import { reloadAll } from './reload.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: createLogger('info', createRedactor(), stream) };
}

describe('reloadAll', () => {
  it('reloads each in order; a failure is logged with its reason and does not stop the rest', async () => {
    const { lines, logger } = capture();
    const order: string[] = [];
    const failed = await reloadAll(
      [
        { name: 'first', reload: async () => void order.push('first') },
        {
          name: 'broken',
          reload: async () => {
            order.push('broken');
            throw new Error('Failed to parse CRL');
          },
        },
        { name: 'last', reload: async () => void order.push('last') },
      ],
      logger,
    );
    expect(order).toEqual(['first', 'broken', 'last']);
    expect(failed).toEqual(['broken']);
    expect(lines.map((l) => l.msg)).toEqual([
      'reloaded first',
      'reload of broken failed: keeping the previous one',
      'reloaded last',
    ]);
    expect(lines[1]).toMatchObject({ reload: 'broken', reason: 'Failed to parse CRL' });
    expect(JSON.stringify(lines)).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('does nothing for an empty list', async () => {
    const { lines, logger } = capture();
    expect(await reloadAll([], logger)).toEqual([]);
    expect(lines).toEqual([]);
  });
});
