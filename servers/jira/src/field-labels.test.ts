/**
 * Field-level classification of Jira data (issue 15 §2, "Jira projects and fields"): labels on
 * field ids (in every project, or `PROJECT.field` in one), fields above the caller's clearance
 * withheld from reads (never requested from Jira), searches that match on them refused before
 * Jira is asked, `restricted` fields under the core's restricted rules, the session taint learning
 * field labels, writes needing clearance at the field's label. In-process against the test kit's
 * stateful Jira fake.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ApprovalChannel,
  assemble,
  type CallResponse,
  classificationConfigSchema,
  defineConfigSchema,
  effectivePolicy,
  parseConfig,
  policiesConfigSchema,
  policyToMarkdown,
} from '@hardened-mcp/core';
import { type JiraFake, startJiraFake } from '@hardened-mcp/test-kit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jiraSectionSchema } from './config.js';
import { jiraConnector } from './connector.js';
import { createFieldLabels, jqlFieldIds } from './field-labels.js';
import { errorCode, pipelineCaller, toolAuditRecords } from './test-support/pipeline-calls.js';

const READ_TOKEN = 'jira-read-token-0001';
const WRITE_TOKEN = 'jira-write-token-0001';
const ENV = { JIRA_API_TOKEN: READ_TOKEN, JIRA_WRITE_API_TOKEN: WRITE_TOKEN };
type Label = 'public' | 'internal' | 'confidential' | 'restricted';
let fake: JiraFake;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  fake = await startJiraFake({ tokens: [READ_TOKEN, WRITE_TOKEN] });
});
afterAll(async () => {
  await fake.stop();
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** An approval channel that answers `answer` and keeps the prompts. */
function channel(answer: 'approved' | 'declined' = 'approved') {
  const prompts: string[] = [];
  const approval: ApprovalChannel = {
    supported: true,
    async request(text: string) {
      prompts.push(text);
      return answer;
    },
  };
  return { approval, prompts };
}

function jiraConfig(
  labels: Record<string, Label>,
  clearance: Label,
  extra: object = {},
  classification: object = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-jira-fields-'));
  return {
    auditFile: join(dir, 'a.jsonl'),
    config: parseConfig(defineConfigSchema('jira', jiraSectionSchema), {
      audit: { stderr: false, file: join(dir, 'a.jsonl') },
      log: { level: 'silent' },
      mode: 'read-write',
      jira: {
        site: fake.url,
        auth: { email: 'bot@example.com' },
        projects: { read: ['SUP', 'OPS', 'FIN'], write: ['SUP'] },
        customFields: { severity: 'customfield_10042' },
        rawJql: true,
        ...extra,
      },
      classification: { labels, clearance: { default: clearance }, ...classification },
    }),
  };
}

async function server(
  labels: Record<string, Label>,
  clearance: Label,
  answer: 'approved' | 'declined' = 'approved',
  classification: object = {},
) {
  const { config, auditFile } = jiraConfig(labels, clearance, {}, classification);
  const s = await assemble(jiraConnector, config as never, { env: ENV });
  closers.push(() => s.close());
  const { approval, prompts } = channel(answer);
  const call = pipelineCaller(s, approval, 'f1');
  const audit = () => toolAuditRecords(auditFile);
  return { call, prompts, audit };
}

const code = errorCode;
const text = (r: CallResponse) => (r.kind === 'result' ? JSON.stringify(r.result.content) : '');
const data = <T>(r: CallResponse): T =>
  (r.kind === 'result' ? r.result.structuredContent : undefined) as T;
const requestsTo = (suffix: string, method = 'GET') =>
  fake.requests.filter((q) => q.method === method && q.path.endsWith(suffix));
const searches = () => requestsTo('/search/jql').length;

