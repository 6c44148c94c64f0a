/**
 * Parser-based read-only SQL guard.
 *
 * The SQL text is parsed with libpg-query (the real PostgreSQL 18 raw parser compiled to
 * WASM), and the raw parse tree is checked against a fail-closed specification: every AST
 * node type and every field that may occur must be explicitly known here, otherwise the
 * query is rejected. On top of that structural check the guard enforces:
 *
 * 1. exactly one statement;
 * 2. that statement is a SelectStmt (SELECT, WITH ... SELECT, set operations, VALUES, TABLE);
 * 3. no SELECT ... INTO, no locking clause (FOR UPDATE/SHARE/...), no data-modifying CTE;
 * 4. every function (FuncCall, ROWS FROM, TABLESAMPLE method, schema-qualified OPERATOR())
 *    is allowlisted (see ./function-allowlist.ts);
 * 5. every relation (RangeVar) passes the schema/table policy;
 * 6. $n parameters are counted.
 *
 * The guard is one layer of defence. The executor must still run the query in a READ ONLY
 * transaction, as a least-privilege role, with statement_timeout and search_path pinned to
 * the allowed schemas, because the raw parse tree cannot see catalog-dependent behaviour:
 * attribute-notation function calls (`t.fn` = `fn(t)`), user-defined operators/casts, and
 * which schema an unqualified relation resolves to.
 */
import { loadModule, parseSync, scanSync } from 'libpg-query';
import {
  BUILTIN_FUNCTION_ALLOWLIST,
  isDeniedFunctionName,
  TABLESAMPLE_METHOD_ALLOWLIST,
} from './function-allowlist.js';
import {
  classifyOperand,
  isArraySpelling,
  MAX_BUILT_WEIGHT,
  MAX_PARAM_REFERENCES,
  type OperandClass,
  paddedTypeVerdict,
  type StoredColumn,
  UNINTERRUPTIBLE_OPERATORS,
  uninterruptibleVerdict,
  valueBuilderVerdict,
} from './uninterruptible.js';

/**
 * What a query is allowed to touch. Names are compared exactly (case-sensitively) with what
 * the PostgreSQL parser produces, i.e. lower case for unquoted identifiers.
 */
export interface SqlGuardPolicy {
  /** schemas a query may read from (e.g. ['public']) */
  readonly allowedSchemas: readonly string[];
  /** if set, only these tables (schema-qualified 'public.customer' or bare 'customer' meaning any allowed schema) */
  readonly allowedTables?: readonly string[] | undefined;
  /** tables never readable even if their schema is allowed */
  readonly deniedTables?: readonly string[] | undefined;
  /** extra function names the operator allows on top of the built-in allowlist (lower-case, optionally schema-qualified) */
  readonly extraFunctions?: readonly string[] | undefined;
}

/**
 * A relation (table, view, ...) read by an accepted query. `schema` is null when the query
 * did not qualify the name; the caller must resolve it against the catalog (with
 * search_path set to the allowed schemas) and re-check the policy. CTE references are
 * never reported.
 */
export interface RelationRef {
  readonly schema: string | null;
  readonly name: string;
}

/** Machine-readable reason a query was rejected. */
export type SqlGuardErrorCode =
  | 'sql_parse_error'
  | 'sql_not_single_statement'
  | 'sql_not_read_only'
  | 'sql_function_denied'
  | 'sql_relation_denied';

/**
 * Result of {@link checkReadOnlySql}.
 * - `ok: true`: `relations` are the distinct non-CTE relations and `functions` the distinct
 *   called functions / TABLESAMPLE methods (bare name, or `schema.name` for operator-allowed
 *   qualified functions), both in order of first appearance in the SQL text; `paramCount` is
 *   the highest `$n` used (0 if none).
 * - `ok: false`: `code` says which rule failed; `message` is a stable, sanitized sentence
 *   that may name the offending construct, function or relation but never echoes the SQL.
 */
export type SqlGuardDecision =
  | {
      ok: true;
      relations: readonly RelationRef[];
      functions: readonly string[];
      paramCount: number;
      /**
       * Trailing names of qualified column references (`t.name`) and field selections
       * (`(expr).name`). PostgreSQL reads `x.name` as the call `name(x)` when `x` has no
       * column `name` (docs §8.16.5, §10.3 "functional notation"), so the executor must check
       * each against the catalog: a real column of a referenced relation, or an allowed function.
       */
      attributeNames: readonly string[];
      /** Type names used in casts and declarations, as written (`'x'::t`, `null::schema.t`). */
      typeNames: readonly (readonly string[])[];
      /**
       * Operator names used (`=`, `||`, `##>`). Unqualified operators resolve through search_path,
       * so one defined in an allowed schema runs its function unseen: the executor refuses any
       * name that exists outside pg_catalog.
       */
      operatorNames: readonly string[];
      /**
       * Every attribute-notation name with what qualifies it: `qualifier` is the first name of a
       * two-part column reference (`c.email` → `c`), null when the name follows an expression
       * (`(expr).name`) or a longer chain (`s.t.name`). The executor resolves the qualifier
       * through `relationAliases` to decide whether `name` is a column of that very relation.
       */
      attributeRefs: readonly AttributeRef[];
      /** Range names of base relations: the alias, or the relation name when it has none. */
      relationAliases: readonly RelationAlias[];
      /**
       * Range names that do not denote a base relation (subquery, function, join and CTE
       * aliases): what their columns are is not known from the catalog alone.
       */
      opaqueAliases: readonly string[];
    }
  | { ok: false; code: SqlGuardErrorCode; message: string };

/** One attribute-notation name (see `attributeRefs` in {@link SqlGuardDecision}). */
export interface AttributeRef {
  readonly qualifier: string | null;
  readonly name: string;
}

/** A base relation's range name in the query (see `relationAliases` in {@link SqlGuardDecision}). */
export interface RelationAlias {
  readonly alias: string;
  readonly schema: string | null;
  readonly name: string;
}

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

/** Inputs longer than this are rejected before parsing (characters). */
const MAX_SQL_LENGTH = 1_000_000;

/**
 * Upper bound for the token-based nesting estimate (see {@link estimateNesting}).
 *
 * libpg-query serialises the parse tree recursively inside WASM. A deep enough tree (about
 * 2,300 nested scalar subqueries, or about 9,600 chained `+`) overflows the JS/WASM stack
 * with a RangeError, and every such overflow leaks emscripten shadow stack: after a couple
 * of dozen the module starts returning garbage, throwing "memory access out of bounds" or
 * spinning forever. The estimate of the worst pattern found at overflow was ~6,900, so the
 * limit below keeps a >3x safety margin while being far above any realistic query.
 */
const MAX_NESTING_ESTIMATE = 2_000;

/** C0 control characters (other than TAB, LF, CR) that libpg-query's scanSync JSON output cannot carry. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const SCAN_UNSAFE_CONTROL_CHARS = /[\u0001-\u0008\u000b\u000c\u000e-\u001f]/g;

/** Defensive cap on walked AST depth (the walker is iterative, so this is not a stack limit). */
const MAX_AST_DEPTH = 20_000;

/** PostgreSQL's wire protocol carries at most 65535 bind parameters (Bind message Int16 count). */
const MAX_PARAM_NUMBER = 65_535;

// ---------------------------------------------------------------------------------------
// Parser lifecycle
// ---------------------------------------------------------------------------------------

let parserReady = false;
let parserLoading: Promise<void> | undefined;
/** Set once the WASM parser has thrown a stack overflow / runtime trap; it is then untrusted. */
let parserFaulted = false;

/**
 * Loads the libpg-query WASM parser. Idempotent and safe to call concurrently: every call
 * awaits the same load. Rejects with the loader's error if the WASM module cannot be
 * instantiated (a later call retries).
 */
export async function initSqlGuard(): Promise<void> {
  if (parserReady) return;
  parserLoading ??= loadModule().then(
    () => {
      parserReady = true;
    },
    (err: unknown) => {
      parserLoading = undefined;
      throw err;
    },
  );
  await parserLoading;
}

// ---------------------------------------------------------------------------------------
// Public entry point
// ---------------------------------------------------------------------------------------

