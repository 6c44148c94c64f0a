/**
 * Node's module compile cache (`module.enableCompileCache`) for the server's own start, in a
 * directory only the server's user can write (issue 14: about 12% fewer instructions to load the
 * server's code). A compile cache holds V8 code that Node runs instead of compiling the source,
 * so it is executable input: it is used only from a directory that passes
 * {@link checkPrivateDirectory}, and skipped (silently: the server starts the same, compiling as
 * before) otherwise. Imports only Node built-ins, so it runs before the server's modules load.
 *
 * Opt out with `HMCP_COMPILE_CACHE=off` (or Node's own `NODE_DISABLE_COMPILE_CACHE=1`); choose
 * the directory with `HMCP_COMPILE_CACHE=/absolute/path` (checked the same way). Default:
 * `$XDG_CACHE_HOME/hardened-mcp/compile-cache`, else `~/.cache/hardened-mcp/compile-cache`.
 */
import { lstatSync, mkdirSync, realpathSync } from 'node:fs';
// A namespace import: `enableCompileCache` exists from Node 22.1 only, and a named import of it
// is a link error that stops the bin on the Node 20 the packages support (engines >=20.19).
import * as nodeModule from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** Where the cache goes, or undefined when it is off (see the module comment). */
export function compileCacheDirectory(
  env: NodeJS.ProcessEnv = process.env,
  home: () => string = homedir,
): string | undefined {
  const setting = env.HMCP_COMPILE_CACHE;
  if (setting === 'off' || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  if (setting !== undefined && setting !== '')
    return isAbsolute(setting) ? resolve(setting) : undefined;
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(home(), '.cache');
  return join(base, 'hardened-mcp', 'compile-cache');
}

/**
 * Why `dir` must not hold executable input for user `uid`, or undefined when it may: `dir` must
 * be a real directory (not a symbolic link) owned by `uid` with no group or other permission
 * bits (mode 0700 or stricter), and each ancestor up to `/` must be owned by `uid` or root and,
 * when group- or world-writable, have the sticky bit (so no other user can rename or replace an
 * entry on the path; the rule of OpenSSH's `StrictModes` and of `/tmp`). The ancestors checked
 * are those of the resolved path (`realpath`), so a symbolic link among them cannot lead the
 * cache into a directory someone else controls.
 *
 * Never throws: an unreadable path is a reason.
 */
export function checkPrivateDirectory(dir: string, uid: number): string | undefined {
  try {
    const st = lstatSync(dir);
    if (st.isSymbolicLink()) return `${dir} is a symbolic link`;
    if (!st.isDirectory()) return `${dir} is not a directory`;
    if (st.uid !== uid) return `${dir} is owned by uid ${st.uid}, not ${uid}`;
    if ((st.mode & 0o077) !== 0)
      return `${dir} has mode ${(st.mode & 0o777).toString(8)}, not 0700`;
    return checkAncestors(dirname(realpathSync(dir)), uid);
  } catch (err) {
    return `${dir}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`;
  }
}

/**
 * Why the resolved directory `path` and each of its ancestors up to `/` would let another user
 * replace an entry below it, or undefined when none would: each must be owned by `uid` or root
 * and, when group- or world-writable, have the sticky bit. `path` must be resolved (no symbolic
 * links). Throws the `lstat` error of an unreadable path.
 */
function checkAncestors(path: string, uid: number): string | undefined {
  for (let parent = path; ; parent = dirname(parent)) {
    const p = lstatSync(parent);
    if (p.uid !== uid && p.uid !== 0) return `${parent} is owned by uid ${p.uid}`;
    if ((p.mode & 0o022) !== 0 && (p.mode & 0o1000) === 0)
      return `${parent} is writable by others and not sticky`;
    if (parent === dirname(parent)) return undefined;
  }
}

/**
 * The deepest existing directory on the absolute `path`, as written (not resolved), or undefined
 * when none can be read. What `mkdirSync(path, { recursive: true })` would create lies below it.
 */
function deepestExisting(path: string): string | undefined {
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      lstatSync(p);
      return p;
    } catch {
      if (p === dirname(p)) return undefined;
    }
  }
}

/**
 * Enables Node's compile cache in {@link compileCacheDirectory} (created 0700 when missing, and
 * only below a directory whose ancestors pass the same ownership rule; used by its resolved
 * path) when it passes {@link checkPrivateDirectory} for this process's user.
 * Returns the directory used (resolved), or undefined when the cache stays off (opted out, no
 * POSIX user ids, a Node without `enableCompileCache`, a failed check, or Node refused). Never
 * throws; writes nothing to stdout or stderr.
 */
export function enablePrivateCompileCache(
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (typeof process.getuid !== 'function') return undefined;
  const enableCompileCache = nodeModule.enableCompileCache;
  if (typeof enableCompileCache !== 'function') return undefined;
  const configured = compileCacheDirectory(env);
  if (!configured) return undefined;
  let dir: string;
  try {
    // Nothing is created under a directory another user could change (a user's ~/.cache when
    // root runs the server with that HOME, a link into an open directory): its ancestors are
    // checked first, by the same rule as the cache directory's.
    // A symbolic link on the path as written is refused outright: its owner could point it at a
    // directory of their choosing, and the resolved path's ancestors would not show the link.
    const existing = deepestExisting(configured);
    if (
      existing === undefined ||
      realpathSync(existing) !== existing ||
      checkAncestors(existing, process.getuid()) !== undefined
    )
      return undefined;
    mkdirSync(configured, { recursive: true, mode: 0o700 });
    // Node opens the cache's files by the path it is given, long after the check: it gets the
    // resolved path, whose every component the check covers, so a symbolic link on the configured
    // path (one another user could replace) is not followed again later.
    dir = realpathSync(configured);
  } catch {
    return undefined;
  }
  if (checkPrivateDirectory(dir, process.getuid()) !== undefined) return undefined;
  try {
    const result = enableCompileCache(dir);
    return result.directory === dir ? dir : undefined;
  } catch {
    return undefined;
  }
}
