import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from './audit/audit-log.js';
import { entry, line, parse, tempDir } from './audit/test-support/fixtures.js';
import { main } from './audit-cli.js';

const CLI = fileURLToPath(new URL('./audit-cli.ts', import.meta.url));

let tmp: Awaited<ReturnType<typeof tempDir>>;
let good: string;
let tampered: string;
let lastHash: string;

beforeEach(async () => {
  tmp = await tempDir();
  good = tmp.file('good.jsonl');
  tampered = tmp.file('tampered.jsonl');
  const log = await AuditLog.open({ sinks: { file: good } });
  let last = await log.record(entry(0));
  for (let i = 1; i < 4; i++) last = await log.record(entry(i));
  await log.close();
  lastHash = last.hash;
  const lines = (await readFile(good, 'utf8')).trimEnd().split('\n');
  lines[1] = line({ ...parse(lines[1]!), principal: 'forger' });
  await writeFile(tampered, `${lines.join('\n')}\n`);
});
afterEach(async () => {
  await tmp.cleanup();
});

async function run(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

describe('main', () => {
  it('exits 0 and reports an intact chain on stdout', async () => {
    expect(await run(['verify', good])).toEqual({
      code: 0,
      stdout: `ok: 4 records, chain intact (last hash ${lastHash})\n`,
      stderr: '',
    });
  });

  it('exits 1 and reports tampering on stderr', async () => {
    const result = await run(['verify', tampered]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^TAMPERED: line 2: hash_mismatch: .+\n$/);
  });

  it.each([
    [[]],
    [['verify']],
    [['frobnicate', 'x']],
    [['verify', 'a', 'b']],
    [['verify', '--bogus', 'a']],
  ])('exits 2 on usage error %j', async (argv) => {
    const result = await run(argv);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('usage: hardened-mcp-audit verify <file>');
  });

  it('exits 2 for an unreadable file', async () => {
    const result = await run(['verify', tmp.file('missing.jsonl')]);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toContain('ENOENT');
  });

  it('prints usage on --help and exits 0', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('usage: hardened-mcp-audit verify <file>');
  });

  it('starts with a node shebang (it is the package bin)', async () => {
    expect((await readFile(CLI, 'utf8')).split('\n')[0]).toBe('#!/usr/bin/env node');
  });
});

describe('as a child process', () => {
  // Node runs the .ts source with type stripping; this hook maps the `.js` import suffixes
  // of the sources to their `.ts` files.
  const hook = `data:text/javascript,${encodeURIComponent(
    'import { registerHooks } from "node:module";' +
      'registerHooks({ resolve(s, c, next) { try { return next(s, c); } catch (e) {' +
      ' if (s.startsWith(".") && s.endsWith(".js")) return next(s.slice(0, -3) + ".ts", c);' +
      ' throw e; } } });',
  )}`;
  const exec = promisify(execFile);

  async function spawnCli(args: string[]) {
    try {
      const { stdout, stderr } = await exec(
        process.execPath,
        ['--no-warnings', '--import', hook, CLI, ...args],
        { timeout: 20_000 },
      );
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('exits 0 for a good file, 1 for a tampered one, 2 for a usage error', async () => {
    const ok = await spawnCli(['verify', good]);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout).toBe(`ok: 4 records, chain intact (last hash ${lastHash})\n`);

    const bad = await spawnCli(['verify', tampered]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^TAMPERED: line 2: hash_mismatch: /);

    const usage = await spawnCli(['nope']);
    expect(usage.code).toBe(2);
  }, 30_000);
});
