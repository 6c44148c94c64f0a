import {
  ALLOW,
  type Authorization,
  allow,
  type Decision,
  deny,
  ErrorCode,
  type PolicyContext,
  type Tool,
  ToolError,
} from '@hardened-mcp/core';
import { z } from 'zod';
import { describeTable, listSchemas, listTables } from './catalog.js';
import {
  CATALOG_CHECK_ON_GENERIC_PLAN,
  catalogCheckQueries,
  decideCatalogCheck,
} from './catalog-check.js';
import type { PostgresSettings } from './config.js';
import { type PgHandle, queryExtended, withTransaction } from './database.js';
import {
  type GuardOk,
  identifierArg,
  kit,
  sqlValueArg,
  statementRef,
  statementType,
} from './define.js';
import { BUILTIN_FUNCTION_ALLOWLIST, isDeniedFunctionName } from './function-allowlist.js';
import { columnsOfGeneric, prepareGeneric } from './generic-plan.js';
import { readCursor, type SqlValue } from './query.js';
import { createSavedQueryTools } from './saved-queries.js';
import type { GenericStatement, SqlGuardClient } from './sql-guard-client.js';
import { createTablePolicy, type TablePolicy } from './table-policy.js';
import { createWriteTools } from './writes.js';

const sqlArg = z
  .string()
  .min(1)
  .max(100_000)
  .describe('One SQL SELECT statement. Use $1, $2, … for values and pass them in params.');
const paramsArg = z.array(sqlValueArg).max(100).describe('Values bound to $1…$n, in order.');

/**
 * The SQL walls of `postgres_query`, `postgres_explain` and saved read queries, as one policy
 * step: the real PostgreSQL parser's verdict (see sql-guard.ts) plus the parameter count. The
 * accepted verdict is what the step authorizes: `execute` gets it as `ctx.authorized`. Checks are
 * shared fairly between principals (the caller's principal goes to the checker pool). With
 * `generic`, the verdict also carries the constants-as-parameters form of the statement (for
 * `postgres_explain`).
 */
export function createSqlPolicy(guard: SqlGuardClient, generic = false) {
  return async (
    input: {
      sql: string;
      params?: readonly SqlValue[] | undefined;
    },
    ctx: PolicyContext,
  ): Promise<Authorization<GuardOk & { readonly generic?: GenericStatement }>> => {
    const principal = ctx.identity.principal;
    const verdict = generic
      ? await guard.checkGeneric(input.sql, principal)
      : await guard.check(input.sql, principal);
    if (!verdict.ok) return deny(ErrorCode.PolicyDenied, verdict.message);
    const given = input.params?.length ?? 0;
    if (verdict.paramCount !== given) {
      return deny(
        ErrorCode.InvalidInput,
        `the statement uses ${verdict.paramCount} parameter(s) ($1…$n) but ${given} value(s) were given`,
      );
    }
    return allow(verdict);
  };
}

/** Picks the schema argument or the first allowed schema, and checks it. */
function schemaDecision(tables: TablePolicy, schema: string | undefined): Decision {
  const s = schema ?? tables.schemas[0]!;
  return tables.schemaAllowed(s)
    ? ALLOW
    : deny(ErrorCode.PolicyDenied, `schema ${s} is not in the allowed schemas`);
}

/**
 * Declares every tool of the Postgres connector as data. The core decides which are enabled
 * (mode, allowlist, credentials) and runs each call through the pipeline. Async because saved
 * read queries are checked by the SQL guard at startup.
 *
 * @throws StartupError when a saved read query fails the SQL walls.
 */
