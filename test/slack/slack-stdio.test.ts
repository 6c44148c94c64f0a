/**
 * Black-box: the built Slack bin over stdio with the MCP SDK client, against the test kit's
 * stateful Slack fake (build first: `pnpm build`). Every rule of issue 12 that a client can
 * reach: allowlists on inputs (by id, by name, DM ids, user ids) and on results (moved thread,
 * search leaks), mass mentions (plain, look-alikes, blocks), escaping and unfurl flags as posted,
 * approval declined → nothing posted, rate limits (never retried writes), revoked tokens,
 * `{ok:false}` answers, the startup scope check and the per-channel send budget.
 */
import { join } from 'node:path';
import {
  auditRecordsIn,
  FAKE_SLACK_BOT_SCOPES,
  FAKE_SLACK_MOVED_THREAD_TS,
  FAKE_SLACK_PASTED_SECRET,
  repoRoot,
  runBinToExit,
  type ServerSession,
  type SlackFake,
  startSlackFake,
  startStdioServer,
  textOf,
  waitFor,
  writeTempConfig,
} from '@hardened-mcp/test-kit';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = join(repoRoot, 'servers', 'slack', 'dist', 'bin.js');
const BOT = 'xoxb-stdio-bot-0001';
const USER = 'xoxp-stdio-user-0001';
const REVOKED = 'xoxb-stdio-revoked-01';
const SCOPES = [...FAKE_SLACK_BOT_SCOPES, 'reactions:write'];
const SUPPORT_THREAD = '1760000000.000100';

let fake: SlackFake;
let session: ServerSession;
const asked: string[] = [];
let answer: 'accept' | 'decline' = 'decline';

const CONFIG = (apiUrl: string) => ({
  mode: 'read-write',
  identity: { principal: 'stdio-test', roles: ['writer'] },
  slack: {
    apiUrl,
    channels: { read: ['C0SUPPORT1', 'C0INCIDNT1'], write: ['C0SUPPORT1'] },
    search: { enabled: true },
    reactions: { enabled: true },
    post: { maxPerChannelPerHour: 4 },
    read: { pageSize: 10 },
  },
});

