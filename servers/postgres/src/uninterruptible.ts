/**
 * Operators PostgreSQL does not interrupt, and what their operands may be.
 *
 * Containment and overlap of arrays (`@>`, `<@`, `&&`: `array_contain_compare` in
 * `src/backend/utils/adt/arrayfuncs.c`) and of jsonb (`@>`, `<@`: `JsonbDeepContains` in
 * `jsonb_util.c`), and jsonb's `?|` / `?&` over a text array (`jsonb_exists_any/all` in
 * `jsonb_op.c`), compare every element of one side with the elements of the other in a loop with
 * no `CHECK_FOR_INTERRUPTS()`: the work is the product of the two sizes, and neither the
 * statement timeout nor a cancel is noticed until the loop ends (measured: two 60,000-element
 * arrays keep a backend busy 5–10 s past a 1 s timeout on PostgreSQL 15 and 18). Only
 * `pg_terminate_backend` in a later interrupt check ends it, i.e. also after the loop.
 *
 * PostgreSQL offers no per-statement memory or size limit that would bound such an operand
 * (`work_mem` bounds sorts and hashes, not a value; a value may reach 1 GB), so the bound is
 * static, on the parse tree: every operand of such an operator must be one of
 * - **stored**: a column of a base relation (through casts, subscripts, `->`/`->>`/`#>`/`#>>`
 *   with constant keys, `COALESCE` of such): its size is the stored data's, and the executor
 *   checks for interrupts between rows;
 * - **constant**: a literal, `ARRAY[...]` of literals, a bound parameter (at most 64 KiB of
 *   text, see `sqlValueArg`), `NULL`, or a range constructor (`int4range(a, b)`: one range,
 *   whatever its bounds), with a weight of its text length;
 * and when neither side is stored, the product of the two weights must stay under
 * {@link MAX_CONSTANT_PRODUCT}. Anything else (an aggregate such as `array_agg`/`jsonb_agg`, a
 * function call such as `array_fill`/`repeat`/`string_to_array`/`array_cat`/
 * `regexp_split_to_array`, `||`, a subquery, a column of a CTE, subquery, function or join alias)
 * is a value built in the query and is refused, whatever its spelling. The same holds for
 * `jsonb - text[]` (`jsonb_delete_array`), recognised by the array's spelling
 * ({@link isArraySpelling}).
 *
 * Value builders are bounded per call ({@link valueBuilderVerdict}, {@link paddedTypeVerdict},
 * {@link MAX_PARAM_REFERENCES}): per-character functions such as `upper`, `translate` and a
 * regex match do not check for interrupts either, so what one call can build must stay small.
 *
 * @module
 */

/** Operators whose support functions loop over both operands without an interrupt check. */
export const UNINTERRUPTIBLE_OPERATORS: ReadonlySet<string> = new Set([
  '@>',
  '<@',
  '&&',
  '?|',
  '?&',
]);

/** Weight (characters) of a bound parameter: the longest string `params` accepts. */
export const PARAM_WEIGHT = 65_536;

/**
 * Largest product of the two operands' weights (characters × characters) when neither is
 * stored: 2^28, i.e. a 64 KiB parameter against a 4 KiB literal, or two 16 KiB literals. At
 * worst one comparison per element pair, that is about 7·10^7 comparisons (elements take ≥ 2
 * characters in text), well under a second; two 64 KiB parameters (10^9) are refused.
 */
export const MAX_CONSTANT_PRODUCT = 2 ** 28;

/** JSON extraction operators: their result is part of their left operand. */
const EXTRACTION_OPERATORS: ReadonlySet<string> = new Set(['->', '->>', '#>', '#>>']);

/** Range constructors (PostgreSQL docs §9.20): one range value, whatever the arguments. */
const RANGE_CONSTRUCTORS: ReadonlySet<string> = new Set([
  'int4range',
  'int8range',
  'numrange',
  'tsrange',
  'tstzrange',
  'daterange',
]);

/** A column reference's range name (`t` of `t.c`), or null when unqualified. */
export type StoredColumn = { readonly qualifier: string | null };

/**
 * What an operand is: `stored` (with the column references it derives from), `constant` (with
 * its weight in characters) or `built` (with a short label of what builds it, for the message).
 */
export type OperandClass =
  | { readonly kind: 'stored'; readonly columns: readonly StoredColumn[] }
  | { readonly kind: 'constant'; readonly weight: number }
  | { readonly kind: 'built'; readonly what: string };

