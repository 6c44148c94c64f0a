/**
 * `pnpm demo:jira`: the Jira connector end to end on the test kit's Jira fake (no Atlassian
 * needed, no `../shared` needed).
 *
 * Starts the stateful Jira fake seeded with realistic tickets (a customer's PII in a
 * description, a token pasted in a comment, a description that tries to instruct the model, an
 * issue moved to a restricted project), then the built `hardened-mcp-jira` over stdio in
 * read-write mode, and drives it with the MCP SDK client like a triage agent would: list the
 * projects, search, read an issue (redacted, fenced), try a JQL escape, read a moved issue
 * (refused), download an attachment (Jira's redirect to its media host followed without the
 * Jira credential), add a comment (the human approves), try a write to a read-only project
 * (refused before the human is asked), then prints and verifies the audit trail.
 *
 * Any failure ends the demo within a bounded time with one line on stderr and exit code 1, with
 * the fake and the server stopped (see `run.ts`).
 */
import { join } from 'node:path';
import { type ServerSession, startJiraFake, startStdioServer } from '@hardened-mcp/test-kit';
import { REPO_ROOT, textOf } from '../support/server.ts';
import { type Defer, runDemo } from './run.ts';
import { approveEveryPrompt, demoAuditFile } from './session.ts';
import { indent, printAuditTrail, printTools, step } from './ui.ts';

const BIN = join(REPO_ROOT, 'servers', 'jira', 'dist', 'bin.js');
const ENV = {
  JIRA_API_TOKEN: 'demo-read-token-0001',
  JIRA_WRITE_API_TOKEN: 'demo-write-token-0001',
};

async function main(defer: Defer): Promise<void> {
  step('Starting the Jira fake (projects SUP, OPS and the restricted FIN)');
  const fake = await startJiraFake({ tokens: Object.values(ENV) });
  defer(() => fake.stop());
  console.log(
    indent(
      [...fake.issues.values()]
        .map(
          (i) =>
            `${i.key}${i.aliases.length ? ` (was ${i.aliases.join(', ')})` : ''}: ${i.summary}`,
        )
        .join('\n'),
    ),
  );
  const auditFile = demoAuditFile('jira');
  let session: ServerSession | undefined;
  defer(async () => session?.close());
  step('Starting hardened-mcp-jira over stdio (read: SUP, OPS; write: SUP)');
  session = await startStdioServer(BIN, {
    env: ENV,
    capabilities: { elicitation: {} },
    clientName: 'demo-agent',
    config: {
      mode: 'read-write',
      identity: { principal: 'alice', roles: ['writer'] },
      audit: { stderr: false, file: auditFile },
      log: { level: 'warn' },
      jira: {
        site: fake.url,
        auth: { email: 'triage-bot@example.com' },
        projects: { read: ['SUP', 'OPS'], write: ['SUP'] },
        transitions: { allowTo: ['In Progress', 'Done'] },
        attachments: { enabled: true, maxBytes: 65_536, mediaOrigins: [fake.mediaUrl] },
      },
    },
  });
  const { client } = session;
  approveEveryPrompt(client);
  await printTools(client);

  step('jira_list_projects (FIN exists in Jira, but is not allowlisted)');
  console.log(
    indent(textOf(await client.callTool({ name: 'jira_list_projects', arguments: {} })), 12),
  );

  step('jira_search_issues statuses=[To Do] (JQL built by the server)');
  console.log(
    indent(
      textOf(
        await client.callTool({ name: 'jira_search_issues', arguments: { statuses: ['To Do'] } }),
      ),
      30,
    ),
  );
  console.log(indent(`JQL sent: ${fake.requests.at(-1)?.query.jql}`));

  step('jira_get_issue SUP-1 (customer PII and a pasted token, redacted and fenced)');
  console.log(
    indent(
      textOf(await client.callTool({ name: 'jira_get_issue', arguments: { key: 'SUP-1' } })),
      40,
    ),
  );

  step('jira_get_issue SUP-2 (its description tries to instruct the model: fenced as data)');
  console.log(
    indent(
      textOf(await client.callTool({ name: 'jira_get_issue', arguments: { key: 'SUP-2' } })),
      30,
    ),
  );

  step('Attack: jira_search_issues text = x) OR (project = FIN');
  await client.callTool({
    name: 'jira_search_issues',
    arguments: { text: 'x) OR (project = FIN' },
  });
  console.log(indent(`JQL sent: ${fake.requests.at(-1)?.query.jql} (one quoted value)`));

  step('Attack: jira_get_issue SUP-4 (moved to FIN: Jira still answers the old key)');
  console.log(
    indent(textOf(await client.callTool({ name: 'jira_get_issue', arguments: { key: 'SUP-4' } }))),
  );

  step('jira_get_attachment SUP-1 / 10500 (Jira answers 303 to its media host)');
  const seen = fake.mediaRequests.length;
  const attachment = await client.callTool({
    name: 'jira_get_attachment',
    arguments: { key: 'SUP-1', attachmentId: '10500' },
  });
  console.log(indent(textOf(attachment)));
  const media = fake.mediaRequests.slice(seen);
  console.log(
    indent(
      `media host requests: ${media.length}, carrying the Jira credential: ${media.filter((m) => m.hadAuthorization).length}`,
    ),
  );
  if (media.length !== 1 || media.some((m) => m.hadAuthorization))
    throw new Error('the attachment download did not go to the media host without the credential');

  step('jira_add_comment SUP-3 (needs the human: approved)');
  console.log(
    indent(
      textOf(
        await client.callTool({
          name: 'jira_add_comment',
          arguments: {
            key: 'SUP-3',
            body: 'Confirmed: the **VAT table** is stale. Fix scheduled.',
          },
        }),
      ),
    ),
  );

  step('Write to a read-only project: jira_add_comment OPS-1 (refused before the human is asked)');
  console.log(
    indent(
      textOf(
        await client.callTool({
          name: 'jira_add_comment',
          arguments: { key: 'OPS-1', body: 'hi' },
        }),
      ),
    ),
  );
  console.log(
    indent(`OPS-1 comments in Jira: ${fake.issue('OPS-1')?.comments.length ?? 0} (unchanged)`),
  );

  await session.close();
  session = undefined;
  await printAuditTrail(auditFile);
}

await runDemo(main);
