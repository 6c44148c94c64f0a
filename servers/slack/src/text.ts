/**
 * Slack message text, both ways. Sources: Slack's "Formatting text for app surfaces" docs
 * (control sequences `<…>`, the three escapes `&amp;` `&lt;` `&gt;`, special mentions
 * `<!channel>`, `<!here>`, `<!everyone>`, user-group mentions `<!subteam^ID>`), and its
 * `chat.postMessage` docs (`link_names`, `parse`).
 */

/** Format characters (Unicode category Cf: zero-width space/joiners, bidi marks…) and variation selectors. */
const INVISIBLE = /\p{Cf}|[\u{FE00}-\u{FE0F}]|[\u{E0100}-\u{E01EF}]/gu;

/**
 * `text` as a reader might take it, for DETECTION only (never sent): NFKC (fullwidth and
 * compatibility look-alikes become ASCII, e.g. `＜!channel＞` → `<!channel>`), invisible
 * characters removed, lower case.
 */
export function foldForDetection(text: string): string {
  return text.normalize('NFKC').replace(INVISIBLE, '').toLowerCase();
}

/** Mass-mention forms, in folded text: control sequences and the words Slack links with `link_names`. */
const MASS_MENTION = [
  /<!\s*(channel|here|everyone|group)\b/,
  /<!\s*subteam\^/,
  /(^|[^\p{L}\p{N}_])@(channel|here|everyone|group)\b/u,
] as const;

/**
 * The first mass mention in `text` (`@channel`, `@here`, `@everyone`, `@group`, `<!channel>`,
 * `<!here>`, `<!everyone>`, `<!group>`, `<!subteam^…>`), looked for in the text as written AND in
 * its folded form (so look-alikes hidden with fullwidth forms or zero-width characters count).
 *
 * @returns the matched text (folded), or `undefined` when there is none
 */
export function findMassMention(text: string): string | undefined {
  for (const form of [text.toLowerCase(), foldForDetection(text)])
    for (const re of MASS_MENTION) {
      const m = re.exec(form);
      if (m) return m[0].trim();
    }
  return undefined;
}

/** How many user mentions (`<@U…>`) `text` holds, as written or folded (the larger count). */
export function countUserMentions(text: string): number {
  const re = /<@\s*[uw][a-z0-9]{2,}/g;
  return Math.max(
    (text.toLowerCase().match(re) ?? []).length,
    (foldForDetection(text).match(re) ?? []).length,
  );
}

/**
 * Escapes text for Slack's `mrkdwn`: `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;` (the three
 * characters Slack's formatting docs require escaped), so no control sequence (mention, link,
 * channel reference) can come from the text. Nothing else changes: no Unicode normalization.
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Display names for ids met in incoming text. */
export interface NameLookup {
  user(id: string): string | undefined;
  channel(id: string): string | undefined;
}

/**
 * Incoming Slack text as people read it in Slack: `<@U…>` → `@Display Name` (never an e-mail),
 * `<#C…|name>` → `#name`, `<!here>` → `@here`, `<!subteam^S…|@team>` → `@team`, `<url|label>` →
 * `label (url)`, `<url>` → `url`, then the three entities decoded.
 */
export function renderIncoming(text: string, names: NameLookup): string {
  const rendered = text.replace(/<([^<>]{1,2000})>/g, (_all, inner: string) => {
    const [target = '', label] = inner.split('|', 2);
    if (target.startsWith('@')) {
      const id = target.slice(1);
      return `@${names.user(id) ?? label ?? id}`;
    }
    if (target.startsWith('#')) {
      const id = target.slice(1);
      return `#${label ?? names.channel(id) ?? id}`;
    }
    if (target.startsWith('!')) {
      if (label) return label;
      const word = target.slice(1).split('^')[0] ?? '';
      return `@${word}`;
    }
    return label ? `${label} (${target})` : target;
  });
  return rendered.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** User ids a text mentions (`<@U…>`), for name resolution. */
export function mentionedUsers(text: string): string[] {
  return [...text.matchAll(/<@([UW][A-Z0-9]{2,})(\|[^>]*)?>/g)].map((m) => m[1] ?? '');
}
