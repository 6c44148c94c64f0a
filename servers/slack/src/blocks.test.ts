import { describe, expect, it } from 'vitest';
import { type Block, blockSchema, escapeBlocks, refuseBlocks, renderBlocks } from './blocks.js';

const parse = (b: unknown): Block => blockSchema.parse(b);

describe('blocks', () => {
  it('accepts the non-interactive subset and refuses interactive blocks and unknown keys', () => {
    expect(() => parse({ type: 'section', text: { type: 'mrkdwn', text: 'x' } })).not.toThrow();
    expect(() => parse({ type: 'actions', elements: [] })).toThrow();
    expect(() =>
      parse({ type: 'section', text: { type: 'mrkdwn', text: 'x' }, accessory: {} }),
    ).toThrow();
    expect(() =>
      parse({ type: 'image', image_url: 'https://x.example/a.png', alt_text: 'a' }),
    ).toThrow();
  });

  it('refuses broadcast and user-group elements, mass mentions in any text, mention floods', () => {
    const rich = (el: unknown) =>
      parse({ type: 'rich_text', elements: [{ type: 'rich_text_section', elements: [el] }] });
    expect(refuseBlocks([rich({ type: 'broadcast', range: 'here' })], 3)).toMatch(/broadcast/);
    expect(refuseBlocks([rich({ type: 'usergroup', usergroup_id: 'S0123' })], 3)).toMatch(
      /user-group/,
    );
    expect(refuseBlocks([rich({ type: 'text', text: 'hey @channel' })], 3)).toMatch(/mass mention/);
    expect(
      refuseBlocks([parse({ type: 'header', text: { type: 'plain_text', text: '＜!here＞' } })], 3),
    ).toMatch(/mass mention/);
    const users = [1, 2, 3, 4].map((i) => rich({ type: 'user', user_id: `U0AAAAAA${i}` }));
    expect(refuseBlocks(users, 3)).toMatch(/too many user mentions/);
    expect(refuseBlocks(users.slice(0, 3), 3)).toBeUndefined();
  });

  it('escapes mrkdwn text only, and renders blocks for the approval prompt', () => {
    const blocks = [
      parse({ type: 'section', text: { type: 'mrkdwn', text: 'a <b> & c' } }),
      parse({ type: 'context', elements: [{ type: 'plain_text', text: '<kept>' }] }),
      parse({ type: 'divider' }),
    ];
    const sent = escapeBlocks(blocks);
    expect(sent[0]).toEqual({
      type: 'section',
      text: { type: 'mrkdwn', text: 'a &lt;b&gt; &amp; c' },
    });
    expect(sent[1]).toEqual(blocks[1]);
    expect(renderBlocks(blocks)).toEqual(['a <b> & c', '<kept>', '———']);
  });
});