/** Options of {@link checkReadOnlySql}. */
export interface SqlGuardOptions {
  /**
   * The statement is only planned, never executed (`postgres_explain`'s constants-as-parameters
   * form): the size of constant operands of uninterruptible operators is not limited, as no
   * value is evaluated. Values built in the query are refused all the same. Default false.
   */
  readonly planOnly?: boolean | undefined;
}

/**
 * Decides whether `sql` is a single read-only SELECT that respects `policy`.
 *
 * Never throws for bad SQL: every rejection is returned as `{ ok: false, code, message }`:
 * - `sql_parse_error`: syntax error ("SQL could not be parsed: <reason> at character <n>"),
 *   NUL characters, unpaired surrogates, more than 1,000,000 characters, nesting too deep to
 *   parse safely, `$0` or `$n` above 65535, or the parser was disabled by an earlier WASM fault;
 * - `sql_not_single_statement`: empty/comment-only input or more than one statement;
 * - `sql_not_read_only`: not a SELECT, SELECT INTO, FOR UPDATE/SHARE, data-modifying CTE,
 *   or an AST node/field this guard does not know (fail closed);
 * - `sql_function_denied`: function, TABLESAMPLE method or schema-qualified operator not allowed,
 *   or an operator PostgreSQL does not interrupt (`@>`, `<@`, `&&`, `?|`, `?&`) over a value built
 *   in the query or over two large constants, a value builder (`repeat`, `lpad`, `rpad`,
 *   `array_fill`, `format`, `replace`, `regexp_replace`) whose result is not bounded by literal
 *   sizes, or more than 256 repeated `$n` references (see ./uninterruptible.ts);
 * - `sql_relation_denied`: relation outside the allowed schemas/tables, denied, or db-qualified.
 *
 * Throws `Error` if {@link initSqlGuard} has not completed, and `TypeError` if `policy` is
 * malformed (non-array fields, empty names, names with more than one dot).
 *
 * Rules and their sources (PostgreSQL docs): statement kinds per Part VI "SQL Commands";
 * SELECT INTO and the locking clause per the SELECT reference page ("The Locking Clause");
 * data-modifying WITH per §7.8.4; functions per Chapter 9 (see ./function-allowlist.ts);
 * positional parameters `$n` per §4.2.2 and the PREPARE reference page.
 */
export function checkReadOnlySql(
  sql: string,
  policy: SqlGuardPolicy,
  options: SqlGuardOptions = {},
): SqlGuardDecision {
  if (!parserReady) {
    throw new Error('initSqlGuard() must be awaited before checkReadOnlySql() is called');
  }
  const compiled = compilePolicy(policy);

  if (typeof sql !== 'string') return reject('sql_parse_error', 'SQL must be a string');
  if (parserFaulted) return PARSER_FAULT_DECISION;
  if (sql.length > MAX_SQL_LENGTH) {
    return reject('sql_parse_error', `SQL is too long (maximum ${MAX_SQL_LENGTH} characters)`);
  }
  if (sql.includes('\0')) {
    // The WASM parser reads a NUL-terminated C string: "SELECT 1\0; DROP TABLE t" would be
    // checked as "SELECT 1" only.
    return reject('sql_parse_error', 'SQL must not contain NUL characters');
  }
  if (!sql.isWellFormed()) {
    return reject('sql_parse_error', 'SQL contains invalid Unicode (unpaired surrogate)');
  }
  if (sql.trim() === '') {
    return reject(
      'sql_not_single_statement',
      'SQL is empty; exactly one SELECT statement is required',
    );
  }

  // 1. Lexical pre-check: bound nesting before the recursive WASM serializer sees it.
  let lexError = false;
  try {
    // scanSync's JSON output does not escape most C0 control characters (a literal containing
    // \x01 makes it throw). They are whitespace (\v, \f) or only legal inside literals and
    // quoted identifiers, so blanking them cannot change the token structure.
    const estimate = estimateNesting(scanSync(sql.replace(SCAN_UNSAFE_CONTROL_CHARS, ' ')).tokens);
    if (estimate > MAX_NESTING_ESTIMATE) {
      return reject('sql_parse_error', 'SQL is too deeply nested or too complex to check');
    }
  } catch (err) {
    if (isWasmFault(err)) return markParserFaulted();
    // scanSync reports lexer errors (unterminated literal, ...) as a JSON SyntaxError without
    // position; let the parser produce the real error below.
    lexError = true;
  }

  // 2. Parse.
  let tree: unknown;
  try {
    tree = parseSync(sql);
  } catch (err) {
    if (isWasmFault(err)) return markParserFaulted();
    return parseErrorDecision(err);
  }
  if (lexError) return reject('sql_parse_error', 'SQL could not be parsed');

  // 3. Statement count and kind.
  const stmts = isRecord(tree) ? tree.stmts : undefined;
  if (!isRecord(tree) || (stmts !== undefined && !Array.isArray(stmts))) {
    return reject('sql_parse_error', 'SQL could not be parsed (unexpected parser output)');
  }
  const statements: unknown[] = stmts ?? [];
  if (statements.length === 0) {
    return reject(
      'sql_not_single_statement',
      'SQL is empty; exactly one SELECT statement is required',
    );
  }
  if (statements.length > 1) {
    return reject('sql_not_single_statement', 'only one statement is allowed');
  }
  const rawStmt = statements[0];
  if (!isRecord(rawStmt) || Object.keys(rawStmt).some((k) => !RAW_STMT_KEYS.has(k))) {
    return reject('sql_parse_error', 'SQL could not be parsed (unexpected parser output)');
  }
  const stmtType = wrappedNodeType(rawStmt.stmt);
  if (stmtType !== 'SelectStmt') {
    return reject('sql_not_read_only', statementKindMessage(stmtType));
  }

  // 4. Walk the whole tree.
  const checker = new TreeChecker(compiled);
  try {
    checker.run(rawStmt.stmt);
    checker.checkUninterruptible(options.planOnly === true);
  } catch (err) {
    if (err instanceof GuardViolation) return reject(err.code, err.message);
    if (err instanceof RangeError) {
      return reject('sql_parse_error', 'SQL is too deeply nested or too complex to check');
    }
    throw err;
  }
  return {
    ok: true,
    relations: checker.relations(),
    functions: checker.functions(),
    paramCount: checker.paramCount,
    attributeNames: [...checker.attributeNames],
    typeNames: [...checker.typeNames.values()],
    operatorNames: [...checker.operatorNames],
    attributeRefs: checker.attributeRefs(),
    relationAliases: checker.relationAliases,
    opaqueAliases: checker.opaqueAliases(),
  };
}

// ---------------------------------------------------------------------------------------
// Decisions and messages
// ---------------------------------------------------------------------------------------

function reject(code: SqlGuardErrorCode, message: string): SqlGuardDecision {
  return { ok: false, code, message };
}

const PARSER_FAULT_DECISION: SqlGuardDecision = Object.freeze({
  ok: false,
  code: 'sql_parse_error',
  message: 'the SQL parser hit an internal error and was disabled; restart the server',
});

/** True once the WASM parser faulted in this process; its state is no longer trustworthy. */
export function isSqlGuardFaulted(): boolean {
  return parserFaulted;
}

function markParserFaulted(): SqlGuardDecision {
  parserFaulted = true;
  return PARSER_FAULT_DECISION;
}

/** Stack overflow or WASM trap (RuntimeError) inside libpg-query: the module state is no longer trustworthy. */
function isWasmFault(err: unknown): boolean {
  if (err instanceof RangeError) return true;
  return err instanceof Error && err.name === 'RuntimeError';
}

/**
 * Turns a libpg-query SqlError into a sanitized message. The parser's text often ends with
 * `at or near "<token>"` (which can contain the rest of an unterminated literal, i.e. most of
 * the input), and a few messages append names after a colon; both are dropped and replaced
 * by the 1-based character position (PostgreSQL's own error-position convention).
 */
