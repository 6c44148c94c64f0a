/**
 * Contract check against the official description: the Jira server's every request, and the
 * fake's every answer, pass `@stoplight/prism-cli` in proxy mode with `--errors` against
 * `../shared/specs/jira-platform-v3.prism.json`. Prism answers 422 to a request the description
 * rejects (the call then fails here) and turns a response that breaks it into an error; both
 * are also logged, and the log must hold no error at the end.
 *
 * Prism forwards to a front (servers/jira/src/test-support/custom-field-upstream.ts) that serves
 * the site's field list and adds custom-field values to the fake's issues; every other request
 * passes through it to the fake unchanged.
 *
 * Needs the `../shared` kit beside the repository: without it the suite is skipped, saying why.
 * Build first (`pnpm build`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type JiraFake,
  repoRoot,
  type ServerSession,
  sharedKitDir,
  startJiraFake,
  startStdioServer,
  textOf,
} from '@hardened-mcp/test-kit';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CustomFieldUpstream,
  SAMPLE_CUSTOM_FIELDS,
  SAMPLE_CUSTOM_VALUES,
  startCustomFieldUpstream,
} from '../../servers/jira/src/test-support/custom-field-upstream.ts';
import { type PrismProxy, startPrismProxy } from '../support/prism.ts';

const SPEC = join(sharedKitDir, 'specs', 'jira-platform-v3.prism.json');
const BIN = join(repoRoot, 'servers', 'jira', 'dist', 'bin.js');
const HAVE_SPEC = existsSync(SPEC);
if (!HAVE_SPEC)
  console.warn(
    `jira prism contract check skipped: ${SPEC} is absent (the ../shared kit is not beside the repository)`,
  );
const ENV = {
  JIRA_API_TOKEN: 'jira-read-token-0001',
  JIRA_WRITE_API_TOKEN: 'jira-write-token-0001',
};

let fake: JiraFake;
let front: CustomFieldUpstream | undefined;
let prism: PrismProxy | undefined;
let prismUrl = '';
let session: ServerSession;

describe.skipIf(!HAVE_SPEC)(
  'jira requests and fake answers against the official description (prism proxy)',
  () => {
    beforeAll(async () => {
      fake = await startJiraFake({ tokens: Object.values(ENV) });
      front = await startCustomFieldUpstream(fake.url, SAMPLE_CUSTOM_FIELDS, SAMPLE_CUSTOM_VALUES);
      prism = await startPrismProxy(SPEC, front.url);
      prismUrl = prism.url;
      session = await startStdioServer(BIN, {
        env: ENV,
        capabilities: { elicitation: {} },
        config: {
          mode: 'read-write',
          identity: { principal: 'prism', roles: ['writer'] },
          jira: {
            site: prismUrl,
            auth: { email: 'bot@example.com' },
            projects: { read: ['SUP', 'OPS'], write: ['SUP'] },
            transitions: { allowTo: ['In Progress', 'Done'] },
            customFields: { severity: 'customfield_10042' },
            users: { enabled: true },
            // The 303 of a download goes to the fake's media origin (not an Atlassian API:
            // outside the description), so only the request to Jira passes prism.
            attachments: { enabled: true, maxBytes: 65_536, mediaOrigins: [fake.mediaUrl] },
          },
        },
      });
      session.client.setRequestHandler(ElicitRequestSchema, async () => ({
        action: 'accept',
        content: { approve: true },
      }));
    }, 240_000);
    afterAll(async () => {
      await session?.close();
      prism?.stop();
      await front?.stop();
      await fake?.stop();
    });

    const ok = async (name: string, args: Record<string, unknown>) => {
      const r = await session.client.callTool({ name, arguments: args });
      expect(r.isError, `${name}: ${textOf(r).slice(0, 300)}`).toBeFalsy();
      return r.structuredContent as Record<string, unknown>;
    };

    it('every tool, read and write, passes the description both ways', async () => {
      await ok('jira_list_projects', {});
      const page = await ok('jira_search_issues', {
        limit: 2,
        text: 'x) OR (project = FIN',
        orderBy: 'key',
        direction: 'asc',
      });
      expect(page.issues).toEqual([]);
      const first = await ok('jira_search_issues', {
        limit: 2,
        statuses: ['To Do'],
        labels: ['login'],
      });
      expect((first.issues as unknown[]).length).toBe(1);
      const all = await ok('jira_search_issues', { limit: 2, createdFrom: '2026-01-01' });
      await ok('jira_search_issues', {
        limit: 2,
        createdFrom: '2026-01-01',
        cursor: all.nextCursor,
      });
      await ok('jira_get_issue', { key: 'SUP-1' });
      await ok('jira_list_comments', { key: 'SUP-1', limit: 1 });
      await ok('jira_list_transitions', { key: 'SUP-1' });
      await ok('jira_get_create_fields', { project: 'SUP' });
      await ok('jira_find_users', { query: 'maria' });
      const created = await ok('jira_create_issue', {
        project: 'SUP',
        issueType: 'Bug',
        summary: 'Checkout fails',
        description: '# Steps\n\n1. pay\n2. **fail**',
        labels: ['checkout'],
        priority: 'High',
        customFields: { severity: 'S2' },
        idempotencyKey: 'prism-key-0001',
      });
      await ok('jira_update_issue', {
        key: created.key as string,
        summary: 'Checkout fails on Visa',
      });
      await ok('jira_add_comment', { key: 'SUP-3', body: 'Looked at it: *VAT* table is stale.' });
      await ok('jira_transition_issue', { key: 'SUP-3', transitionId: '31' });
      // Attachments: the content URL answers 303 (declared), the upload is multipart/form-data.
      const got = await ok('jira_get_attachment', { key: 'SUP-1', attachmentId: '10500' });
      expect(got.filename).toBe('staging-login.log');
      // The description declares the upload's multipart/form-data body as a JSON array
      // (`MultipartFile[]`), which no form body can be: prism refuses every upload, Atlassian's
      // own included, with exactly "Request body must be array" (shared/specs is read-only data).
      // Everything else of the request (method, path, parameters, headers) passes; the upload's
      // behaviour is tested against the fake in the other suites.
      const uploads = fake.requests.filter((q) => q.path.endsWith('/attachments')).length;
      const upload = await session.client.callTool({
        name: 'jira_add_attachment',
        arguments: {
          key: 'SUP-3',
          fileName: 'vat-rates.csv',
          mimeType: 'text/csv',
          contentBase64: Buffer.from('country,rate\nDK,25\n').toString('base64'),
        },
      });
      expect(textOf(upload)).toMatch(/^upstream_error: Jira answered HTTP 422/);
      expect(fake.requests.filter((q) => q.path.endsWith('/attachments')).length).toBe(uploads);
      expect(fake.requests.length).toBeGreaterThan(15);
      // Nothing prism refused or flagged, in either direction.
      const flagged = prism?.violations() ?? [];
      // Only the refused upload (its 422) may be flagged.
      expect(
        flagged.filter((l) => !/\/attachments\b|must be array|UNPROCESSABLE/.test(l)),
        flagged.join('\n'),
      ).toEqual([]);
    });

    it('field labels: reads that withhold fields pass the description; a refused JQL never reaches Jira', async () => {
      const labelled = await startStdioServer(BIN, {
        env: ENV,
        config: {
          mode: 'read-only',
          identity: { principal: 'prism', roles: ['reader'] },
          jira: {
            site: prismUrl,
            auth: { email: 'bot@example.com' },
            projects: { read: ['SUP', 'OPS'] },
            rawJql: true,
          },
          classification: {
            labels: { description: 'confidential', 'SUP.comment': 'confidential' },
            clearance: { default: 'internal' },
          },
        },
      });
      try {
        const call = (name: string, args: Record<string, unknown>) =>
          labelled.client.callTool({ name, arguments: args });
        const issue = await call('jira_get_issue', { key: 'SUP-1' });
        expect(issue.isError, textOf(issue).slice(0, 300)).toBeFalsy();
        const got = issue.structuredContent as Record<string, unknown>;
        expect(got.withheldFields).toEqual(['description', 'comment']);
        const search = await call('jira_search_issues', { limit: 2, statuses: ['To Do'] });
        expect(search.isError, textOf(search).slice(0, 300)).toBeFalsy();
        const before = fake.requests.length;
        const refused = await call('jira_search_issues', { jql: 'description ~ "password"' });
        expect(textOf(refused)).toMatch(/^policy_denied: field description is classified/);
        expect(fake.requests.length).toBe(before);
      } finally {
        await labelled.close();
      }
      expect(
        prism?.violations().filter((l) => !/\/attachments\b|must be array|UNPROCESSABLE/.test(l)) ??
          [],
      ).toEqual([]);
    }, 120_000);

    it('custom fields: reads that return or withhold them and the field list pass the description; JQL display names resolve exactly', async () => {
      const labelled = await startStdioServer(BIN, {
        env: ENV,
        config: {
          mode: 'read-only',
          identity: { principal: 'prism', roles: ['reader'] },
          jira: {
            site: prismUrl,
            auth: { email: 'bot@example.com' },
            projects: { read: ['SUP', 'OPS'] },
            rawJql: true,
            fields: {
              custom: {
                storyPoints: 'customfield_10016',
                customerEmail: 'customfield_10050',
                rootCause: 'customfield_10060',
                severity: 'customfield_10042',
                approvers: 'customfield_10070',
              },
            },
            jql: { fields: ['status', 'Story Points', 'Customer email'] },
          },
          classification: {
            labels: { customfield_10050: 'confidential' },
            clearance: { default: 'internal' },
          },
        },
      });
      try {
        const call = (name: string, args: Record<string, unknown>) =>
          labelled.client.callTool({ name, arguments: args });
        const issue = await call('jira_get_issue', { key: 'SUP-1' });
        expect(issue.isError, textOf(issue).slice(0, 300)).toBeFalsy();
        const got = issue.structuredContent as {
          withheldFields?: string[];
          customFields?: Record<string, unknown>;
        };
        expect(got.withheldFields).toEqual(['customerEmail']);
        expect(got.customFields).toEqual({
          storyPoints: 5,
          rootCause: 'The reset token is **single-use**',
          severity: 'S2',
          approvers: ['Maria Jensen'],
        });
        const search = await call('jira_search_issues', {
          limit: 2,
          statuses: ['To Do'],
          fields: ['summary', 'storyPoints'],
        });
        expect(search.isError, textOf(search).slice(0, 300)).toBeFalsy();
        // "Story Points" is resolved through GET /rest/api/3/field (through prism) to an
        // unlabelled field: allowed; "Customer email" to the confidential one: refused.
        const lists = front?.fieldListRequests() ?? 0;
        const byName = await call('jira_search_issues', {
          jql: '"Story Points" > 3',
          fields: ['summary'],
        });
        expect(byName.isError, textOf(byName).slice(0, 300)).toBeFalsy();
        expect(front?.fieldListRequests()).toBe(lists + 1);
        const before = front?.requests.length ?? 0;
        const refused = await call('jira_search_issues', { jql: '"Customer email" ~ "maria"' });
        expect(textOf(refused)).toMatch(
          /^policy_denied: field customfield_10050 is classified confidential/,
        );
        expect(front?.requests.length).toBe(before);
      } finally {
        await labelled.close();
      }
      expect(
        prism?.violations().filter((l) => !/\/attachments\b|must be array|UNPROCESSABLE/.test(l)) ??
          [],
      ).toEqual([]);
    }, 120_000);

    it('is a live check: a request the description rejects is refused by prism', async () => {
      const auth = `Basic ${Buffer.from(`bot@example.com:${ENV.JIRA_API_TOKEN}`).toString('base64')}`;
      const before = fake.requests.length;
      const res = await fetch(`${prismUrl}/rest/api/3/search/jql?maxResults=many`, {
        headers: { authorization: auth },
      });
      expect(res.status).toBe(422);
      expect(fake.requests.length).toBe(before);
    });
  },
);
