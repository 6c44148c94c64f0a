/**
 * The compile cache's directory checks (a code cache is executable input: only a directory
 * private to the server's user may hold it) and the Node fact the cache relies on: an entry is
 * used only for the exact source it was made from (a changed module is compiled again).
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPrivateDirectory, compileCacheDirectory } from './compile-cache.js';

const uid = process.getuid?.() ?? -1;
const posix = uid >= 0;
const SOURCE = fileURLToPath(new URL('./compile-cache.ts', import.meta.url));

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) {
    chmodSync(d, 0o700);
    rmSync(d, { recursive: true, force: true });
  }
});
/** A fresh 0700 directory under the (sticky) temporary directory. */
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'hmcp-cc-'));
  chmodSync(d, 0o700);
  dirs.push(d);
  return d;
}

describe('compileCacheDirectory', () => {
  it('defaults under XDG_CACHE_HOME, else ~/.cache', () => {
    expect(compileCacheDirectory({ XDG_CACHE_HOME: '/x/cache' }, () => '/home/u')).toBe(
      '/x/cache/hardened-mcp/compile-cache',
    );
    expect(compileCacheDirectory({}, () => '/home/u')).toBe(
      '/home/u/.cache/hardened-mcp/compile-cache',
    );
    // A relative XDG_CACHE_HOME is ignored (the XDG rule).
    expect(compileCacheDirectory({ XDG_CACHE_HOME: 'rel' }, () => '/home/u')).toBe(
      '/home/u/.cache/hardened-mcp/compile-cache',
    );
  });
  it('is off with HMCP_COMPILE_CACHE=off or NODE_DISABLE_COMPILE_CACHE', () => {
    expect(compileCacheDirectory({ HMCP_COMPILE_CACHE: 'off' })).toBeUndefined();
    expect(compileCacheDirectory({ NODE_DISABLE_COMPILE_CACHE: '1' })).toBeUndefined();
  });
  it('takes an absolute HMCP_COMPILE_CACHE; a relative one turns the cache off', () => {
    expect(compileCacheDirectory({ HMCP_COMPILE_CACHE: '/srv/cc' })).toBe('/srv/cc');
    expect(compileCacheDirectory({ HMCP_COMPILE_CACHE: 'cc' })).toBeUndefined();
  });
});

describe.runIf(posix)('checkPrivateDirectory', () => {
  it('accepts a 0700 directory of ours under a sticky temporary directory', () => {
    expect(checkPrivateDirectory(tmp(), uid)).toBeUndefined();
  });
  it('refuses group or other permission bits', () => {
    const d = tmp();
    for (const mode of [0o750, 0o705, 0o755, 0o777]) {
      chmodSync(d, mode);
      expect(checkPrivateDirectory(d, uid)).toMatch(/has mode/);
    }
  });
  it('refuses a symbolic link to a private directory, a file and a missing path', () => {
    const d = tmp();
    const target = join(d, 'target');
    mkdirSync(target, { mode: 0o700 });
    symlinkSync(target, join(d, 'link'));
    expect(checkPrivateDirectory(join(d, 'link'), uid)).toMatch(/symbolic link/);
    writeFileSync(join(d, 'file'), '');
    chmodSync(join(d, 'file'), 0o600);
    expect(checkPrivateDirectory(join(d, 'file'), uid)).toMatch(/not a directory/);
    expect(checkPrivateDirectory(join(d, 'missing'), uid)).toMatch(/ENOENT/);
  });
  it('refuses a directory of another user', () => {
    expect(checkPrivateDirectory(tmp(), uid + 1)).toMatch(/owned by uid/);
  });
  it('refuses a parent that others can write without the sticky bit', () => {
    const d = tmp();
    const inner = join(d, 'cache');
    mkdirSync(inner, { mode: 0o700 });
    chmodSync(d, 0o777);
    expect(checkPrivateDirectory(inner, uid)).toMatch(/writable by others and not sticky/);
    chmodSync(d, 0o1777);
    expect(checkPrivateDirectory(inner, uid)).toBeUndefined();
  });
  it('checks the resolved parents: a link into an open directory is refused', () => {
    const open = tmp();
    chmodSync(open, 0o777);
    const own = tmp();
    mkdirSync(join(open, 'cache'), { mode: 0o700 });
    symlinkSync(open, join(own, 'via'));
    expect(checkPrivateDirectory(join(own, 'via', 'cache'), uid)).toMatch(
      /writable by others and not sticky/,
    );
  });
  it.runIf(uid === 0)('refuses a parent owned by another user (not root)', () => {
    const d = tmp();
    const inner = join(d, 'cache');
    mkdirSync(inner, { mode: 0o700 });
    chownSync(d, 4242, 4242);
    expect(checkPrivateDirectory(inner, uid)).toMatch(/owned by uid 4242/);
  });
});

/** Runs `code` (ES module) in a child Node with `env`; returns its stdout. */
function node(code: string, env: Record<string, string>): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
  });
}

