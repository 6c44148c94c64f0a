import { describe, expect, it } from 'vitest';
import {
  countUserMentions,
  escapeMrkdwn,
  findMassMention,
  mentionedUsers,
  renderIncoming,
} from './text.js';

describe('findMassMention', () => {
  it.each([
    ['@channel', '@channel'],
    ['hi @here!', '@here'],
    ['@Everyone now', '@everyone'],
    ['<!channel>', '<!channel'],
    ['<!here|here>', '<!here'],
    ['<!subteam^S0123|@ops>', '<!subteam^'],
    ['＜!channel＞', '<!channel'],
    ['＠ｈｅｒｅ', '@here'],
    ['@\u200Bchannel', '@channel'],
    ['@\u2060here', '@here'],
  ])('finds %j', (text, found) => {
    expect(findMassMention(text)).toBe(found);
  });

  it.each([
    'mail me at ops@here.example',
    'the channel is busy',
    'email@channel.example',
    'plain text',
  ])('leaves %j alone', (text) => {
    // `ops@here.example`: `@here` preceded by a letter is an address, not a mention.
    expect(findMassMention(text)).toBeUndefined();
  });
});

describe('countUserMentions', () => {
  it('counts <@U…> as written and in look-alike forms', () => {
    expect(countUserMentions('<@U0AAAAAA1> and <@W0AAAAAA2|li>')).toBe(2);
    expect(countUserMentions('＜@U0AAAAAA1＞ ＜@U0AAAAAA2＞')).toBe(2);
    expect(countUserMentions('no mentions @maria')).toBe(0);
  });
});

describe('escapeMrkdwn', () => {
  it('escapes the three control characters and nothing else (no normalization)', () => {
    expect(escapeMrkdwn('<!channel> & <b>')).toBe('&lt;!channel&gt; &amp; &lt;b&gt;');
    expect(escapeMrkdwn('＜!channel＞ café')).toBe('＜!channel＞ café');
    expect(escapeMrkdwn('&amp;')).toBe('&amp;amp;');
  });
});

describe('renderIncoming', () => {
  const names = {
    user: (id: string) => ({ U0AAAAAA1: 'maria' })[id],
    channel: (id: string) => ({ C0INCIDNT1: 'incidents' })[id],
  };
  it('renders mentions, channels, links and entities as people read them', () => {
    expect(
      renderIncoming(
        '<@U0AAAAAA1> see <#C0INCIDNT1> and <https://x.example/?a=1&amp;b=2|the board> &lt;3 <!here> <@U0ZZZZZZ9>',
        names,
      ),
    ).toBe('@maria see #incidents and the board (https://x.example/?a=1&b=2) <3 @here @U0ZZZZZZ9');
    expect(mentionedUsers('<@U0AAAAAA1> <@W0BBBBBB2|x>')).toEqual(['U0AAAAAA1', 'W0BBBBBB2']);
  });
});
