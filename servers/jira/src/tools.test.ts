import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ApprovalChannel,
  assemble,
  type CallResponse,
  defineConfigSchema,
  type Identity,
  NO_APPROVAL_CHANNEL,
  parseConfig,
} from '@hardened-mcp/core';
import { FAKE_JIRA_PASTED_SECRET, type JiraFake, startJiraFake } from '@hardened-mcp/test-kit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jiraSectionSchema } from './config.js';
import { jiraConnector } from './connector.js';

const READ_TOKEN = 'jira-read-token-0001';
const WRITE_TOKEN = 'jira-write-token-0001';
const ENV = { JIRA_API_TOKEN: READ_TOKEN, JIRA_WRITE_API_TOKEN: WRITE_TOKEN };
let fake: JiraFake;
const closers: (() => Promise<void>)[] = [];
const auditFile = () => join(mkdtempSync(join(tmpdir(), 'hmcp-jira-')), 'audit.jsonl');

beforeAll(async () => {
  fake = await startJiraFake({ tokens: [READ_TOKEN, WRITE_TOKEN] });
});
afterAll(async () => {
  await fake.stop();
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** The connector assembled in-process against the fake, as the bin does it. */
async function server(jira: Record<string, unknown> = {}, raw: Record<string, unknown> = {}) {
  const audit = auditFile();
  const config = parseConfig(defineConfigSchema('jira', jiraSectionSchema), {
    audit: { stderr: false, file: audit },
    log: { level: 'silent' },
    mode: 'read-write',
    identity: { principal: 'ana', roles: ['writer'] },
    jira: {
      site: fake.url,
      auth: { email: 'bot@example.com' },
      projects: { read: ['SUP', 'OPS'], write: ['SUP'] },
      transitions: { allowTo: ['In Progress', 'Done'] },
      ...jira,
    },
    ...raw,
  });
  const s = await assemble(jiraConnector, config as never, { env: ENV });
  closers.push(() => s.close());
  const asked: string[] = [];
  const channel = (answer: 'approved' | 'declined'): ApprovalChannel => ({
    supported: true,
    async request(message) {
      asked.push(message);
      return answer;
    },
  });
  const call = (
    name: string,
    args: unknown,
    approval: ApprovalChannel = NO_APPROVAL_CHANNEL,
    who: Partial<Identity> = {},
  ) =>
    s.pipeline.callTool({
      name,
      arguments: args,
      identity: { principal: 'ana', roles: ['writer'], transport: 'stdio', client: {}, ...who },
      approval,
      signal: new AbortController().signal,
    });
  /** The audit records written so far, parsed. */
  const records = () =>
    readFileSync(audit, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    s,
    call,
    asked,
    records,
    approve: channel('approved'),
    decline: channel('declined'),
  };
}

function result(r: CallResponse) {
  if (r.kind !== 'result') throw new Error('unknown tool');
  return r.result;
}
const codeOf = (r: CallResponse) =>
  (result(r)._meta?.['hardened-mcp/error'] as { code?: string } | undefined)?.code;
const dataOf = <T>(r: CallResponse) => {
  const res = result(r);
  if (res.isError) throw new Error(`tool error: ${JSON.stringify(res.content)}`);
  return res.structuredContent as T;
};
const textOf = (r: CallResponse) => JSON.stringify(result(r));
const lastSearchJql = () =>
  fake.requests.filter((q) => q.path === '/rest/api/3/search/jql').at(-1)?.query.jql;

// The first assembly of a file loads jira.js: slow when the suite's files run in parallel on 2 cores.
describe('jira read tools', { timeout: 30_000 }, () => {
  it('lists only allowlisted projects', async () => {
    const { call } = await server();
    const t = dataOf<{ rows: unknown[][] }>(await call('jira_list_projects', {}));
    expect(t.rows.map((r) => r[0]).sort()).toEqual(['OPS', 'SUP']);
  });

  it('builds JQL server-side with quoted values: a crafted value cannot widen the scope', async () => {
    const { call } = await server();
    const r = dataOf<{ issues: { key: string }[] }>(
      await call('jira_search_issues', { text: 'x) OR (project = FIN' }),
    );
    expect(lastSearchJql()).toBe(
      'project in ("SUP", "OPS") AND text ~ "x) OR (project = FIN" ORDER BY updated DESC',
    );
    expect(r.issues).toEqual([]);
    dataOf(await call('jira_search_issues', { statuses: ['Done" OR project = "FIN'] }));
    expect(lastSearchJql()).toContain('status in ("Done\\" OR project = \\"FIN")');
    const all = dataOf<{ issues: { key: string; project: string }[] }>(
      await call('jira_search_issues', { orderBy: 'key', direction: 'asc' }),
    );
    expect(all.issues.map((i) => i.project).every((p) => p === 'SUP' || p === 'OPS')).toBe(true);
    expect(all.issues.length).toBe(5);
    expect(codeOf(await call('jira_search_issues', { projects: ['FIN'] }))).toBe('policy_denied');
    // ORDER BY cannot be injected: the order is an enum.
    expect(codeOf(await call('jira_search_issues', { orderBy: 'key; project = FIN' }))).toBe(
      'invalid_input',
    );
  });

  it('drops every returned issue whose project is outside the allowlist, and counts it in the audit record', async () => {
    const { call, records } = await server();
    fake.searchIgnoresProject(true);
    try {
      const r = await call('jira_search_issues', { orderBy: 'key', direction: 'asc' });
      const data = dataOf<{ issues: { project: string }[]; droppedOutOfScope: number }>(r);
      expect(data.droppedOutOfScope).toBe(2);
      expect(data.issues.every((i) => i.project === 'SUP' || i.project === 'OPS')).toBe(true);
      expect(textOf(r)).not.toContain('FIN-');
      const rec = records()
        .filter((x) => x.tool === 'jira_search_issues')
        .at(-1);
      expect(rec?.notes).toEqual({ droppedOutOfScope: 2 });
    } finally {
      fake.searchIgnoresProject(false);
    }
  });

  it('takes raw JQL only when enabled, scoped in the parsed tree', async () => {
    const off = await server();
    expect(codeOf(await off.call('jira_search_issues', { jql: 'status = Done' }))).toBe(
      'invalid_input',
    );
    const { call } = await server({ rawJql: true });
    const r = dataOf<{ issues: { key: string }[] }>(
      await call('jira_search_issues', { jql: 'status = "In Progress" ORDER BY key ASC' }),
    );
    expect(lastSearchJql()).toBe(
      'project IN ("SUP", "OPS") AND status = "In Progress" ORDER BY key ASC',
    );
    expect(r.issues.map((i) => i.key)).toEqual(['SUP-3']);
    const refused = await call('jira_search_issues', { jql: 'x) OR (project = FIN' });
    expect(codeOf(refused)).toBe('invalid_input');
    expect(codeOf(await call('jira_search_issues', { jql: 'status = Done', text: 'x' }))).toBe(
      'invalid_input',
    );
    expect(codeOf(await call('jira_search_issues', { jql: 'key in issueHistory()' }))).toBe(
      'invalid_input',
    );
  });

  it('pages with sealed cursors bound to the query and the principal', async () => {
    const { call } = await server();
    const first = dataOf<{ issues: { key: string }[]; nextCursor: string }>(
      await call('jira_search_issues', { limit: 2, orderBy: 'key', direction: 'asc' }),
    );
    expect(first.issues).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));
    // The cursor carries no upstream data readable by the client.
    const raw = Buffer.from(first.nextCursor, 'base64url').toString('latin1');
    expect(raw).not.toContain(Buffer.from('2').toString('base64url'));
    const second = dataOf<{ issues: { key: string }[] }>(
      await call('jira_search_issues', {
        limit: 2,
        orderBy: 'key',
        direction: 'asc',
        cursor: first.nextCursor,
      }),
    );
    expect(second.issues.map((i) => i.key)).not.toContain(first.issues[0]?.key);
    expect(fake.requests.at(-1)?.query.nextPageToken).toEqual(expect.any(String));
    // Another query, or another principal: refused.
    expect(codeOf(await call('jira_search_issues', { limit: 2, cursor: first.nextCursor }))).toBe(
      'invalid_input',
    );
    expect(
      codeOf(
        await call(
          'jira_search_issues',
          { limit: 2, orderBy: 'key', direction: 'asc', cursor: first.nextCursor },
          NO_APPROVAL_CHANNEL,
          { principal: 'bob' },
        ),
      ),
    ).toBe('invalid_input');
  });

  it('reads an issue with its comments as Markdown, redacted', async () => {
    const { call } = await server();
    const r = await call('jira_get_issue', { key: 'SUP-1' });
    const issue = dataOf<{ description: string; comments: { body: string }[] }>(r);
    expect(issue.description).toContain('reset link loops');
    expect(issue.comments).toHaveLength(2);
    expect(textOf(r)).not.toContain(FAKE_JIRA_PASTED_SECRET);
    expect(textOf(r)).not.toContain('maria.jensen@example.com');
    expect(textOf(r)).not.toContain('4111 1111 1111 1111');
  });

  it('checks the project of the issue as returned: a moved issue is out of scope under its old key', async () => {
    const { call } = await server();
    const moved = await call('jira_get_issue', { key: 'SUP-4' });
    expect(codeOf(moved)).toBe('upstream_error');
    expect(textOf(moved)).not.toContain('Salary');
    expect(codeOf(await call('jira_list_comments', { key: 'SUP-4' }))).toBe('upstream_error');
    expect(codeOf(await call('jira_list_transitions', { key: 'SUP-4' }))).toBe('upstream_error');
    expect(codeOf(await call('jira_get_issue', { key: 'FIN-1' }))).toBe('upstream_error');
  });

  it('pages comments and lists transitions with what the server allows', async () => {
    const { call } = await server();
    const p1 = dataOf<{ comments: { id: string }[]; nextCursor: string }>(
      await call('jira_list_comments', { key: 'SUP-1', limit: 1 }),
    );
    expect(p1.comments.map((c) => c.id)).toEqual(['10100']);
    const p2 = dataOf<{ comments: { id: string }[]; nextCursor: string | null }>(
      await call('jira_list_comments', { key: 'SUP-1', limit: 1, cursor: p1.nextCursor }),
    );
    expect(p2.comments.map((c) => c.id)).toEqual(['10101']);
    expect(p2.nextCursor).toBeNull();
    const t = dataOf<{ rows: unknown[][] }>(await call('jira_list_transitions', { key: 'SUP-2' }));
    expect(t.rows).toContainEqual(['11', 'Start progress', 'In Progress', true]);
    expect(t.rows).toContainEqual(['51', "Won't do", 'Rejected', false]);
  });

  it('lists create fields for allowed issue types only, custom fields by alias', async () => {
    const { call } = await server({ customFields: { severity: 'customfield_10042' } });
    const r = dataOf<{ issueTypes: { issueType: string; fields: { field: string }[] }[] }>(
      await call('jira_get_create_fields', { project: 'SUP' }),
    );
    expect(r.issueTypes.map((t) => t.issueType)).toEqual(['Bug', 'Task']);
    expect(r.issueTypes[0]?.fields.map((f) => f.field)).toEqual([
      'summary',
      'description',
      'labels',
      'priority',
      'severity',
    ]);
    expect(codeOf(await call('jira_get_create_fields', { project: 'FIN' }))).toBe('policy_denied');
  });

  it('has jira_find_users only when enabled, and never returns e-mail addresses', async () => {
    const off = await server();
    expect(off.s.pipeline.enabledTools).not.toContain('jira_find_users');
    const on = await server({ users: { enabled: true } });
    const r = await on.call('jira_find_users', { query: 'maria' });
    expect(dataOf<{ rows: unknown[][] }>(r).rows).toEqual([
      ['5b10ac8d82e05b22cc7d4ef5', 'Maria Jensen'],
    ]);
    expect(textOf(r)).not.toContain('@example.com');
  });

  it('retries a read once after a short Retry-After, and never retries a write', async () => {
    const { call, approve } = await server();
    fake.injectRateLimit(1, 1);
    const before = fake.requests.length;
    const t = dataOf<{ rows: unknown[][] }>(await call('jira_list_projects', {}));
    expect(t.rows).toHaveLength(2);
    expect(fake.requests.slice(before).map((q) => q.status)).toEqual([429, 200]);
    const comments = fake.issue('SUP-3')?.comments.length ?? 0;
    fake.injectRateLimit(1, 1, 'POST');
    const w = await call('jira_add_comment', { key: 'SUP-3', body: 'once' }, approve);
    expect(codeOf(w)).toBe('rate_limited');
    expect(fake.requests.filter((q) => q.method === 'POST').at(-1)?.status).toBe(429);
    expect(fake.issue('SUP-3')?.comments.length).toBe(comments);
    fake.injectRateLimit(0, 1);
  });

  it('answers 429 and a revoked token with stable tool errors', async () => {
    const { call } = await server();
    fake.injectRateLimit(2, 30);
    const limited = await call('jira_list_projects', {});
    expect(codeOf(limited)).toBe('rate_limited');
    expect(textOf(limited)).not.toContain('Rate limit exceeded');
    fake.injectRateLimit(0, 1);
    const revoked = 'jira-revoked-token-01';
    const other = await startJiraFake({ tokens: [revoked] });
    try {
      other.revokeToken(revoked);
      const config = parseConfig(defineConfigSchema('jira', jiraSectionSchema), {
        audit: { stderr: false, file: auditFile() },
        log: { level: 'silent' },
        jira: { site: other.url, auth: { email: 'bot@example.com' }, projects: { read: ['SUP'] } },
      });
      const s = await assemble(jiraConnector, config as never, {
        env: { JIRA_API_TOKEN: revoked },
      });
      closers.push(() => s.close());
      const r = await s.pipeline.callTool({
        name: 'jira_get_issue',
        arguments: { key: 'SUP-1' },
        identity: { principal: 'ana', roles: ['reader'], transport: 'stdio', client: {} },
        approval: NO_APPROVAL_CHANNEL,
        signal: new AbortController().signal,
      });
      expect(codeOf(r)).toBe('upstream_unavailable');
    } finally {
      await other.stop();
    }
  });
});

