import type { Clause, Field, Operand, OrderBy, Query } from '@atlaskit/jql-ast';
import { jqlString } from './jql.js';

/** Which fields and functions a raw JQL query may use (lower-case names). */
export interface JqlRules {
  readonly fields: ReadonlySet<string>;
  readonly functions: ReadonlySet<string>;
}

/** A raw query made safe, or why it was refused (fixed text plus names from the query). */
export type ScopedJql =
  | {
      readonly ok: true;
      readonly jql: string;
      /** Every field name the query references (where and `ORDER BY`), lower case, once each. */
      readonly fields: readonly string[];
    }
  | { readonly ok: false; readonly reason: string };

class Refused extends Error {}

function checkOperand(o: Operand | undefined, rules: JqlRules): void {
  if (!o) return;
  switch (o.operandType) {
    case 'function': {
      const name = o.function.value.toLowerCase();
      if (!rules.functions.has(name))
        throw new Refused(`function ${o.function.value}() is not allowed`);
      return;
    }
    case 'list':
      for (const v of o.values) checkOperand(v, rules);
      return;
    default:
      return;
  }
}

function checkField(field: Field, rules: JqlRules, seen: Set<string>) {
  if ((field.properties || []).length > 0) throw new Refused('entity properties are not allowed');
  const name = field.value.toLowerCase();
  if (!rules.fields.has(name)) throw new Refused(`field ${field.value} is not allowed`);
  seen.add(name);
}

function checkClause(c: Clause, rules: JqlRules, depth: number, seen: Set<string>): void {
  if (depth > 32) throw new Refused('the query is nested too deeply');
  switch (c.clauseType) {
    case 'compound':
      for (const x of c.clauses) checkClause(x, rules, depth + 1, seen);
      return;
    case 'not':
      checkClause(c.clause, rules, depth + 1, seen);
      return;
    case 'terminal':
      checkField(c.field, rules, seen);
      checkOperand(c.operand || undefined, rules);
      for (const p of c.predicates) checkOperand(p.operand || undefined, rules);
      return;
  }
}

function checkOrderBy(o: OrderBy | undefined, rules: JqlRules, seen: Set<string>): void {
  for (const f of o?.fields ?? []) checkField(f.field, rules, seen);
}

/**
 * Parses a raw JQL query with `@atlaskit/jql-ast` (Atlassian's own JQL grammar), refuses it
 * unless every field, entity property and function is on the allowlist, and injects the
 * project allowlist INTO THE TREE: the result is `project in ("A", "B") AND (<query>)` as printed
 * from the tree, so nothing in the query (an `OR`, a parenthesis, a comment, an `ORDER BY`) can
 * reach outside it. A query that does not parse is refused. The result lists every field the
 * query references, for field-level classification (a `description ~ "x"` reads `description`
 * through matching, whatever fields the search returns).
 *
 * The parser is loaded on first use (it is large; servers without `rawJql` never load it, and
 * start faster).
 *
 * @param raw - the model's JQL (bounded by the tool's input schema)
 * @param projects - allowlisted project keys (at least one)
 */
export async function scopeRawJql(
  raw: string,
  projects: readonly string[],
  rules: JqlRules,
): Promise<ScopedJql> {
  if (projects.length === 0) return { ok: false, reason: 'no project to search' };
  const { JastBuilder, creators, print } = await import('@atlaskit/jql-ast');
  const jast = new JastBuilder().build(raw);
  if (jast.errors.length > 0 || !jast.query) return { ok: false, reason: 'the JQL does not parse' };
  const query: Query = jast.query;
  const seen = new Set<string>();
  try {
    if (query.where) checkClause(query.where, rules, 0, seen);
    checkOrderBy(query.orderBy || undefined, rules, seen);
  } catch (err) {
    if (err instanceof Refused) return { ok: false, reason: err.message };
    throw err;
  }
  const scope = creators.terminalClause(
    creators.field('project'),
    creators.operator('in'),
    creators.listOperand(projects.map((p) => creators.byText.valueOperand(jqlString(p)))),
  );
  const where = query.where
    ? creators.compoundClause(creators.compoundOperator('and'), [scope, query.where])
    : scope;
  const jql = print(
    { query: creators.query(where, query.orderBy || undefined), errors: [], represents: raw },
    { operatorCase: 'upper' },
  );
  return { ok: true, jql, fields: [...seen] };
}