/**
 * Classifies one raw-parse-tree expression node (`{ NodeType: body }`, as libpg-query emits it).
 * Pure; never throws. Unknown shapes are `built` (fail closed).
 */
export function classifyOperand(node: unknown): OperandClass {
  if (!isRecord(node)) return built('an expression');
  const keys = Object.keys(node);
  const type = keys[0];
  const body = type === undefined ? undefined : node[type];
  if (keys.length !== 1 || type === undefined || !isRecord(body)) return built('an expression');
  switch (type) {
    case 'A_Const':
      return constant(constWeight(body));
    case 'ParamRef':
      return constant(PARAM_WEIGHT);
    case 'TypeCast': {
      const inner = classifyOperand(body.arg);
      const width = paddedWidth(body.typeName);
      return inner.kind === 'constant' && width > inner.weight ? constant(width) : inner;
    }
    case 'CollateClause':
      return classifyOperand(body.arg);
    case 'ColumnRef':
      return classifyColumn(body.fields);
    case 'A_ArrayExpr':
      return combine(Array.isArray(body.elements) ? body.elements : [], 'ARRAY[...]');
    case 'CoalesceExpr':
      return combine(Array.isArray(body.args) ? body.args : [], 'COALESCE');
    case 'A_Indirection': {
      const base = classifyOperand(body.arg);
      if (base.kind === 'built') return base;
      const indices = Array.isArray(body.indirection) ? body.indirection : [];
      for (const ind of indices) {
        if (!isRecord(ind)) return built('a subscript');
        const indBody = ind.A_Indices;
        if (ind.String !== undefined) continue; // field selection (x).f: part of x
        if (!isRecord(indBody)) return built('a subscript');
        for (const bound of [indBody.lidx, indBody.uidx]) {
          if (bound !== undefined && classifyOperand(bound).kind !== 'constant') {
            return built('a computed subscript');
          }
        }
      }
      return base;
    }
    case 'A_Expr': {
      const op = operatorName(body.name);
      if (body.kind === 'AEXPR_OP' && op !== null && EXTRACTION_OPERATORS.has(op)) {
        const left = classifyOperand(body.lexpr);
        if (left.kind === 'built') return left;
        if (classifyOperand(body.rexpr).kind !== 'constant')
          return built(`${op} with a computed key`);
        return left;
      }
      return built(op === null ? 'an operator' : `operator ${op}`);
    }
    case 'FuncCall': {
      const name = lastName(body.funcname);
      if (
        name !== null &&
        RANGE_CONSTRUCTORS.has(name) &&
        body.func_variadic !== true &&
        body.over === undefined &&
        body.agg_star !== true
      ) {
        return constant(1);
      }
      return built(name === null ? 'a function call' : `${name}()`);
    }
    case 'SubLink':
      return built('a subquery');
    default:
      return built('an expression');
  }
}

/**
 * Decides whether an uninterruptible operator may run over these operands. `isStored` says
 * whether a column reference denotes a base relation's stored column (the caller knows the
 * statement's range names); `planOnly`: the statement is planned, never executed, so constants
 * are not weighed. Returns null when allowed, else the reason (a sentence fragment
 * naming no SQL text beyond a function or operator name).
 */
export function uninterruptibleVerdict(
  operands: readonly OperandClass[],
  isStored: (column: StoredColumn) => boolean,
  planOnly = false,
): string | null {
  let anyStored = false;
  let product = 1;
  for (const operand of operands) {
    if (operand.kind === 'built') return `its operand is built in the query (${operand.what})`;
    if (operand.kind === 'stored') {
      if (!operand.columns.every(isStored)) {
        return 'its operand is a column of a CTE, subquery, function or join alias (qualify a table column with its table)';
      }
      anyStored = true;
    } else {
      product *= Math.max(1, operand.weight);
    }
  }
  if (!planOnly && !anyStored && product > MAX_CONSTANT_PRODUCT) {
    return 'its operands are two large constants or parameters';
  }
  return null;
}

function classifyColumn(fields: unknown): OperandClass {
  if (!Array.isArray(fields) || fields.length === 0 || fields.length > 2) {
    return built('a column reference');
  }
  const names: string[] = [];
  for (const f of fields) {
    const s = isRecord(f) && isRecord(f.String) ? f.String.sval : undefined;
    if (typeof s !== 'string') return built('a whole-row reference');
    names.push(s);
  }
  return {
    kind: 'stored',
    columns: [{ qualifier: names.length === 2 ? (names[0] ?? null) : null }],
  };
}

