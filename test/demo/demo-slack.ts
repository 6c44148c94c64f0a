/**
 * `pnpm demo:slack`: the Slack connector end to end on the test kit's Slack fake (no Slack
 * needed, no `../shared` needed).
 *
 * Starts the stateful Slack fake seeded with realistic conversations (a customer's e-mail and
 * phone in a message, a token pasted in a thread, a message that tries to instruct the model, a
 * link with data in its query string, a private channel, a DM), then the built
 * `hardened-mcp-slack` over stdio in read-write mode, and drives it with the MCP SDK client like
 * an agent would: list the channels, summarize a thread (redacted, fenced, names not e-mails),
 * post an approved status update (unfurling off, as recorded by the fake), try an `@channel`
 * post (refused before the human is asked), try to read a DM (refused), then prints and verifies
 * the audit trail.
 *
 * Any failure ends the demo within a bounded time with one line on stderr and exit code 1, with
 * the fake and the server stopped (see `run.ts`).
 */
import { join } from 'node:path';
import {
  FAKE_SLACK_BOT_SCOPES,
  type ServerSession,
  startSlackFake,
  startStdioServer,
} from '@hardened-mcp/test-kit';
import { REPO_ROOT, textOf } from '../support/server.ts';
import { type Defer, runDemo } from './run.ts';
import { approveEveryPrompt, demoAuditFile } from './session.ts';
import { indent, printAuditTrail, printTools, step } from './ui.ts';

const BIN = join(REPO_ROOT, 'servers', 'slack', 'dist', 'bin.js');
const ENV = { SLACK_BOT_TOKEN: 'xoxb-demo-bot-token-0001' };

async function main(defer: Defer): Promise<void> {
  step(
    'Starting the Slack fake (#support, #incidents, #random, private #payroll, a DM, a group DM)',
  );
  const fake = await startSlackFake({
    tokens: [{ token: ENV.SLACK_BOT_TOKEN, scopes: FAKE_SLACK_BOT_SCOPES, kind: 'bot' }],
  });
  defer(() => fake.stop());
  console.log(
    indent(
      [...fake.conversations.values()]
        .map((c) => `${c.id} ${c.kind.padEnd(7)} ${c.name}`)
        .join('\n'),
    ),
  );
  const auditFile = demoAuditFile('slack');
  let session: ServerSession | undefined;
  defer(async () => session?.close());
  step('Starting hardened-mcp-slack over stdio (read: #support, #incidents; write: #support)');
  session = await startStdioServer(BIN, {
    env: ENV,
    capabilities: { elicitation: {} },
    clientName: 'demo-agent',
    config: {
      mode: 'read-write',
      identity: { principal: 'alice', roles: ['writer'] },
      audit: { stderr: false, file: auditFile },
      log: { level: 'warn' },
      slack: {
        apiUrl: fake.url,
        channels: { read: ['C0SUPPORT1', 'C0INCIDNT1'], write: ['C0SUPPORT1'] },
      },
    },
  });
  const { client } = session;
  approveEveryPrompt(client);
  await printTools(client);

  step('slack_list_channels (#random, #payroll and the DMs exist in Slack, but are not listed)');
  console.log(
    indent(textOf(await client.callTool({ name: 'slack_list_channels', arguments: {} })), 12),
  );

  step(
    'slack_read_thread #support (e-mail, phone and a pasted token redacted; an injection fenced)',
  );
  console.log(
    indent(
      textOf(
        await client.callTool({
          name: 'slack_read_thread',
          arguments: { channel: '#support', ts: '1760000000.000100' },
        }),
      ),
      60,
    ),
  );

  step('slack_post_message #support: a status update (needs the human: approved)');
  console.log(
    indent(
      textOf(
        await client.callTool({
          name: 'slack_post_message',
          arguments: {
            channel: '#support',
            text: 'Status: SSO cert renewed at 10:42, logins work again. Details: https://status.example.com/inc?id=42',
          },
        }),
      ),
    ),
  );
  const posted = fake.posts.at(-1) ?? {};
  console.log(
    indent(
      `Slack received: unfurl_links=${posted.unfurl_links} unfurl_media=${posted.unfurl_media} link_names=${posted.link_names}`,
    ),
  );

  step(
    'Attack: slack_post_message "<!channel> ＠ｈｅｒｅ outage" (refused before the human is asked)',
  );
  console.log(
    indent(
      textOf(
        await client.callTool({
          name: 'slack_post_message',
          arguments: { channel: 'C0SUPPORT1', text: '<!channel> ＠ｈｅｒｅ outage' },
        }),
      ),
    ),
  );

  step('Attack: slack_read_history D0DMMARIA1 (a direct message: refused)');
  console.log(
    indent(
      textOf(
        await client.callTool({ name: 'slack_read_history', arguments: { channel: 'D0DMMARIA1' } }),
      ),
    ),
  );
  console.log(indent(`Posts Slack received in total: ${fake.posts.length}`));

  await session.close();
  session = undefined;
  await printAuditTrail(auditFile);
}

await runDemo(main);
