import { describe, expect, it } from 'vitest';
import { describeValues, escapeForApproval } from './saved-queries.js';

describe('approval text escaping', () => {
  it.each([
    ['line separator', 'a\u2028b', 'a\\u2028b'],
    ['paragraph separator', 'a\u2029b', 'a\\u2029b'],
    ['right-to-left override', 'invoice\u202Efdp.exe', 'invoice\\u202efdp.exe'],
    ['left-to-right embedding', '\u202Ax', '\\u202ax'],
    ['pop directional formatting', 'x\u202C', 'x\\u202c'],
    ['right-to-left isolate', '\u2067x\u2069', '\\u2067x\\u2069'],
    ['first strong isolate', '\u2068x', '\\u2068x'],
    ['left-to-right mark', '\u200Ex', '\\u200ex'],
    ['right-to-left mark', '\u200Fx', '\\u200fx'],
    ['arabic letter mark', '\u061Cx', '\\u061cx'],
    ['zero-width space', 'a\u200Bb', 'a\\u200bb'],
    ['zero-width joiner', 'a\u200Db', 'a\\u200db'],
    ['word joiner', 'a\u2060b', 'a\\u2060b'],
    ['byte order mark', '\uFEFFa', '\\ufeffa'],
    ['soft hyphen', 'a\u00ADb', 'a\\u00adb'],
    ['C1 control (NEL)', 'a\u0085b', 'a\\u0085b'],
    ['newline', 'a\nb', 'a\\nb'],
    ['lone surrogate', 'a\ud800b', 'a\\ud800b'],
    ['escape', 'a\u001bb', 'a\\u001bb'],
  ])('escapes %s', (_what, input, escaped) => {
    expect(escapeForApproval(input)).toBe(escaped);
  });

  it('leaves printable text alone, accents and other scripts included', () => {
    expect(escapeForApproval('Zoë – 東京 – مرحبا "x"')).toBe('Zoë – 東京 – مرحبا "x"');
  });

  it('escapes keys and values of a described row', () => {
    const text = describeValues({ 'na\u202Eme': 'x\u2028WHERE 1=1', id: 5 });
    expect(text).toBe('"na\\u202eme" = "x\\u2028WHERE 1=1", "id" = 5');
    expect(text).not.toMatch(/[\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f]/);
  });
});
