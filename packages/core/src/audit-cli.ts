#!/usr/bin/env node
/**
 * `hardened-mcp-audit`: offline tools for hash-chained audit files.
 *
 * ```
 * hardened-mcp-audit verify <file>
 * ```
 *
 * Exit codes: 0 chain intact (`ok: N records, chain intact (last hash …)` on stdout); 1 tampered
 * (`TAMPERED: line L: <code>: <message>` on stderr); 2 usage error or unreadable file (message on
 * stderr). This is not an MCP server, so stdout is free for output.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { verifyAuditFile } from './audit/index.js';

const USAGE = `usage: hardened-mcp-audit verify <file>

Verifies the hash chain of an audit file (JSON Lines written by hardened-mcp servers).

Exit codes: 0 chain intact, 1 tampered, 2 usage error or unreadable file.
Note: a hash chain cannot detect records cut off at the end; compare the reported last hash
and record count with an external anchor for that.`;

/** Where {@link main} writes; defaults to the process streams. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/**
 * Runs the CLI.
 *
 * @param argv Arguments after the executable and script (i.e. `process.argv.slice(2)`).
 * @param io Output streams (tests); default `process.stdout` / `process.stderr`.
 * @returns The exit code: 0 intact, 1 tampered, 2 usage error or unreadable file. Never rejects.
 */
export async function main(
  argv: readonly string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.stderr.write(`error: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, file, ...rest] = parsed.positionals;
  if (command !== 'verify' || file === undefined || rest.length > 0) {
    const why =
      command === undefined
        ? 'missing command'
        : command !== 'verify'
          ? `unknown command: ${command}`
          : file === undefined
            ? 'missing <file>'
            : 'too many arguments';
    io.stderr.write(`error: ${why}\n${USAGE}\n`);
    return 2;
  }

  let result: Awaited<ReturnType<typeof verifyAuditFile>>;
  try {
    result = await verifyAuditFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    io.stderr.write(`error: cannot read ${file}: ${code ?? (err as Error).message}\n`);
    return 2;
  }
  if (result.ok) {
    io.stdout.write(`ok: ${result.records} records, chain intact (last hash ${result.lastHash})\n`);
    return 0;
  }
  io.stderr.write(`TAMPERED: line ${result.line}: ${result.code}: ${result.message}\n`);
  return 1;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