describe('field labels: the model', () => {
  const labels = (l: Record<string, Label>, def: Label = 'internal') =>
    createFieldLabels(
      classificationConfigSchema.parse({ labels: l, default: def }),
      policiesConfigSchema.parse({}),
    );

  it('a field label raises the project label, per project or in every project, never lowers it', () => {
    const f = labels({
      OPS: 'confidential',
      description: 'confidential',
      'SUP.customfield_10042': 'restricted',
      'OPS.summary': 'public',
    });
    expect(f.labelOf(['SUP'], 'description')).toBe('confidential');
    expect(f.labelOf(['SUP'], 'summary')).toBe('internal');
    expect(f.labelOf(['SUP'], 'customfield_10042')).toBe('restricted');
    expect(f.labelOf(['OPS'], 'customfield_10042')).toBe('confidential');
    // `OPS.summary: public` cannot lower the field below its project: every call is classified
    // by its project too.
    expect(f.labelOf(['OPS'], 'summary')).toBe('confidential');
    expect(f.labelOf(['SUP', 'OPS'], 'summary')).toBe('confidential');
    expect(f.paths(['SUP', 'OPS'], ['description', 'summary'])).toEqual([
      'SUP.description',
      'OPS.description',
      'description',
      'SUP.summary',
      'OPS.summary',
    ]);
    expect(f.labelledCustomFields).toEqual(['customfield_10042']);
    const who = { principal: 'p', roles: [], transport: 'stdio' as const, client: {} };
    expect(f.split(who, ['SUP'], ['summary', 'description', 'customfield_10042'])).toEqual({
      kept: ['summary'],
      withheld: ['description', 'customfield_10042'],
    });
  });

  it('maps JQL names to field ids, text to every text field, unknown names to labelled custom fields', () => {
    const custom = ['customfield_10042'];
    expect(jqlFieldIds('Description', custom)).toEqual(['description']);
    expect(jqlFieldIds('type', custom)).toEqual(['issuetype']);
    // JQL names that differ from the REST field id the label is keyed by.
    expect(jqlFieldIds('fixVersion', custom)).toEqual(['fixVersions']);
    expect(jqlFieldIds('affectedVersion', custom)).toEqual(['versions']);
    expect(jqlFieldIds('component', custom)).toEqual(['components']);
    expect(jqlFieldIds('watcher', custom)).toEqual(['watches']);
    expect(jqlFieldIds('voter', custom)).toEqual(['votes']);
    expect(jqlFieldIds('cf[10042]', [])).toEqual(['customfield_10042']);
    expect(jqlFieldIds('text', custom)).toEqual([
      'summary',
      'description',
      'environment',
      'comment',
      'customfield_10042',
    ]);
    expect(jqlFieldIds('Severity', custom)).toEqual(custom);
  });

  it('explains every label key for --print-policy, typos included', () => {
    const f = labels({
      OPS: 'confidential',
      description: 'restricted',
      'SUP.customfield_10042': 'restricted',
      'sup.Description': 'public',
      fixVersions: 'confidential',
    });
    expect(f.describe(['SUP', 'OPS']).map((l) => l.means)).toEqual([
      'project OPS: every field of its issues',
      'field description in every project',
      'field customfield_10042 in project SUP',
      'not a Jira project key or field id: matches nothing this server reads',
      'field fixVersions in every project',
    ]);
  });
});

