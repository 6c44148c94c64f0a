import {
  type Authorization,
  allow,
  deny,
  ErrorCode,
  StartupError,
  type Tool,
} from '@hardened-mcp/core';
import { z } from 'zod';
import {
  CATALOG_CHECK_ON_GENERIC_PLAN,
  catalogCheckQueries,
  decideCatalogCheck,
} from './catalog-check.js';
import type { PostgresSettings, SavedQuery, SavedQueryParam } from './config.js';
import { type PgHandle, queryExtended, withTransaction } from './database.js';
import { type GuardOk, kit, sqlValueArg, statementRef, statementType } from './define.js';
import { columnsOfGeneric } from './generic-plan.js';
import { readCursor, type SqlValue } from './query.js';
import type { SqlGuardClient } from './sql-guard-client.js';
import type { TablePolicy } from './table-policy.js';
import { checkWriteEffects, readTableCounters, sideEffectsNote } from './write-effects.js';

interface CompiledQuery {
  readonly name: string;
  readonly query: SavedQuery;
  /** Validates `params` (strict object) and yields values in `$1…$n` order. */
  readonly bind: (
    params: Readonly<Record<string, unknown>>,
  ) => { ok: true; values: SqlValue[] } | { ok: false; message: string };
}

/** A zod schema for one typed parameter, from its declared constraints. */
function paramSchema(p: SavedQueryParam): z.ZodType<SqlValue> {
  switch (p.type) {
    case 'string': {
      let s = z.string().max(p.maxLength);
      if (p.pattern !== undefined)
        s = s.regex(
          new RegExp(`^(?:${p.pattern})$`, 'u'),
          `must match the pattern of parameter ${p.name}`,
        );
      return p.enum
        ? s.refine((v) => p.enum!.includes(v), `must be one of ${p.enum.join(', ')}`)
        : s;
    }
    case 'integer': {
      let n = z.int();
      if (p.min !== undefined) n = n.min(p.min);
      if (p.max !== undefined) n = n.max(p.max);
      return n;
    }
    case 'number': {
      let n = z.number();
      if (p.min !== undefined) n = n.min(p.min);
      if (p.max !== undefined) n = n.max(p.max);
      return n;
    }
    case 'boolean':
      return z.boolean();
  }
}

function compile(name: string, query: SavedQuery): CompiledQuery {
  const shape: Record<string, z.ZodType> = {};
  for (const p of query.params)
    shape[p.name] = p.required ? paramSchema(p) : paramSchema(p).optional();
  const schema = z.strictObject(shape);
  return {
    name,
    query,
    bind(params) {
      const r = schema.safeParse(params);
      if (!r.success) {
        const first = r.error.issues[0];
        return {
          ok: false,
          message: `invalid params for ${name}: ${first ? `${first.path.join('.') || 'params'}: ${first.message}` : 'invalid'}`,
        };
      }
      const data = r.data as Record<string, SqlValue | undefined>;
      return { ok: true, values: query.params.map((p) => data[p.name] ?? null) };
    },
  };
}

function signature(q: CompiledQuery): string {
  const params = q.query.params
    .map((p) => {
      const range =
        p.min !== undefined || p.max !== undefined ? ` ${p.min ?? ''}..${p.max ?? ''}` : '';
      const options = p.enum ? ` one of ${p.enum.join('|')}` : '';
      return `${p.name}${p.required ? '' : '?'}: ${p.type}${range}${options}${p.description ? ` (${p.description})` : ''}`;
    })
    .join(', ');
  return `- ${q.name}(${params}): ${q.query.description}`;
}

/**
 * The shared half of both saved-query tools: the input schema (`name` from the given queries,
 * `params` as a record of bound values), the policy step that validates `params` against the
 * query's typed parameters, and the values it bound, read back by `execute`.
 */
function savedQueryBinding<Q extends CompiledQuery>(queries: readonly Q[]) {
  const byName = new Map(queries.map((q) => [q.name, q]));
  return {
    input: z.strictObject({
      name: z.enum(queries.map((q) => q.name) as [string, ...string[]]),
      params: z.record(z.string().max(63), sqlValueArg).default({}),
    }),
    find: (name: string) => byName.get(name),
    /** Binds `params` to the query's typed parameters; authorizes the query and its values. */
    policy(args: {
      name: string;
      params: Readonly<Record<string, unknown>>;
    }): Authorization<{ query: Q; values: SqlValue[] }> {
      const query = byName.get(args.name);
      if (!query) return deny(ErrorCode.InvalidInput, 'unknown saved query');
      const b = query.bind(args.params);
      if (!b.ok) return deny(ErrorCode.InvalidInput, b.message);
      return allow({ query, values: b.values });
    },
  };
}

/**
 * Saved queries: SQL the operator wrote in configuration, with typed parameters bound as
 * `$1…$n`. Read queries must pass the same SQL walls as `postgres_query` — checked at startup,
 * so a bad saved query refuses to start. Write queries (`access: write`) get their own write
 * tool, `postgres_run_saved_write_query`, which needs approval and caps affected rows.
 *
 * @throws StartupError when a read query fails the SQL walls or its `$n` count differs from its params.
 */
