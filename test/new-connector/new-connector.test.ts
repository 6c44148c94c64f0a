/**
 * `pnpm new-connector demo-thing` makes a server whose own tests pass untouched. The connector is
 * generated into a temp folder laid out like the repository (servers/demo-thing beside a link to
 * shared/), with the template's installed packages linked in, then built with the repository's
 * TypeScript and tested with its vitest: its in-process tool tests and the shared contract suite
 * against its own bin over stdio.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/server.ts';

const root = mkdtempSync(join(tmpdir(), 'hmcp-new-connector-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function run(args: readonly string[], cwd: string) {
  const r = spawnSync(process.execPath, [...args], {
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

it('generates servers/demo-thing from the example, with every name changed, and its tests pass', {
  timeout: 600_000,
}, () => {
  const out = join(root, 'servers', 'demo-thing');
  const created = run(
    [join(REPO_ROOT, 'shared', 'scripts', 'new-connector.ts'), 'demo-thing', '--out', out],
    REPO_ROOT,
  );
  expect(created.out).toContain('connector id demothing');
  expect(created.code).toBe(0);

  const pkg = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8'));
  expect(pkg.name).toBe('@hardened-mcp/demo-thing');
  expect(pkg.bin).toEqual({ 'hardened-mcp-demo-thing': './dist/bin.js' });
  expect(readFileSync(join(out, 'Dockerfile'), 'utf8')).toContain('ARG SERVER=demo-thing\n');
  // The Dockerfile keeps the shared shape (test/containers/dockerfiles.test.ts): only the
  // per-server lines differ from the template's.
  const shape = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => !/^ARG (SERVER|DESCRIPTION)=|docker build -f servers\//.test(l));
  expect(shape(join(out, 'Dockerfile'))).toEqual(
    shape(join(REPO_ROOT, 'servers', 'example', 'Dockerfile')),
  );
  const connector = readFileSync(join(out, 'src', 'connector.ts'), 'utf8');
  expect(connector).toContain("name: 'demothing'");
  expect(connector).toContain("env: 'DEMO_THING_READ_TOKEN'");
  expect(readFileSync(join(out, 'README.md'), 'utf8')).toContain('# @hardened-mcp/demo-thing');
  for (const file of [
    'src/tools.ts',
    'src/connector.ts',
    'src/contract.test.ts',
    'src/tools.test.ts',
  ])
    expect(readFileSync(join(out, file), 'utf8'), file).not.toMatch(
      /\bexample_|'example'|EXAMPLE_/,
    );
  // The seed data keeps its RFC 2606 documentation addresses.
  expect(readFileSync(join(out, 'src', 'store.ts'), 'utf8')).toContain('maria.jensen@example.com');

  // Lay the repository's shape around it: shared/ for tsconfig.base.json, installed packages.
  symlinkSync(join(REPO_ROOT, 'shared'), join(root, 'shared'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  symlinkSync(join(REPO_ROOT, 'servers', 'example', 'node_modules'), join(out, 'node_modules'));
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const built = run([tsc, '-p', 'tsconfig.build.json'], out);
  expect(built.out.trim()).toBe('');
  expect(built.code).toBe(0);
  expect(existsSync(join(out, 'dist', 'bin.js'))).toBe(true);
  const typed = run([tsc, '-p', 'tsconfig.json', '--noEmit'], out);
  expect(typed.code, typed.out).toBe(0);

  const vitest = join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs');
  const tested = run([vitest, 'run', '--root', out], out);
  expect(tested.code, tested.out).toBe(0);
  expect(tested.out).toMatch(/Tests\s+\d+ passed/);
  expect(tested.out).not.toMatch(/failed|skipped/);
});

it('refuses a bad name and an existing folder', () => {
  const script = join(REPO_ROOT, 'shared', 'scripts', 'new-connector.ts');
  expect(run([script, 'Bad_Name', '--out', join(root, 'x')], REPO_ROOT)).toMatchObject({ code: 1 });
  expect(
    run([script, 'other', '--out', join(REPO_ROOT, 'servers', 'example')], REPO_ROOT),
  ).toMatchObject({ code: 1 });
  expect(run([script], REPO_ROOT)).toMatchObject({ code: 2 });
});
