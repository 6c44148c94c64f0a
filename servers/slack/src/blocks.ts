import { z } from 'zod';
import { countUserMentions, escapeMrkdwn, findMassMention } from './text.js';

/**
 * The non-interactive Block Kit subset a post may carry (Slack's "Blocks" reference): `section`
 * and `context` with text, `header`, `divider`, and `rich_text` with sections, quotes and
 * preformatted runs. No buttons, inputs, images, files or accessories. `broadcast` and
 * `usergroup` elements are accepted by the schema only so that the policy can refuse them by name.
 */
const textObject = z.strictObject({
  type: z.enum(['mrkdwn', 'plain_text']),
  text: z.string().min(1).max(3_000),
});
const inline = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('text'),
    text: z.string().min(1).max(3_000),
    style: z
      .strictObject({
        bold: z.boolean().optional(),
        italic: z.boolean().optional(),
        strike: z.boolean().optional(),
        code: z.boolean().optional(),
      })
      .optional(),
  }),
  z.strictObject({
    type: z.literal('link'),
    url: z.url({ protocol: /^https?$/ }).max(2_000),
    text: z.string().max(500).optional(),
  }),
  z.strictObject({ type: z.literal('emoji'), name: z.string().regex(/^[a-z0-9_+'-]{1,100}$/) }),
  z.strictObject({ type: z.literal('user'), user_id: z.string().regex(/^[UW][A-Z0-9]{8,11}$/) }),
  z.strictObject({ type: z.literal('broadcast'), range: z.string().max(20) }),
  z.strictObject({ type: z.literal('usergroup'), usergroup_id: z.string().max(20) }),
]);
const richSection = z.strictObject({
  type: z.enum(['rich_text_section', 'rich_text_quote', 'rich_text_preformatted']),
  elements: z.array(inline).min(1).max(50),
});
/** One block of a post. */
export const blockSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('section'), text: textObject }),
  z.strictObject({
    type: z.literal('header'),
    text: z.strictObject({ type: z.literal('plain_text'), text: z.string().min(1).max(150) }),
  }),
  z.strictObject({ type: z.literal('divider') }),
  z.strictObject({ type: z.literal('context'), elements: z.array(textObject).min(1).max(10) }),
  z.strictObject({ type: z.literal('rich_text'), elements: z.array(richSection).min(1).max(20) }),
]);
/** A block as accepted. */
export type Block = z.infer<typeof blockSchema>;

/** Every piece of text a block carries (for the mention checks and the approval prompt). */
function textsOf(block: Block): string[] {
  switch (block.type) {
    case 'section':
    case 'header':
      return [block.text.text];
    case 'divider':
      return [];
    case 'context':
      return block.elements.map((e) => e.text);
    case 'rich_text':
      return block.elements.flatMap((s) =>
        s.elements.flatMap((e) =>
          e.type === 'text' ? [e.text] : e.type === 'link' ? [e.text ?? ''] : [],
        ),
      );
  }
}

/**
 * Why `blocks` may not be posted, or `undefined`: broadcast or user-group elements, a mass
 * mention in any text, more than `maxUserMentions` user mentions in all.
 */
export function refuseBlocks(
  blocks: readonly Block[],
  maxUserMentions: number,
): string | undefined {
  let users = 0;
  for (const block of blocks) {
    if (block.type === 'rich_text')
      for (const s of block.elements)
        for (const e of s.elements) {
          if (e.type === 'broadcast') return 'broadcast elements (@channel, @here) are refused';
          if (e.type === 'usergroup') return 'user-group mentions are refused';
          if (e.type === 'user') users += 1;
        }
    for (const t of textsOf(block)) {
      const mass = findMassMention(t);
      if (mass) return `mass mentions are refused (${JSON.stringify(mass)} in a block)`;
      users += countUserMentions(t);
    }
  }
  if (users > maxUserMentions)
    return `too many user mentions (${users}; at most ${maxUserMentions})`;
  return undefined;
}

/** `blocks` as sent: `mrkdwn` text escaped ({@link escapeMrkdwn}); everything else as given. */
export function escapeBlocks(blocks: readonly Block[]): Block[] {
  const esc = <T extends { type: string; text: string }>(t: T): T =>
    t.type === 'mrkdwn' ? { ...t, text: escapeMrkdwn(t.text) } : t;
  return blocks.map((b) => {
    if (b.type === 'section') return { ...b, text: esc(b.text) };
    if (b.type === 'context') return { ...b, elements: b.elements.map(esc) };
    return b;
  });
}

/** The blocks as a reader sees them, one line per block, for the approval prompt. */
export function renderBlocks(blocks: readonly Block[]): string[] {
  return blocks.map((b) => {
    if (b.type === 'divider') return '———';
    if (b.type === 'rich_text')
      return b.elements
        .map((s) =>
          s.elements
            .map((e) =>
              e.type === 'text'
                ? e.text
                : e.type === 'link'
                  ? e.text
                    ? `${e.text} (${e.url})`
                    : e.url
                  : e.type === 'emoji'
                    ? `:${e.name}:`
                    : e.type === 'user'
                      ? `@${e.user_id}`
                      : `[${e.type}]`,
            )
            .join(''),
        )
        .join('\n');
    return textsOf(b).join(' · ');
  });
}