// The first assembly of a file loads jira.js and the JQL parser: slow on a busy 2-core machine.
describe('field labels: reads', { timeout: 30_000 }, () => {
  it('a field above the clearance is withheld: never requested from Jira, named in the result', async () => {
    const { call, audit } = await server({ description: 'confidential' }, 'internal');
    const before = requestsTo('/issue/SUP-1').length;
    const r = await call('jira_get_issue', { key: 'SUP-1' });
    expect(code(r)).toBe('ok');
    const issue = data<Record<string, unknown>>(r);
    expect(issue.withheldFields).toEqual(['description']);
    expect(issue).not.toHaveProperty('description');
    expect(text(r)).not.toContain('reset link loops');
    expect(issue.summary).toBe('Customer cannot log in after password reset');
    const asked = requestsTo('/issue/SUP-1').slice(before);
    expect(asked).toHaveLength(1);
    expect(asked[0]?.query.fields?.split(',')).not.toContain('description');
    expect(asked[0]?.query.fields?.split(',')).toContain('summary');
    const record = audit().at(-1) as { notes?: Record<string, unknown> };
    expect(record.notes?.withheldFields).toBe('description');
  });

  it('a field asked for by name above the clearance is refused; named fields within it are all that is read', async () => {
    const { call } = await server({ description: 'confidential' }, 'internal');
    const before = fake.requests.length;
    const refused = await call('jira_get_issue', {
      key: 'SUP-1',
      fields: ['summary', 'description'],
    });
    expect(code(refused)).toBe('policy_denied');
    expect(text(refused)).toContain('field description is classified confidential');
    expect(fake.requests.length).toBe(before);
    const r = await call('jira_get_issue', { key: 'SUP-1', fields: ['summary'] });
    expect(code(r)).toBe('ok');
    expect(Object.keys(data<object>(r)).sort()).toEqual(['key', 'project', 'summary']);
    expect(fake.requests.at(-1)?.query.fields).toBe('project,summary');
    // No wildcard: the server names every field it asks Jira for.
    expect(code(await call('jira_get_issue', { key: 'SUP-1', fields: ['*all'] }))).toBe(
      'invalid_input',
    );
    const search = await call('jira_search_issues', {
      projects: ['SUP'],
      fields: ['status'],
      jql: 'status = "In Progress"',
    });
    expect(code(search)).toBe('ok');
    expect(fake.requests.at(-1)?.query.fields).toBe('project,status');
  });

  it('within the clearance the field is returned, and the session taint learns its label', async () => {
    const { call } = await server({ description: 'confidential' }, 'confidential');
    const comment = { key: 'SUP-3', body: 'a note' };
    // A search returns no description: the session stays untainted.
    expect(code(await call('jira_search_issues', { projects: ['SUP'] }, 't1'))).toBe('ok');
    expect(code(await call('jira_add_comment', comment, 't1'))).toBe('ok');
    const r = await call('jira_get_issue', { key: 'SUP-1' }, 't1');
    expect(code(r)).toBe('ok');
    expect(data<{ description: string }>(r).description).toContain('reset link loops');
    const refused = await call('jira_add_comment', comment, 't1');
    expect(code(refused)).toBe('policy_denied');
    expect(text(refused)).toContain('SUP.description');
    expect(code(await call('jira_add_comment', comment, 't2'))).toBe('ok');
  });

  it('a JQL that matches on a field above the clearance is refused before Jira is asked', async () => {
    const { call } = await server({ description: 'restricted' }, 'confidential');
    const before = searches();
    for (const jql of [
      'description ~ "password"',
      'status = Done OR NOT (Description ~ "x")',
      'text ~ "password"',
      'summary ~ "x" ORDER BY description',
    ]) {
      const r = await call('jira_search_issues', { jql });
      expect(code(r), jql).toBe('policy_denied');
      expect(text(r)).toContain('field description is classified restricted');
    }
    // The structured full-text filter matches descriptions too.
    expect(code(await call('jira_search_issues', { text: 'password' }))).toBe('policy_denied');
    expect(searches()).toBe(before);
    // Fields within the clearance still search; the description is simply not returned.
    const ok = await call('jira_search_issues', { jql: 'status = "In Progress" ORDER BY key ASC' });
    expect(code(ok)).toBe('ok');
    expect(searches()).toBe(before + 1);
  });

  it('a restricted field within the clearance needs approval, gets the restricted caps and audits the fields touched', async () => {
    const { call, prompts, audit } = await server(
      { 'SUP.description': 'restricted' },
      'restricted',
    );
    const r = await call('jira_get_issue', { key: 'SUP-1' });
    expect(code(r)).toBe('ok');
    expect(prompts.at(-1)).toContain('SUP.description');
    const record = audit().at(-1) as { classification?: { label?: string; paths?: string[] } };
    expect(record.classification?.label).toBe('restricted');
    expect(record.classification?.paths).toEqual(
      expect.arrayContaining(['SUP', 'SUP.description', 'SUP.summary', 'SUP.comment']),
    );
    // OPS's description is not restricted: no approval asked there.
    const asked = prompts.length;
    expect(code(await call('jira_get_issue', { key: 'OPS-1' }))).toBe('ok');
    expect(prompts.length).toBe(asked);
  });

  it('a search returning a restricted field gets the restricted row cap', async () => {
    const opts = { restricted: { maxRows: 1 } };
    const plain = await server({}, 'restricted', 'approved', opts);
    const all = data<{ issues: unknown[] }>(
      await plain.call('jira_search_issues', { projects: ['SUP'] }),
    );
    expect(all.issues.length).toBeGreaterThan(1);
    const { call, prompts } = await server(
      { 'SUP.summary': 'restricted' },
      'restricted',
      'approved',
      opts,
    );
    const r = await call('jira_search_issues', { projects: ['SUP'] });
    expect(code(r)).toBe('ok');
    expect(data<{ issues: unknown[] }>(r).issues).toHaveLength(1);
    expect(prompts.at(-1)).toContain('SUP.summary');
  });

  it('a declined approval for a restricted field means Jira is never asked', async () => {
    const { call } = await server({ description: 'restricted' }, 'restricted', 'declined');
    const before = fake.requests.length;
    expect(code(await call('jira_get_issue', { key: 'SUP-2' }))).toBe('approval_declined');
    expect(fake.requests.length).toBe(before);
  });

  it('comments and attachments above the clearance: get_issue withholds them, list_comments is refused', async () => {
    const { call } = await server({ comment: 'confidential' }, 'internal');
    const before = requestsTo('/comment').length;
    const r = await call('jira_get_issue', { key: 'SUP-1' });
    expect(code(r)).toBe('ok');
    expect(data<Record<string, unknown>>(r)).not.toHaveProperty('comments');
    expect(data<{ withheldFields: string[] }>(r).withheldFields).toEqual(['comment']);
    const listed = await call('jira_list_comments', { key: 'SUP-1' });
    expect(code(listed)).toBe('policy_denied');
    expect(text(listed)).toContain('field comment is classified confidential');
    expect(requestsTo('/comment').length).toBe(before);
  });

  it('a search answered with issues of a project it was not classified by is classified there too', async () => {
    const { call } = await server({ 'OPS.summary': 'restricted' }, 'confidential');
    expect(code(await call('jira_search_issues', { projects: ['SUP'] }))).toBe('ok');
    fake.searchIgnoresProject(true);
    try {
      // A stale index lists OPS issues for a SUP search: OPS's summary is above the clearance.
      const r = await call('jira_search_issues', { projects: ['SUP'] });
      expect(code(r)).toBe('policy_denied');
      expect(text(r)).toContain('OPS.summary');
    } finally {
      fake.searchIgnoresProject(false);
    }
  });

  it('a moved issue is classified where it lives now, before anything is returned', async () => {
    // SUP-4 was moved to FIN by the fake's seed: Jira answers the old key with FIN's issue.
    const { call } = await server({ 'FIN.description': 'restricted' }, 'confidential');
    const r = await call('jira_get_issue', { key: 'SUP-4' });
    expect(code(r)).toBe('policy_denied');
    expect(text(r)).toContain('FIN.description');
  });
});