function combine(elements: readonly unknown[], what: string): OperandClass {
  const columns: StoredColumn[] = [];
  let weight = 0;
  for (const element of elements) {
    const c = classifyOperand(element);
    if (c.kind === 'built') return c.what === 'an expression' ? built(what) : c;
    if (c.kind === 'stored') columns.push(...c.columns);
    else weight += c.weight + 1;
  }
  return columns.length > 0 ? { kind: 'stored', columns } : constant(weight);
}

function constWeight(body: Record<string, unknown>): number {
  const s = isRecord(body.sval) ? body.sval.sval : undefined;
  if (typeof s === 'string') return s.length + 2;
  const b = isRecord(body.bsval) ? body.bsval.bsval : undefined;
  if (typeof b === 'string') return b.length;
  const f = isRecord(body.fval) ? body.fval.fval : undefined;
  if (typeof f === 'string') return f.length;
  return 8;
}

function operatorName(list: unknown): string | null {
  return lastName(list);
}

function lastName(list: unknown): string | null {
  if (!Array.isArray(list)) return null;
  const last: unknown = list[list.length - 1];
  const s = isRecord(last) && isRecord(last.String) ? last.String.sval : undefined;
  return typeof s === 'string' ? s : null;
}

function constant(weight: number): OperandClass {
  return { kind: 'constant', weight };
}

