/**
 * Black-box: the built bin over stdio with the MCP SDK client, against the test kit's Jira fake
 * (build first: `pnpm build`). Scope escapes through JQL values, a moved issue, writes to a
 * read-only project, and approvals (declined → the fake is unchanged; accepted → written).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type JiraFake,
  type ServerSession,
  startJiraFake,
  startStdioServer,
  textOf,
} from '@hardened-mcp/test-kit';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');
const ENV = {
  JIRA_API_TOKEN: 'jira-read-token-0001',
  JIRA_WRITE_API_TOKEN: 'jira-write-token-0001',
};
let fake: JiraFake;
let session: ServerSession;
const asked: string[] = [];
let answer: 'accept' | 'decline' = 'decline';

beforeAll(async () => {
  fake = await startJiraFake({ tokens: Object.values(ENV) });
  session = await startStdioServer(BIN, {
    env: ENV,
    capabilities: { elicitation: {} },
    config: {
      mode: 'read-write',
      identity: { principal: 'stdio-test', roles: ['writer'] },
      jira: {
        site: fake.url,
        auth: { email: 'bot@example.com' },
        projects: { read: ['SUP', 'OPS'], write: ['SUP'] },
        transitions: { allowTo: ['In Progress', 'Done'] },
      },
    },
  });
  session.client.setRequestHandler(ElicitRequestSchema, async (req) => {
    asked.push(req.params.message);
    return answer === 'accept'
      ? { action: 'accept', content: { approve: true } }
      : { action: 'decline' };
  });
}, 60_000);
afterAll(async () => {
  await session?.close();
  await fake?.stop();
});

const call = (name: string, args: Record<string, unknown>) =>
  session.client.callTool({ name, arguments: args });
const keysOf = (r: Awaited<ReturnType<typeof call>>) =>
  ((r.structuredContent as { issues?: { key: string; project: string }[] }).issues ?? []).map(
    (i) => i.project,
  );
const searches = () => fake.requests.filter((q) => q.path === '/rest/api/3/search/jql');

describe('jira over stdio', { timeout: 60_000 }, () => {
  it.each([
    ['a closing parenthesis and OR', { text: 'x) OR (project = FIN' }],
    ['a quote that tries to end the string', { text: 'x" OR project = "FIN' }],
    ['a backslash before the quote', { text: 'x\\" OR project = FIN OR text ~ "' }],
    ['ORDER BY in a value', { text: 'a ORDER BY key' }],
    ['a JQL function', { statuses: ['Done") OR issue in issueHistory() OR status in ("x'] }],
    ['unicode quotes and a comment marker', { text: '\u201cx\u201d OR project = FIN -- ' }],
    ['an assignee made of JQL', { labels: ['a"OR"project"="FIN'] }],
  ])('keeps %s inside one quoted value', async (_what, filters) => {
    const before = searches().length;
    const r = await call('jira_search_issues', filters);
    // Either refused by input validation, or answered with allowlisted projects only.
    if (r.isError) expect(textOf(r)).toMatch(/^(invalid_input|upstream_error)/);
    else expect(keysOf(r).every((p) => p === 'SUP' || p === 'OPS')).toBe(true);
    for (const q of searches().slice(before))
      expect(q.query.jql?.startsWith('project in ("SUP", "OPS") AND ')).toBe(true);
    expect(textOf(r)).not.toContain('FIN-');
  });

  it('refuses ORDER BY and raw JQL outside the structured filters', async () => {
    const r = await call('jira_search_issues', { orderBy: 'key DESC, project' });
    expect(r.isError).toBe(true);
    const raw = await call('jira_search_issues', { jql: 'project = FIN' });
    expect(raw.isError).toBe(true);
  });

  it('treats an issue moved out of scope as absent under its old key', async () => {
    const r = await call('jira_get_issue', { key: 'SUP-4' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^upstream_error: issue SUP-4 does not exist in an allowed project/);
    expect(textOf(r)).not.toContain('Salary');
  });

  it('refuses writes to a read-only project without asking the human', async () => {
    const n = asked.length;
    const before = JSON.stringify([...fake.issues.values()]);
    const r1 = await call('jira_create_issue', { project: 'OPS', issueType: 'Task', summary: 'x' });
    const r2 = await call('jira_add_comment', { key: 'OPS-1', body: 'x' });
    const r3 = await call('jira_transition_issue', { key: 'OPS-1', transitionId: '31' });
    for (const r of [r1, r2, r3]) expect(r.isError).toBe(true);
    expect(asked.length).toBe(n);
    expect(JSON.stringify([...fake.issues.values()])).toBe(before);
  });

  it('changes nothing when the human declines, and writes when the human approves', async () => {
    answer = 'decline';
    const before = JSON.stringify(fake.issue('SUP-2'));
    const declined = await call('jira_transition_issue', { key: 'SUP-2', transitionId: '31' });
    expect(textOf(declined)).toMatch(/^approval_declined/);
    expect(asked.at(-1)).toContain('To Do');
    expect(asked.at(-1)).toContain('Done');
    expect(JSON.stringify(fake.issue('SUP-2'))).toBe(before);
    answer = 'accept';
    const done = await call('jira_transition_issue', { key: 'SUP-2', transitionId: '31' });
    expect(done.isError).toBeFalsy();
    expect(fake.issue('SUP-2')?.status).toBe('Done');
  });

  it('fences and redacts what Jira users wrote, including an injection attempt', async () => {
    const r = await call('jira_get_issue', { key: 'SUP-2' });
    const text = textOf(r);
    expect(text).toContain('UNTRUSTED');
    expect(text).toContain('ignore all previous instructions');
    const c = await call('jira_list_comments', { key: 'SUP-1' });
    expect(textOf(c)).not.toMatch(/ghp_[A-Za-z0-9]{36}/);
  });
});
