/**
 * Readable custom fields under field labels (issue 15 §2) and custom-field display names in raw
 * JQL resolved through the site's field list. In-process against the test kit's stateful Jira
 * fake behind a front that adds custom fields (test-support/custom-field-upstream.ts): the field
 * list, and custom values in the issues the fake returns.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ApprovalChannel,
  assemble,
  type CallResponse,
  defineConfigSchema,
  effectivePolicy,
  parseConfig,
} from '@hardened-mcp/core';
import { type JiraFake, startJiraFake } from '@hardened-mcp/test-kit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jiraSectionSchema } from './config.js';
import { jiraConnector } from './connector.js';
import { customFieldValue } from './custom-fields.js';
import { createFieldCatalog, indexFields, MAX_FIELDS } from './field-catalog.js';
import {
  type CustomFieldUpstream,
  SAMPLE_CUSTOM_FIELDS,
  SAMPLE_CUSTOM_VALUES,
  SAMPLE_USER,
  startCustomFieldUpstream,
} from './test-support/custom-field-upstream.js';
import { errorCode, pipelineCaller, toolAuditRecords } from './test-support/pipeline-calls.js';

const READ_TOKEN = 'jira-read-token-0001';
const WRITE_TOKEN = 'jira-write-token-0001';
const ENV = { JIRA_API_TOKEN: READ_TOKEN, JIRA_WRITE_API_TOKEN: WRITE_TOKEN };
type Label = 'public' | 'internal' | 'confidential' | 'restricted';
const READ_CUSTOM = {
  storyPoints: 'customfield_10016',
  customerEmail: 'customfield_10050',
  rootCause: 'customfield_10060',
  severity: 'customfield_10042',
  approvers: 'customfield_10070',
  region: 'customfield_10071',
};

let fake: JiraFake;
let front: CustomFieldUpstream;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  fake = await startJiraFake({ tokens: [READ_TOKEN, WRITE_TOKEN] });
  front = await startCustomFieldUpstream(fake.url, SAMPLE_CUSTOM_FIELDS, SAMPLE_CUSTOM_VALUES);
});
afterAll(async () => {
  await front.stop();
  await fake.stop();
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  front.failFieldList(false);
  front.setFields(SAMPLE_CUSTOM_FIELDS);
});

async function server(
  labels: Record<string, Label>,
  clearance: Label,
  jira: Record<string, unknown> = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-jira-custom-'));
  const auditFile = join(dir, 'a.jsonl');
  const config = parseConfig(defineConfigSchema('jira', jiraSectionSchema), {
    audit: { stderr: false, file: auditFile },
    log: { level: 'silent' },
    mode: 'read-write',
    jira: {
      site: front.url,
      auth: { email: 'bot@example.com' },
      projects: { read: ['SUP', 'OPS'], write: ['SUP'] },
      fields: { custom: READ_CUSTOM },
      rawJql: true,
      ...jira,
    },
    classification: { labels, clearance: { default: clearance } },
  });
  const s = await assemble(jiraConnector, config as never, { env: ENV });
  closers.push(() => s.close());
  const prompts: string[] = [];
  const approval: ApprovalChannel = {
    supported: true,
    async request(text: string) {
      prompts.push(text);
      return 'approved';
    },
  };
  const call = pipelineCaller(s, approval, 'c1');
  const audit = () => toolAuditRecords(auditFile);
  return { call, prompts, audit };
}

const code = errorCode;
const text = (r: CallResponse) => (r.kind === 'result' ? JSON.stringify(r.result) : '');
const data = <T>(r: CallResponse): T =>
  (r.kind === 'result' ? r.result.structuredContent : undefined) as T;
const issueGets = () =>
  front.requests.filter((q) => /^\/rest\/api\/3\/issue\/SUP-\d+$/.test(q.path));
const searches = () => front.requests.filter((q) => q.path === '/rest/api/3/search/jql');

describe('custom field values', () => {
  it('are converted to display values, never Jira raw objects', () => {
    expect(customFieldValue(5)).toBe(5);
    expect(customFieldValue(Number.NaN)).toBeNull();
    expect(customFieldValue('x')).toBe('x');
    expect(customFieldValue(null)).toBeNull();
    expect(customFieldValue(SAMPLE_CUSTOM_VALUES['SUP-1'].customfield_10060)).toBe(
      'The reset token is **single-use**',
    );
    expect(customFieldValue({ value: 'S2', id: '1', self: 'u' })).toBe('S2');
    expect(customFieldValue({ value: 'EMEA', child: { value: 'Nordics' } })).toBe('EMEA / Nordics');
    // Users: the display name, never the e-mail address.
    expect(customFieldValue([SAMPLE_USER])).toEqual(['Maria Jensen']);
    expect(customFieldValue({ accountId: 'a', emailAddress: 'x@example.com' })).toBeNull();
    expect(customFieldValue([{ name: '1.0', id: '3' }, { key: 'SUP-2' }])).toEqual([
      '1.0',
      'SUP-2',
    ]);
    // An object of another shape is dropped, not passed through.
    expect(customFieldValue({ secret: 'x', nested: { value: 'y' } })).toBeNull();
    expect(customFieldValue([[[['deep']]]])).toEqual([[[null]]]);
    expect((customFieldValue(Array.from({ length: 500 }, () => 1)) as unknown[]).length).toBe(100);
  });
});

// The first fetch loads jira.js's REST functions: slow on a busy 2-core machine.
describe('the field list', { timeout: 30_000 }, () => {
  it('indexes every clause name and display name to the ids it reaches', () => {
    const index = indexFields([
      { id: 'customfield_10016', name: 'Story Points', clauseNames: ['cf[10016]', 'Story Points'] },
      { id: 'customfield_10081', name: 'Impact', clauseNames: ['Impact'] },
      { id: 'customfield_10082', name: 'Impact', clauseNames: ['Impact'] },
      { id: '../x', name: 'Bad id' },
      'junk',
    ]);
    expect(index.get('story points')).toEqual(['customfield_10016']);
    expect(index.get('cf[10016]')).toEqual(['customfield_10016']);
    expect(index.get('impact')).toEqual(['customfield_10081', 'customfield_10082']);
    expect(index.has('bad id')).toBe(false);
    expect(indexFields({ not: 'a list' }).size).toBe(0);
    // A name an unreadable entry also carries stays unknown (Jira searches that entry too).
    const shared = indexFields([
      { id: 'customfield_10081', name: 'Impact', clauseNames: ['Impact'] },
      { id: 'weird id', name: 'Impact' },
    ]);
    expect(shared.has('impact')).toBe(false);
    // A list longer than the server reads is not used at all (a cut could split a shared name).
    const long = Array.from({ length: MAX_FIELDS + 1 }, (_, i) => ({
      id: `customfield_${20_000 + i}`,
      name: i === 0 || i === MAX_FIELDS ? 'Impact' : `Field ${i}`,
    }));
    expect(indexFields(long).size).toBe(0);
  });

  it('is cached, refreshed on a miss at most once per bound, and dropped when stale and unavailable', async () => {
    let t = 0;
    let calls = 0;
    let answer: unknown = [{ id: 'customfield_1', name: 'A', clauseNames: ['A'] }];
    const api = () =>
      ({
        async sendRequest() {
          calls += 1;
          if (answer instanceof Error) throw answer;
          return answer;
        },
      }) as never;
    const catalog = createFieldCatalog({ ttlMs: 1_000, missRefreshMs: 100, now: () => t });
    expect(await catalog.resolve(api, ['a'])).toEqual(new Map([['a', ['customfield_1']]]));
    expect(await catalog.resolve(api, ['A'])).toEqual(new Map([['a', ['customfield_1']]]));
    expect(calls).toBe(1);
    // A miss refreshes once; another miss within the bound does not fetch again.
    answer = [
      { id: 'customfield_1', name: 'A' },
      { id: 'customfield_2', name: 'B' },
    ];
    // Within the bound since the first fetch: no refetch, the miss stays unknown.
    expect((await catalog.resolve(api, ['b'])).has('b')).toBe(false);
    expect(calls).toBe(1);
    t = 100;
    expect((await catalog.resolve(api, ['b'])).get('b')).toEqual(['customfield_2']);
    expect((await catalog.resolve(api, ['nope'])).has('nope')).toBe(false);
    expect(calls).toBe(2);
    t = 250;
    expect((await catalog.resolve(api, ['nope'])).has('nope')).toBe(false);
    expect(calls).toBe(3);
    // Unavailable within the TTL: the cached list still answers.
    answer = new Error('503');
    t = 500;
    expect((await catalog.resolve(api, ['a', 'zz'])).get('a')).toEqual(['customfield_1']);
    expect(calls).toBe(4);
    // Unavailable past the TTL: nothing resolves (the caller fails closed).
    t = 5_000;
    expect((await catalog.resolve(api, ['a'])).size).toBe(0);
    // Concurrent resolutions share one fetch.
    answer = [{ id: 'customfield_1', name: 'A' }];
    t = 10_000;
    const before = calls;
    await Promise.all([catalog.resolve(api, ['a']), catalog.resolve(api, ['a'])]);
    expect(calls).toBe(before + 1);
  });
});

// The first assembly of a file loads jira.js and the JQL parser: slow on a busy 2-core machine.
describe('readable custom fields', { timeout: 30_000 }, () => {
  it('get and search return them by alias, converted; the fields argument names them', async () => {
    const { call } = await server({}, 'restricted');
    const r = await call('jira_get_issue', { key: 'SUP-1' });
    expect(code(r)).toBe('ok');
    const got = data<{ customFields: Record<string, unknown> }>(r);
    expect(got.customFields).toEqual({
      storyPoints: 5,
      customerEmail: expect.stringMatching(/^\[REDACTED/),
      rootCause: 'The reset token is **single-use**',
      severity: 'S2',
      approvers: ['Maria Jensen'],
      region: 'EMEA / Nordics',
    });
    // Redaction and the fence apply as to every value: no e-mail anywhere, the text is fenced.
    expect(text(r)).not.toContain('maria.jensen@example.com');
    expect(text(r)).toContain('UNTRUSTED-DATA');
    // Jira is asked for them by id, never `*all`.
    const asked = issueGets().at(-1)?.query.fields?.split(',') ?? [];
    expect(asked).toEqual(expect.arrayContaining(Object.values(READ_CUSTOM)));
    expect(asked).not.toContain('*all');
    const named = await call('jira_get_issue', {
      key: 'SUP-1',
      fields: ['summary', 'storyPoints'],
    });
    expect(data<Record<string, unknown>>(named)).toEqual({
      key: 'SUP-1',
      project: 'SUP',
      summary: 'Customer cannot log in after password reset',
      customFields: { storyPoints: 5 },
    });
    expect(issueGets().at(-1)?.query.fields).toBe('project,summary,customfield_10016');
    // An id or an unconfigured name is not a field the tool takes.
    expect(
      code(await call('jira_get_issue', { key: 'SUP-1', fields: ['customfield_10016'] })),
    ).toBe('invalid_input');
    const s = await call('jira_search_issues', {
      projects: ['SUP'],
      fields: ['storyPoints', 'severity'],
      orderBy: 'key',
      direction: 'asc',
    });
    expect(code(s)).toBe('ok');
    const first = data<{ issues: { key: string; customFields: Record<string, unknown> }[] }>(s)
      .issues[0];
    expect(first).toEqual({
      key: 'SUP-1',
      project: 'SUP',
      customFields: { storyPoints: 5, severity: 'S2' },
    });
  });

  it('above the clearance: withheld by default (never requested, audited), refused by name', async () => {
    const { call, audit } = await server(
      { customfield_10050: 'restricted', 'SUP.customfield_10060': 'confidential' },
      'internal',
    );
    const r = await call('jira_get_issue', { key: 'SUP-1' });
    expect(code(r)).toBe('ok');
    const got = data<{ withheldFields: string[]; customFields: Record<string, unknown> }>(r);
    expect(got.withheldFields).toEqual(['customerEmail', 'rootCause']);
    expect(got.customFields).not.toHaveProperty('customerEmail');
    expect(got.customFields).not.toHaveProperty('rootCause');
    expect(got.customFields.storyPoints).toBe(5);
    const asked = issueGets().at(-1)?.query.fields?.split(',') ?? [];
    expect(asked).not.toContain('customfield_10050');
    expect(asked).not.toContain('customfield_10060');
    const record = audit().at(-1) as { notes?: Record<string, unknown> };
    expect(record.notes?.withheldFields).toBe('customfield_10050,customfield_10060');
    // A search withholds them too.
    const s = await call('jira_search_issues', { projects: ['SUP'] });
    expect(data<{ withheldFields: string[] }>(s).withheldFields).toEqual([
      'customerEmail',
      'rootCause',
    ]);
    expect(searches().at(-1)?.query.fields?.split(',')).not.toContain('customfield_10050');
    // Named: refused before Jira is asked.
    const before = front.requests.length;
    const refused = await call('jira_get_issue', { key: 'SUP-1', fields: ['customerEmail'] });
    expect(code(refused)).toBe('policy_denied');
    expect(text(refused)).toContain('field customfield_10050 is classified restricted');
    const refusedSearch = await call('jira_search_issues', { fields: ['rootCause'] });
    expect(code(refusedSearch)).toBe('policy_denied');
    expect(front.requests.length).toBe(before);
    // In OPS the root cause is not labelled: named there, it is read.
    expect(code(await call('jira_get_issue', { key: 'OPS-1', fields: ['rootCause'] }))).toBe('ok');
  });

  it('restricted within the clearance: approval names the field, the audit lists it', async () => {
    const { call, prompts, audit } = await server(
      { customfield_10050: 'restricted' },
      'restricted',
    );
    const r = await call('jira_get_issue', { key: 'SUP-1', fields: ['customerEmail'] });
    expect(code(r)).toBe('ok');
    expect(prompts.at(-1)).toContain('customfield_10050');
    const record = audit().at(-1) as { classification?: { label?: string; paths?: string[] } };
    expect(record.classification?.label).toBe('restricted');
    expect(record.classification?.paths).toEqual(
      expect.arrayContaining(['SUP.customfield_10050', 'customfield_10050']),
    );
    // Without the field, no approval.
    const n = prompts.length;
    expect(code(await call('jira_get_issue', { key: 'SUP-1', fields: ['storyPoints'] }))).toBe(
      'ok',
    );
    expect(prompts.length).toBe(n);
  });

  it('the session taint learns a custom field label: egress refused after reading it', async () => {
    const { call } = await server({ customfield_10060: 'confidential' }, 'confidential');
    const comment = { key: 'SUP-3', body: 'a note' };
    expect(
      code(await call('jira_get_issue', { key: 'SUP-1', fields: ['storyPoints'] }, 't1')),
    ).toBe('ok');
    expect(code(await call('jira_add_comment', comment, 't1'))).toBe('ok');
    expect(code(await call('jira_get_issue', { key: 'SUP-1', fields: ['rootCause'] }, 't1'))).toBe(
      'ok',
    );
    const refused = await call('jira_add_comment', comment, 't1');
    expect(code(refused)).toBe('policy_denied');
    expect(text(refused)).toContain('customfield_10060');
    expect(code(await call('jira_add_comment', comment, 't2'))).toBe('ok');
  });
});

describe('custom-field display names in raw JQL', { timeout: 30_000 }, () => {
  const jqlFields = ['status', 'Story Points', 'Customer email', 'Impact', 'cf[10050]', 'Unknown'];

  it('resolve through the field list: only the field named counts, exactly', async () => {
    const { call } = await server(
      { customfield_10050: 'restricted', customfield_10082: 'confidential' },
      'internal',
      { jql: { fields: jqlFields } },
    );
    const lists = front.fieldListRequests();
    // Before: every display name counted as every labelled custom field, so this was refused.
    const ok = await call('jira_search_issues', { jql: '"Story Points" > 3', fields: ['summary'] });
    expect(code(ok), text(ok)).toBe('ok');
    expect(searches().at(-1)?.query.jql).toBe('project IN ("SUP", "OPS") AND "Story Points" > 3');
    expect(front.fieldListRequests()).toBe(lists + 1);
    for (const jql of [
      '"Customer email" ~ "maria"',
      'cf[10050] ~ "maria"',
      'status = Done ORDER BY "customer EMAIL"',
      // Two fields share the name: Jira searches both, so the higher label counts.
      'Impact ~ "x"',
    ]) {
      const r = await call('jira_search_issues', { jql, fields: ['summary'] });
      expect(code(r), jql).toBe('policy_denied');
    }
    expect(
      text(await call('jira_search_issues', { jql: 'Impact ~ "x"', fields: ['summary'] })),
    ).toContain('customfield_10082');
    // Cached: resolved names do not fetch the list again.
    expect(front.fieldListRequests()).toBe(lists + 1);
  });

  it('fails closed: a name the list does not hold, or no list, counts as every labelled custom field', async () => {
    const { call } = await server({ customfield_10050: 'restricted' }, 'internal', {
      jql: { fields: jqlFields },
    });
    const before = searches().length;
    const unknown = await call('jira_search_issues', { jql: 'Unknown = 1', fields: ['summary'] });
    expect(code(unknown)).toBe('policy_denied');
    expect(text(unknown)).toContain('customfield_10050');
    front.failFieldList(true);
    const { call: fresh } = await server({ customfield_10050: 'restricted' }, 'internal', {
      jql: { fields: jqlFields },
    });
    const r = await fresh('jira_search_issues', { jql: '"Story Points" > 3', fields: ['summary'] });
    expect(code(r)).toBe('policy_denied');
    expect(searches().length).toBe(before);
  });

  it('a rename is seen on the refresh a miss causes', async () => {
    const labels = { customfield_10050: 'restricted', customfield_10016: 'internal' } as const;
    const jql = { fields: [...jqlFields, 'Estimate'] };
    const { call } = await server(labels, 'internal', { jql, fieldList: { missRefreshMs: 0 } });
    const story = { jql: '"Story Points" > 3', fields: ['summary'] };
    expect(code(await call('jira_search_issues', story))).toBe('ok');
    // An admin renames "Story Points" to "Estimate": the name is missing from the cache, the
    // list is fetched again and the exact (internal) label applies.
    front.setFields(
      SAMPLE_CUSTOM_FIELDS.map((f) =>
        f.id === 'customfield_10016' ? { ...f, name: 'Estimate' } : f,
      ),
    );
    const lists = front.fieldListRequests();
    const renamed = { jql: 'Estimate > 3', fields: ['summary'] };
    expect(code(await call('jira_search_issues', renamed))).toBe('ok');
    expect(front.fieldListRequests()).toBe(lists + 1);
    // With the default bound, the same miss within 30 s is not refetched: unknown, refused.
    const bounded = await server(labels, 'internal', { jql });
    expect(
      code(await bounded.call('jira_search_issues', { jql: 'Unknown = 1', fields: ['summary'] })),
    ).toBe('policy_denied');
    const n = front.fieldListRequests();
    expect(
      code(await bounded.call('jira_search_issues', { jql: 'Unknown = 2', fields: ['summary'] })),
    ).toBe('policy_denied');
    expect(front.fieldListRequests()).toBe(n);
  });

  it("sprint is Jira Cloud's Sprint custom field: its label applies to `sprint` in JQL", async () => {
    front.setFields([
      ...SAMPLE_CUSTOM_FIELDS,
      {
        id: 'customfield_10020',
        name: 'Sprint',
        type: 'array',
        items: 'json',
        custom: 'com.pyxis.greenhopper.jira:gh-sprint',
      },
    ]);
    const { call } = await server({ customfield_10020: 'restricted' }, 'internal', {
      jql: { fields: [...jqlFields, 'sprint', 'cf[10020]'] },
    });
    for (const jql of ['sprint = 42', 'cf[10020] = 42', 'status = Done ORDER BY Sprint']) {
      const r = await call('jira_search_issues', { jql, fields: ['summary'] });
      expect(code(r), jql).toBe('policy_denied');
      expect(text(r), jql).toContain('customfield_10020');
    }
  });

  it('without labels the field list is never fetched', async () => {
    const { call } = await server({}, 'internal', { jql: { fields: jqlFields } });
    const lists = front.fieldListRequests();
    expect(
      code(
        await call('jira_search_issues', { jql: '"Customer email" ~ "x"', fields: ['summary'] }),
      ),
    ).toBe('ok');
    expect(front.fieldListRequests()).toBe(lists);
  });
});

describe('configuration', { timeout: 30_000 }, () => {
  /** A parsed configuration with `customerEmail` as the alias of customfield_10050. */
  const aliasedConfig = (labels: Record<string, Label>) =>
    parseConfig(defineConfigSchema('jira', jiraSectionSchema), {
      log: { level: 'silent' },
      jira: {
        site: 'https://acme.atlassian.net',
        auth: { email: 'bot@example.com' },
        projects: { read: ['SUP'] },
        fields: { custom: { customerEmail: 'customfield_10050' } },
      },
      classification: { labels },
    });

  it('--print-policy names the alias a labelled custom field is read by', async () => {
    const printed = await effectivePolicy(
      jiraConnector,
      aliasedConfig({ customfield_10050: 'restricted' }) as never,
      ENV,
    );
    expect(printed.labelledPaths).toEqual([
      {
        path: 'customfield_10050',
        label: 'restricted',
        means: 'field customfield_10050 (alias customerEmail) in every project',
      },
    ]);
  });

  it('refuses to start with a label keyed by an alias instead of the field id', async () => {
    for (const key of ['customerEmail', 'SUP.customerEmail']) {
      const config = aliasedConfig({ [key]: 'restricted' });
      await expect(effectivePolicy(jiraConnector, config as never, ENV)).rejects.toThrow(
        /is the alias of customfield_10050: label the field id \((SUP\.)?customfield_10050\)/,
      );
    }
  });

  it('refuses an alias that is a system field name, and one field under two aliases', () => {
    const parse = (custom: Record<string, string>) =>
      jiraSectionSchema.safeParse({
        site: 'https://acme.atlassian.net',
        projects: { read: ['SUP'] },
        fields: { custom },
      }).success;
    expect(parse({ storyPoints: 'customfield_10016' })).toBe(true);
    expect(parse({ summary: 'customfield_10016' })).toBe(false);
    expect(parse({ a: 'customfield_1', b: 'customfield_1' })).toBe(false);
    expect(parse({ a: 'description' })).toBe(false);
  });
});
