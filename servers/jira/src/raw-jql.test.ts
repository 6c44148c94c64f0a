import { describe, expect, it } from 'vitest';
import { jiraSectionSchema } from './config.js';
import { scopeRawJql } from './raw-jql.js';

const defaults = jiraSectionSchema.parse({
  site: 'https://acme.atlassian.net',
  auth: { scheme: 'bearer' },
  projects: { read: ['SUP'] },
}).jql;
const rules = {
  fields: new Set(defaults.fields.map((f) => f.toLowerCase())),
  functions: new Set(defaults.functions.map((f) => f.toLowerCase())),
};
const scoped = (q: string) => scopeRawJql(q, ['SUP', 'OPS'], rules);

describe('raw JQL, scoped in the tree', () => {
  it('injects the project allowlist around the whole query, ORs and all', async () => {
    const r = await scoped('status = Done OR project = FIN ORDER BY key DESC');
    expect(r).toEqual({
      ok: true,
      jql: expect.stringMatching(
        /^project IN \("SUP", "OPS"\) AND \(status = Done OR project = FIN\)\s+ORDER BY key DESC$/,
      ),
      fields: ['status', 'project', 'key'],
    });
    expect(await scoped('')).toEqual({ ok: true, jql: 'project IN ("SUP", "OPS")', fields: [] });
  });

  it.each([
    ['x) OR (project = SECRET', 'the JQL does not parse'],
    ['status = Done) OR (project = FIN', 'the JQL does not parse'],
    ['status = Done -- comment', 'the JQL does not parse'],
    ['status = Done /* comment */', 'the JQL does not parse'],
    ['key in issueHistory()', 'function issueHistory() is not allowed'],
    ['assignee in membersOf("admins")', 'function membersOf() is not allowed'],
    ['status WAS Done BY membersOf("x")', 'function membersOf() is not allowed'],
    ['cf[10042] = x', 'field cf[10042] is not allowed'],
    ['issue.property[secret].x = 1', 'entity properties are not allowed'],
    ['status = Done ORDER BY cf[10001]', 'field cf[10001] is not allowed'],
  ])('refuses %s', async (q, reason) => {
    expect(await scoped(q)).toEqual({ ok: false, reason });
  });

  it('keeps unicode and quotes inside their string literal', async () => {
    const r = await scoped('summary ~ "\u201cx\u201d \\" OR project = FIN"');
    expect(r).toEqual({
      ok: true,
      jql: 'project IN ("SUP", "OPS") AND summary ~ "\u201cx\u201d \\" OR project = FIN"',
      fields: ['summary'],
    });
  });

  it('lists every field the query reads, in NOT, nested clauses and ORDER BY, for classification', async () => {
    const r = await scoped(
      'NOT (Description ~ "x" OR (comment ~ "y" AND text ~ "z")) ORDER BY Priority ASC',
    );
    expect(r.ok && [...r.fields].sort()).toEqual(['comment', 'description', 'priority', 'text']);
  });
});