function parseErrorDecision(err: unknown): SqlGuardDecision {
  const details = isRecord(err) && isRecord(err.sqlDetails) ? err.sqlDetails : undefined;
  if (details === undefined) return reject('sql_parse_error', 'SQL could not be parsed');
  const rawMessage = typeof details.message === 'string' ? details.message : '';
  let core = rawMessage;
  for (const cut of [' at or near ', ':', '"']) {
    const idx = core.indexOf(cut);
    if (idx >= 0) core = core.slice(0, idx);
  }
  core = core.trim();
  if (!/^[A-Za-z][A-Za-z0-9 ,.'()/*_-]{0,119}$/.test(core)) core = 'syntax error';
  const pos = details.cursorPosition;
  const where =
    typeof pos === 'number' && Number.isInteger(pos) && pos >= 0 && !core.endsWith('end of input')
      ? ` at character ${pos + 1}`
      : '';
  return reject('sql_parse_error', `SQL could not be parsed: ${core}${where}`);
}

/** Human label per non-SELECT statement node (PostgreSQL docs, Part VI "SQL Commands"). */
const STATEMENT_LABELS: ReadonlyMap<string, string> = new Map([
  ['InsertStmt', 'INSERT'],
  ['UpdateStmt', 'UPDATE'],
  ['DeleteStmt', 'DELETE'],
  ['MergeStmt', 'MERGE'],
  ['CopyStmt', 'COPY'],
  ['DoStmt', 'DO'],
  ['CallStmt', 'CALL'],
  ['VariableSetStmt', 'SET/RESET'],
  ['VariableShowStmt', 'SHOW'],
  ['TransactionStmt', 'transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/...)'],
  ['PrepareStmt', 'PREPARE'],
  ['ExecuteStmt', 'EXECUTE'],
  ['DeallocateStmt', 'DEALLOCATE'],
  ['ExplainStmt', 'EXPLAIN'],
  ['ListenStmt', 'LISTEN'],
  ['NotifyStmt', 'NOTIFY'],
  ['UnlistenStmt', 'UNLISTEN'],
  ['LockStmt', 'LOCK'],
  ['VacuumStmt', 'VACUUM/ANALYZE'],
  ['DiscardStmt', 'DISCARD'],
  ['CheckPointStmt', 'CHECKPOINT'],
  ['GrantStmt', 'GRANT/REVOKE'],
  ['GrantRoleStmt', 'GRANT/REVOKE'],
  ['CreateTableAsStmt', 'CREATE TABLE AS / CREATE MATERIALIZED VIEW'],
  ['DeclareCursorStmt', 'DECLARE CURSOR'],
  ['FetchStmt', 'FETCH/MOVE'],
  ['ClosePortalStmt', 'CLOSE'],
  ['LoadStmt', 'LOAD'],
  ['ClusterStmt', 'CLUSTER'],
  ['ReindexStmt', 'REINDEX'],
  ['RefreshMatViewStmt', 'REFRESH MATERIALIZED VIEW'],
  ['TruncateStmt', 'TRUNCATE'],
  ['ConstraintsSetStmt', 'SET CONSTRAINTS'],
  ['AlterSystemStmt', 'ALTER SYSTEM'],
]);

function statementKindMessage(nodeType: string | undefined): string {
  const label = nodeType === undefined ? undefined : STATEMENT_LABELS.get(nodeType);
  if (label !== undefined) {
    return `${label} statements are not allowed; only read-only SELECT queries are permitted`;
  }
  if (
    nodeType !== undefined &&
    /^(Create|Alter|Drop|Rename|Comment|SecLabel|Define|Import|Reassign|Composite|Rule|View|Index)/.test(
      nodeType,
    )
  ) {
    return 'DDL statements are not allowed; only read-only SELECT queries are permitted';
  }
  return 'this statement type is not allowed; only read-only SELECT queries are permitted';
}

/** Labels for AST nodes that are known but deliberately unsupported. */
const UNSUPPORTED_NODE_LABELS: ReadonlyMap<string, string> = new Map([
  ['XmlExpr', 'XML functions'],
  ['XmlSerialize', 'XMLSERIALIZE'],
  ['RangeTableFunc', 'XMLTABLE'],
  ['RangeTableFuncCol', 'XMLTABLE'],
  ['SetToDefault', 'DEFAULT'],
  ['MergeSupportFunc', 'MERGE_ACTION()'],
  ['CurrentOfExpr', 'WHERE CURRENT OF'],
  ['MultiAssignRef', 'multi-column assignment'],
  ['malformed node', 'malformed parse tree'],
]);

const DML_NODE_TYPES: ReadonlySet<string> = new Set([
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
]);

/** Renders an identifier for a message: plain if it is a simple lower-case name, else quoted, escaped and truncated. */
function displayIdent(name: string): string {
  if (/^[a-z_][a-z0-9_$]{0,62}$/.test(name)) return name;
  const chars = Array.from(name);
  const shown = chars
    .slice(0, 63)
    .map((ch) => (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(ch) ? '?' : ch))
    .join('')
    .replaceAll('"', '""');
  return `"${shown}${chars.length > 63 ? '...' : ''}"`;
}

function displayQualified(parts: readonly string[]): string {
  return parts.map(displayIdent).join('.');
}

function displayOperator(parts: readonly string[]): string {
  const op = parts[parts.length - 1] ?? '';
  const shownOp = /^[+\-*/<>=~!@#%^&|`?]{1,63}$/.test(op) ? op : displayIdent(op);
  return `OPERATOR(${[...parts.slice(0, -1).map(displayIdent), shownOp].join('.')})`;
}

// ---------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------

interface TableEntry {
  readonly schema: string | null;
  readonly name: string;
}

interface CompiledPolicy {
  readonly allowedSchemas: ReadonlySet<string>;
  readonly allowedTables: readonly TableEntry[] | null;
  readonly deniedTables: readonly TableEntry[];
  readonly extraFunctions: ReadonlySet<string>;
}

function compilePolicy(policy: SqlGuardPolicy): CompiledPolicy {
  if (!isRecord(policy)) throw new TypeError('SqlGuardPolicy must be an object');
  const allowedSchemas = stringList(policy.allowedSchemas, 'allowedSchemas', false);
  if (allowedSchemas === undefined) {
    throw new TypeError('SqlGuardPolicy.allowedSchemas must be an array of strings');
  }
  for (const schema of allowedSchemas) {
    if (schema === '')
      throw new TypeError('SqlGuardPolicy.allowedSchemas entries must be non-empty');
  }
  const allowedTables = stringList(policy.allowedTables, 'allowedTables', true);
  const deniedTables = stringList(policy.deniedTables, 'deniedTables', true) ?? [];
  const extraFunctions = stringList(policy.extraFunctions, 'extraFunctions', true) ?? [];
  for (const fn of extraFunctions) parseDottedName(fn, 'extraFunctions');
  return {
    allowedSchemas: new Set(allowedSchemas),
    allowedTables: allowedTables?.map((t) => parseDottedName(t, 'allowedTables')) ?? null,
    deniedTables: deniedTables.map((t) => parseDottedName(t, 'deniedTables')),
    extraFunctions: new Set(extraFunctions),
  };
}

function stringList(
  value: unknown,
  field: string,
  optional: boolean,
): readonly string[] | undefined {
  if (value === undefined && optional) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new TypeError(`SqlGuardPolicy.${field} must be an array of strings`);
  }
  return value as readonly string[];
}

function parseDottedName(entry: string, field: string): TableEntry {
  const parts = entry.split('.');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    throw new TypeError(`SqlGuardPolicy.${field} entries must be 'name' or 'schema.name'`);
  }
  return parts.length === 2
    ? { schema: parts[0] ?? null, name: parts[1] ?? '' }
    : { schema: null, name: parts[0] ?? '' };
}

// ---------------------------------------------------------------------------------------
// Lexical nesting estimate
// ---------------------------------------------------------------------------------------

interface LexToken {
  readonly text: string;
  readonly tokenName: string;
  readonly keywordName: string;
}

const CHAIN_KEYWORDS: ReadonlySet<string> = new Set(['union', 'intersect', 'except', 'join']);

/**
 * Conservative upper-bound proxy for parse-tree depth, computed from the flat token stream
 * (scanSync does not recurse). Each open bracket adds 2; within each bracket level every
 * token since the last comma adds 1 (commas separate list siblings, which are flat in the
 * tree; operator chains, CASE nests, casts, NOT/IS chains are not); set operations and JOINs
 * build left-deep trees across commas, so they are counted globally.
 */
function estimateNesting(tokens: readonly LexToken[]): number {
  const levels: number[] = [0];
  let chain = 0;
  let sum = 0; // sum of `levels`
  let max = 0;
  for (const token of tokens) {
    if (token.tokenName === 'C_COMMENT' || token.tokenName === 'SQL_COMMENT') continue;
    const text = token.text;
    if (text === '(' || text === '[') {
      levels.push(0);
    } else if (text === ')' || text === ']') {
      if (levels.length > 1) sum -= levels.pop() ?? 0;
    } else if (text === ',') {
      sum -= levels[levels.length - 1] ?? 0;
      levels[levels.length - 1] = 0;
    } else if (text === ';') {
      levels.length = 1;
      levels[0] = 0;
      sum = 0;
    } else {
      levels[levels.length - 1] = (levels[levels.length - 1] ?? 0) + 1;
      sum += 1;
      if (token.keywordName !== 'NO_KEYWORD' && CHAIN_KEYWORDS.has(text.toLowerCase())) chain += 1;
    }
    const estimate = sum + 2 * levels.length + chain;
    if (estimate > max) max = estimate;
  }
  return max;
}

// ---------------------------------------------------------------------------------------
// AST specification (fail closed)
// ---------------------------------------------------------------------------------------

/**
 * How a field of a raw-parse-tree node is encoded in libpg-query's JSON:
 * - 'scalar': string/number/boolean (enums are strings; zero/false/empty values are omitted);
 * - 'node': a wrapped Node `{ "<Type>": {...} }` or `{}` for a NULL placeholder;
 * - 'nodes': an array of wrapped Nodes (may contain `{}` placeholders);
 * - '@<Type>': an unwrapped struct of that type (e.g. SelectStmt.withClause is a bare WithClause).
 */
type FieldKind = 'scalar' | 'node' | 'nodes' | `@${string}`;

function spec(fields: Record<string, FieldKind>): ReadonlyMap<string, FieldKind> {
  return new Map(Object.entries(fields));
}

const LOC = 'scalar';

/**
 * Every node type a read-only SELECT may contain, with every field it may carry (field lists
 * from @pgsql/types 18 / PostgreSQL's parsenodes.h and primnodes.h, restricted to what the
 * raw parser fills in). Anything else is rejected.
 */
const NODE_SPECS: ReadonlyMap<string, ReadonlyMap<string, FieldKind>> = new Map([
  [
    'SelectStmt',
    spec({
      distinctClause: 'nodes',
      intoClause: '@IntoClause',
      targetList: 'nodes',
      fromClause: 'nodes',
      whereClause: 'node',
      groupClause: 'nodes',
      groupDistinct: 'scalar',
      havingClause: 'node',
      windowClause: 'nodes',
      valuesLists: 'nodes',
      sortClause: 'nodes',
      limitOffset: 'node',
      limitCount: 'node',
      limitOption: 'scalar',
      lockingClause: 'nodes',
      withClause: '@WithClause',
      op: 'scalar',
      all: 'scalar',
      larg: '@SelectStmt',
      rarg: '@SelectStmt',
    }),
  ],
  ['WithClause', spec({ ctes: 'nodes', recursive: 'scalar', location: LOC })],
  [
    'CommonTableExpr',
    spec({
      ctename: 'scalar',
      aliascolnames: 'nodes',
      ctematerialized: 'scalar',
      ctequery: 'node',
      search_clause: '@CTESearchClause',
      cycle_clause: '@CTECycleClause',
      location: LOC,
    }),
  ],
  [
    'CTESearchClause',
    spec({
      search_col_list: 'nodes',
      search_breadth_first: 'scalar',
      search_seq_column: 'scalar',
      location: LOC,
    }),
  ],
  [
    'CTECycleClause',
    spec({
      cycle_col_list: 'nodes',
      cycle_mark_column: 'scalar',
      cycle_mark_value: 'node',
      cycle_mark_default: 'node',
      cycle_path_column: 'scalar',
      location: LOC,
    }),
  ],
  ['ResTarget', spec({ name: 'scalar', indirection: 'nodes', val: 'node', location: LOC })],
  [
    'A_Const',
    spec({
      ival: '@Integer',
      fval: '@Float',
      boolval: '@Boolean',
      sval: '@String',
      bsval: '@BitString',
      isnull: 'scalar',
      location: LOC,
    }),
  ],
  ['Integer', spec({ ival: 'scalar' })],
  ['Float', spec({ fval: 'scalar' })],
  ['Boolean', spec({ boolval: 'scalar' })],
  ['String', spec({ sval: 'scalar' })],
  ['BitString', spec({ bsval: 'scalar' })],
  ['List', spec({ items: 'nodes' })],
  ['A_Star', spec({})],
  ['ColumnRef', spec({ fields: 'nodes', location: LOC })],
  ['ParamRef', spec({ number: 'scalar', location: LOC })],
  [
    'A_Expr',
    spec({
      kind: 'scalar',
      name: 'nodes',
      lexpr: 'node',
      rexpr: 'node',
      rexpr_list_start: 'scalar',
      rexpr_list_end: 'scalar',
      location: LOC,
    }),
  ],
  ['BoolExpr', spec({ boolop: 'scalar', args: 'nodes', location: LOC })],
  ['NullTest', spec({ arg: 'node', nulltesttype: 'scalar', argisrow: 'scalar', location: LOC })],
  ['BooleanTest', spec({ arg: 'node', booltesttype: 'scalar', location: LOC })],
  ['TypeCast', spec({ arg: 'node', typeName: '@TypeName', location: LOC })],
  [
    'TypeName',
    spec({
      names: 'nodes',
      typeOid: 'scalar',
      setof: 'scalar',
      pct_type: 'scalar',
      typmods: 'nodes',
      typemod: 'scalar',
      arrayBounds: 'nodes',
      location: LOC,
    }),
  ],
  ['CollateClause', spec({ arg: 'node', collname: 'nodes', location: LOC })],
  [
    'FuncCall',
    spec({
      funcname: 'nodes',
      args: 'nodes',
      agg_order: 'nodes',
      agg_filter: 'node',
      over: '@WindowDef',
      agg_within_group: 'scalar',
      agg_star: 'scalar',
      agg_distinct: 'scalar',
      func_variadic: 'scalar',
      funcformat: 'scalar',
      location: LOC,
    }),
  ],
  ['NamedArgExpr', spec({ arg: 'node', name: 'scalar', argnumber: 'scalar', location: LOC })],
  ['A_Indices', spec({ is_slice: 'scalar', lidx: 'node', uidx: 'node' })],
  ['A_Indirection', spec({ arg: 'node', indirection: 'nodes' })],
  [
    'A_ArrayExpr',
    spec({ elements: 'nodes', list_start: 'scalar', list_end: 'scalar', location: LOC }),
  ],
  [
    'SubLink',
    spec({
      subLinkType: 'scalar',
      subLinkId: 'scalar',
      testexpr: 'node',
      operName: 'nodes',
      subselect: 'node',
      location: LOC,
    }),
  ],
  ['CaseExpr', spec({ arg: 'node', args: 'nodes', defresult: 'node', location: LOC })],
  ['CaseWhen', spec({ expr: 'node', result: 'node', location: LOC })],
  ['RowExpr', spec({ args: 'nodes', row_format: 'scalar', colnames: 'nodes', location: LOC })],
  ['CoalesceExpr', spec({ args: 'nodes', location: LOC })],
  ['MinMaxExpr', spec({ op: 'scalar', args: 'nodes', location: LOC })],
  ['SQLValueFunction', spec({ op: 'scalar', typmod: 'scalar', location: LOC })],
  ['GroupingFunc', spec({ args: 'nodes', location: LOC })],
  ['GroupingSet', spec({ kind: 'scalar', content: 'nodes', location: LOC })],
  [
    'SortBy',
    spec({
      node: 'node',
      sortby_dir: 'scalar',
      sortby_nulls: 'scalar',
      useOp: 'nodes',
      location: LOC,
    }),
  ],
  [
    'WindowDef',
    spec({
      name: 'scalar',
      refname: 'scalar',
      partitionClause: 'nodes',
      orderClause: 'nodes',
      frameOptions: 'scalar',
      startOffset: 'node',
      endOffset: 'node',
      location: LOC,
    }),
  ],
  [
    'RangeVar',
    spec({
      catalogname: 'scalar',
      schemaname: 'scalar',
      relname: 'scalar',
      inh: 'scalar',
      relpersistence: 'scalar',
      alias: '@Alias',
      location: LOC,
    }),
  ],
  ['Alias', spec({ aliasname: 'scalar', colnames: 'nodes' })],
  [
    'JoinExpr',
    spec({
      jointype: 'scalar',
      isNatural: 'scalar',
      larg: 'node',
      rarg: 'node',
      usingClause: 'nodes',
      join_using_alias: '@Alias',
      quals: 'node',
      alias: '@Alias',
      rtindex: 'scalar',
    }),
  ],
  ['RangeSubselect', spec({ lateral: 'scalar', subquery: 'node', alias: '@Alias' })],
  [
    'RangeFunction',
    spec({
      lateral: 'scalar',
      ordinality: 'scalar',
      is_rowsfrom: 'scalar',
      functions: 'nodes',
      alias: '@Alias',
      coldeflist: 'nodes',
    }),
  ],
  [
    'RangeTableSample',
    spec({ relation: 'node', method: 'nodes', args: 'nodes', repeatable: 'node', location: LOC }),
  ],
  [
    'ColumnDef',
    spec({
      colname: 'scalar',
      typeName: '@TypeName',
      is_local: 'scalar',
      collClause: '@CollateClause',
      location: LOC,
    }),
  ],
  // SQL/JSON (PostgreSQL docs §9.16.3 SQL/JSON Query Functions, §9.16.4 JSON_TABLE)
  ['JsonFormat', spec({ format_type: 'scalar', encoding: 'scalar', location: LOC })],
  ['JsonReturning', spec({ format: '@JsonFormat', typid: 'scalar', typmod: 'scalar' })],
  ['JsonValueExpr', spec({ raw_expr: 'node', formatted_expr: 'node', format: '@JsonFormat' })],
  ['JsonOutput', spec({ typeName: '@TypeName', returning: '@JsonReturning' })],
  ['JsonArgument', spec({ val: '@JsonValueExpr', name: 'scalar' })],
  [
    'JsonFuncExpr',
    spec({
      op: 'scalar',
      column_name: 'scalar',
      context_item: '@JsonValueExpr',
      pathspec: 'node',
      passing: 'nodes',
      output: '@JsonOutput',
      on_empty: '@JsonBehavior',
      on_error: '@JsonBehavior',
      wrapper: 'scalar',
      quotes: 'scalar',
      location: LOC,
    }),
  ],
  ['JsonBehavior', spec({ btype: 'scalar', expr: 'node', coerce: 'scalar', location: LOC })],
  [
    'JsonTablePathSpec',
    spec({ string: 'node', name: 'scalar', name_location: 'scalar', location: LOC }),
  ],
  [
    'JsonTable',
    spec({
      context_item: '@JsonValueExpr',
      pathspec: '@JsonTablePathSpec',
      passing: 'nodes',
      columns: 'nodes',
      on_error: '@JsonBehavior',
      alias: '@Alias',
      lateral: 'scalar',
      location: LOC,
    }),
  ],
  [
    'JsonTableColumn',
    spec({
      coltype: 'scalar',
      name: 'scalar',
      typeName: '@TypeName',
      pathspec: '@JsonTablePathSpec',
      format: '@JsonFormat',
      wrapper: 'scalar',
      quotes: 'scalar',
      columns: 'nodes',
      on_empty: '@JsonBehavior',
      on_error: '@JsonBehavior',
      location: LOC,
    }),
  ],
  ['JsonKeyValue', spec({ key: 'node', value: '@JsonValueExpr' })],
  [
    'JsonParseExpr',
    spec({ expr: '@JsonValueExpr', output: '@JsonOutput', unique_keys: 'scalar', location: LOC }),
  ],
  ['JsonScalarExpr', spec({ expr: 'node', output: '@JsonOutput', location: LOC })],
  ['JsonSerializeExpr', spec({ expr: '@JsonValueExpr', output: '@JsonOutput', location: LOC })],
  [
    'JsonObjectConstructor',
    spec({
      exprs: 'nodes',
      output: '@JsonOutput',
      absent_on_null: 'scalar',
      unique: 'scalar',
      location: LOC,
    }),
  ],
  [
    'JsonArrayConstructor',
    spec({ exprs: 'nodes', output: '@JsonOutput', absent_on_null: 'scalar', location: LOC }),
  ],
  [
    'JsonArrayQueryConstructor',
    spec({
      query: 'node',
      output: '@JsonOutput',
      format: '@JsonFormat',
      absent_on_null: 'scalar',
      location: LOC,
    }),
  ],
  [
    'JsonAggConstructor',
    spec({
      output: '@JsonOutput',
      agg_filter: 'node',
      agg_order: 'nodes',
      over: '@WindowDef',
      location: LOC,
    }),
  ],
  [
    'JsonObjectAgg',
    // `constructor` is a real field name here; a Map avoids Object.prototype clashes.
    new Map<string, FieldKind>([
      ['constructor', '@JsonAggConstructor'],
      ['arg', '@JsonKeyValue'],
      ['absent_on_null', 'scalar'],
      ['unique', 'scalar'],
    ]),
  ],
  [
    'JsonArrayAgg',
    new Map<string, FieldKind>([
      ['constructor', '@JsonAggConstructor'],
      ['arg', '@JsonValueExpr'],
      ['absent_on_null', 'scalar'],
    ]),
  ],
  [
    'JsonIsPredicate',
    spec({
      expr: 'node',
      format: '@JsonFormat',
      item_type: 'scalar',
      unique_keys: 'scalar',
      location: LOC,
    }),
  ],
]);

const RAW_STMT_KEYS: ReadonlySet<string> = new Set(['stmt', 'stmt_location', 'stmt_len']);

const LOCK_LABELS: ReadonlyMap<string, string> = new Map([
  ['LCS_FORUPDATE', 'FOR UPDATE'],
  ['LCS_FORNOKEYUPDATE', 'FOR NO KEY UPDATE'],
  ['LCS_FORSHARE', 'FOR SHARE'],
  ['LCS_FORKEYSHARE', 'FOR KEY SHARE'],
]);

// ---------------------------------------------------------------------------------------
// Tree walk
// ---------------------------------------------------------------------------------------

class GuardViolation extends Error {
  readonly code: SqlGuardErrorCode;
  constructor(code: SqlGuardErrorCode, message: string) {
    super(message);
    this.name = 'GuardViolation';
    this.code = code;
  }
}

type Scope = ReadonlySet<string>;

interface WorkItem {
  /** null: `value` is a wrapped Node; otherwise the struct type of the unwrapped `value`. */
  readonly type: string | null;
  readonly value: unknown;
  /** CTE names visible at this point. */
  readonly scope: Scope;
  readonly depth: number;
}

const EMPTY_SCOPE: Scope = new Set();

class TreeChecker {
  paramCount = 0;
  /** See `attributeNames` in {@link SqlGuardDecision}. */
  readonly attributeNames = new Set<string>();
  /** See `operatorNames` in {@link SqlGuardDecision}. */
  readonly operatorNames = new Set<string>();
  /** See `typeNames` in {@link SqlGuardDecision}; keyed by the dotted name. */
  readonly typeNames = new Map<string, readonly string[]>();
  /** See `relationAliases` in {@link SqlGuardDecision}. */
  readonly relationAliases: RelationAlias[] = [];
  /** Every `Alias` node's name, counted (base relations' aliases included). */
  private readonly aliasCounts = new Map<string, number>();
  /** How many of {@link aliasCounts} belong to base relations (RangeVar). */
  private readonly relationAliasCounts = new Map<string, number>();
  /** CTE names declared anywhere in the statement. */
  private readonly cteNames = new Set<string>();
  /** Keyed by `qualifier NUL name` (qualifier '' when null). */
  private readonly attributeRefMap = new Map<string, AttributeRef>();
  /** key -> relation and the smallest parser location (offset in the SQL) it was seen at */
  private readonly relationMap = new Map<string, { ref: RelationRef; at: number }>();
  private readonly functionMap = new Map<string, number>();
  private readonly stack: WorkItem[] = [];
  /** Uses of {@link UNINTERRUPTIBLE_OPERATORS}, checked once the range names are known. */
  private readonly uninterruptible: { op: string; operands: OperandClass[] }[] = [];
  /** The first unbounded value-builder call (see ./uninterruptible.ts), checked after the operators. */
  private builderDenied: GuardViolation | null = null;
  /** Number of `$n` references, and the distinct numbers among them. */
  private paramReferences = 0;
  private readonly paramNumbers = new Set<unknown>();
  /** True once a FROM item that is not a base relation (subquery, function, CTE, table function) was seen. */
  private derivedRanges = false;

  constructor(private readonly policy: CompiledPolicy) {}

  /**
   * Refuses an operator PostgreSQL does not interrupt over an operand built in the query, then
   * (unless `planOnly`) an unbounded value builder (`repeat`, `lpad`, `array_fill`, …) and more
   * than `MAX_PARAM_REFERENCES` repeated `$n` references (see ./uninterruptible.ts). Throws
   * {@link GuardViolation} `sql_function_denied`.
   */
  checkUninterruptible(planOnly: boolean): void {
    const opaque = new Set(this.opaqueAliases());
    const base = new Set(this.relationAliases.map((r) => r.alias));
    const isStored = (c: StoredColumn): boolean =>
      c.qualifier === null
        ? !this.derivedRanges
        : base.has(c.qualifier) && !opaque.has(c.qualifier);
    for (const use of this.uninterruptible) {
      const why = uninterruptibleVerdict(use.operands, isStored, planOnly);
      if (why !== null) throw uninterruptibleDenied(use.op, why);
    }
    if (planOnly) return; // nothing is evaluated: a generic plan's sizes are parameters
    if (this.builderDenied !== null) throw this.builderDenied;
    if (this.paramReferences - this.paramNumbers.size > MAX_PARAM_REFERENCES) {
      throw new GuardViolation(
        'sql_function_denied',
        `a statement may repeat parameter references at most ${MAX_PARAM_REFERENCES} times: each stands for up to 64 KiB, and PostgreSQL cannot interrupt the work on a value assembled from them`,
      );
    }
  }

  attributeRefs(): readonly AttributeRef[] {
    return [...this.attributeRefMap.values()];
  }

  opaqueAliases(): readonly string[] {
    const out = new Set(this.cteNames);
    for (const [name, n] of this.aliasCounts)
      if (n > (this.relationAliasCounts.get(name) ?? 0)) out.add(name);
    return [...out];
  }

  relations(): readonly RelationRef[] {
    return [...this.relationMap.values()].sort((a, b) => a.at - b.at).map((r) => r.ref);
  }

  functions(): readonly string[] {
    return [...this.functionMap.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  }

  run(root: unknown): void {
    this.stack.push({ type: null, value: root, scope: EMPTY_SCOPE, depth: 0 });
    for (let item = this.stack.pop(); item !== undefined; item = this.stack.pop()) {
      if (item.depth > MAX_AST_DEPTH) {
        throw new GuardViolation(
          'sql_parse_error',
          'SQL is too deeply nested or too complex to check',
        );
      }
      if (item.type === null) {
        if (!isRecord(item.value)) throw unsupported('malformed node');
        const keys = Object.keys(item.value);
        if (keys.length === 0) continue; // `{}` is libpg-query's NULL placeholder inside lists
        const [type] = keys;
        if (keys.length !== 1 || type === undefined) throw unsupported('malformed node');
        this.visit(type, item.value[type], item.scope, item.depth);
      } else {
        this.visit(item.type, item.value, item.scope, item.depth);
      }
    }
  }

  private visit(type: string, body: unknown, scope: Scope, depth: number): void {
    const fields = NODE_SPECS.get(type);
    if (fields === undefined) throw nodeNotAllowed(type);
    if (!isRecord(body)) throw unsupported(type);
    for (const key of Object.keys(body)) {
      if (!fields.has(key)) throw unsupported(type);
    }

    switch (type) {
      case 'SelectStmt':
        this.visitSelect(body, fields, scope, depth);
        return;
      case 'RangeVar':
        this.checkRelation(body, scope);
        break;
      case 'FuncCall': {
        const parts = nameList(body.funcname, type);
        this.checkFunction(parts, locationOf(body));
        const name = parts[parts.length - 1];
        const why = name === undefined ? null : valueBuilderVerdict(name, body);
        if (why !== null && this.builderDenied === null) {
          this.builderDenied = builderDenied(`function ${name ?? ''}`, why);
        }
        break;
      }
      case 'RangeTableSample':
        this.checkTablesampleMethod(nameList(body.method, type), locationOf(body));
        break;
      case 'A_Expr': {
        const parts = nameList(body.name, type);
        this.recordOperator(parts);
        const op = parts[parts.length - 1];
        if (
          op !== undefined &&
          (UNINTERRUPTIBLE_OPERATORS.has(op) || (op === '-' && isArraySpelling(body.rexpr)))
        ) {
          const operands = [body.lexpr, body.rexpr].filter((n) => n !== undefined);
          this.uninterruptible.push({ op, operands: operands.map(classifyOperand) });
        }
        for (const op of IMPLICIT_OPERATORS.get(String(body.kind)) ?? [])
          this.operatorNames.add(op);
        break;
      }
      case 'RangeSubselect':
      case 'RangeFunction':
      case 'RangeTableFunc':
      case 'JsonTable':
      case 'CommonTableExpr':
        this.derivedRanges = true;
        if (type === 'CommonTableExpr') checkCteQuery(body.ctequery);
        break;
      case 'CaseExpr':
        // `CASE x WHEN y` compares with the operator `=` looked up by name (docs §9.18.1).
        if (body.arg !== undefined) this.operatorNames.add('=');
        break;
      case 'JoinExpr':
        // USING and NATURAL joins compare with `=` looked up by name (SELECT reference, FROM clause).
        if (body.isNatural === true || body.usingClause !== undefined) this.operatorNames.add('=');
        break;
      case 'Alias':
        if (typeof body.aliasname === 'string')
          this.aliasCounts.set(body.aliasname, (this.aliasCounts.get(body.aliasname) ?? 0) + 1);
        break;
      case 'SubLink':
        if (body.operName !== undefined) {
          const parts = nameList(body.operName, type);
          this.recordOperator(parts);
          const op = parts[parts.length - 1];
          if (op !== undefined && UNINTERRUPTIBLE_OPERATORS.has(op)) {
            throw uninterruptibleDenied(op, 'its operand is built in the query (a subquery)');
          }
        }
        break;
      case 'SortBy':
        if (body.useOp !== undefined) this.recordOperator(nameList(body.useOp, type));
        break;
      case 'ParamRef':
        this.paramReferences += 1;
        this.paramNumbers.add(body.number);
        this.countParam(body.number);
        break;
      case 'ColumnRef':
        this.checkAttributeNames(body.fields, 1, qualifierOf(body.fields));
        break;
      case 'A_Indirection':
        this.checkAttributeNames(body.indirection, 0, null);
        break;
      case 'TypeName': {
        this.checkTypeName(body);
        const why = paddedTypeVerdict(body);
        if (why !== null && this.builderDenied === null) {
          this.builderDenied = builderDenied(`type ${lastTypeName(body)}`, why);
        }
        break;
      }
    }
    this.pushFields(type, body, fields, scope, depth, EMPTY_KEYS);
  }

  /** SELECT: reject INTO/locking, then walk with CTE scoping (PostgreSQL docs §7.8 WITH Queries). */
  private visitSelect(
    body: Record<string, unknown>,
    fields: ReadonlyMap<string, FieldKind>,
    scope: Scope,
    depth: number,
  ): void {
    if (body.intoClause !== undefined) {
      throw new GuardViolation('sql_not_read_only', 'SELECT ... INTO is not allowed');
    }
    const locking = body.lockingClause;
    if (locking !== undefined && (!Array.isArray(locking) || locking.length > 0)) {
      const first: unknown = Array.isArray(locking) ? locking[0] : undefined;
      const clause =
        isRecord(first) && isRecord(first.LockingClause) ? first.LockingClause : undefined;
      const strength =
        clause !== undefined && typeof clause.strength === 'string' ? clause.strength : '';
      const label = LOCK_LABELS.get(strength) ?? 'FOR UPDATE/SHARE';
      throw new GuardViolation('sql_not_read_only', `SELECT ... ${label} is not allowed`);
    }

    let innerScope = scope;
    const withClause = body.withClause;
    const ctePushes: WorkItem[] = [];
    if (withClause !== undefined) {
      const withFields = NODE_SPECS.get('WithClause');
      if (withFields === undefined || !isRecord(withClause)) throw unsupported('WithClause');
      for (const key of Object.keys(withClause)) {
        if (!withFields.has(key)) throw unsupported('WithClause');
      }
      const ctes = withClause.ctes;
      if (!Array.isArray(ctes)) throw unsupported('WithClause');
      const recursive = withClause.recursive === true;
      const names: string[] = [];
      const bodies: Record<string, unknown>[] = [];
      for (const cte of ctes) {
        const cteBody = isRecord(cte) ? cte.CommonTableExpr : undefined;
        if (!isRecord(cte) || Object.keys(cte).length !== 1 || !isRecord(cteBody)) {
          throw unsupported('CommonTableExpr');
        }
        if (typeof cteBody.ctename !== 'string') throw unsupported('CommonTableExpr');
        names.push(cteBody.ctename);
        this.cteNames.add(cteBody.ctename);
        bodies.push(cteBody);
      }
      innerScope = extendScope(scope, names);
      // Without RECURSIVE a CTE sees only the CTEs before it; with RECURSIVE it sees all of them
      // (PostgreSQL docs §7.8.2 Recursive Queries). A name that is not visible is a real table.
      bodies.forEach((cteBody, i) => {
        const cteScope = recursive ? innerScope : extendScope(scope, names.slice(0, i));
        ctePushes.push({
          type: 'CommonTableExpr',
          value: cteBody,
          scope: cteScope,
          depth: depth + 1,
        });
      });
    }

    // Push in reverse so the walk proceeds left to right: CTEs first, then the body.
    this.pushFields('SelectStmt', body, fields, innerScope, depth, WITH_KEY);
    for (let i = ctePushes.length - 1; i >= 0; i--) {
      const pushItem = ctePushes[i];
      if (pushItem !== undefined) this.stack.push(pushItem);
    }
  }

  private pushFields(
    type: string,
    body: Record<string, unknown>,
    fields: ReadonlyMap<string, FieldKind>,
    scope: Scope,
    depth: number,
    skip: ReadonlySet<string>,
  ): void {
    const pending: WorkItem[] = [];
    for (const [key, value] of Object.entries(body)) {
      if (skip.has(key)) continue;
      const kind = fields.get(key);
      if (kind === undefined) throw unsupported(type);
      if (kind === 'scalar') {
        if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
          throw unsupported(type);
        }
      } else if (kind === 'node') {
        pending.push({ type: null, value, scope, depth: depth + 1 });
      } else if (kind === 'nodes') {
        if (!Array.isArray(value)) throw unsupported(type);
        for (const element of value)
          pending.push({ type: null, value: element, scope, depth: depth + 1 });
      } else {
        pending.push({ type: kind.slice(1), value, scope, depth: depth + 1 });
      }
    }
    for (let i = pending.length - 1; i >= 0; i--) {
      const pushItem = pending[i];
      if (pushItem !== undefined) this.stack.push(pushItem);
    }
  }

  /** Relation policy (rule 5). */
  private checkRelation(body: Record<string, unknown>, scope: Scope): void {
    const { catalogname, schemaname, relname } = body;
    if (typeof relname !== 'string' || relname === '') throw unsupported('RangeVar');
    if (schemaname !== undefined && typeof schemaname !== 'string') throw unsupported('RangeVar');
    if (catalogname !== undefined && typeof catalogname !== 'string') throw unsupported('RangeVar');
    const schema = schemaname === undefined || schemaname === '' ? null : schemaname;

    if (catalogname !== undefined && catalogname !== '') {
      const shown = displayQualified([catalogname, ...(schema === null ? [] : [schema]), relname]);
      throw new GuardViolation(
        'sql_relation_denied',
        `relation ${shown} is not allowed: database-qualified names are not allowed`,
      );
    }
    if (schema === null && scope.has(relname)) return; // reference to a CTE in scope

    const shown = displayQualified(schema === null ? [relname] : [schema, relname]);
    if (schema !== null && !this.policy.allowedSchemas.has(schema)) {
      throw new GuardViolation(
        'sql_relation_denied',
        `relation ${shown} is not allowed: schema ${displayIdent(schema)} is not allowed`,
      );
    }
    const matches = (entry: TableEntry): boolean =>
      entry.name === relname &&
      (entry.schema === null || schema === null || entry.schema === schema);
    if (this.policy.deniedTables.some(matches)) {
      throw new GuardViolation('sql_relation_denied', `relation ${shown} is not allowed`);
    }
    if (this.policy.allowedTables !== null && !this.policy.allowedTables.some(matches)) {
      throw new GuardViolation(
        'sql_relation_denied',
        `relation ${shown} is not in the allowed tables`,
      );
    }
    const alias = isRecord(body.alias) ? body.alias.aliasname : undefined;
    if (typeof alias === 'string') {
      this.relationAliasCounts.set(alias, (this.relationAliasCounts.get(alias) ?? 0) + 1);
      this.relationAliases.push({ alias, schema, name: relname });
    } else {
      this.relationAliases.push({ alias: relname, schema, name: relname });
    }
    const key = `${schema ?? ''}\u0000${relname}`;
    const at = locationOf(body);
    const seen = this.relationMap.get(key);
    if (seen === undefined) this.relationMap.set(key, { ref: { schema, name: relname }, at });
    else if (at < seen.at) seen.at = at;
  }

  /** Function allowlist (rule 4). */
  private checkFunction(parts: readonly string[], at: number): void {
    const allowed = this.resolveAllowed(parts, BUILTIN_FUNCTION_ALLOWLIST);
    if (allowed === null) {
      throw new GuardViolation(
        'sql_function_denied',
        `function ${displayQualified(parts)} is not allowed`,
      );
    }
    this.recordFunction(allowed, at);
  }

  private recordFunction(name: string, at: number): void {
    const seen = this.functionMap.get(name);
    if (seen === undefined || at < seen) this.functionMap.set(name, at);
  }

  private checkTablesampleMethod(parts: readonly string[], at: number): void {
    const allowed = this.resolveAllowed(parts, TABLESAMPLE_METHOD_ALLOWLIST);
    if (allowed === null) {
      throw new GuardViolation(
        'sql_function_denied',
        `TABLESAMPLE method ${displayQualified(parts)} is not allowed`,
      );
    }
    this.recordFunction(allowed, at);
  }

  /** Returns the normalized name if allowed, else null. */
  private resolveAllowed(parts: readonly string[], builtins: ReadonlySet<string>): string | null {
    const name = parts[parts.length - 1];
    if (name === undefined || parts.length > 2 || isDeniedFunctionName(name)) return null;
    const schema = parts.length === 2 ? parts[0] : undefined;
    if (schema === undefined || schema === 'pg_catalog') {
      return builtins.has(name) || this.policy.extraFunctions.has(name) ? name : null;
    }
    const qualified = `${schema}.${name}`;
    return this.policy.extraFunctions.has(qualified) ? qualified : null;
  }

  /**
   * Attribute notation (rule 4, second half): in `a.b` or `(expr).b`, `b` may be a function
   * call `b(a)`. Denied function names are refused here; every other trailing name is returned
   * for the executor's catalog check. `minStrings`: how many name parts make it qualified.
   */
  private checkAttributeNames(list: unknown, skipFirst: number, qualifier: string | null): void {
    if (!Array.isArray(list)) return;
    // Every name after the first `skipFirst` may be a call: `(x).ts_stat.word` is
    // `word(ts_stat(x))`, and ending in `.*` or a subscript changes nothing.
    list.forEach((n, i) => {
      if (i < skipFirst) return;
      const name =
        isRecord(n) && isRecord(n.String) && typeof n.String.sval === 'string'
          ? n.String.sval
          : undefined;
      if (name === undefined) return;
      if (isDeniedFunctionName(name)) {
        throw new GuardViolation(
          'sql_function_denied',
          `function ${displayIdent(name)} is not allowed (attribute notation)`,
        );
      }
      this.attributeNames.add(name);
      const q = list.length === 2 && i === 1 ? qualifier : null;
      this.attributeRefMap.set(`${q ?? ''}\u0000${name}`, { qualifier: q, name });
    });
  }

  /**
   * Type names (casts, declarations): no reg* object-identifier types (they read the catalog of
   * every schema), no schema outside the allowed ones and pg_catalog, no row type of a denied table.
   */
  private checkTypeName(body: Record<string, unknown>): void {
    const parts = Array.isArray(body.names)
      ? body.names.map((n) =>
          isRecord(n) && isRecord(n.String) && typeof n.String.sval === 'string'
            ? n.String.sval
            : '?',
        )
      : [];
    const name = parts[parts.length - 1];
    if (name === undefined) return;
    const schema = parts.length >= 2 ? parts[parts.length - 2] : undefined;
    if (
      parts.length > 2 ||
      (schema !== undefined && schema !== 'pg_catalog' && !this.policy.allowedSchemas.has(schema))
    ) {
      throw new GuardViolation(
        'sql_relation_denied',
        `type ${displayQualified(parts)} is not allowed: schema not allowed`,
      );
    }
    if (REG_TYPES.has(name))
      throw new GuardViolation('sql_function_denied', `type ${displayIdent(name)} is not allowed`);
    const matches = (entry: TableEntry): boolean =>
      entry.name === name &&
      (entry.schema === null || schema === undefined || entry.schema === schema);
    if (this.policy.deniedTables.some(matches))
      throw new GuardViolation(
        'sql_relation_denied',
        `type ${displayQualified(parts)} is not allowed`,
      );
    if (schema !== 'pg_catalog') this.typeNames.set(parts.join('.'), parts);
  }

  /** Operators: only pg_catalog may qualify one; every name is reported for the catalog check. */
  private recordOperator(parts: readonly string[]): void {
    checkOperatorQualification(parts);
    const name = parts[parts.length - 1];
    if (name !== undefined) this.operatorNames.add(name);
  }

  /** Parameter count (rule 6). */
  private countParam(number: unknown): void {
    // libpg-query omits zero-valued fields, so `$0` arrives without `number`.
    const n = number === undefined ? 0 : number;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_PARAM_NUMBER) {
      throw new GuardViolation(
        'sql_parse_error',
        `parameter numbers must be between $1 and $${MAX_PARAM_NUMBER}`,
      );
    }
    if (n > this.paramCount) this.paramCount = n;
  }
}

