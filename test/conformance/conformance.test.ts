/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`) and the MCP Inspector
 * CLI against the Postgres server over Streamable HTTP on loopback.
 *
 * The conformance suite cannot send credentials, so it runs against `auth.mode: none` (loopback
 * only); the Inspector runs against `auth.mode: api-key` with a bearer token.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hashApiKey } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_BIN, REPO_ROOT, writeTempConfig } from '../support/server.ts';

const run = promisify(execFile);
const BIN = join(REPO_ROOT, 'test', 'node_modules', '.bin');
/** ANSI colour codes: the suite always prints them. */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

let pg: TestPostgres;
let db: ChinookDatabase;
beforeAll(async () => {
  pg = await startTestPostgres();
  db = await createChinookDatabase(pg);
});
afterAll(async () => {
  await db?.drop();
  await pg?.stop();
});

/** Starts the server in HTTP mode on a free port and resolves its /mcp URL from the startup log. */
async function startHttp(
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [POSTGRES_BIN, '--transport', 'http', '--config', writeTempConfig(config)],
    {
      env: { PATH: process.env.PATH ?? '', POSTGRES_URL: db.readUrl, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 30_000);
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /listening on (http:\/\/\S+\/mcp)/.exec(log);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}:\n${log}`)));
  });
  return {
    url,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const httpConfig = (extra: Record<string, unknown> = {}) => ({
  transport: 'http',
  http: { port: 0, management: { enabled: false } },
  audit: { stderr: false, file: join(mkdtempSync(join(tmpdir(), 'hmcp-conf-')), 'audit.jsonl') },
  log: { level: 'info' },
  ...extra,
});

describe('MCP conformance suite (server scenarios)', () => {
  let server: Awaited<ReturnType<typeof startHttp>>;
  beforeAll(async () => {
    server = await startHttp(httpConfig());
  });
  afterAll(async () => server?.stop());

  it.each(['server-initialize', 'ping', 'tools-list', 'dns-rebinding-protection'])(
    '%s passes',
    async (scenario) => {
      const outDir = mkdtempSync(join(tmpdir(), 'hmcp-conformance-'));
      const result = await run(
        join(BIN, 'conformance'),
        ['server', '--url', server.url, '--scenario', scenario, '-o', outDir],
        { encoding: 'utf8' },
      ).catch((err: { stdout?: string; stderr?: string; code?: number }) => ({
        stdout: err.stdout ?? '',
        stderr: err.stderr ?? '',
        failed: err.code ?? 1,
      }));
      const stdout = result.stdout.replace(ANSI, '');
      expect(
        'failed' in result ? `exit ${result.failed}\n${stdout}\n${result.stderr}` : 'exit 0',
      ).toBe('exit 0');
      expect(stdout).toMatch(/Passed: (\d+)\/\1, 0 failed/);
    },
  );

  it('the whole active suite matches the expected-failures baseline (each entry has a reason)', async () => {
    const baseline = join(REPO_ROOT, 'test', 'conformance', 'expected-failures.yml');
    const result = await run(
      join(BIN, 'conformance'),
      ['server', '--url', server.url, '--expected-failures', baseline],
      { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
    ).catch((err: { stdout?: string; code?: number }) => ({
      stdout: err.stdout ?? '',
      stderr: '',
      failed: err.code ?? 1,
    }));
    const stdout = result.stdout.replace(ANSI, '');
    expect('failed' in result ? `exit ${result.failed}\n${stdout.slice(-3000)}` : 'exit 0').toBe(
      'exit 0',
    );
    expect(stdout).toContain('Baseline check passed');
  }, 120_000);
});

describe('MCP Inspector CLI over HTTP with a bearer token', () => {
  const key = `hmcp_test_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  let server: Awaited<ReturnType<typeof startHttp>>;
  beforeAll(async () => {
    server = await startHttp(
      httpConfig({
        auth: {
          mode: 'api-key',
          apiKeys: [
            {
              id: 'inspector',
              sha256: hashApiKey(key),
              principal: 'svc-inspector',
              roles: ['reader'],
            },
          ],
        },
      }),
    );
  });
  afterAll(async () => server?.stop());

  const inspector = (args: string[]) =>
    run(
      join(BIN, 'mcp-inspector'),
      ['--cli', server.url, '--transport', 'http', '--stored-auth-only', ...args],
      {
        encoding: 'utf8',
        env: { ...process.env, MCP_STORAGE_DIR: mkdtempSync(join(tmpdir(), 'hmcp-inspector-')) },
      },
    );

  it('lists the tools', async () => {
    const { stdout } = await inspector([
      '--header',
      `Authorization: Bearer ${key}`,
      '--method',
      'tools/list',
      '--format',
      'json',
    ]);
    const names = (
      JSON.parse(stdout) as { result: { tools: { name: string }[] } }
    ).result.tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining(['postgres_query', 'postgres_list_tables', 'postgres_describe_table']),
    );
  });

  it('calls postgres_query and gets redacted rows', async () => {
    const { stdout } = await inspector([
      '--header',
      `Authorization: Bearer ${key}`,
      '--method',
      'tools/call',
      '--tool-name',
      'postgres_query',
      '--tool-args-json',
      JSON.stringify({
        sql: 'SELECT first_name, email FROM customer WHERE customer_id = $1',
        params: [1],
      }),
      '--format',
      'json',
    ]);
    const result = (JSON.parse(stdout) as { result: { structuredContent: { rows: unknown[][] } } })
      .result;
    expect(result.structuredContent.rows).toEqual([['Luís', '[REDACTED:email]']]);
  });

  it('is refused without the token (exit 3, auth required)', async () => {
    const err = await inspector(['--method', 'tools/list', '--format', 'json']).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(err?.code).toBe(3);
    expect(err?.stderr).toContain('auth_required');
  });
});
