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
 * is a value built in the query and is refused, whatever its spelling.
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
    case 'TypeCast':
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
