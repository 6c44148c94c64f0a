/**
 * The Jira server's container image (servers/jira/Dockerfile) through the shared image check
 * (image-check.ts), against the test kit's stateful Jira fake served over HTTPS with a
 * certificate made for this run (the connector refuses `http:` to anything but loopback, and the
 * HTTP form reaches the host through the container network's gateway address). The certificate
 * is mounted read-only and trusted through `NODE_EXTRA_CA_CERTS`; the configuration is a file
 * mounted at /etc/hardened-mcp/config.yaml; the API token and account e-mail come from the
 * environment (`-e JIRA_API_TOKEN -e JIRA_EMAIL`, values in podman's environment only).
 * Jira-specific: the read call is `jira_get_issue` on a ticket whose description holds an e-mail
 * address and a card number (redacted); `jira_search_issues` never returns the out-of-scope
 * project, and the audit record on stderr counts what it dropped.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JiraFake, startJiraFake } from '@hardened-mcp/test-kit';
import { expect, it } from 'vitest';
import { textOf } from '../support/server.ts';
import { CONFIG_IN_CONTAINER, describeImageCheck, httpServiceConfig } from './image-check.ts';
import { HOST_LOOPBACK_FROM_CONTAINER, until, urlFromContainer } from './podman.ts';

const TOKEN = 'jira-image-token-0001';
const CA_IN_CONTAINER = '/etc/hardened-mcp/jira-fake-ca.pem';

interface Upstream {
  readonly fake: JiraFake;
  readonly cert: string;
}

/** A self-signed certificate for the fake, valid for 127.0.0.1 and the container's host address. */
function makeCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-jira-tls-'));
  try {
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=jira-fake',
        '-addext',
        `subjectAltName=IP:127.0.0.1,IP:${HOST_LOOPBACK_FROM_CONTAINER}`,
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr?.toString()}`);
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The server's Jira section (read-only), with the site as the container reaches it. */
function jiraConfig(site: string): string[] {
  return [
    'jira:',
    `  site: ${site}`,
    '  projects: { read: [SUP, OPS] }',
    '  fields: { read: [summary, status, labels, description] }',
  ];
}

describeImageCheck<Upstream>({
  server: 'jira',
  describes: 'Jira',
  // jira.js (the REST client, with axios), the JQL parser and the ADF converters add about 10 MB
  // to the core's share (measured: 50 MB in all).
  sizeBudgetBytes: 60 * 1000 * 1000,
  tools: [
    'jira_get_create_fields',
    'jira_get_issue',
    'jira_list_comments',
    'jira_list_projects',
    'jira_list_transitions',
    'jira_search_issues',
  ],
  env: { JIRA_API_TOKEN: TOKEN, JIRA_EMAIL: 'bot@example.com' },
  credentialEnv: /^JIRA_/,
  start: async () => {
    const tls = makeCertificate();
    const fake = await startJiraFake({ tokens: [TOKEN], tls });
    return { fake, cert: tls.cert };
  },
  stop: async ({ fake }) => {
    await fake.stop();
  },
  // Host networking: the container reaches the fake on 127.0.0.1 as any local process.
  stdio: async ({ fake, cert }, files) => {
    const config = files.config('config.yaml', `${jiraConfig(fake.url).join('\n')}\n`);
    const ca = files.config('ca.pem', cert);
    return {
      flags: [
        '-v',
        `${config}:${CONFIG_IN_CONTAINER}:ro`,
        '-v',
        `${ca}:${CA_IN_CONTAINER}:ro`,
        '-e',
        `NODE_EXTRA_CA_CERTS=${CA_IN_CONTAINER}`,
      ],
    };
  },
  http: async ({ fake, cert }, files, apiKeySha256, publishedPort) => {
    const principal = 'image-check';
    const site = urlFromContainer(fake.url).replace(/\/$/, '');
    const config = files.config(
      'config-http.yaml',
      `${[...jiraConfig(site), ...httpServiceConfig(apiKeySha256, principal, publishedPort)].join('\n')}\n`,
    );
    const ca = files.config('ca-http.pem', cert);
    return {
      principal,
      flags: [
        '-v',
        `${config}:${CONFIG_IN_CONTAINER}:ro`,
        '-v',
        `${ca}:${CA_IN_CONTAINER}:ro`,
        '-e',
        `NODE_EXTRA_CA_CERTS=${CA_IN_CONTAINER}`,
      ],
    };
  },
  readCall: {
    name: 'jira_get_issue',
    arguments: { key: 'SUP-1' },
    verify: (r) => {
      const issue = r.structuredContent as { key: string; description: string };
      expect(issue.key).toBe('SUP-1');
      expect(issue.description).toContain('reset link loops back');
      expect(issue.description).toContain('[REDACTED:email]');
    },
    pii: /maria\.jensen@example\.com|4111 1111 1111 1111/,
    redactions: { email: 1 },
  },
  extra: (ctx) => {
    it('over stdio, never returns the out-of-scope project and counts what it dropped in the audit record', async () => {
      const fake = ctx.upstream.fake;
      fake.searchIgnoresProject(true);
      const session = await ctx.connectStdio();
      try {
        const r = await session.client.callTool({
          name: 'jira_search_issues',
          arguments: { orderBy: 'key', direction: 'asc' },
        });
        expect(r.isError, textOf(r)).toBeFalsy();
        const projects = (r.structuredContent as { issues: { project: string }[] }).issues.map(
          (i) => i.project,
        );
        expect(projects.length).toBeGreaterThan(0);
        expect(projects.every((p) => p === 'SUP' || p === 'OPS')).toBe(true);
        expect(textOf(r)).not.toContain('FIN-');
        // The container's stderr reaches us on its own stream, possibly after the answer on
        // stdout (as in image-check.ts): wait for the record.
        const searchRecords = () =>
          session
            .stderr()
            .split('\n')
            .filter((l) => l.includes('"jira_search_issues"') && l.includes('"notes"'));
        await until(async () => searchRecords().length > 0, 5_000, 'the audit record');
        const records = searchRecords();
        expect(records.length).toBeGreaterThan(0);
        expect(records.at(-1)).toContain('"droppedOutOfScope":2');
      } finally {
        fake.searchIgnoresProject(false);
        await session.close();
      }
    });
  },
});
