#!/usr/bin/env node
/**
 * The `hardened-mcp-audit` bin: runs {@link main} of `./audit-cli.js` with the process's
 * arguments and exits with its code (0 chain intact, 1 tampered, 2 usage error or unreadable
 * file).
 *
 * A separate entry file because `audit-cli.js` runs itself only when `import.meta.main` is true,
 * which Node.js has from 22.18 and 24.2: on Node 20 it is undefined, and the bin printed nothing
 * and exited 0. This file runs whenever it is executed, on every Node.js the package supports
 * (`engines`: >= 20.19).
 *
 * Bounded memory: V8 sizes its heap by its own heuristics, which let a long streaming run (one
 * short-lived record after another) grow the heap with the file (peak RSS 135 MB on 64 MB, 185 MB
 * on 256 MB, 214 MB on 1 GB of audit file). Unless the caller chose heap flags itself, the bin
 * therefore runs the CLI in a child Node.js with {@link HEAP_FLAGS} (a 2 MB young generation
 * semi-space, a 48 MB old generation) and the same stdio, before loading anything else; the
 * child's peak RSS then stays within a few MB of a run on a tiny file
 * (`audit-cli.search.test.ts`). A signal that ends the child ends the bin the same way.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** V8 heap flags the bin runs the CLI with (sizes in MB). */
export const HEAP_FLAGS = ['--max-semi-space-size=2', '--max-old-space-size=48'] as const;

/** Signals passed on to the child (it shares the terminal's process group for Ctrl-C anyway). */
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const chosen = process.execArgv.some((a) => /^--max-(semi|old)-space-size\b/.test(a));
if (chosen) {
  const { main } = await import('./audit-cli.js');
  process.exitCode = await main(process.argv.slice(2));
} else {
  const child = spawn(
    process.execPath,
    [...HEAP_FLAGS, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    for (const s of FORWARDED) process.off(s, forward);
    if (signal !== null) process.kill(process.pid, signal);
    else process.exitCode = code ?? 2;
  } catch (err) {
    process.stderr.write(`error: cannot start the audit CLI: ${(err as Error).message}\n`);
    process.exitCode = 2;
  }
}
