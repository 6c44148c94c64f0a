import { parseSync, scanSync } from 'libpg-query';

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
 * value from the client: every number and string constant becomes a parameter typed the way
 * PostgreSQL types the literal (PostgreSQL docs §4.1.2.6: an integer that fits is `int4`, a
 * larger one `int8`, then `numeric`; a decimal is `numeric`; a string stays untyped, resolved
 * from its context), numbered after the statement's own `$n`. The prefix-typed literal form
 * (`interval '1 day'`, `date '2020-01-01'`, §4.1.2.7), which only accepts a string constant, is
 * first rewritten as `CAST('1 day' AS interval)`. Kept as they are: ordinals (`GROUP BY 1`,
 * `ORDER BY 2`, `DISTINCT ON (1)`), type modifiers (`numeric(10, 2)`), NULL, booleans and bit
 * strings (nothing to fold over them at any cost).
 *
 * The rewrite only replaces constants: the structure (relations, functions, operators) is the
 * one the SQL guard accepted. Requires libpg-query's module to be loaded (`loadModule()`).
 *
 * Never throws: a text the parser refuses gives `{ ok: false }`.
 */
export function toGenericSql(sql: string): GenericSql {
  try {
    const first = rewriteTypedLiterals(sql);
    const typed = first.sql;
    const bytes = Buffer.from(typed, 'utf8');
    // Parsed and scanned again only when typed literals were rewritten.
    const tokens = first.tokens ?? scanSync(typed.replace(SCAN_UNSAFE, ' ')).tokens;
    let paramCount = 0;
    for (const t of tokens)
      if (t.tokenName === 'PARAM') paramCount = Math.max(paramCount, Number(t.text.slice(1)));
    const next = new Map<number, number>();
    tokens.forEach((t, i) => {
      next.set(t.start, i);
    });
    const edits: Edit[] = [];
    for (const c of constantsOf(first.tree ?? parseSync(typed))) {
      const i = next.get(c.location);
      const token = i === undefined ? undefined : tokens[i];
      if (!token) throw new Error('constant without a token');
      // A negative number's location is its minus sign: the constant ends with the next token.
      const end = token.text === '-' ? tokens[(i ?? 0) + 1]?.end : token.end;
      if (end === undefined) throw new Error('constant without an end');
      const n = ++paramCount;
      edits.push({ start: c.location, end, text: c.cast ? `$${n}::${c.cast}` : `$${n}` });
    }
    return { ok: true, sql: applyEdits(bytes, edits), paramCount };
  } catch {
    return { ok: false, message: 'the statement could not be prepared for planning' };
  }
}

/** A constant to replace: where it starts (UTF-8 byte offset) and the type of its literal. */
interface Constant {
  readonly location: number;
  /** `int4`, `int8`, `numeric`, or undefined for an untyped string literal. */
  readonly cast: string | undefined;
}

/** INT8 range (PostgreSQL docs §8.1.1). */
const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

/** The number and string constants of a parse tree, except ordinals and type modifiers. */
function constantsOf(tree: unknown): Constant[] {
  const found: Constant[] = [];
  const stack: { node: unknown; skip: boolean }[] = [{ node: tree, skip: false }];
  while (stack.length > 0) {
    const { node, skip } = stack.pop() as { node: unknown; skip: boolean };
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (const child of node) stack.push({ node: child, skip });
      continue;
    }
    const record = node as Record<string, unknown>;
    const constant = record.A_Const as
      | {
          location?: number;
          ival?: unknown;
          fval?: { fval?: string };
          sval?: unknown;
        }
      | undefined;
    if (constant && !skip && constant.location !== undefined && constant.location >= 0) {
      if (constant.ival !== undefined) found.push({ location: constant.location, cast: 'int4' });
      else if (constant.fval !== undefined)
        found.push({ location: constant.location, cast: numericType(constant.fval.fval ?? '') });
      else if (constant.sval !== undefined)
        found.push({ location: constant.location, cast: undefined });
    }
    for (const [key, child] of Object.entries(record)) {
      if (key === 'typeName' || key === 'TypeName') {
        stack.push({ node: child, skip: true }); // type modifiers, array bounds
      } else if (key === 'groupClause' || key === 'distinctClause') {
        // Direct items are ordinals when they are integer constants (`GROUP BY 1`).
        for (const item of (child as unknown[] | undefined) ?? [])
          stack.push({ node: item, skip: skip || isAConst(item) });
      } else if (key === 'node' && 'sortby_dir' in record) {
        stack.push({ node: child, skip: skip || isAConst(child) }); // ORDER BY 1
      } else {
        stack.push({ node: child, skip });
      }
    }
  }
  return found;
}

function isAConst(node: unknown): boolean {
  return node !== null && typeof node === 'object' && 'A_Const' in node;
}

/** The type PostgreSQL gives a numeric literal that is not a small integer (§4.1.2.6). */
function numericType(text: string): string {
  if (!/^-?[0-9_]+$/.test(text)) return 'numeric';
  try {
    const v = BigInt(text.replaceAll('_', ''));
    return v >= INT8_MIN && v <= INT8_MAX ? 'int8' : 'numeric';
  } catch {
    return 'numeric';
  }
}

/** Applies non-overlapping edits in one pass (linear in the text and the edits). */
function applyEdits(bytes: Buffer, edits: Edit[]): string {
  edits.sort((a, b) => a.start - b.start);
  const parts: Buffer[] = [];
  let at = 0;
  for (const e of edits) {
    if (e.start < at) throw new Error('overlapping edits');
    parts.push(bytes.subarray(at, e.start), Buffer.from(e.text, 'utf8'));
    at = e.end;
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts).toString('utf8');
}

/**
 * `type 'literal'` → `CAST('literal' AS type)`; locations are UTF-8 byte offsets. When nothing
 * was rewritten, also returns the tree and tokens of `sql` for reuse.
 */
function rewriteTypedLiterals(sql: string): {
  sql: string;
  tree?: unknown;
  tokens?: ReturnType<typeof scanSync>['tokens'];
} {
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
    if (constAt === undefined || typeAt === undefined || typeAt < 0 || typeAt >= constAt) return;
    const end = tokenEnd.get(constAt);
    if (end === undefined) return;
    edits.push({
      start: typeAt,
      end,
      text: `CAST(${bytes.subarray(constAt, end).toString('utf8')} AS ${bytes.subarray(typeAt, constAt).toString('utf8').trim()})`,
    });
  });
  return edits.length === 0 ? { sql, tree, tokens } : { sql: applyEdits(bytes, edits) };
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