const EMPTY_KEYS: ReadonlySet<string> = new Set();

/**
 * Operators that a construct compares with although its parse tree names another (BETWEEN is
 * rewritten to `>=`/`<=`, NOT BETWEEN to `<`/`>`): each is looked up by name through search_path
 * at parse analysis, so each goes to the catalog check like a written operator.
 */
const IMPLICIT_OPERATORS: ReadonlyMap<string, readonly string[]> = new Map([
  ['AEXPR_BETWEEN', ['>=', '<=', '<', '>']],
  ['AEXPR_NOT_BETWEEN', ['>=', '<=', '<', '>']],
  ['AEXPR_BETWEEN_SYM', ['>=', '<=', '<', '>']],
  ['AEXPR_NOT_BETWEEN_SYM', ['>=', '<=', '<', '>']],
]);

/** The qualifier of a two-part column reference `q.name`, else null. */
function qualifierOf(fields: unknown): string | null {
  if (!Array.isArray(fields) || fields.length !== 2) return null;
  const first: unknown = fields[0];
  return isRecord(first) && isRecord(first.String) && typeof first.String.sval === 'string'
    ? first.String.sval
    : null;
}

/**
 * Object-identifier types: casting text to them looks names up in every schema, and their output
 * prints the name of any object (docs §8.19). Array types (`_regclass`) are the same types in a
 * list; domains over any of them are refused by the catalog check.
 */
