/**
 * What the human sees in an approval prompt: text that cannot hide or reorder what it says,
 * bounded in size with a visible cut. Sources: Unicode UAX #9 (bidirectional controls; CVE-2021-42574
 * "Trojan Source"), Unicode general categories Cc, Cf, Zl, Zp and Cs (UAX #44), and the
 * Unicode tag characters U+E0000–U+E007F (category Cf) used to smuggle invisible text.
 */

/**
 * Characters escaped by {@link escapeForApproval}: controls (C0 including newline and tab, DEL,
 * C1: `Cc`), format characters (`Cf`: bidi embeddings, overrides, isolates and marks
 * U+202A–202E, U+2066–2069, U+200E/F, U+061C; zero-width U+200B–200D, U+2060, U+FEFF; soft
 * hyphen; tag characters), line and paragraph separators U+2028/U+2029 (`Zl`, `Zp`) and lone
 * surrogates (`Cs`).
 */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/**
 * Escapes `text` for display: every {@link HIDDEN} character becomes `\u{XXXX}` (hex, at least
 * four digits) and a backslash becomes `\\`, so the escaped text is unambiguous (a literal
 * `\u{202E}` in the input shows as `\\u{202E}`). The result is a single line.
 */
export function escapeForApproval(text: string): string {
  let out = '';
  for (const ch of text) {
    if (ch === '\\') out += '\\\\';
    else if (HIDDEN.test(ch))
      out += `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}}`;
    else out += ch;
  }
  return out;
}

/**
 * The last wall before a human reads an approval prompt: every {@link HIDDEN} character except
 * the line feed becomes `\u{XXXX}`, and the whole text is bounded with {@link boundText}. Unlike
 * {@link escapeForApproval} it keeps line breaks and backslashes, so text already built with
 * {@link ApprovalText} passes unchanged. The pipeline applies it to every `describeChange`.
 */
export function neutralizeApprovalText(text: string, maxChars: number): string {
  let out = '';
  for (const ch of text) {
    out +=
      ch !== '\n' && HIDDEN.test(ch)
        ? `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}}`
        : ch;
  }
  return boundText(out, maxChars);
}

/**
 * Cuts `text` to at most `maxChars` characters (code points), appending a visible marker that
 * says how many were left out: `… [cut: 1234 more characters]`. A surrogate pair is never split.
 * Text within the bound is returned as it is.
 */
export function boundText(text: string, maxChars: number): string {
  const chars = Array.from(text);
  if (chars.length <= maxChars) return text;
  const kept = Math.max(0, Math.floor(maxChars));
  return `${chars.slice(0, kept).join('')}… [cut: ${chars.length - kept} more characters]`;
}

/**
 * One value as shown to the human: a string in double quotes (escaped, `"` as `\"`), `null`,
 * numbers and booleans as JSON, `undefined` as `(not set)`, anything else as escaped JSON; cut
 * on its own at `maxChars` with {@link boundText}.
 */
export function displayValue(value: unknown, maxChars = 200): string {
  if (value === undefined) return '(not set)';
  if (typeof value === 'string')
    return `"${boundText(escapeForApproval(value).replaceAll('"', '\\"'), maxChars)}"`;
  let json: string | undefined;
  try {
    json = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    json = undefined;
  }
  return boundText(escapeForApproval(json ?? String(value)), maxChars);
}

/** Options of {@link ApprovalText}. */
export interface ApprovalTextOptions {
  /** Bound of the whole text in characters. Default 4 000. */
  readonly maxChars?: number | undefined;
  /** Bound of each value in characters. Default 200. */
  readonly maxValueChars?: number | undefined;
}

/**
 * Builds the text of an approval prompt line by line; every part from the request or from
 * upstream data is escaped and bounded.
 *
 * ```ts
 * new ApprovalText()
 *   .line('Update Jira issue', key)
 *   .change('summary', before.summary, after.summary)
 *   .field('assignee', after.assignee)
 *   .toString();
 * // Update Jira issue "ACME-1"
 * //   summary: "Old" → "New"
 * //   assignee: "ana@example.com"
 * ```
 */
export class ApprovalText {
  readonly #lines: string[] = [];
  readonly #maxChars: number;
  readonly #maxValueChars: number;

  constructor(options: ApprovalTextOptions = {}) {
    this.#maxChars = options.maxChars ?? 4_000;
    this.#maxValueChars = options.maxValueChars ?? 200;
  }

  /** A heading line: fixed text (escaped too) followed by displayed values. */
  line(text: string, ...values: readonly unknown[]): this {
    this.#lines.push(
      [escapeForApproval(text), ...values.map((v) => displayValue(v, this.#maxValueChars))].join(
        ' ',
      ),
    );
    return this;
  }

  /** An indented `name: value` line. */
  field(name: string, value: unknown): this {
    this.#lines.push(`  ${escapeForApproval(name)}: ${displayValue(value, this.#maxValueChars)}`);
    return this;
  }

  /** An indented `name: before → after` line. */
  change(name: string, before: unknown, after: unknown): this {
    this.#lines.push(
      `  ${escapeForApproval(name)}: ${displayValue(before, this.#maxValueChars)} → ${displayValue(after, this.#maxValueChars)}`,
    );
    return this;
  }

  /**
   * The lines joined with `\n`, bounded at `maxChars`: whole lines are kept while they fit, then
   * a marker says how many lines were left out (`… [cut: 3 more lines]`).
   */
  toString(): string {
    const kept: string[] = [];
    let used = 0;
    for (const l of this.#lines) {
      const size = Array.from(l).length + (kept.length > 0 ? 1 : 0);
      if (used + size > this.#maxChars) {
        if (kept.length === 0) kept.push(boundText(l, this.#maxChars));
        const left = this.#lines.length - kept.length;
        if (left > 0) kept.push(`… [cut: ${left} more line${left === 1 ? '' : 's'}]`);
        break;
      }
      kept.push(l);
      used += size;
    }
    return kept.join('\n');
  }
}
