import { describe, expect, it } from 'vitest';
import { slackSectionSchema } from './config.js';
import { excessScopes, neededBotScopes } from './scopes.js';

const settings = (extra: Record<string, unknown> = {}) =>
  slackSectionSchema.parse({ channels: { read: ['C0SUPPORT1'], write: ['C0SUPPORT1'] }, ...extra });

describe('scope check', () => {
  it('needs the read scopes always, chat:write only in read-write mode, extras only when enabled', () => {
    const ro = neededBotScopes(settings(), 'read-only');
    expect([...ro].sort()).toEqual([
      'channels:history',
      'channels:read',
      'groups:history',
      'groups:read',
      'users:read',
    ]);
    expect(neededBotScopes(settings(), 'read-write').has('chat:write')).toBe(true);
    expect(neededBotScopes(settings(), 'read-write').has('reactions:write')).toBe(false);
    expect(
      neededBotScopes(settings({ reactions: { enabled: true } }), 'read-write').has(
        'reactions:write',
      ),
    ).toBe(true);
    expect(
      neededBotScopes(settings({ allowDirectMessages: true }), 'read-only').has('im:history'),
    ).toBe(true);
  });

  it('names the excess scopes, sorted and once', () => {
    const needed = neededBotScopes(settings(), 'read-only');
    expect(
      excessScopes(['channels:read', 'chat:write', 'admin.users:write', 'chat:write', ''], needed),
    ).toEqual(['admin.users:write', 'chat:write']);
  });

  it('refuses configuration that lists a DM without allowDirectMessages, or writes outside reads', () => {
    expect(() => slackSectionSchema.parse({ channels: { read: ['D0DMMARIA1'] } })).toThrow(
      /direct message/,
    );
    expect(() =>
      slackSectionSchema.parse({ channels: { read: ['C0SUPPORT1'], write: ['C0RANDOM01'] } }),
    ).toThrow(/channels.write/);
    expect(() =>
      slackSectionSchema.parse({
        channels: { read: ['C0SUPPORT1'] },
        apiUrl: 'http://127.0.0.1:1/api',
      }),
    ).toThrow();
    expect(() =>
      slackSectionSchema.parse({ channels: { read: ['C0SUPPORT1'] }, unknown: 1 }),
    ).toThrow();
  });
});
