/**
 * Filesystem locations the test kit relies on.
 *
 * Layout (paths are computed from this package's own location, never from `process.cwd()`):
 *
 * ```
 * <parent>/
 *   <repo>/            ← repository root (the parent of this package dir, `shared/`)
 *     shared/          ← this package (@hardened-mcp/test-kit)
 *   shared/            ← the shared kit, a sibling of the repository
 *     datasets/chinook/chinook.sql
 * ```
 */
import { access, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Absolute path of this package's directory (`<repo>/shared`). Works from both `src/` and the
 * compiled `dist/`, since both sit directly inside the package directory.
 */
export const testKitPackageDir: string = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Absolute path of the repository root: the parent directory of {@link testKitPackageDir}. */
export const repoRoot: string = dirname(testKitPackageDir);

/**
 * Absolute path of the shared kit directory, expected next to the repository
 * (`<parent of repo root>/shared`). It holds datasets such as Chinook.
 */
export const sharedKitDir: string = resolve(repoRoot, '..', 'shared');

/**
 * Absolute path where the Chinook SQL script is expected
 * (`<sharedKitDir>/datasets/chinook/chinook.sql`). The file may be absent; use
 * {@link readChinookSql} to read it with a clear error.
 */
export const chinookSqlPath: string = join(sharedKitDir, 'datasets', 'chinook', 'chinook.sql');

/**
 * Reads the Chinook SQL script (UTF-8 text, ~600 KB, plain multi-statement SQL with no psql
 * meta-commands).
 *
 * @returns the whole script as a string.
 * @throws Error when the file is missing or unreadable; the message names the `../shared` kit
 *   requirement and the absolute path that was looked up.
 */
export async function readChinookSql(): Promise<string> {
  try {
    await access(chinookSqlPath);
  } catch (cause) {
    throw new Error(
      `The Chinook sample database is missing: the "../shared" kit (datasets/chinook/chinook.sql) ` +
        `is required next to the repository. Looked for ${chinookSqlPath} ` +
        `(repository root: ${repoRoot}, expected kit directory: ${sharedKitDir}).`,
      { cause },
    );
  }
  return readFile(chinookSqlPath, 'utf8');
}
