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
import { FAKE_PNG, type JiraFake, startJiraFake } from '@hardened-mcp/test-kit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jiraSectionSchema } from './config.js';
import { jiraConnector } from './connector.js';

// Attachments, mentions and OAuth 2.0 (3LO), assembled in-process against the test kit's fake.

const READ_TOKEN = 'jira-read-token-0002';
const WRITE_TOKEN = 'jira-write-token-0002';
const OAUTH = {
  clientId: 'hmcp-test-client',
  clientSecret: 'oauth-client-secret-0001',
  refreshToken: 'oauth-refresh-token-0001',
  cloudId: '11223344-a1b2-43c4-9d8e-aabbccddeeff',
};
let fake: JiraFake;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  fake = await startJiraFake({ tokens: [READ_TOKEN, WRITE_TOKEN], oauth: OAUTH });
});
afterAll(async () => {
  await fake.stop();
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function server(
  jira: Record<string, unknown> = {},
  env: Record<string, string> = { JIRA_API_TOKEN: READ_TOKEN, JIRA_WRITE_API_TOKEN: WRITE_TOKEN },
) {
  const config = parseConfig(defineConfigSchema('jira', jiraSectionSchema), {
    audit: { stderr: false, file: join(mkdtempSync(join(tmpdir(), 'hmcp-jira-')), 'a.jsonl') },
    log: { level: 'silent' },
    mode: 'read-write',
    identity: { principal: 'ana', roles: ['writer'] },
    jira: {
      site: fake.url,
      auth: { email: 'bot@example.com' },
      projects: { read: ['SUP', 'OPS'], write: ['SUP'] },
      attachments: { enabled: true, maxBytes: 4096, mediaOrigins: [fake.mediaUrl] },
      ...jira,
    },
  });
  const s = await assemble(jiraConnector, config as never, { env });
  closers.push(() => s.close());
  const asked: string[] = [];
  const channel = (answer: 'approved' | 'declined'): ApprovalChannel => ({
    supported: true,
    async request(message) {
      asked.push(message);
      return answer;
    },
  });
  const call = (name: string, args: unknown, approval: ApprovalChannel = channel('approved')) =>
    s.pipeline.callTool({
      name,
      arguments: args,
      identity: { principal: 'ana', roles: ['writer'], transport: 'stdio', client: {} },
      approval,
      signal: new AbortController().signal,
    });
  return { s, call, asked, decline: channel('declined') };
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
const blobOf = (r: CallResponse) => {
  const block = result(r).content.find((c) => c.type === 'resource');
  if (block?.type !== 'resource') throw new Error('no resource block');
  const res = block.resource as { blob?: string; mimeType?: string };
  return { bytes: Buffer.from(res.blob ?? '', 'base64'), mimeType: res.mimeType };
};

describe('jira attachments', () => {
  it('has no attachment tools unless enabled', async () => {
    const { s } = await server({ attachments: { enabled: false } });
    expect(s.pipeline.enabledTools.filter((t) => t.includes('attachment'))).toEqual([]);
  });

  it('downloads through the 303 to the media origin without sending the credential', async () => {
    const { call } = await server();
    const issue = dataOf<{ attachments: { id: string; filename: string }[] }>(
      await call('jira_get_issue', { key: 'SUP-1' }),
    );
    expect(issue.attachments.map((a) => a.filename)).toContain('reset-loop.png');
    const seen = fake.mediaRequests.length;
    const r = await call('jira_get_attachment', { key: 'SUP-1', attachmentId: '10501' });
    const blob = blobOf(r);
    expect(blob.mimeType).toBe('image/png');
    expect(blob.bytes.equals(FAKE_PNG)).toBe(true);
    const media = fake.mediaRequests.slice(seen);
    expect(media).toHaveLength(1);
    expect(media[0]).toMatchObject({ status: 200, hadAuthorization: false });
  });

  it('refuses a redirect to an origin that is not configured, and never contacts it with the credential', async () => {
    const { call } = await server({
      attachments: { enabled: true, maxBytes: 4096, mediaOrigins: [] },
    });
    const seen = fake.mediaRequests.length;
    const r = await call('jira_get_attachment', { key: 'SUP-1', attachmentId: '10500' });
    expect(codeOf(r)).toBe('upstream_error');
    expect(JSON.stringify(result(r))).toContain('origin this server does not allow');
    expect(fake.mediaRequests.length).toBe(seen);
  });

  it('checks the project of the issue, the attachment on it, media type and size', async () => {
    const { call } = await server({
      attachments: { enabled: true, maxBytes: 64, mediaOrigins: [fake.mediaUrl] },
    });
    const seen = fake.mediaRequests.length;
    // FIN-1's attachment, asked for directly and through an allowed issue.
    expect(codeOf(await call('jira_get_attachment', { key: 'FIN-1', attachmentId: '10503' }))).toBe(
      'upstream_error',
    );
    expect(codeOf(await call('jira_get_attachment', { key: 'SUP-1', attachmentId: '10503' }))).toBe(
      'upstream_error',
    );
    // The moved issue SUP-4 (now in FIN) is out of scope under its old key.
    expect(codeOf(await call('jira_get_attachment', { key: 'SUP-4', attachmentId: '10503' }))).toBe(
      'upstream_error',
    );
    expect(codeOf(await call('jira_get_attachment', { key: 'SUP-1', attachmentId: '10502' }))).toBe(
      'policy_denied',
    );
    // staging-login.log is 100 bytes: over a 64-byte cap.
    expect(codeOf(await call('jira_get_attachment', { key: 'SUP-1', attachmentId: '10500' }))).toBe(
      'limit_exceeded',
    );
    expect(fake.mediaRequests.length).toBe(seen);
    expect(
      fake.requests.some((q) => q.path.startsWith('/rest/api/3/attachment/content/10503')),
    ).toBe(false);
  });

  it('uploads bytes from the call as multipart after approval showing key, name, size and type', async () => {
    const { call, asked, decline } = await server();
    const content = Buffer.from('a,b\n1,2\n');
    const args = {
      key: 'SUP-2',
      fileName: 'numbers.csv',
      mimeType: 'text/csv',
      contentBase64: content.toString('base64'),
    };
    const before = fake.issue('SUP-2')?.attachments.length ?? 0;
    expect(codeOf(await call('jira_add_attachment', args, decline))).toBe('approval_declined');
    expect(fake.issue('SUP-2')?.attachments.length).toBe(before);
    const r = dataOf<{ key: string; attachments: { filename: string; size: number }[] }>(
      await call('jira_add_attachment', args),
    );
    expect(r.attachments).toEqual([
      expect.objectContaining({ filename: 'numbers.csv', size: content.length }),
    ]);
    const stored = fake.issue('SUP-2')?.attachments.at(-1);
    expect(stored?.content.equals(content)).toBe(true);
    expect(stored?.mimeType).toBe('text/csv');
    const prompt = asked.at(-1) ?? '';
    for (const part of ['SUP-2', 'numbers.csv', `${content.length} bytes`, 'text/csv'])
      expect(prompt).toContain(part);
  });

  it('refuses uploads before asking: read-only project, media type, size, path-like names', async () => {
    const { call, asked } = await server();
    const b64 = Buffer.from('hello').toString('base64');
    const base = { key: 'SUP-2', fileName: 'a.txt', mimeType: 'text/plain', contentBase64: b64 };
    expect(codeOf(await call('jira_add_attachment', { ...base, key: 'OPS-1' }))).toBe(
      'policy_denied',
    );
    expect(codeOf(await call('jira_add_attachment', { ...base, mimeType: 'text/html' }))).toBe(
      'policy_denied',
    );
    expect(
      codeOf(
        await call('jira_add_attachment', {
          ...base,
          contentBase64: Buffer.alloc(5000).toString('base64'),
        }),
      ),
    ).toBe('invalid_input');
    expect(
      codeOf(
        await call('jira_add_attachment', {
          ...base,
          contentBase64: Buffer.alloc(4097).toString('base64'),
        }),
      ),
    ).toBe('limit_exceeded');
    for (const fileName of ['../etc/passwd', 'a/b.txt', '..', 'x\u202etxt.exe'])
      expect(codeOf(await call('jira_add_attachment', { ...base, fileName }))).toBe(
        'invalid_input',
      );
    expect(
      codeOf(await call('jira_add_attachment', { ...base, path: '/etc/passwd' } as never)),
    ).toBe('invalid_input');
    expect(asked).toHaveLength(0);
  });
});

describe('jira mentions', () => {
  it('refuses a mentions argument unless configured', async () => {
    const { call, asked } = await server();
    expect(
      codeOf(
        await call('jira_add_comment', {
          key: 'SUP-3',
          body: 'hi',
          mentions: ['5b10ac8d82e05b22cc7d4ef5'],
        }),
      ),
    ).toBe('invalid_input');
    expect(asked).toHaveLength(0);
  });

  it('sends configured mentions as ADF mention nodes, bounded, never groups', async () => {
    const { call, asked } = await server({ mentions: { enabled: true, max: 2 } });
    const flood = ['a1', 'a2', 'a3'].map((x) => `5b10ac8d82e05b22cc7d4e${x}`);
    expect(
      codeOf(await call('jira_add_comment', { key: 'SUP-3', body: 'hi', mentions: flood })),
    ).toBe('policy_denied');
    expect(
      codeOf(await call('jira_add_comment', { key: 'SUP-3', body: 'hi', mentions: ['here'] })),
    ).toBe('invalid_input');
    expect(asked).toHaveLength(0);
    dataOf(
      await call('jira_add_comment', {
        key: 'SUP-3',
        body: 'please check @Ola',
        mentions: ['5b10ac8d82e05b22cc7d4ef5'],
      }),
    );
    expect(asked.at(-1)).toContain('5b10ac8d82e05b22cc7d4ef5');
    const stored = JSON.stringify(fake.issue('SUP-3')?.comments.at(-1)?.body);
    expect(stored.match(/"mention"/g)).toHaveLength(1);
    expect(stored).toContain('"id":"5b10ac8d82e05b22cc7d4ef5"');
    expect(stored).toContain('please check @Ola');
  });
});

describe('jira OAuth 2.0 (3LO)', () => {
  const oauthConfig = (tokenUrl: string) => ({
    site: fake.url,
    auth: {
      scheme: 'oauth',
      oauth: { clientId: OAUTH.clientId, cloudId: OAUTH.cloudId, tokenUrl, apiBase: fake.url },
    },
  });

  it('obtains an access token, calls the cloud-id API base, and refreshes on a 401 with the rotated refresh token', async () => {
    const grants = fake.tokenGrants();
    const { call } = await server(oauthConfig(`${fake.url}/oauth/token`), {
      JIRA_API_TOKEN: OAUTH.refreshToken,
      JIRA_OAUTH_CLIENT_SECRET: OAUTH.clientSecret,
    });
    expect(fake.tokenGrants()).toBe(grants + 1);
    const before = fake.requests.length;
    dataOf(await call('jira_get_issue', { key: 'SUP-1' }));
    expect(fake.requests.slice(before).every((q) => q.status === 200)).toBe(true);
    fake.expireAccessTokens();
    const r = dataOf<{ key: string }>(await call('jira_get_issue', { key: 'SUP-3' }));
    expect(r.key).toBe('SUP-3');
    // The first grant rotated the refresh token; the refresh on 401 used the new one.
    expect(fake.tokenGrants()).toBe(grants + 2);
  });

  it('refreshes an access token about to expire before using it', async () => {
    // A fake whose tokens live 30 s: under the one-minute margin, so every call refreshes first.
    const short = await startJiraFake({
      tokens: [],
      oauth: { ...OAUTH, expiresInSeconds: 30 },
    });
    try {
      const config = parseConfig(defineConfigSchema('jira', jiraSectionSchema), {
        audit: { stderr: false, file: join(mkdtempSync(join(tmpdir(), 'hmcp-jira-')), 'a.jsonl') },
        log: { level: 'silent' },
        identity: { principal: 'ana', roles: ['reader'] },
        jira: {
          site: short.url,
          projects: { read: ['SUP'] },
          auth: {
            scheme: 'oauth',
            oauth: {
              clientId: OAUTH.clientId,
              cloudId: OAUTH.cloudId,
              tokenUrl: `${short.url}/oauth/token`,
              apiBase: short.url,
            },
          },
        },
      });
      const s = await assemble(jiraConnector, config as never, {
        env: { JIRA_API_TOKEN: OAUTH.refreshToken, JIRA_OAUTH_CLIENT_SECRET: OAUTH.clientSecret },
      });
      closers.push(() => s.close());
      const grants = short.tokenGrants();
      const r = await s.pipeline.callTool({
        name: 'jira_get_issue',
        arguments: { key: 'SUP-3' },
        identity: { principal: 'ana', roles: ['reader'], transport: 'stdio', client: {} },
        approval: { supported: false, request: async () => 'unavailable' },
        signal: new AbortController().signal,
      });
      expect(dataOf<{ key: string }>(r).key).toBe('SUP-3');
      expect(short.tokenGrants()).toBeGreaterThan(grants);
      // No request was answered 401: the token was refreshed before, not after.
      expect(short.requests.filter((q) => q.status === 401)).toEqual([]);
    } finally {
      await short.stop();
    }
  });

  it('refuses to start with a wrong client secret, naming no token', async () => {
    await expect(
      server(oauthConfig(`${fake.url}/oauth/token`), {
        JIRA_API_TOKEN: 'not-the-refresh-token',
        JIRA_OAUTH_CLIENT_SECRET: OAUTH.clientSecret,
      }),
    ).rejects.toThrow(/first OAuth token could not be obtained/);
  });
});

describe('jira basic auth e-mail', () => {
  it('takes the e-mail from JIRA_EMAIL when jira.auth.email is not set', async () => {
    const { call } = await server(
      { auth: {} },
      { JIRA_API_TOKEN: READ_TOKEN, JIRA_EMAIL: 'bot@example.com' },
    );
    expect(dataOf<{ key: string }>(await call('jira_get_issue', { key: 'SUP-3' })).key).toBe(
      'SUP-3',
    );
  });

  it('refuses to start with neither jira.auth.email nor JIRA_EMAIL', async () => {
    await expect(server({ auth: {} }, { JIRA_API_TOKEN: READ_TOKEN })).rejects.toThrow(
      /jira.auth.email or JIRA_EMAIL/,
    );
  });
});