const REG_TYPES: ReadonlySet<string> = new Set(
  [
    'regclass',
    'regcollation',
    'regconfig',
    'regdictionary',
    'regnamespace',
    'regoper',
    'regoperator',
    'regproc',
    'regprocedure',
    'regrole',
    'regtype',
    'oid',
    'oidvector',
  ].flatMap((t) => [t, `_${t}`]),
);
const WITH_KEY: ReadonlySet<string> = new Set(['withClause']);

function extendScope(scope: Scope, names: readonly string[]): Scope {
  if (names.length === 0) return scope;
  return new Set([...scope, ...names]);
}

/** A CTE body must be a SELECT (PostgreSQL docs §7.8.4 Data-Modifying Statements in WITH). */
function checkCteQuery(query: unknown): void {
  const type = wrappedNodeType(query);
  if (type === 'SelectStmt') return;
  if (type !== undefined && DML_NODE_TYPES.has(type)) {
    throw new GuardViolation(
      'sql_not_read_only',
      'data-modifying statements inside WITH are not allowed',
    );
  }
  throw new GuardViolation('sql_not_read_only', 'only SELECT queries are allowed inside WITH');
}

/** Only pg_catalog may qualify an operator: `OPERATOR(public.=)` can run any function. */
function checkOperatorQualification(parts: readonly string[]): void {
  if (parts.length <= 1) return;
  if (parts.length === 2 && parts[0] === 'pg_catalog') return;
  throw new GuardViolation(
    'sql_function_denied',
    `operator ${displayOperator(parts)} is not allowed: only pg_catalog operators may be schema-qualified`,
  );
}

