import { normalizeSync, parseSync, scanSync } from 'libpg-query';

/** A statement with every literal constant replaced by a parameter, for a generic plan. */
export type GenericSql =
  | {
      readonly ok: true;
      /** The statement with `$n` placeholders where constants were. */
      readonly sql: string;
      /** The highest parameter number in `sql` (user parameters come first). */
      readonly paramCount: number;
    }
  | { readonly ok: false; readonly message: string };

/** C0 controls libpg-query's scanner JSON cannot carry (same set as sql-guard.ts); same length. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to match them
const SCAN_UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g;

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/**
 * Rewrites one already-accepted SELECT so that PostgreSQL can plan it without evaluating any
 * value from the client: every literal constant (numbers, strings, booleans, NULL, bit strings)
 * becomes a parameter (`pg_query_normalize`, libpg-query's `normalizeSync`, numbering after the
 * statement's own `$n`). The prefix-typed literal form (`interval '1 day'`, `date '2020-01-01'`,
 * PostgreSQL docs §4.1.2.7), which only accepts a string constant, is first rewritten as
 * `CAST('1 day' AS interval)`. Ordinals in `GROUP BY 1`/`ORDER BY 2` stay (pg_query keeps them).
 *
 * The rewrite only replaces constants: the structure (relations, functions, operators) is the
 * one the SQL guard accepted. Requires libpg-query's module to be loaded (`loadModule()`).
 *
 * Never throws: a text the parser refuses gives `{ ok: false }`.
 */
export function toGenericSql(sql: string): GenericSql {
  try {
    const typed = rewriteTypedLiterals(sql);
    const normalized = normalizeSync(typed);
    let paramCount = 0;
    for (const t of scanSync(normalized.replace(SCAN_UNSAFE, ' ')).tokens) {
      if (t.tokenName !== 'PARAM') continue;
      const n = Number(t.text.slice(1));
      if (n > paramCount) paramCount = n;
    }
    return { ok: true, sql: normalized, paramCount };
  } catch {
    return { ok: false, message: 'the statement could not be prepared for planning' };
  }
}

/** `type 'literal'` → `CAST('literal' AS type)`; locations are UTF-8 byte offsets. */
function rewriteTypedLiterals(sql: string): string {
  const tree = parseSync(sql) as unknown;
  const bytes = Buffer.from(sql, 'utf8');
  const tokens = scanSync(sql.replace(SCAN_UNSAFE, ' ')).tokens;
  const tokenEnd = new Map<number, number>();
  for (const t of tokens) tokenEnd.set(t.start, t.end);
  const edits: Edit[] = [];
  walk(tree, (node) => {
    const cast = (node as { TypeCast?: unknown }).TypeCast as
      | {
          arg?: { A_Const?: { location?: number } };
          typeName?: { location?: number };
        }
      | undefined;
    const constAt = cast?.arg?.A_Const?.location;
    const typeAt = cast?.typeName?.location;
    if (constAt === undefined || typeAt === undefined || typeAt >= constAt) return;
    const end = tokenEnd.get(constAt);
    if (end === undefined) return;
    edits.push({
      start: typeAt,
      end,
      text: `CAST(${bytes.subarray(constAt, end).toString('utf8')} AS ${bytes.subarray(typeAt, constAt).toString('utf8').trim()})`,
    });
  });
  if (edits.length === 0) return sql;
  edits.sort((a, b) => b.start - a.start);
  let out = bytes;
  for (const e of edits)
    out = Buffer.concat([
      out.subarray(0, e.start),
      Buffer.from(e.text, 'utf8'),
      out.subarray(e.end),
    ]);
  return out.toString('utf8');
}

/** Visits every object of a parse tree, iteratively (deep trees must not overflow the stack). */
function walk(root: unknown, visit: (node: object) => void): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (const child of node) stack.push(child);
      continue;
    }
    visit(node);
    for (const child of Object.values(node)) stack.push(child);
  }
}
