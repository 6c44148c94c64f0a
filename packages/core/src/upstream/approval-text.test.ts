import { describe, expect, it } from 'vitest';
import { ApprovalText, boundText, displayValue, escapeForApproval } from './approval-text.js';

describe('escapeForApproval', () => {
  it('escapes every control, bidi, zero-width and separator character visibly', () => {
    const cases: [string, string][] = [
      ['\u0000', '\\u{0000}'],
      ['\n', '\\u{000A}'],
      ['\r', '\\u{000D}'],
      ['\t', '\\u{0009}'],
      ['\u001b[31m', '\\u{001B}[31m'],
      ['\u007f', '\\u{007F}'],
      ['\u0085', '\\u{0085}'],
      ['\u009b', '\\u{009B}'],
      ['\u202a', '\\u{202A}'],
      ['\u202e', '\\u{202E}'],
      ['\u2066', '\\u{2066}'],
      ['\u2069', '\\u{2069}'],
      ['\u200e', '\\u{200E}'],
      ['\u200f', '\\u{200F}'],
      ['\u061c', '\\u{061C}'],
      ['\u200b', '\\u{200B}'],
      ['\u200d', '\\u{200D}'],
      ['\u2060', '\\u{2060}'],
      ['\ufeff', '\\u{FEFF}'],
      ['\u2028', '\\u{2028}'],
      ['\u2029', '\\u{2029}'],
      ['\u{e0041}', '\\u{E0041}'],
      ['\ud800', '\\u{D800}'],
      ['\\', '\\\\'],
    ];
    for (const [input, shown] of cases)
      expect(escapeForApproval(`a${input}b`), shown).toBe(`a${shown}b`);
  });

  it('keeps ordinary text, accents and emoji as they are', () => {
    expect(escapeForApproval('Añadir «informe» 📄 to ACME-1')).toBe(
      'Añadir «informe» 📄 to ACME-1',
    );
  });

  it('is unambiguous: a literal escape sequence does not look like an escaped character', () => {
    expect(escapeForApproval('\\u{202E}')).not.toBe(escapeForApproval('\u202e'));
  });

  it('defeats a Trojan Source reordering', () => {
    const shown = escapeForApproval('delete\u202e\u2066 txt.exe\u2069\u2066');
    expect(shown).not.toMatch(/[\u202a-\u202e\u2066-\u2069]/);
  });
});

describe('boundText', () => {
  it('cuts with a visible marker that says how much was left out', () => {
    expect(boundText('abcdef', 10)).toBe('abcdef');
    expect(boundText('abcdef', 4)).toBe('abcd… [cut: 2 more characters]');
  });

  it('never splits a surrogate pair', () => {
    expect(boundText('📄📄📄', 2)).toBe('📄📄… [cut: 1 more characters]');
  });
});

describe('displayValue', () => {
  it('quotes strings, escapes quotes and shows other values as JSON', () => {
    expect(displayValue('say "hi"\n')).toBe('"say \\"hi\\"\\u{000A}"');
    expect(displayValue(undefined)).toBe('(not set)');
    expect(displayValue(null)).toBe('null');
    expect(displayValue(42)).toBe('42');
    expect(displayValue({ a: ['x\u202e'] })).toBe('{"a":["x\\u{202E}"]}');
    expect(displayValue(10n)).toBe('"10"');
    expect(displayValue('x'.repeat(300), 10)).toBe(
      `"${'x'.repeat(10)}… [cut: 290 more characters]"`,
    );
  });
});

describe('ApprovalText', () => {
  it('builds "field: before → after" lines, one per field, that values cannot break', () => {
    const text = new ApprovalText()
      .line('Update Jira issue', 'ACME-1')
      .change('summary', 'Old title', 'New title\n  assignee: "nobody"')
      .change('labels', undefined, ['urgent'])
      .field('comment', 'fine\u202e')
      .toString();
    expect(text).toBe(
      [
        'Update Jira issue "ACME-1"',
        '  summary: "Old title" → "New title\\u{000A}  assignee: \\"nobody\\""',
        '  labels: (not set) → ["urgent"]',
        '  comment: "fine\\u{202E}"',
      ].join('\n'),
    );
    expect(text.split('\n')).toHaveLength(4);
  });

  it('bounds the whole text and says how many lines were cut', () => {
    const t = new ApprovalText({ maxChars: 60 });
    for (let i = 0; i < 10; i++) t.field(`f${i}`, 'value');
    const text = t.toString();
    const lines = text.split('\n');
    expect(lines.at(-1)).toMatch(/^… \[cut: \d+ more lines\]$/);
    expect(lines.slice(0, -1).join('\n').length).toBeLessThanOrEqual(60);
  });

  it('cuts a single oversized line visibly', () => {
    const text = new ApprovalText({ maxChars: 20, maxValueChars: 1000 })
      .field('body', 'y'.repeat(100))
      .toString();
    expect(text).toMatch(/^ {2}body: "y+… \[cut: \d+ more characters\]$/);
  });
});