describe.runIf(posix)('enablePrivateCompileCache (child processes)', () => {
  const enable = `const { enablePrivateCompileCache } = await import(${JSON.stringify(SOURCE)});`;
  it('uses a private directory, creating it 0700; skips one that fails the checks', () => {
    const base = tmp();
    const dir = join(base, 'new', 'cc');
    expect(
      node(`${enable} console.log(enablePrivateCompileCache())`, {
        HMCP_COMPILE_CACHE: dir,
      }).trim(),
    ).toBe(dir);
    expect(checkPrivateDirectory(dir, uid)).toBeUndefined();
    chmodSync(dir, 0o755);
    expect(
      node(`${enable} console.log(enablePrivateCompileCache())`, {
        HMCP_COMPILE_CACHE: dir,
      }).trim(),
    ).toBe('undefined');
    expect(
      node(`${enable} console.log(enablePrivateCompileCache())`, {
        HMCP_COMPILE_CACHE: 'off',
      }).trim(),
    ).toBe('undefined');
  });

  it.runIf(uid === 0)(
    "creates nothing under a directory another user owns (root with a user's HOME)",
    () => {
      const home = tmp();
      chownSync(home, 4242, 4242);
      const dir = join(home, '.cache', 'hardened-mcp', 'compile-cache');
      expect(
        node(`${enable} console.log(enablePrivateCompileCache())`, {
          HMCP_COMPILE_CACHE: dir,
        }).trim(),
      ).toBe('undefined');
      expect(readdirSync(home)).toEqual([]);
    },
  );

  it.runIf(uid === 0)(
    "follows no link another user owns on the path (a user's ~/.cache/hardened-mcp → elsewhere)",
    () => {
      const home = tmp();
      const target = tmp();
      chmodSync(target, 0o755);
      mkdirSync(join(home, '.cache'));
      symlinkSync(target, join(home, '.cache', 'hardened-mcp'));
      for (const p of [home, join(home, '.cache')]) chownSync(p, 4242, 4242);
      lchownSync(join(home, '.cache', 'hardened-mcp'), 4242, 4242);
      expect(
        node(`${enable} console.log(enablePrivateCompileCache())`, {
          HMCP_COMPILE_CACHE: join(home, '.cache', 'hardened-mcp', 'compile-cache'),
        }).trim(),
      ).toBe('undefined');
      expect(readdirSync(target)).toEqual([]);
    },
  );

  it('starts on a Node without enableCompileCache (before 22.1; engines >=20.19): the cache stays off', () => {
    // A resolve hook gives compile-cache.ts a `node:module` without `enableCompileCache`, as
    // Node 20 has: a named import of it was a link error that stopped the bin.
    const base = tmp();
    const hooks = join(base, 'hooks.mjs');
    writeFileSync(
      hooks,
      `export async function resolve(specifier, context, next) {
  if (specifier === 'node:module' && context.parentURL?.includes('compile-cache'))
    return { url: 'data:text/javascript,export const builtinModules = [];', shortCircuit: true };
  return next(specifier, context);
}\n`,
    );
    const register = join(base, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    const out = execFileSync(
      process.execPath,
      [
        '--import',
        pathToFileURL(register).href,
        '--input-type=module',
        '-e',
        `${enable} console.log(enablePrivateCompileCache())`,
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HMCP_COMPILE_CACHE: join(base, 'cc'),
        },
        encoding: 'utf8',
      },
    );
    expect(out.trim()).toBe('undefined');
  });

  it('uses no path through a symbolic link (one others could replace and re-point later)', () => {
    // `open` is writable by others (no sticky bit), so its `link` can be replaced at any time; it
    // points at a private directory, so a check of the resolved path alone would pass, and Node
    // would later open the cache's files through whatever the link then names.
    const open = tmp();
    chmodSync(open, 0o777);
    const own = tmp();
    mkdirSync(join(own, 'cc'), { mode: 0o700 });
    const link = join(open, 'link');
    symlinkSync(own, link);
    expect(
      node(`${enable} console.log(enablePrivateCompileCache())`, {
        HMCP_COMPILE_CACHE: join(link, 'cc'),
      }).trim(),
    ).toBe('undefined');
    expect(readdirSync(join(own, 'cc'))).toEqual([]);
    // The same directory named without the link is used, by that path.
    expect(
      node(`${enable} console.log(enablePrivateCompileCache())`, {
        HMCP_COMPILE_CACHE: join(own, 'cc'),
      }).trim(),
    ).toBe(realpathSync(join(own, 'cc')));
  });

  it('Node fact: a cached module whose source changed is compiled again (never the old code)', () => {
    const base = tmp();
    const dir = join(base, 'cc');
    const mod = join(base, 'm.mjs');
    const run = () =>
      node(
        `${enable} enablePrivateCompileCache(); const m = await import(${JSON.stringify(mod)}); console.log(m.v());`,
        {
          HMCP_COMPILE_CACHE: dir,
        },
      ).trim();
    writeFileSync(mod, 'export function v() { return "AAAA"; }\n');
    expect(run()).toBe('AAAA');
    expect(run()).toBe('AAAA');
    // The cache holds an entry now (written at exit), so the next run could reuse it.
    expect(readdirSync(dir).length).toBeGreaterThan(0);
    // Same length, same mtime second: only the content tells the versions apart.
    writeFileSync(mod, 'export function v() { return "BBBB"; }\n');
    expect(run()).toBe('BBBB');
  });
});