/** Extracts a qualified name from a list of String nodes. */
function nameList(value: unknown, owner: string): string[] {
  if (!Array.isArray(value) || value.length === 0) throw unsupported(owner);
  return value.map((item: unknown) => {
    const str = isRecord(item) ? item.String : undefined;
    if (!isRecord(item) || Object.keys(item).length !== 1 || !isRecord(str))
      throw unsupported(owner);
    const sval = str.sval ?? '';
    if (typeof sval !== 'string') throw unsupported(owner);
    return sval;
  });
}

function nodeNotAllowed(type: string): GuardViolation {
  if (DML_NODE_TYPES.has(type)) {
    return new GuardViolation('sql_not_read_only', 'data-modifying statements are not allowed');
  }
  if (type === 'IntoClause')
    return new GuardViolation('sql_not_read_only', 'SELECT ... INTO is not allowed');
  if (type === 'LockingClause') {
    return new GuardViolation('sql_not_read_only', 'SELECT ... FOR UPDATE/SHARE is not allowed');
  }
  if (type.endsWith('Stmt')) {
    return new GuardViolation(
      'sql_not_read_only',
      'nested statements other than SELECT are not allowed',
    );
  }
  return unsupported(type);
}

/**
 * The refusal of an operator PostgreSQL does not interrupt (see ./uninterruptible.ts): a stable
 * sentence naming only the operator.
 */