export async function createPostgresTools(
  settings: PostgresSettings,
  guard: SqlGuardClient,
  options: { readonly classifying?: boolean | undefined } = {},
): Promise<Tool<PgHandle>[]> {
  const tables = createTablePolicy(settings);
  // With classification labels, the query's columns are resolved by the planner over the
  // statement's generic form (plan-columns.ts), so the verdict carries that form too.
  const sqlPolicy = createSqlPolicy(guard, options.classifying === true);
  const explainPolicy = createSqlPolicy(guard, true);
  const extraFunctions = new Set(settings.functions.allow);
  const isAllowedFunction = (name: string) =>
    !isDeniedFunctionName(name) &&
    (BUILTIN_FUNCTION_ALLOWLIST.has(name) || extraFunctions.has(name));
  const fetchRows = settings.fetchRows;

  const listSchemasTool = kit.read({
    name: 'list_schemas',
    title: 'List schemas',
    description: 'Lists the database schemas this server may read.',
    output: 'table',
    input: z.strictObject({}),
    async execute(_input, ctx) {
      const rows = await withTransaction(
        ctx.client,
        { readOnly: true, signal: ctx.signal, identity: ctx.identity },
        (c) => listSchemas(c, tables.schemas),
      );
      return {
        kind: 'table',
        columns: [
          { name: 'schema', type: 'name' },
          { name: 'description', type: 'text' },
        ],
        rows: rows.map((r) => [r.schema, r.description]),
        truncated: false,
      };
    },
  });

  const listTablesTool = kit.read({
    name: 'list_tables',
    title: 'List tables',
    description: `Lists the tables and views of a schema that this server may read (default schema: ${tables.schemas[0]}), with planner row estimates.`,
    output: 'table',
    input: z.strictObject({ schema: identifierArg.optional() }),
    policy: (input) => schemaDecision(tables, input.schema),
    async execute(input, ctx) {
      const schema = input.schema ?? tables.schemas[0]!;
      const rows = await withTransaction(
        ctx.client,
        { readOnly: true, signal: ctx.signal, identity: ctx.identity },
        (c) => listTables(c, schema),
      );
      const visible = rows.filter((r) => tables.readable(schema, r.table));
      return {
        kind: 'table',
        columns: [
          { name: 'table', type: 'name' },
          { name: 'kind', type: 'text' },
          { name: 'row_estimate', type: 'int8' },
          { name: 'description', type: 'text' },
        ],
        rows: visible.map((r) => [r.table, r.kind, r.rowEstimate, r.description]),
        truncated: false,
      };
    },
  });

  const describeTableTool = kit.read({
    name: 'describe_table',
    title: 'Describe a table',
    description:
      'Describes a table or view: columns (type, nullability, default), primary key, foreign keys, indexes and the planner row estimate.',
    output: 'json',
    input: z.strictObject({ schema: identifierArg.optional(), table: identifierArg }),
    policy(input) {
      const d = schemaDecision(tables, input.schema);
      if (!d.ok) return d;
      const schema = input.schema ?? tables.schemas[0]!;
      return tables.readable(schema, input.table)
        ? ALLOW
        : deny(
            ErrorCode.PolicyDenied,
            `table ${schema}.${input.table} is not in the allowed tables`,
          );
    },
    async execute(input, ctx) {
      const schema = input.schema ?? tables.schemas[0]!;
      const d = await withTransaction(
        ctx.client,
        { readOnly: true, signal: ctx.signal, identity: ctx.identity },
        (c) => describeTable(c, schema, input.table),
      );
      if (!d)
        throw new ToolError(
          ErrorCode.UpstreamError,
          `table ${schema}.${input.table} does not exist or is not readable`,
        );
      return { kind: 'json', data: { ...d }, rowCount: d.columns.length };
    },
  });

  const queryTool = kit.read({
    name: 'query',
    title: 'Run a read-only SQL query',
    description:
      'Runs ONE read-only SQL SELECT statement (WITH, UNION, VALUES allowed) and returns rows. ' +
      'Pass values as params ($1, $2, …), never inline. Only allowed schemas/tables and a set of side-effect-free functions may be used. ' +
      `The statement runs in a READ ONLY transaction with a ${settings.statementTimeoutMs} ms statement timeout; results are capped (see truncated).`,
    output: 'table',
    input: z.strictObject({
      sql: sqlArg,
      params: paramsArg.optional(),
      maxRows: z
        .int()
        .min(1)
        .max(100_000)
        .optional()
        .describe('Rows to return at most (capped by the server).'),
    }),
    policy: sqlPolicy,
    resource: { ...statementType, of: (_input, verdict) => statementRef(verdict) },
    async execute(input, ctx) {
      const verdict = ctx.authorized;
      const result = await withTransaction(
        ctx.client,
        {
          readOnly: true,
          signal: ctx.signal,
          principal: ctx.identity.principal,
          identity: ctx.identity,
          // The catalog check rides in the round trip that opens the transaction.
          first: () => catalogCheckQueries(verdict, tables),
          firstOnGenericPlan: CATALOG_CHECK_ON_GENERIC_PLAN,
        },
        async (c, checked) => {
          decideCatalogCheck(checked, verdict, tables, isAllowedFunction);
          let limits = ctx.limits;
          const classification = ctx.classification;
          if (classification) {
            // Column-level classification before execution: every column the statement can
            // read, resolved by the planner; a column above the caller's clearance refuses the
            // call before the statement runs.
            const generic = verdict.generic;
            if (!generic)
              throw new ToolError(ErrorCode.Internal, 'internal error; see the server log', {
                cause: new Error('query verdict without its generic form'),
              });
            limits = await classification.classify(await columnsOfGeneric(c, generic));
          }
          return readCursor(c, input.sql, input.params ?? [], {
            maxRows: Math.min(input.maxRows ?? 100, limits.maxRows),
            maxBytes: limits.maxBytes,
            fetchRows,
          });
        },
      );
      return { kind: 'table', ...result };
    },
  });

  const explainTool = kit.read({
    name: 'explain',
    title: 'Explain a query plan',
    description:
      "Shows the planner's plan (EXPLAIN, FORMAT JSON, never ANALYZE: nothing is executed) for a statement postgres_query would accept.",
    output: 'json',
    input: z.strictObject({ sql: sqlArg, params: paramsArg.optional() }),
    policy: explainPolicy,
    resource: { ...statementType, of: (_input, verdict) => statementRef(verdict) },
    async execute(_input, ctx) {
      const verdict = ctx.authorized;
      const generic = verdict.generic;
      if (!generic)
        throw new ToolError(ErrorCode.Internal, 'internal error; see the server log', {
          cause: new Error('explain verdict without its generic form'),
        });
      // Nothing from the client is evaluated: every constant of the accepted SELECT is a
      // parameter (generic-sql.ts) and the plan is generic (plan_cache_mode force_generic_plan,
      // built without parameter values, PostgreSQL docs §19.7.4 and PREPARE), so the planner
      // folds no client value and its estimators compare none against statistics. The EXECUTE
      // arguments are NULL literals. EXPLAIN without ANALYZE only plans; it runs in a READ ONLY
      // transaction as the read role. DEALLOCATE drops the prepared statement; if it is left
      // (a failure), the connection is destroyed, and the per-call reset would destroy a
      // connection that still held it (database.ts, READ_END_SQL).
      const plan = await withTransaction(
        ctx.client,
        {
          readOnly: true,
          signal: ctx.signal,
          principal: ctx.identity.principal,
          identity: ctx.identity,
          first: () => catalogCheckQueries(verdict, tables),
          firstOnGenericPlan: CATALOG_CHECK_ON_GENERIC_PLAN,
        },
        async (c, checked) => {
          decideCatalogCheck(checked, verdict, tables, isAllowedFunction);
          // A plan names the columns it reads (and their statistics): classified like a query,
          // before it is built.
          if (ctx.classification)
            await ctx.classification.classify(await columnsOfGeneric(c, generic));
          await prepareGeneric(c, generic, [
            "SELECT pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)",
          ]);
          const args =
            generic.paramCount > 0
              ? `(${Array.from({ length: generic.paramCount }, () => 'NULL').join(', ')})`
              : '';
          const r = await queryExtended<{ 'QUERY PLAN': unknown }>(
            c,
            `EXPLAIN (FORMAT JSON, VERBOSE false, COSTS true) EXECUTE hmcp_explain${args}`,
            [],
          );
          await c.query('DEALLOCATE hmcp_explain');
          return r.rows[0]?.['QUERY PLAN'];
        },
      );
      // Capped before redaction: the pipeline redacts what is returned.
      const size = Buffer.byteLength(JSON.stringify(plan) ?? '', 'utf8');
      if (size > ctx.limits.maxBytes)
        throw new ToolError(
          ErrorCode.LimitExceeded,
          `the plan is ${size} bytes, more than the ${ctx.limits.maxBytes}-byte output cap`,
        );
      return { kind: 'json', data: { plan } };
    },
  });

  return [
    listSchemasTool,
    listTablesTool,
    describeTableTool,
    queryTool,
    explainTool,
    ...(await createSavedQueryTools(settings, tables, guard, isAllowedFunction)),
    ...createWriteTools(settings, tables),
  ];
}
