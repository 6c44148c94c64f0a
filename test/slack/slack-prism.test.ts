/**
 * Contract check against the official description: the Slack server's every request (as
 * `@slack/web-api` sends it through the core's upstream client), and the fake's every answer,
 * pass `@stoplight/prism-cli` in proxy mode with `--errors` against
 * `../shared/specs/slack-web-api.prism.json` (the 2020 Slack description reshaped as the
 * WebClient calls Slack: form-encoded POST, bearer token; see the specs README). Prism answers
 * 422 to a request the description rejects and turns a response that breaks it into an error;
 * both are logged, and the log must hold no violation at the end.
 *
 * Needs the `../shared` kit beside the repository: without it the suite is skipped, saying why.
 * Build first (`pnpm build`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  FAKE_SLACK_BOT_SCOPES,
  repoRoot,
  type ServerSession,
  type SlackFake,
  sharedKitDir,
  startSlackFake,
  startStdioServer,
  textOf,
} from '@hardened-mcp/test-kit';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrismProxy, startPrismProxy } from '../support/prism.ts';

const SPEC = join(sharedKitDir, 'specs', 'slack-web-api.prism.json');
const BIN = join(repoRoot, 'servers', 'slack', 'dist', 'bin.js');
const HAVE_SPEC = existsSync(SPEC);
if (!HAVE_SPEC)
  console.warn(
    `slack prism contract check skipped: ${SPEC} is absent (the ../shared kit is not beside the repository)`,
  );
const BOT = 'xoxb-prism-bot-0001';
const USER = 'xoxp-prism-user-0001';

let fake: SlackFake;
let prism: PrismProxy | undefined;
let prismUrl = '';
let session: ServerSession;

describe.skipIf(!HAVE_SPEC)(
  'slack requests and fake answers against the official description (prism proxy)',
  () => {
    beforeAll(async () => {
      fake = await startSlackFake({
        tokens: [
          { token: BOT, scopes: [...FAKE_SLACK_BOT_SCOPES, 'reactions:write'], kind: 'bot' },
          { token: USER, scopes: ['search:read'], kind: 'user' },
        ],
      });
      // Prism serves the description's paths at its root (`/auth.test`) and forwards them under
      // the upstream URL it is given (the fake's `/api/`).
      prism = await startPrismProxy(SPEC, fake.url);
      prismUrl = prism.url;
      session = await startStdioServer(BIN, {
        env: { SLACK_BOT_TOKEN: BOT, SLACK_USER_TOKEN: USER },
        capabilities: { elicitation: {} },
        config: {
          mode: 'read-write',
          identity: { principal: 'prism', roles: ['writer'] },
          slack: {
            apiUrl: `${prismUrl}/`,
            channels: { read: ['C0SUPPORT1', 'C0INCIDNT1'], write: ['C0SUPPORT1'] },
            search: { enabled: true },
            reactions: { enabled: true },
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
      await fake?.stop();
    });

    const ok = async (name: string, args: Record<string, unknown>) => {
      const r = await session.client.callTool({ name, arguments: args });
      expect(r.isError, `${name}: ${textOf(r).slice(0, 300)}`).toBeFalsy();
      return r.structuredContent as Record<string, unknown>;
    };

    it('every tool, read and write, passes the description both ways', async () => {
      await ok('slack_list_channels', {});
      // One page each: the 2020 description has no `response_metadata` (the cursor) on
      // conversations.history/replies, so a page with a next cursor would be flagged; paging
      // is covered by slack-stdio.test.ts against the fake.
      const whole = await ok('slack_read_history', { channel: 'C0SUPPORT1' });
      expect(whole.nextCursor).toBeNull();
      await ok('slack_read_history', {
        channel: '#support',
        oldest: '2025-10-09T00:00:00Z',
        latest: '2025-10-10T00:00:00Z',
      });
      await ok('slack_read_thread', { channel: 'C0SUPPORT1', ts: '1760000000.000100' });
      await ok('slack_get_user', { user: 'U0AAAAAA2' });
      await ok('slack_search_messages', { query: 'logins' });
      await ok('slack_post_message', {
        channel: 'C0SUPPORT1',
        text: 'Status: *resolved*',
        blocks: [
          { type: 'header', text: { type: 'plain_text', text: 'Status' } },
          { type: 'section', text: { type: 'mrkdwn', text: 'SSO cert renewed' } },
        ],
      });
      // A reply starting a thread under a message without replies: the policy's one-message
      // look at the parent then has no next page (see above).
      await ok('slack_reply_thread', {
        channel: 'C0SUPPORT1',
        threadTs: '1760000100.000100',
        text: 'Closing this thread.',
      });
      await ok('slack_add_reaction', {
        channel: 'C0SUPPORT1',
        ts: '1760000200.000100',
        name: 'eyes',
      });
      // Every method the connector uses went through prism to the fake.
      const methods = new Set(fake.requests.map((r) => r.method));
      for (const m of [
        'auth.test',
        'conversations.info',
        'conversations.history',
        'conversations.replies',
        'users.info',
        'search.messages',
        'chat.postMessage',
        'reactions.add',
      ])
        expect(methods).toContain(m);
      // Nothing prism refused or flagged, in either direction.
      const flagged = prism?.violations() ?? [];
      expect(flagged).toEqual([]);
    });

    it('is a live check: a request the description rejects is refused by prism', async () => {
      const before = fake.requests.length;
      // `conversations.history` with a non-numeric `limit` breaks the description.
      const res = await fetch(`${prismUrl}/conversations.history`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${BOT}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'channel=C0SUPPORT1&limit=many',
      });
      expect(res.status).toBe(422);
      expect(fake.requests.length).toBe(before);
    });
  },
);