function uninterruptibleDenied(op: string, why: string): GuardViolation {
  return new GuardViolation(
    'sql_function_denied',
    `operator ${op} is not allowed here: PostgreSQL cannot interrupt it, and ${why}; compare a stored column with a literal or a parameter`,
  );
}

/**
 * The refusal of an unbounded value builder or padded type (see `valueBuilderVerdict` and
 * `paddedTypeVerdict` in ./uninterruptible.ts): a stable sentence naming only the function or type
 * (`what`: "function repeat", "type bpchar").
 */
function builderDenied(what: string, why: string): GuardViolation {
  return new GuardViolation(
    'sql_function_denied',
    `${what} is not allowed here: its result feeds work PostgreSQL cannot interrupt, and ${why}; use integer literals for sizes (at most ${MAX_BUILT_WEIGHT} characters)`,
  );
}

/** A `TypeName`'s last name part, for messages (`bpchar`, `bit`). */
function lastTypeName(body: Record<string, unknown>): string {
  const names = Array.isArray(body.names) ? body.names : [];
  const last: unknown = names[names.length - 1];
  const s = isRecord(last) && isRecord(last.String) ? last.String.sval : undefined;
  return typeof s === 'string' ? s : 'type';
}

function unsupported(type: string): GuardViolation {
  const label = UNSUPPORTED_NODE_LABELS.get(type) ?? displayIdent(type);
  return new GuardViolation('sql_not_read_only', `unsupported SQL construct: ${label}`);
}

/** Parser location (offset into the SQL) of a node; unknown locations sort last. */
function locationOf(body: Record<string, unknown>): number {
  const loc = body.location;
  return typeof loc === 'number' && loc >= 0 ? loc : Number.MAX_SAFE_INTEGER;
}

function wrappedNodeType(node: unknown): string | undefined {
  if (!isRecord(node)) return undefined;
  const keys = Object.keys(node);
  return keys.length === 1 ? keys[0] : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