beforeAll(async () => {
  fake = await startSlackFake({
    tokens: [
      { token: BOT, scopes: SCOPES, kind: 'bot' },
      { token: USER, scopes: ['search:read'], kind: 'user' },
      { token: REVOKED, scopes: SCOPES, kind: 'bot' },
    ],
  });
  session = await startStdioServer(BIN, {
    env: { SLACK_BOT_TOKEN: BOT, SLACK_USER_TOKEN: USER },
    capabilities: { elicitation: {} },
    config: CONFIG(fake.url),
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
type Result = Awaited<ReturnType<typeof call>>;
const data = <T>(r: Result) => r.structuredContent as T;
const refusedWith = (r: Result, code: string) => {
  expect(r.isError).toBe(true);
  expect(textOf(r)).toMatch(new RegExp(`^${code}:`));
};

describe('reads: the allowlist on inputs', () => {
  it('lists only allowlisted conversations, ids authoritative', async () => {
    const r = await call('slack_list_channels', {});
    expect(r.isError).toBeFalsy();
    const rows = data<{ rows: unknown[][] }>(r).rows.map((row) => row[0]);
    expect(rows).toEqual(['C0SUPPORT1', 'C0INCIDNT1']);
  });

  it('refuses a non-listed channel by id, by name, a DM id, a group DM and a user id', async () => {
    for (const channel of [
      'C0RANDOM01',
      '#random',
      'payroll',
      'G0PAYROLL1',
      'D0DMMARIA1',
      'G0MPIM0001',
      'U0AAAAAA1',
    ]) {
      const r = await call('slack_read_history', { channel });
      refusedWith(r, 'policy_denied');
    }
    // Nothing was read from those conversations.
    const read = fake.requests
      .filter((q) => q.method === 'conversations.history')
      .map((q) => q.params.channel);
    expect(read.filter((c) => c !== 'C0SUPPORT1' && c !== 'C0INCIDNT1')).toEqual([]);
  });

  it('resolves a listed channel by name to its id', async () => {
    const r = await call('slack_read_history', { channel: '#support', limit: 2 });
    expect(r.isError).toBeFalsy();
    expect(data<{ channel: { id: string } }>(r).channel.id).toBe('C0SUPPORT1');
  });
});

describe('reads: history, threads, rendering', () => {
  it('pages back through the whole history by sealed cursor (no default range hides old messages)', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page += 1) {
      const r = await call('slack_read_history', {
        channel: 'C0SUPPORT1',
        ...(cursor ? { cursor } : {}),
      });
      expect(r.isError).toBeFalsy();
      const d = data<{ messages: { ts: string }[]; nextCursor: string | null }>(r);
      seen.push(...d.messages.map((m) => m.ts));
      if (!d.nextCursor) break;
      cursor = d.nextCursor;
    }
    const topLevel = (fake.messages.get('C0SUPPORT1') ?? []).filter(
      (m) => !m.thread_ts || m.thread_ts === m.ts,
    );
    expect(new Set(seen).size).toBe(topLevel.length);
    expect(seen).toContain('1759000000.000100');
  });

  it('refuses a cursor of another conversation, and a time range wider than the cap', async () => {
    const first = await call('slack_read_history', { channel: 'C0SUPPORT1', limit: 1 });
    const cursor = data<{ nextCursor: string }>(first).nextCursor;
    refusedWith(
      await call('slack_read_history', { channel: 'C0INCIDNT1', cursor }),
      'invalid_input',
    );
    refusedWith(
      await call('slack_read_history', {
        channel: 'C0SUPPORT1',
        oldest: '2020-01-01T00:00:00Z',
        latest: '2021-01-01T00:00:00Z',
      }),
      'limit_exceeded',
    );
  });

  it('renders a thread with display names (never e-mails), redacts PII and the pasted token, fences the injection', async () => {
    const r = await call('slack_read_thread', { channel: 'C0SUPPORT1', ts: SUPPORT_THREAD });
    expect(r.isError).toBeFalsy();
    const all = JSON.stringify(r);
    expect(all).not.toContain('maria.jensen@example.com');
    expect(all).not.toContain(FAKE_SLACK_PASTED_SECRET);
    expect(all).toContain('@maria found it');
    expect(all).toContain('tom.o');
    const text = textOf(r);
    expect(text).toMatch(/UNTRUSTED/);
    const fenceStart = text.indexOf('UNTRUSTED');
    expect(text.indexOf('Ignore all previous instructions')).toBeGreaterThan(fenceStart);
    // `&amp;` as Slack sends it reads as `&`.
    expect(all).toContain('logins work again & the customer confirmed');
  });

  it('refuses a thread in an allowlisted channel whose parent was moved elsewhere, and drops it from history', async () => {
    refusedWith(
      await call('slack_read_thread', { channel: 'C0INCIDNT1', ts: FAKE_SLACK_MOVED_THREAD_TS }),
      'policy_denied',
    );
    const h = await call('slack_read_history', { channel: 'C0INCIDNT1' });
    const d = data<{ messages: { ts: string }[]; droppedFromOtherConversations?: number }>(h);
    expect(d.messages.map((m) => m.ts)).not.toContain(FAKE_SLACK_MOVED_THREAD_TS);
    expect(d.droppedFromOtherConversations).toBe(1);
    expect(JSON.stringify(h)).not.toContain('Salary export');
  });

  it('looks up a user without e-mail or phone', async () => {
    const r = await call('slack_get_user', { user: 'U0AAAAAA1' });
    expect(r.isError).toBeFalsy();
    const all = JSON.stringify(r);
    expect(all).toContain('Maria Jensen');
    expect(all).not.toMatch(/maria\.jensen@example\.com|\+45 20 12 34 56|email|phone/);
  });

  it('search: adds the in: terms, drops results from other conversations and counts them', async () => {
    const r = await call('slack_search_messages', { query: 'payroll' });
    expect(r.isError).toBeFalsy();
    const d = data<{ results: { channel: string }[]; droppedFromOtherConversations: number }>(r);
    expect(d.droppedFromOtherConversations).toBeGreaterThan(0);
    for (const m of d.results) expect(['C0SUPPORT1', 'C0INCIDNT1']).toContain(m.channel);
    expect(JSON.stringify(r)).not.toContain('Salaries for December');
    const sent = fake.requests.filter((q) => q.method === 'search.messages').at(-1);
    expect(sent?.params.query).toBe('payroll in:#support in:#incidents');
    refusedWith(
      await call('slack_search_messages', { query: 'in:#payroll salaries' }),
      'invalid_input',
    );
    // The dropped results are counted in the audit record of the call.
    const searches = () =>
      auditRecordsIn(session.stderr()).filter(
        (a) => a.tool === 'slack_search_messages' && a.outcome === 'success',
      );
    await waitFor(() => searches().length > 0);
    const record = searches().at(-1) as { redactions: Record<string, number> } | undefined;
    expect(record?.redactions['withheld:other_conversation']).toBe(d.droppedFromOtherConversations);
  });
});

describe('writes', () => {
  it('refuses posts to non-listed targets before asking: by id, by name, a DM id, a user id, a read-only channel', async () => {
    asked.length = 0;
    for (const channel of [
      'C0RANDOM01',
      '#random',
      'D0DMMARIA1',
      'U0AAAAAA2',
      'C0INCIDNT1',
      '#incidents',
    ]) {
      refusedWith(
        await call('slack_post_message', { channel, text: 'status: all good' }),
        'policy_denied',
      );
    }
    expect(asked).toEqual([]);
    expect(fake.posts).toEqual([]);
  });

  it('refuses mass mentions: plain, control sequences, look-alikes, invisible characters, blocks, floods', async () => {
    const texts = [
      'heads up @channel',
      'ping @here now',
      '@everyone deploy done',
      '<!channel> outage',
      '<!subteam^S0123ABCD> review',
      'fullwidth ＜!channel＞ here',
      'fullwidth ＠ｈｅｒｅ too',
      'zero width @\u200Bchannel',
      '<@U0AAAAAA1> <@U0AAAAAA2> <@U0AAAAAA3> <@U0BOT0001> flood',
    ];
    for (const text of texts)
      refusedWith(
        await call('slack_post_message', { channel: 'C0SUPPORT1', text }),
        'policy_denied',
      );
    const blocks = [
      [
        {
          type: 'rich_text',
          elements: [
            { type: 'rich_text_section', elements: [{ type: 'broadcast', range: 'channel' }] },
          ],
        },
      ],
      [
        {
          type: 'rich_text',
          elements: [
            {
              type: 'rich_text_section',
              elements: [{ type: 'usergroup', usergroup_id: 'S0123ABCD' }],
            },
          ],
        },
      ],
      [{ type: 'section', text: { type: 'mrkdwn', text: 'status <!here>' } }],
      [{ type: 'context', elements: [{ type: 'plain_text', text: '@channel' }] }],
    ];
    for (const b of blocks)
      refusedWith(
        await call('slack_post_message', { channel: 'C0SUPPORT1', text: 'status', blocks: b }),
        'policy_denied',
      );
    // Overrides and attachments are not part of the input at all.
    for (const extra of [
      { username: 'CEO' },
      { icon_url: 'https://x.example/a.png' },
      { parse: 'full' },
      { attachments: [] },
    ])
      refusedWith(
        await call('slack_post_message', { channel: 'C0SUPPORT1', text: 'x', ...extra }),
        'invalid_input',
      );
    expect(fake.posts).toEqual([]);
  });

  it('approval declined → nothing posted; the prompt shows channel name and id and the text as Slack renders it', async () => {
    answer = 'decline';
    asked.length = 0;
    const r = await call('slack_post_message', {
      channel: '#support',
      text: 'Status: *resolved* <b> & done',
    });
    refusedWith(r, 'approval_declined');
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain('#support');
    expect(asked[0]).toContain('C0SUPPORT1');
    expect(asked[0]).toContain('Status: *resolved* <b> & done');
    expect(fake.posts).toEqual([]);
  });

  it('approved post: escaped text, unfurling and link names off, posted once', async () => {
    answer = 'accept';
    const r = await call('slack_post_message', {
      channel: 'C0SUPPORT1',
      text: 'Status: see https://grafana.example.com/d/abc?api_key=x <b> & done',
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'a <link> & b' } }],
    });
    expect(r.isError).toBeFalsy();
    expect(fake.posts).toHaveLength(1);
    const p = fake.posts[0] ?? {};
    expect(p.channel).toBe('C0SUPPORT1');
    expect(p.text).toBe(
      'Status: see https://grafana.example.com/d/abc?api_key=x &lt;b&gt; &amp; done',
    );
    expect(p.unfurl_links).toBe('false');
    expect(p.unfurl_media).toBe('false');
    expect(p.link_names).toBe('false');
    expect(p.parse).toBe('none');
    expect(p.username ?? p.icon_url ?? p.icon_emoji).toBeUndefined();
    expect(JSON.parse(p.blocks ?? '[]')[0].text.text).toBe('a &lt;link&gt; &amp; b');
  });

  it('a fullwidth look-alike is never normalized on the way out', async () => {
    // Not a mention in any form Slack reads: posted exactly as written.
    const r = await call('slack_post_message', {
      channel: 'C0SUPPORT1',
      text: 'Ｆｕｌｌｗｉｄｔｈ status',
    });
    expect(r.isError).toBeFalsy();
    expect(fake.posts.at(-1)?.text).toBe('Ｆｕｌｌｗｉｄｔｈ status');
  });

  it('replies in a thread, never broadcast; a thread whose parent moved is refused before asking', async () => {
    const r = await call('slack_reply_thread', {
      channel: 'C0SUPPORT1',
      threadTs: SUPPORT_THREAD,
      text: 'Fixed.',
    });
    expect(r.isError).toBeFalsy();
    const p = fake.posts.at(-1) ?? {};
    expect(p.thread_ts).toBe(SUPPORT_THREAD);
    expect(p.reply_broadcast).toBe('false');
    expect(asked.at(-1)).toContain('in the thread of');
    const before = fake.posts.length;
    asked.length = 0;
    refusedWith(
      await call('slack_reply_thread', {
        channel: 'C0INCIDNT1',
        threadTs: FAKE_SLACK_MOVED_THREAD_TS,
        text: 'x',
      }),
      'policy_denied',
    );
    expect(asked).toEqual([]);
    expect(fake.posts).toHaveLength(before);
  });

  it('reacts with a checked emoji name in a writable channel only', async () => {
    refusedWith(
      await call('slack_add_reaction', {
        channel: 'C0INCIDNT1',
        ts: '1760000250.000100',
        name: 'thumbsup',
      }),
      'policy_denied',
    );
    refusedWith(
      await call('slack_add_reaction', {
        channel: 'C0SUPPORT1',
        ts: '1760000200.000100',
        name: 'a b',
      }),
      'invalid_input',
    );
    const r = await call('slack_add_reaction', {
      channel: 'C0SUPPORT1',
      ts: '1760000200.000100',
      name: 'white_check_mark',
    });
    expect(r.isError).toBeFalsy();
  });

  it('spends a per-channel send budget and refuses past it', async () => {
    // Budget 4 per hour: 3 posts so far (post, fullwidth, reply).
    expect(fake.posts).toHaveLength(3);
    expect(
      (await call('slack_post_message', { channel: 'C0SUPPORT1', text: 'fourth' })).isError,
    ).toBeFalsy();
    refusedWith(
      await call('slack_post_message', { channel: 'C0SUPPORT1', text: 'fifth' }),
      'rate_limited',
    );
    expect(fake.posts).toHaveLength(4);
  });
});

