/**
 * Cedar policies in the built bin over stdio (build first: `pnpm build`): the stdio principal's
 * attributes come from `identity.claims`, SIGHUP reloads the policy files without dropping the
 * session, and an invalid new set keeps the old one (and says why on stderr).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot, type ServerSession, startStdioServer } from '@hardened-mcp/test-kit';
import { afterEach, describe, expect, it } from 'vitest';

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = join(HERE, '..', 'dist', 'bin.js');
// The core's shipped examples, found through the test kit (a generated copy of this server may
// live outside the repository: see `pnpm new-connector`).
const EXAMPLES = join(repoRoot, 'packages', 'core', 'policies', 'examples');
const ENV = { EXAMPLE_READ_TOKEN: 'read-token-0001' };

let session: ServerSession | undefined;
afterEach(async () => {
  await session?.close();
  session = undefined;
});

/** Waits until the server's stderr contains `text` (a reload is asynchronous: it reads files). */
async function stderrContains(s: ServerSession, text: string): Promise<void> {
  for (let i = 0; i < 1200 && !s.stderr().includes(text); i++)
    await new Promise((resolve) => setTimeout(resolve, 25));
  expect(s.stderr()).toContain(text);
}

describe('Cedar policies in the running server', () => {
  it('enforces stdio claims, reloads on SIGHUP, and keeps the old set when the new one is invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hmcp-reload-'));
    const local = join(dir, 'local.cedar');
    writeFileSync(
      local,
      '@id("no-support") forbid(principal, action, resource is Hmcp::Folder) when { resource.folder == "support" };',
    );
    session = await startStdioServer(BIN, {
      env: ENV,
      config: {
        identity: { principal: 'ana', roles: ['reader'], claims: { department: 'sales' } },
        example: {
          folders: { read: ['general', 'support', 'finance'], write: [] },
          departments: { finance: 'finance' },
        },
        policies: {
          files: [
            join(EXAMPLES, 'base.cedar'),
            join(EXAMPLES, 'department-isolation.cedar'),
            local,
          ],
        },
        log: { level: 'info' },
      },
    });
    const s = session;
    const list = async (folder: string) => {
      const r = await s.client.callTool({ name: 'example_list_notes', arguments: { folder } });
      return { isError: r.isError === true, text: JSON.stringify(r.content) };
    };
    expect((await list('general')).isError).toBe(false);
    const support = await list('support');
    expect(support.isError).toBe(true);
    expect(support.text).toContain('no-support');
    // The sales principal (claims from config) cannot read the finance department's folder.
    const finance = await list('finance');
    expect(finance.text).toContain('department-isolation');

    writeFileSync(local, '// nothing forbidden here any more\n');
    process.kill(s.pid as number, 'SIGHUP');
    await stderrContains(s, 'policies reloaded');
    expect((await list('support')).isError).toBe(false);

    writeFileSync(
      local,
      '@id("typo") forbid(principal, action, resource) when { principal.departmnt == "x" };',
    );
    process.kill(s.pid as number, 'SIGHUP');
    await stderrContains(s, 'policy reload rejected');
    expect(s.stderr()).toContain('departmnt');
    // The previous set is still in force, and the session never dropped.
    expect((await list('support')).isError).toBe(false);
    expect((await list('finance')).text).toContain('department-isolation');
  }, 60_000);
});
