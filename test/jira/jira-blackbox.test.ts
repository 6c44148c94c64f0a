/**
 * Black-box: the built `hardened-mcp-jira` bin over stdio AND over Streamable HTTP (API-key
 * auth), driven by the real MCP SDK client with elicitation for approvals, against the test
 * kit's stateful Jira fake. The issue's "Verified here" list: JQL escapes (structured filters
 * and raw JQL), writes to a read-only project, a transition id not in the live list, an issue
 * moved out of scope, mention floods, approval declined → nothing changed in the fake;
 * dropped out-of-scope results counted in the audit file; attachments through the media
 * redirect without the credential. Build first (`pnpm build`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@hardened-mcp/core';
import {
  FAKE_PNG,
  type JiraFake,
  startJiraFake,
  startStdioServer,
  textOf,
} from '@hardened-mcp/test-kit';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer } from '../support/http.ts';
import { REPO_ROOT } from '../support/server.ts';

const JIRA_BIN = join(REPO_ROOT, 'servers', 'jira', 'dist', 'bin.js');
const TOKENS = { JIRA_API_TOKEN: 'jira-bb-read-0001', JIRA_WRITE_API_TOKEN: 'jira-bb-write-0001' };
const API_KEY = `hmcp_j_${randomBytes(24).toString('base64url')}`;

type CallResult = Awaited<ReturnType<Client['callTool']>>;
const codeOf = (r: CallResult) => /^([a-z_]+):/.exec(textOf(r))?.[1];

describe.each(['stdio', 'http'] as const)('jira over %s', { timeout: 120_000 }, (transport) => {
  let fake: JiraFake;
  let client: Client;
  let close: () => Promise<void>;
  let auditFile: string;
  const asked: string[] = [];
  let answer: 'accept' | 'decline' = 'decline';

  beforeAll(async () => {
    fake = await startJiraFake({ tokens: Object.values(TOKENS) });
    auditFile = join(mkdtempSync(join(tmpdir(), 'hmcp-jira-bb-')), 'audit.jsonl');
    const config = {
      mode: 'read-write',
      audit: { stderr: false, file: auditFile },
      jira: {
        site: fake.url,
        // No auth.email: the e-mail comes from JIRA_EMAIL.
        projects: { read: ['SUP', 'OPS'], write: ['SUP'] },
        transitions: { allowTo: ['In Progress', 'Done'] },
        rawJql: true,
        attachments: { enabled: true, maxBytes: 65_536, mediaOrigins: [fake.mediaUrl] },
      },
    };
    const env = { ...TOKENS, JIRA_EMAIL: 'bot@example.com' };
    if (transport === 'stdio') {
      const session = await startStdioServer(JIRA_BIN, {
        env,
        capabilities: { elicitation: {} },
        config: { ...config, identity: { principal: 'bb-stdio', roles: ['writer'] } },
      });
      client = session.client;
      close = () => session.close();
    } else {
      const server = await startHttpServer({
        bin: JIRA_BIN,
        env,
        config: {
          ...config,
          auth: {
            mode: 'api-key',
            apiKeys: [
              { id: 'bb', sha256: hashApiKey(API_KEY), principal: 'bb-http', roles: ['writer'] },
            ],
          },
        },
      });
      client = new Client(
        { name: 'jira-bb-http', version: '1.0.0' },
        { capabilities: { elicitation: {} } },
      );
      const t = new StreamableHTTPClientTransport(new URL(server.url), {
        requestInit: { headers: { Authorization: `Bearer ${API_KEY}` } },
      });
      await client.connect(t);
      close = async () => {
        await client.close();
        await server.stop();
      };
    }
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(req.params.message);
      return answer === 'accept'
        ? { action: 'accept', content: { approve: true } }
        : { action: 'decline' };
    });
  }, 120_000);
  afterAll(async () => {
    await close?.();
    await fake?.stop();
  });

  const call = (name: string, args: Record<string, unknown>) =>
    client.callTool({ name, arguments: args });
  const projectsOf = (r: CallResult) =>
    ((r.structuredContent as { issues?: { project: string }[] } | undefined)?.issues ?? []).map(
      (i) => i.project,
    );
  const searches = () => fake.requests.filter((q) => q.path === '/rest/api/3/search/jql');
  const writes = () => fake.requests.filter((q) => q.method !== 'GET');
  const auditRecords = () =>
    readFileSync(auditFile, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it.each([
    ['a closing parenthesis and OR', { text: 'x) OR (project = FIN' }],
    ['a quote that tries to end the string', { text: 'x" OR project = "FIN' }],
    ['a backslash before the quote', { text: 'x\\" OR project = FIN OR text ~ "' }],
    ['ORDER BY in a value', { text: 'a ORDER BY key' }],
    [
      'a JQL function in a value',
      { statuses: ['Done") OR issue in issueHistory() OR status in ("x'] },
    ],
    ['unicode quotes and a comment marker', { text: '\u201cx\u201d OR project = FIN -- ' }],
    ['a label made of JQL', { labels: ['a"OR"project"="FIN'] }],
  ])('structured filters keep %s inside one quoted value', async (_what, filters) => {
    const before = searches().length;
    const r = await call('jira_search_issues', filters);
    if (r.isError) expect(codeOf(r)).toMatch(/^(invalid_input|upstream_error)$/);
    else expect(projectsOf(r).every((p) => p === 'SUP' || p === 'OPS')).toBe(true);
    for (const q of searches().slice(before))
      expect(q.query.jql?.startsWith('project in ("SUP", "OPS") AND ')).toBe(true);
    expect(textOf(r)).not.toContain('FIN-');
  });

  it.each([
    ['x) OR (project = SECRET', 'an unbalanced escape'],
    ['summary ~ "x" OR project = FIN', 'an OR across projects'],
    ['project = FIN ORDER BY key', 'ORDER BY after a foreign project'],
    ['issue in issueHistory()', 'a function not on the allowlist'],
    ['project = FIN /* comment */', 'a comment'],
    ['cf[10042] = x', 'a field not on the allowlist'],
    ['summary ~ "\u201cx\u201d" OR project = FIN', 'unicode quotes'],
  ])('raw JQL %s (%s) is refused or scoped in its tree', async (jql) => {
    const before = searches().length;
    const r = await call('jira_search_issues', { jql });
    if (r.isError) expect(codeOf(r)).toMatch(/^(invalid_input|upstream_error)$/);
    else expect(projectsOf(r).every((p) => p === 'SUP' || p === 'OPS')).toBe(true);
    for (const q of searches().slice(before))
      expect(q.query.jql?.startsWith('project IN ("SUP", "OPS") AND ')).toBe(true);
    expect(textOf(r)).not.toContain('FIN-');
  });

  it('drops results outside the allowlist and counts them in the audit record', async () => {
    fake.searchIgnoresProject(true);
    try {
      const r = await call('jira_search_issues', { orderBy: 'key', direction: 'asc' });
      expect(r.isError).toBeFalsy();
      expect(projectsOf(r).every((p) => p === 'SUP' || p === 'OPS')).toBe(true);
      expect(textOf(r)).not.toContain('FIN-');
    } finally {
      fake.searchIgnoresProject(false);
    }
    const rec = auditRecords()
      .filter((x) => x.tool === 'jira_search_issues')
      .at(-1);
    expect(rec?.notes).toEqual({ droppedOutOfScope: 2 });
    expect(rec?.transport).toBe(transport);
  });

  it('refuses writes to a read-only project before asking the human; the fake is unchanged', async () => {
    const before = { asked: asked.length, writes: writes().length, issues: fake.issues.size };
    const ops1 = JSON.stringify(fake.issue('OPS-1'));
    answer = 'accept';
    try {
      for (const [name, args] of [
        ['jira_create_issue', { project: 'OPS', issueType: 'Task', summary: 'nope' }],
        ['jira_add_comment', { key: 'OPS-1', body: 'nope' }],
        ['jira_update_issue', { key: 'OPS-1', summary: 'nope' }],
        ['jira_transition_issue', { key: 'OPS-1', transitionId: '11' }],
        [
          'jira_add_attachment',
          { key: 'OPS-1', fileName: 'a.txt', mimeType: 'text/plain', contentBase64: 'aGk=' },
        ],
      ] as const) {
        const r = await call(name, args);
        expect(r.isError).toBe(true);
        expect(codeOf(r)).toBe('policy_denied');
      }
    } finally {
      answer = 'decline';
    }
    expect(asked.length).toBe(before.asked);
    expect(writes().length).toBe(before.writes);
    expect(fake.issues.size).toBe(before.issues);
    expect(JSON.stringify(fake.issue('OPS-1'))).toBe(ops1);
  });

  it('refuses a transition id that is not in the live list, before asking', async () => {
    const before = asked.length;
    // SUP-1 is "To Do": 41 (Reopen) exists in the workflow but not from here; 51 goes to a
    // status outside transitions.allowTo.
    for (const transitionId of ['41', '51', '999']) {
      const r = await call('jira_transition_issue', { key: 'SUP-1', transitionId });
      expect(codeOf(r)).toBe('policy_denied');
    }
    expect(asked.length).toBe(before);
    expect(fake.issue('SUP-1')?.status).toBe('To Do');
  });

  it('treats an issue moved out of scope as absent, for reads and writes', async () => {
    const newKey = fake.moveIssue('OPS-2', 'FIN');
    const before = asked.length;
    for (const [name, args] of [
      ['jira_get_issue', { key: 'OPS-2' }],
      ['jira_list_comments', { key: 'OPS-2' }],
      ['jira_list_transitions', { key: 'OPS-2' }],
      ['jira_get_issue', { key: 'SUP-4' }],
      ['jira_add_comment', { key: 'SUP-4', body: 'x' }],
      ['jira_get_attachment', { key: 'SUP-4', attachmentId: '10503' }],
    ] as const) {
      const r = await call(name, args);
      expect(codeOf(r)).toBe('upstream_error');
      expect(textOf(r)).not.toContain(newKey);
    }
    expect(asked.length).toBe(before);
  });

  it('turns a mention flood into plain text: no mention node reaches Jira', async () => {
    const flood = `${'[~accountid:5b10ac8d82e05b22cc7d4ef5] @here @Maria '.repeat(100)}please look`;
    answer = 'accept';
    try {
      const r = await call('jira_add_comment', { key: 'SUP-3', body: flood });
      expect(r.isError).toBeFalsy();
      const refused = await call('jira_add_comment', {
        key: 'SUP-3',
        body: 'hi',
        mentions: ['5b10ac8d82e05b22cc7d4ef5'],
      });
      expect(codeOf(refused)).toBe('invalid_input');
    } finally {
      answer = 'decline';
    }
    const stored = JSON.stringify(fake.issue('SUP-3')?.comments.at(-1)?.body);
    expect(stored).not.toContain('"mention"');
    expect(stored).toContain('@here @Maria');
    expect(fake.requests.some((q) => q.path.startsWith('/rest/api/2/'))).toBe(false);
  });

  it('changes nothing in the fake when the human declines', async () => {
    answer = 'decline';
    const sup2 = JSON.stringify(fake.issue('SUP-2'));
    const before = { asked: asked.length, writes: writes().length, issues: fake.issues.size };
    for (const [name, args] of [
      ['jira_create_issue', { project: 'SUP', issueType: 'Bug', summary: 'declined' }],
      ['jira_update_issue', { key: 'SUP-2', summary: 'declined' }],
      ['jira_add_comment', { key: 'SUP-2', body: 'declined' }],
      ['jira_transition_issue', { key: 'SUP-2', transitionId: '11' }],
      [
        'jira_add_attachment',
        { key: 'SUP-2', fileName: 'd.txt', mimeType: 'text/plain', contentBase64: 'aGk=' },
      ],
    ] as const) {
      const r = await call(name, args);
      expect(codeOf(r)).toBe('approval_declined');
    }
    expect(asked.length).toBe(before.asked + 5);
    expect(writes().length).toBe(before.writes);
    expect(fake.issues.size).toBe(before.issues);
    expect(JSON.stringify(fake.issue('SUP-2'))).toBe(sup2);
    const declined = auditRecords().slice(-5);
    expect(declined.map((x) => (x.decision as { approval?: string }).approval)).toEqual(
      Array(5).fill('declined'),
    );
  });

  it('downloads an attachment through the media redirect without the Jira credential', async () => {
    const seen = fake.mediaRequests.length;
    const r = await call('jira_get_attachment', { key: 'SUP-1', attachmentId: '10501' });
    expect(r.isError).toBeFalsy();
    const block = (
      r.content as { type: string; resource?: { blob?: string; mimeType?: string } }[]
    ).find((c) => c.type === 'resource');
    expect(block?.resource?.mimeType).toBe('image/png');
    expect(Buffer.from(block?.resource?.blob ?? '', 'base64').equals(FAKE_PNG)).toBe(true);
    expect(fake.mediaRequests.slice(seen)).toEqual([
      expect.objectContaining({ status: 200, hadAuthorization: false }),
    ]);
  });

  it('writes an approved comment, with the approval prompt showing key and text', async () => {
    answer = 'accept';
    try {
      const r = await call('jira_add_comment', { key: 'SUP-2', body: 'Triaged: **export** bug' });
      expect(r.isError).toBeFalsy();
    } finally {
      answer = 'decline';
    }
    expect(asked.at(-1)).toContain('SUP-2');
    expect(asked.at(-1)).toContain('Triaged: **export** bug');
    expect(JSON.stringify(fake.issue('SUP-2')?.comments.at(-1)?.body)).toContain('export');
  });
});