describe('failures', () => {
  it('a rate-limited burst answers rate_limited; a write is sent once, never retried', async () => {
    fake.rateLimit(10, 30);
    const reads = await Promise.all(
      [1, 2, 3].map(() => call('slack_read_history', { channel: 'C0SUPPORT1' })),
    );
    for (const r of reads) refusedWith(r, 'rate_limited');
    fake.rateLimit(0, 0);
    // The send budget of #support is spent (above): a reaction is the write that reaches Slack.
    fake.rateLimit(1, 30, 'reactions.add');
    const sent = () => fake.requests.filter((q) => q.method === 'reactions.add').length;
    const before = sent();
    refusedWith(
      await call('slack_add_reaction', {
        channel: 'C0SUPPORT1',
        ts: '1760000100.000100',
        name: 'eyes',
      }),
      'rate_limited',
    );
    expect(sent()).toBe(before + 1);
  });

  it('{ok:false} answers are tool errors with stable codes', async () => {
    fake.failNext('conversations.history', 'not_in_channel');
    refusedWith(await call('slack_read_history', { channel: 'C0SUPPORT1' }), 'upstream_error');
    fake.failNext('conversations.history', 'fatal_error');
    refusedWith(
      await call('slack_read_history', { channel: 'C0SUPPORT1' }),
      'upstream_unavailable',
    );
  });
});

