import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

/** A running server with a connected SDK client. */
export interface ServerSession {
  readonly client: Client;
  readonly transport: StdioClientTransport;
  /** Everything the server wrote to stderr so far (logs and audit records). */
  stderr(): string;
  /** The server's pid. */
  readonly pid: number | null;
  close(): Promise<void>;
}

/** Options of {@link startStdioServer}. */
export interface StartOptions {
  readonly env: Record<string, string>;
  /** Written to a temp file (mode 0600) and passed as `--config`. */
  readonly config?: Record<string, unknown> | undefined;
  readonly args?: readonly string[] | undefined;
  /** Client capabilities, e.g. `{ elicitation: {} }`. */
  readonly capabilities?: Record<string, unknown> | undefined;
  readonly clientName?: string | undefined;
}

/** Writes a config object to a fresh temp file (mode 0600) and returns its path. */
export function writeTempConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-cfg-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}

/**
 * Starts a built server bin (any connector) on this process's Node (24 under the repo's
 * scripts) and connects the MCP SDK `Client` to it over stdio. The environment is PATH, HOME and
 * `opts.env` only (which may override HOME).
 *
 * @throws Error carrying the server's stderr when it does not complete `initialize`.
 */
export async function startStdioServer(bin: string, opts: StartOptions): Promise<ServerSession> {
  const args = [bin, ...(opts.args ?? [])];
  if (opts.config) args.push('--config', writeTempConfig(opts.config));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const client = new Client(
    { name: opts.clientName ?? 'hardened-mcp-e2e', version: '1.0.0' },
    { capabilities: (opts.capabilities ?? {}) as never },
  );
  try {
    await client.connect(transport);
  } catch (err) {
    throw new Error(`server failed to start: ${(err as Error).message}\n${stderr}`);
  }
  return {
    client,
    transport,
    stderr: () => stderr,
    get pid() {
      return transport.pid;
    },
    async close() {
      await client.close();
    },
  };
}

/** The text of a tool result's first text block. */
export function textOf(result: unknown): string {
  const content = (result as { content?: unknown }).content as
    | { type: string; text?: string }[]
    | undefined;
  return content?.find((c) => c.type === 'text')?.text ?? '';
}

/**
 * Runs a built server bin until it exits (startup failures); stdin is closed after
 * `stdinCloseMs` so a server that did start ends too.
 */
export function runBinToExit(
  bin: string,
  env: Record<string, string>,
  args: readonly string[],
  stdinCloseMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    setTimeout(() => child.stdin.end(), stdinCloseMs).unref();
  });
}

/** The audit records (JSON lines with `auditId` and `hash`) in a server's stderr; log lines are skipped. */
export function auditRecordsIn(stderr: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (typeof parsed.auditId === 'string' && typeof parsed.hash === 'string') out.push(parsed);
    } catch {
      // not JSON
    }
  }
  return out;
}

/** Waits until `predicate()` holds, polling every 20 ms, for at most `ms`. */
export async function waitFor(predicate: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
