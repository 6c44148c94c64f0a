import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  runBinToExit,
  type ServerSession,
  type StartOptions,
  startStdioServer,
} from '@hardened-mcp/test-kit';

export {
  runBinToExit,
  type ServerSession,
  type StartOptions,
  startStdioServer,
  textOf,
  writeTempConfig,
} from '@hardened-mcp/test-kit';

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built Postgres server bin. */
export const POSTGRES_BIN = join(REPO_ROOT, 'servers', 'postgres', 'dist', 'bin.js');

/**
 * Starts the built `hardened-mcp-postgres` bin on Node 24 (this process's `node`) and connects
 * the MCP SDK `Client` to it over stdio.
 */
export function startPostgresServer(opts: StartOptions): Promise<ServerSession> {
  return startStdioServer(POSTGRES_BIN, opts);
}

/** Runs the bin until it exits (for startup failures); stdin is closed after 15 s so a started server ends. */
export function runBin(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runBinToExit(POSTGRES_BIN, env, args, 15_000);
}