function built(what: string): OperandClass {
  return { kind: 'built', what };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------
// Value builders: one call, a value far larger than its arguments
// ---------------------------------------------------------------------------------------

/**
 * Largest value (characters, or array elements weighted by their text length) one call of a
 * value builder may produce: 1 MiB. Per-character functions PostgreSQL does not interrupt
 * (measured on PostgreSQL 15: `upper` ≈ 190 ns, `translate` ≈ 100 ns, a `~` match ≈ 60 ns per
 * character, see the README's table) then cost at most about 0.2 s on such a value.
 */
export const MAX_BUILT_WEIGHT = 1_048_576;

/**
 * Longest replacement (characters) of `replace`/`regexp_replace`: a longer one (a 64 KiB
 * parameter) multiplies the input's size in one call; 32 characters grow it at most 33-fold (an empty match replaced at every position).
 */
export const MAX_REPLACEMENT_WEIGHT = 32;

/**
 * Most repeated `$n` references one statement may contain (references beyond the first of each
 * number): each stands for up to {@link PARAM_WEIGHT} characters, so with the tools' 100
 * parameters at most (100 + 256) × 64 KiB ≈ 22 MiB can be assembled from parameters in one call
 * (`concat($1, $1, …)`, `$1 || $1 || …`). A long `IN ($1, …, $n)` list repeats nothing.
 */
export const MAX_PARAM_REFERENCES = 256;

/**
 * Functions whose result can be far larger than their arguments' text, and what bounds them
 * (PostgreSQL docs §9.4 String Functions, §9.19 Array Functions). `lpad`/`rpad` and
 * `array_fill` build their result without an interrupt check (measured: `lpad` to 200 M
 * characters and `array_fill` of 10^8 elements run 8 s and 12 s past a 1 s timeout);
 * `repeat`, `replace` and `regexp_replace` check for interrupts, but their result then feeds
 * functions that do not (`upper`, `translate`, `~`, containment).
 */
export const VALUE_BUILDERS: ReadonlySet<string> = new Set([
  'repeat',
  'lpad',
  'rpad',
  'array_fill',
  'format',
  'replace',
  'regexp_replace',
]);

/**
 * Decides whether one call of a {@link VALUE_BUILDERS} function is bounded: its size arguments
 * must be integer literals and its result at most {@link MAX_BUILT_WEIGHT} (`repeat(s, n)`:
 * n × weight of s, a non-constant s weighing {@link PARAM_WEIGHT}; `lpad`/`rpad(s, n)`: n;
 * `array_fill(v, dims)`: the product of the literal dimensions × weight of v); `format` needs
 * a literal format string with widths at most {@link MAX_BUILT_WEIGHT} and no `*` width;
 * `replace`/`regexp_replace` need a constant replacement of at most
 * {@link MAX_REPLACEMENT_WEIGHT} characters. `name` is the call's last name part; `call` the
 * `FuncCall` body. Returns null when bounded (or not a builder), else the reason (names no SQL
 * text). Pure; never throws.
 */
export function valueBuilderVerdict(name: string, call: Record<string, unknown>): string | null {
  if (!VALUE_BUILDERS.has(name)) return null;
  const args = Array.isArray(call.args) ? (call.args as unknown[]) : [];
  if (args.some((a) => isRecord(a) && a.NamedArgExpr !== undefined)) {
    return 'its arguments are named (pass them by position)';
  }
  const tooBig = `its result may exceed ${MAX_BUILT_WEIGHT} characters`;
  switch (name) {
    case 'repeat': {
      const n = integerLiteral(args[1]);
      if (n === null) return 'its count is not an integer literal';
      return n * unitWeight(args[0]) > MAX_BUILT_WEIGHT ? tooBig : null;
    }
    case 'lpad':
    case 'rpad': {
      const n = integerLiteral(args[1]);
      if (n === null) return 'its length is not an integer literal';
      return n > MAX_BUILT_WEIGHT ? tooBig : null;
    }
    case 'array_fill': {
      const dims = literalDimensions(args[1]);
      if (dims === null) return 'its dimensions are not integer literals';
      const count = dims.reduce((p, d) => p * Math.max(0, d), 1);
      return count * unitWeight(args[0]) > MAX_BUILT_WEIGHT ? tooBig : null;
    }
    case 'format': {
      const fmt = stringLiteral(args[0]);
      if (fmt === null) return 'its format string is not a literal';
      return formatWidthsBounded(fmt) ? null : tooBig;
    }
    default: {
      // replace(s, from, to), regexp_replace(s, pattern, replacement [, …])
      const replacement = classifyOperand(args[2]);
      if (replacement.kind !== 'constant') return 'its replacement is not a constant';
      return replacement.weight > MAX_REPLACEMENT_WEIGHT + 2
        ? `its replacement is longer than ${MAX_REPLACEMENT_WEIGHT} characters`
        : null;
    }
  }
}

/** Weight of the repeated unit: a constant's text length, anything else a parameter's. */
function unitWeight(node: unknown): number {
  const c = classifyOperand(node);
  return c.kind === 'constant' ? Math.max(1, c.weight - 2) : PARAM_WEIGHT;
}

/** `n`, `'n'`, `n::int` → n; anything else (column, parameter, expression) → null. */
function integerLiteral(node: unknown): number | null {
  if (!isRecord(node)) return null;
  if (isRecord(node.TypeCast)) return integerLiteral(node.TypeCast.arg);
  const c = node.A_Const;
  if (!isRecord(c)) return null;
  if (isRecord(c.ival)) {
    const v = c.ival.ival;
    return v === undefined ? 0 : typeof v === 'number' ? v : null;
  }
  const text = isRecord(c.fval) ? c.fval.fval : isRecord(c.sval) ? c.sval.sval : undefined;
  if (typeof text !== 'string' || !/^\s*[+-]?\d+(\.\d*)?\s*$/.test(text)) return null;
  const v = Math.round(Number(text));
  return Number.isFinite(v) ? v : null;
}

/** `ARRAY[n, m]` or `'{n,m}'` (possibly cast) of integer literals → [n, m]; else null. */
function literalDimensions(node: unknown): number[] | null {
  if (!isRecord(node)) return null;
  if (isRecord(node.TypeCast)) return literalDimensions(node.TypeCast.arg);
  if (isRecord(node.A_ArrayExpr)) {
    const elements = node.A_ArrayExpr.elements;
    if (!Array.isArray(elements) || elements.length === 0) return null;
    const out: number[] = [];
    for (const e of elements) {
      const n = integerLiteral(e);
      if (n === null) return null;
      out.push(n);
    }
    return out;
  }
  const text = stringLiteral(node);
  if (text === null || !/^\s*\{\s*[+-]?\d+(\s*,\s*[+-]?\d+)*\s*\}\s*$/.test(text)) return null;
  return text
    .replace(/[{}\s]/g, '')
    .split(',')
    .map((s) => Number(s));
}

function stringLiteral(node: unknown): string | null {
  if (!isRecord(node)) return null;
  if (isRecord(node.TypeCast)) return stringLiteral(node.TypeCast.arg);
  const c = node.A_Const;
  const s = isRecord(c) && isRecord(c.sval) ? c.sval.sval : undefined;
  return typeof s === 'string' ? s : null;
}

/**
 * True when every conversion of a `format` string (`%[position][flags][width]type`, PostgreSQL
 * docs §9.4.1) has no `*` width and a width of at most {@link MAX_BUILT_WEIGHT}.
 */
function formatWidthsBounded(fmt: string): boolean {
  for (let i = fmt.indexOf('%'); i !== -1; i = fmt.indexOf('%', i + 1)) {
    if (fmt[i + 1] === '%') {
      i += 1;
      continue;
    }
    const spec = /^%(\d+\$)?(-*)(\*(\d+\$)?|\d+)?/.exec(fmt.slice(i));
    const width = spec?.[3];
    if (width === undefined) continue;
    if (width.startsWith('*')) return false;
    if (Number(width) > MAX_BUILT_WEIGHT) return false;
  }
  return true;
}

/** Types whose values are padded to their length modifier: `char(n)` (bpchar, blanks), `bit(n)`. */
const PADDED_TYPES: ReadonlySet<string> = new Set(['bpchar', 'bit']);

/**
 * The width a cast to `char(n)`/`bit(n)` pads a value to (n; 0 for other types or no
 * modifier), from a raw `TypeName` body. `'x'::char(10485760)` is a 10 MB value.
 */
function paddedWidth(typeName: unknown): number {
  if (!isRecord(typeName)) return 0;
  const name = lastName(typeName.names);
  if (name === null || !PADDED_TYPES.has(name) || !Array.isArray(typeName.typmods)) return 0;
  let width = 0;
  for (const m of typeName.typmods) width = Math.max(width, integerLiteral(m) ?? Infinity);
  return width;
}

/**
 * Decides whether a type name with a length modifier is bounded: `char(n)`/`bit(n)` pad every
 * value cast to them to n characters or bits (PostgreSQL docs §8.3, §8.10; at most 10,485,760
 * and 83,886,080), so n must be an integer literal of at most {@link MAX_BUILT_WEIGHT}. `body`
 * is a raw `TypeName` body. Returns null when bounded, else the reason. Pure; never throws.
 */
export function paddedTypeVerdict(body: Record<string, unknown>): string | null {
  return paddedWidth(body) > MAX_BUILT_WEIGHT
    ? `its length pads every value beyond ${MAX_BUILT_WEIGHT} characters`
    : null;
}

/** Functions (PostgreSQL docs §9.19, §9.7.3) whose result is an array. */
const ARRAY_FUNCTIONS: ReadonlySet<string> = new Set([
  'array_agg',
  'array_fill',
  'array_cat',
  'array_append',
  'array_prepend',
  'array_remove',
  'array_replace',
  'string_to_array',
  'regexp_split_to_array',
  'regexp_match',
]);

/**
 * True when a raw expression is an array by its spelling: `ARRAY[…]`, `ARRAY(SELECT …)`, a cast
 * to an array type (`::text[]`, `::_text`), a call of an array function (`array_agg`,
 * `string_to_array`, …), a scalar subquery selecting one of these, `COALESCE` or `||` over one.
 * Used for `jsonb - text[]` (`jsonb_delete_array` in `jsonfuncs.c` compares every key of the
 * object with every element of the array without an interrupt check: measured, a 20,000-key
 * object minus a 20,000-element array runs 5.6 s and ignores a 1 s timeout). Without types, a
 * column of a CTE or subquery is not recognised (see the README). Pure; never throws.
 */
export function isArraySpelling(node: unknown): boolean {
  if (!isRecord(node)) return false;
  if (isRecord(node.A_ArrayExpr)) return true;
  const cast = node.TypeCast;
  if (isRecord(cast)) {
    const tn = cast.typeName;
    if (isRecord(tn) && Array.isArray(tn.arrayBounds) && tn.arrayBounds.length > 0) return true;
    const name = isRecord(tn) ? lastName(tn.names) : null;
    return name?.startsWith('_') === true || isArraySpelling(cast.arg);
  }
  const call = node.FuncCall;
  if (isRecord(call)) {
    const name = lastName(call.funcname);
    return name !== null && ARRAY_FUNCTIONS.has(name);
  }
  const sub = node.SubLink;
  if (isRecord(sub)) {
    if (sub.subLinkType === 'ARRAY_SUBLINK') return true;
    const select = isRecord(sub.subselect) ? sub.subselect.SelectStmt : undefined;
    const targets = isRecord(select) && Array.isArray(select.targetList) ? select.targetList : [];
    const first: unknown = targets[0];
    return (
      targets.length === 1 &&
      isRecord(first) &&
      isRecord(first.ResTarget) &&
      isArraySpelling(first.ResTarget.val)
    );
  }
  const coalesce = node.CoalesceExpr;
  if (isRecord(coalesce) && Array.isArray(coalesce.args))
    return coalesce.args.some(isArraySpelling);
  const expr = node.A_Expr;
  if (isRecord(expr) && operatorName(expr.name) === '||') {
    return isArraySpelling(expr.lexpr) || isArraySpelling(expr.rexpr);
  }
  return false;
}
