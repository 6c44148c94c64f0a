/**
 * `pnpm demo` as a user runs it: on the generated data set (what a clone without `../shared`
 * gets) it completes with the planted secrets redacted; when the embedded PostgreSQL cannot
 * start it fails fast with one line on stderr, exit code 1, and no PostgreSQL left behind.
 *
 * The demo is spawned as a child process (Node 24, the built servers); a run that has not ended
 * after {@link HANG_BOUND_MS} is killed and counts as a hang (the bound detects hangs; it is not
 * a timing assertion).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { sampleDatabaseSql } from '@hardened-mcp/test-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/server.ts';

const DEMO = join(REPO_ROOT, 'test', 'demo', 'demo.ts');

/** A run still going after this long is killed and reported as a hang (ms). */
const HANG_BOUND_MS = 150_000;

interface DemoRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the demo with `env` layered over this process's environment (`undefined` unsets). */
function runDemo(env: Record<string, string | undefined>): Promise<DemoRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEMO], {
      cwd: REPO_ROOT,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), HANG_BOUND_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Command lines of all running processes that mention `needle` (Linux `/proc`). */
function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(join('/proc', pid, 'cmdline'), 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(needle)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

describe('pnpm demo', () => {
  it('runs to the end on the generated data set, with the planted secrets redacted', async () => {
    const run = await runDemo({ HMCP_DEMO_DATASET: 'generated' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/data set: generated sample data \(fixed seed \d+, 120 customers\)/);
    expect(run.stdout).toContain('[REDACTED:');
    expect(run.stdout).toMatch(/hash chain verified: \d+ records intact/);
    for (const { apiKey } of sampleDatabaseSql().credentials) {
      expect(run.stdout).not.toContain(apiKey);
    }
    expect(run.stdout).not.toMatch(/@example\.(com|org|net)/);
  });

  describe('when the embedded PostgreSQL cannot start (its port is taken)', () => {
    let blocker: Server | undefined;
    afterAll(async () => {
      await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
    });

    it('exits 1 with one line on stderr and leaves no PostgreSQL or data directory', async () => {
      const server = createServer();
      blocker = server;
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const address = server.address();
          if (address !== null && typeof address === 'object') resolve(address.port);
          else reject(new Error('no port'));
        });
      });

      const run = await runDemo({
        HMCP_TEST_PG: 'embedded',
        HMCP_TEST_PG_PORT: String(port),
        DATABASE_URL: undefined,
        HMCP_DEBUG: undefined,
      });

      expect(run.signal).toBeNull(); // not killed as a hang
      expect(run.code).toBe(1);
      const lines = run.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      const match =
        /^demo failed: Failed to start the embedded PostgreSQL \(data dir (\S+), port (\d+)\)/.exec(
          lines[0] ?? '',
        );
      expect(match, run.stderr).not.toBeNull();
      const dataDir = match?.[1] ?? '';
      expect(match?.[2]).toBe(String(port));
      expect(run.stderr).not.toMatch(/\n\s+at |\bError:/);
      expect(existsSync(dataDir)).toBe(false);
      expect(processesMentioning(dataDir)).toEqual([]);
    });
  });
});
