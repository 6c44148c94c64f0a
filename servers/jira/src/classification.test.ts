/**
 * Jira resources, classification and egress (issue 15): tools declare the Cedar `Project`
 * resource (classification path: the project key) and the writes that send data out are
 * `egress`. Runs in-process against the Jira fake of the test kit.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ApprovalChannel,
  assemble,
  type CallResponse,
  defineConfigSchema,
  parseConfig,
} from '@hardened-mcp/core';
import { type JiraFake, startJiraFake } from '@hardened-mcp/test-kit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jiraSectionSchema } from './config.js';
import { jiraConnector } from './connector.js';
import { issueRef, searchRef } from './resources.js';

const READ_TOKEN = 'jira-read-token-0001';
const WRITE_TOKEN = 'jira-write-token-0001';
const ENV = { JIRA_API_TOKEN: READ_TOKEN, JIRA_WRITE_API_TOKEN: WRITE_TOKEN };
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

const approve: ApprovalChannel = {
  supported: true,
  async request() {
    return 'approved';
  },
};

/** Jira read-write on SUP (writable) and OPS; `OPS` labelled confidential. */
async function server(clearance: 'internal' | 'confidential') {
  const config = parseConfig(defineConfigSchema('jira', jiraSectionSchema), {
    audit: { stderr: false, file: join(mkdtempSync(join(tmpdir(), 'hmcp-jira-cls-')), 'a.jsonl') },
    log: { level: 'silent' },
    mode: 'read-write',
    jira: {
      site: fake.url,
      auth: { email: 'bot@example.com' },
      projects: { read: ['SUP', 'OPS'], write: ['SUP'] },
    },
    classification: { labels: { OPS: 'confidential' }, clearance: { default: clearance } },
  });
  const s = await assemble(jiraConnector, config as never, { env: ENV });
  closers.push(() => s.close());
  return (name: string, args: unknown, mcpSessionId: string) =>
    s.pipeline.callTool({
      name,
      arguments: args,
      identity: { principal: 'ana', roles: ['writer'], transport: 'http', client: {} },
      approval: approve,
      signal: new AbortController().signal,
      origin: { mcpSessionId },
    });
}

const code = (r: CallResponse) =>
  r.kind === 'result'
    ? ((r.result._meta?.['hardened-mcp/error'] as { code?: string } | undefined)?.code ?? 'ok')
    : 'unknown';
const text = (r: CallResponse) => (r.kind === 'result' ? JSON.stringify(r.result.content) : '');
const comment = { key: 'SUP-3', body: 'a summary for the team' };
const comments = () =>
  fake.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/comment')).length;

describe('jira classification and egress', { timeout: 30_000 }, () => {
  it('the resource of a call is its project; a search over several projects lists them all', () => {
    expect(issueRef('SUP-12')).toEqual({ id: 'SUP', attrs: { project: 'SUP', issue: 'SUP-12' } });
    expect(searchRef(['SUP', 'OPS'], { projects: ['SUP'] }).id).toBe('SUP');
    expect(searchRef(['SUP', 'OPS'], {}).classify).toEqual(['SUP', 'OPS']);
    // Raw JQL is scoped to every readable project, whatever `projects` says.
    expect(searchRef(['SUP', 'OPS'], { projects: ['SUP'], jql: 'x' }).classify).toEqual([
      'SUP',
      'OPS',
    ]);
  });

  it('a comment after reading a confidential project is refused in that session, allowed in a fresh one', async () => {
    const call = await server('confidential');
    expect(code(await call('jira_get_issue', { key: 'SUP-1' }, 's1'))).toBe('ok');
    expect(code(await call('jira_add_comment', comment, 's1'))).toBe('ok');
    expect(code(await call('jira_get_issue', { key: 'OPS-1' }, 's1'))).toBe('ok');
    const before = comments();
    const refused = await call('jira_add_comment', comment, 's1');
    expect(code(refused)).toBe('policy_denied');
    expect(text(refused)).toContain('confidential');
    expect(
      code(
        await call('jira_create_issue', { project: 'SUP', issueType: 'Task', summary: 'x' }, 's1'),
      ),
    ).toBe('policy_denied');
    expect(comments()).toBe(before);
    // Reading stays open; a transition sends no data out and is not egress.
    expect(code(await call('jira_get_issue', { key: 'SUP-1' }, 's1'))).toBe('ok');
    expect(code(await call('jira_add_comment', comment, 's2'))).toBe('ok');
    expect(comments()).toBe(before + 1);
  });

  it('a search over every project is classified as the highest of them', async () => {
    const call = await server('confidential');
    expect(code(await call('jira_search_issues', { projects: ['SUP'] }, 's3'))).toBe('ok');
    expect(code(await call('jira_add_comment', comment, 's3'))).toBe('ok');
    expect(code(await call('jira_search_issues', {}, 's3'))).toBe('ok');
    expect(code(await call('jira_add_comment', comment, 's3'))).toBe('policy_denied');
  });

  it('a project above the caller clearance is refused before Jira is asked', async () => {
    const call = await server('internal');
    const before = fake.requests.length;
    expect(code(await call('jira_get_issue', { key: 'OPS-1' }, 's4'))).toBe('policy_denied');
    expect(code(await call('jira_search_issues', {}, 's4'))).toBe('policy_denied');
    expect(fake.requests.length).toBe(before);
    expect(code(await call('jira_get_issue', { key: 'SUP-1' }, 's4'))).toBe('ok');
  });
});