describe('jira write tools', () => {
  it('refuses a write to a read-only project before asking the human', async () => {
    const { call, asked, approve } = await server();
    const before = fake.issues.size;
    expect(
      codeOf(
        await call(
          'jira_create_issue',
          { project: 'OPS', issueType: 'Task', summary: 's' },
          approve,
        ),
      ),
    ).toBe('policy_denied');
    expect(codeOf(await call('jira_add_comment', { key: 'OPS-1', body: 'hi' }, approve))).toBe(
      'policy_denied',
    );
    expect(codeOf(await call('jira_update_issue', { key: 'SUP-4', summary: 'x' }, approve))).toBe(
      'upstream_error',
    );
    expect(
      codeOf(
        await call(
          'jira_create_issue',
          { project: 'SUP', issueType: 'Epic', summary: 's' },
          approve,
        ),
      ),
    ).toBe('policy_denied');
    expect(asked).toHaveLength(0);
    expect(fake.issues.size).toBe(before);
  });

  it('creates an issue with an ADF description, once per idempotency key', async () => {
    const { call, asked, approve } = await server();
    const args = {
      project: 'SUP',
      issueType: 'Bug',
      summary: 'Checkout fails',
      description: '**Steps**: pay with a card',
      labels: ['checkout'],
      idempotencyKey: 'retry-key-0001',
    };
    const first = dataOf<{ key: string; replayed: boolean }>(
      await call('jira_create_issue', args, approve),
    );
    const again = dataOf<{ key: string; replayed: boolean }>(
      await call('jira_create_issue', args, approve),
    );
    expect(again).toMatchObject({ key: first.key, replayed: true });
    expect([...fake.issues.values()].filter((i) => i.summary === 'Checkout fails')).toHaveLength(1);
    expect(fake.issue(first.key)?.description).toMatchObject({ type: 'doc', version: 1 });
    expect(asked[0]).toContain('Checkout fails');
    expect(codeOf(await call('jira_create_issue', { ...args, summary: 'Other' }, approve))).toBe(
      'invalid_input',
    );
  });

  it('adds a comment as ADF without mentions; a declined approval changes nothing', async () => {
    const { call, approve, decline } = await server();
    const before = fake.issue('SUP-3')?.comments.length ?? 0;
    expect(
      codeOf(await call('jira_add_comment', { key: 'SUP-3', body: 'declined' }, decline)),
    ).toBe('approval_declined');
    expect(fake.issue('SUP-3')?.comments.length).toBe(before);
    const flood = `${'[~accountid:5b10ac8d82e05b22cc7d4ef5] @Maria '.repeat(50)}please look`;
    dataOf(await call('jira_add_comment', { key: 'SUP-3', body: flood }, approve));
    const stored = fake.issue('SUP-3')?.comments.at(-1)?.body;
    expect(JSON.stringify(stored)).not.toContain('"mention"');
    // Plain text (Markdown reads `~…~` as strike-through), never a mention node.
    expect(JSON.stringify(stored)).toContain('accountid:5b10ac8d82e05b22cc7d4ef5] @Maria');
    expect(fake.requests.some((q) => q.path.startsWith('/rest/api/2/'))).toBe(false);
  });

  it('updates allowed fields with notifyUsers=false and shows before → after', async () => {
    const { call, asked, approve } = await server();
    dataOf(
      await call('jira_update_issue', { key: 'SUP-2', summary: 'Export button broken' }, approve),
    );
    expect(asked[0]).toContain('Export button does nothing');
    expect(asked[0]).toContain('Export button broken');
    const put = fake.requests.filter((q) => q.method === 'PUT').at(-1);
    expect(put?.query.notifyUsers).toBe('false');
    expect(fake.issue('SUP-2')?.summary).toBe('Export button broken');
    const limited = await server({ fields: { write: ['summary'] } });
    expect(
      codeOf(await limited.call('jira_update_issue', { key: 'SUP-2', labels: ['x'] }, approve)),
    ).toBe('policy_denied');
  });

  it('transitions only with an id from the live list, to an allowed status', async () => {
    const { call, asked, approve } = await server();
    expect(
      codeOf(await call('jira_transition_issue', { key: 'SUP-1', transitionId: '41' }, approve)),
    ).toBe('policy_denied');
    expect(
      codeOf(await call('jira_transition_issue', { key: 'SUP-1', transitionId: '51' }, approve)),
    ).toBe('policy_denied');
    expect(asked).toHaveLength(0);
    expect(fake.issue('SUP-1')?.status).toBe('To Do');
    dataOf(await call('jira_transition_issue', { key: 'SUP-1', transitionId: '11' }, approve));
    expect(asked[0]).toContain('To Do');
    expect(asked[0]).toContain('In Progress');
    expect(fake.issue('SUP-1')?.status).toBe('In Progress');
  });
});