export async function createSavedQueryTools(
  settings: PostgresSettings,
  tables: TablePolicy,
  guard: SqlGuardClient,
  isAllowedFunction: (name: string) => boolean,
): Promise<Tool<PgHandle>[]> {
  const reads: (CompiledQuery & { verdict: GuardOk })[] = [];
  const writes: CompiledQuery[] = [];
  for (const [name, query] of Object.entries(settings.savedQueries)) {
    const compiled = compile(name, query);
    if (query.access === 'read') {
      const verdict = await guard.check(query.sql);
      if (!verdict.ok)
        throw new StartupError(
          `saved query ${name} is not an acceptable read-only statement: ${verdict.message}`,
        );
      if (verdict.paramCount !== query.params.length) {
        throw new StartupError(
          `saved query ${name} uses ${verdict.paramCount} parameter(s) but declares ${query.params.length}`,
        );
      }
      reads.push({ ...compiled, verdict });
    } else {
      writes.push(compiled);
    }
  }
  const tools: Tool<PgHandle>[] = [];
  if (reads.length > 0) {
    const saved = savedQueryBinding(reads);
    tools.push(
      kit.read({
        name: 'run_saved_query',
        title: 'Run a saved query',
        description: `Runs one of the operator's saved read-only queries by name with typed params:\n${reads.map(signature).join('\n')}`,
        output: 'table',
        input: saved.input,
        policy: saved.policy,
        resource: { ...statementType, of: (_args, a) => statementRef(a.query.verdict) },
        async execute(_args, ctx) {
          const { query: q, values } = ctx.authorized;
          const verdict = q.verdict;
          const result = await withTransaction(
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
              // Column-level classification as for postgres_query: the operator's own $n are the
              // generic plan's parameters.
              let limits = ctx.limits;
              if (ctx.classification)
                limits = await ctx.classification.classify(
                  await columnsOfGeneric(c, { sql: q.query.sql, paramCount: verdict.paramCount }),
                );
              return readCursor(c, q.query.sql, values, {
                maxRows: limits.maxRows,
                maxBytes: limits.maxBytes,
                fetchRows: settings.fetchRows,
              });
            },
          );
          return { kind: 'table', ...result, note: `Saved query ${q.name}.` };
        },
      }),
    );
  }
  if (writes.length > 0) {
    const saved = savedQueryBinding(writes);
    tools.push(
      kit.write({
        name: 'run_saved_write_query',
        title: 'Run a saved write query',
        description: `Runs one of the operator's saved write queries by name with typed params (needs approval; at most ${settings.maxAffectedRows} rows may change, otherwise it is rolled back):\n${writes.map(signature).join('\n')}`,
        output: 'json',
        input: saved.input,
        policy: saved.policy,
        describeChange: (args, { query }) =>
          `Run saved write query ${escapeForApproval(args.name)} (${escapeForApproval(query.query.description)}) with params ${describeValues(args.params)}.\n${sideEffectsNote(settings.maxAffectedRows)}`,
        async execute(_args, ctx) {
          const { query: q, values } = ctx.authorized;
          const affected = await withTransaction(
            ctx.client,
            {
              readOnly: false,
              signal: ctx.signal,
              principal: ctx.identity.principal,
              identity: ctx.identity,
            },
            async (c) => {
              const before = await readTableCounters(c);
              const r = await queryExtended(c, q.query.sql, values);
              // Every table it changed (cascades, triggers) must be writable; the cap counts all rows.
              const effects = await checkWriteEffects(c, {
                what: q.name,
                cap: settings.maxAffectedRows,
                reported: r.rowCount ?? 0,
                tables,
                before,
              });
              return effects.total;
            },
          );
          return { kind: 'json', data: { savedQuery: q.name, affectedRows: affected } };
        },
      }),
    );
  }
  return tools;
}

/**
 * Characters JSON.stringify leaves as they are but that change what the human sees in an
 * approval text: line and paragraph separators (U+2028, U+2029), bidirectional controls
 * (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069; Unicode UAX #9 — "Trojan Source",
 * CVE-2021-42574), zero-width and invisible format characters (U+00AD, U+180E, U+200B–U+200D,
 * U+2060–U+2064, U+FEFF), C1 controls (U+007F–U+009F), lone surrogates, and the rest of Unicode
 * category Cf.
 */
const INVISIBLE_OR_REORDERING =
  /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff\p{Cf}]/gu;

/** C0 control characters (escaped the way JSON.stringify escapes them). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: escaping control characters is the point
const C0_CONTROLS = /[\u0000-\u001f]/g;

/**
 * Escapes, for an approval text, every character that could hide or reorder what the human
 * reads: C0 controls as JSON does (`\n`, `\u0001`), and those of {@link INVISIBLE_OR_REORDERING}
 * as `\uXXXX`. Printable text is unchanged.
 */
export function escapeForApproval(text: string): string {
  return text
    .replace(C0_CONTROLS, (ch) => JSON.stringify(ch).slice(1, -1))
    .replace(
      INVISIBLE_OR_REORDERING,
      (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
}

/**
 * An object of column → value for approval messages: every key is shown; each value is JSON,
 * cut on its own at `maxValue` characters with the number of characters left out, so nothing the
 * human approves is hidden by a cut. Keys and values are escaped like {@link escapeForApproval}
 * (JSON escapes C0 controls; line/paragraph separators, bidi and zero-width characters too).
 */
export function describeValues(values: Readonly<Record<string, unknown>>, maxValue = 200): string {
  return Object.entries(values)
    .map(([k, v]) => {
      const json = escapeForApproval(JSON.stringify(v) ?? 'null');
      const shown =
        json.length > maxValue
          ? `${json.slice(0, maxValue)}… (${json.length - maxValue} more characters)`
          : json;
      return `${escapeForApproval(JSON.stringify(k))} = ${shown}`;
    })
    .join(', ');
}