describe('field labels: writes', { timeout: 30_000 }, () => {
  it('a write that sets a field above the clearance is refused before the human is asked', async () => {
    const { call, prompts } = await server(
      { 'SUP.comment': 'confidential', customfield_10042: 'restricted' },
      'internal',
    );
    const posts = requestsTo('/comment', 'POST').length;
    const creates = requestsTo('/rest/api/3/issue', 'POST').length;
    const comment = await call('jira_add_comment', { key: 'SUP-3', body: 'x' });
    expect(code(comment)).toBe('policy_denied');
    expect(text(comment)).toContain('field comment is classified confidential');
    const create = await call('jira_create_issue', {
      project: 'SUP',
      issueType: 'Task',
      summary: 'x',
      customFields: { severity: 'high' },
    });
    expect(code(create)).toBe('policy_denied');
    expect(text(create)).toContain('field customfield_10042 is classified restricted');
    expect(prompts).toHaveLength(0);
    expect(requestsTo('/comment', 'POST').length).toBe(posts);
    expect(requestsTo('/rest/api/3/issue', 'POST').length).toBe(creates);
    // Fields within the clearance are written as before.
    expect(
      code(await call('jira_update_issue', { key: 'SUP-3', summary: 'Renamed by the test' })),
    ).toBe('ok');
  });
});

describe('field labels: --print-policy', { timeout: 30_000 }, () => {
  it('prints what each label key means beside the labels', async () => {
    const { config } = jiraConfig(
      { OPS: 'confidential', description: 'restricted', 'SUP.customfield_10042': 'restricted' },
      'internal',
    );
    const printed = await effectivePolicy(jiraConnector, config as never, ENV);
    expect(printed.labelledPaths).toEqual([
      { path: 'OPS', label: 'confidential', means: 'project OPS: every field of its issues' },
      { path: 'description', label: 'restricted', means: 'field description in every project' },
      {
        path: 'SUP.customfield_10042',
        label: 'restricted',
        means: 'field customfield_10042 (alias severity) in project SUP',
      },
    ]);
    expect(policyToMarkdown(printed)).toContain(
      '| description | restricted | field description in every project |',
    );
  });
});