describe('startup', () => {
  it('refuses a token with scopes no enabled tool needs, unless allowed; refuses a revoked token', async () => {
    const excess = await startSlackFake({
      tokens: [
        {
          token: 'xoxb-excess-000001',
          scopes: [...SCOPES, 'admin.users:write', 'files:write'],
          kind: 'bot',
        },
      ],
    });
    try {
      const config = {
        ...CONFIG(excess.url),
        slack: { ...CONFIG(excess.url).slack, search: { enabled: false } },
      };
      const refused = await runBinToExit(
        BIN,
        { SLACK_BOT_TOKEN: 'xoxb-excess-000001' },
        ['--config', await writeTempConfig(config)],
        10_000,
      );
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('admin.users:write, files:write');
      expect(refused.stderr).not.toContain('xoxb-excess');
      excess.revoke('xoxb-excess-000001');
      const revoked = await runBinToExit(
        BIN,
        { SLACK_BOT_TOKEN: 'xoxb-excess-000001' },
        [
          '--config',
          await writeTempConfig({ ...config, slack: { ...config.slack, allowExcessScopes: true } }),
        ],
        10_000,
      );
      expect(revoked.code).not.toBe(0);
      expect(revoked.stderr).toMatch(/refused the read token/);
    } finally {
      await excess.stop();
    }
  });
});
