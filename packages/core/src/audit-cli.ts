#!/usr/bin/env node
/**
 * `hardened-mcp-audit`: offline tools for hash-chained audit files.
 *
 * ```
 * hardened-mcp-audit verify <file> [--hmac-key-file F | --public-key-file F] [--strict]
 * hardened-mcp-audit search <file> [--principal P] [--tool T] [--decision allowed|denied]
 *                                  [--since ISO] [--until ISO] [--session ID]
 * hardened-mcp-audit export <file> --format jsonl|csv [same filters]
 * ```
 *
 * Exit codes: `verify`: 0 chain intact (`ok: N records, chain intact (last hash …)` on stdout);
 * 1 tampered (`TAMPERED: line L: <code>: <message>` on stderr). `search`/`export`: 0 (matches on
 * stdout, a summary on stderr). All: 2 usage error or unreadable file (message on stderr). This
 * is not an MCP server, so stdout is free for output.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  type AuditExportFormat,
  type AuditFilter,
  type AuditOutput,
  type CheckpointVerifier,
  createCheckpointVerifier,
  exportAuditRecords,
  verifyAuditFile,
} from './audit/index.js';

const USAGE = `usage: hardened-mcp-audit verify <file> [--hmac-key-file F | --public-key-file F] [--strict]
       hardened-mcp-audit search <file> [filters]
       hardened-mcp-audit export <file> --format jsonl|csv [filters]

verify  Verifies the hash chain of an audit file (JSON Lines written by hardened-mcp servers),
        and with a key the signatures of its checkpoints (HMAC-SHA256 key, or Ed25519 public
        key PEM). --strict: exit 1 when records follow the last signed checkpoint.
search  Prints the matching records as JSON Lines, exactly as in the file.
export  Writes the matching records as JSON Lines or CSV (a header row, one row per record).

filters (all must match):
  --principal ID     exact principal
  --tool NAME        exact tool name
  --decision D       allowed | denied
  --since TIME       stamped at or after TIME (ISO 8601, e.g. 2026-01-31T00:00:00Z)
  --until TIME       stamped before TIME
  --session ID       exact MCP session id

search and export stream the file (bounded memory) and do not verify it: run verify first.
Exit codes: 0 ok (verify: chain intact), 1 tampered (verify), 2 usage error or unreadable file.
Note: a hash chain cannot detect records cut off at the end; compare the reported last hash
and record count with an external anchor (a SIEM copy, a signed checkpoint) for that.`;

/** Where {@link main} writes; defaults to the process streams. */
export interface CliIo {
  readonly stdout: AuditOutput;
  readonly stderr: { write(text: string): unknown };
}

/**
 * Runs the CLI.
 *
 * @param argv Arguments after the executable and script (i.e. `process.argv.slice(2)`).
 * @param io Output streams (tests); default `process.stdout` / `process.stderr`.
 * @returns The exit code: 0 ok, 1 tampered (verify), 2 usage error or unreadable file. Never
 *   rejects.
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
  const usage = (why: string) => {
    io.stderr.write(`error: ${why}\n${USAGE}\n`);
    return 2;
  };
  const [command, file, ...rest] = parsed.positionals;
  if (command === undefined) return usage('missing command');
  if (command !== 'verify' && command !== 'search' && command !== 'export') {
    return usage(`unknown command: ${command}`);
  }
  if (file === undefined) return usage('missing <file>');
  if (rest.length > 0) return usage('too many arguments');
  const v = parsed.values;
  if (command === 'verify') {
    const given = ['format', 'principal', 'tool', 'decision', 'since', 'until', 'session'].filter(
      (k) => v[k as keyof typeof v] !== undefined,
    );
    if (given.length > 0) return usage(`verify takes no --${given[0]}`);
    if (v['hmac-key-file'] !== undefined && v['public-key-file'] !== undefined) {
      return usage('give --hmac-key-file or --public-key-file, not both');
    }
    let verifier: CheckpointVerifier | undefined;
    const keyFile = v['hmac-key-file'] ?? v['public-key-file'];
    if (keyFile !== undefined) {
      try {
        const key = (await readFile(keyFile, 'utf8')).replace(/\n$/, '');
        verifier = createCheckpointVerifier(
          v['hmac-key-file'] !== undefined ? 'hmac-sha256' : 'ed25519',
          key,
        );
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        io.stderr.write(`error: cannot use the key ${keyFile}: ${code ?? 'not a usable key'}\n`);
        return 2;
      }
    }
    return verify(file, io, verifier, v.strict === true);
  }

  for (const k of ['hmac-key-file', 'public-key-file', 'strict'] as const) {
    if (v[k] !== undefined) return usage(`${command} takes no --${k}`);
  }
  let format: AuditExportFormat = 'jsonl';
  if (command === 'export') {
    if (v.format !== 'jsonl' && v.format !== 'csv') {
      return usage('export needs --format jsonl or --format csv');
    }
    format = v.format;
  } else if (v.format !== undefined) {
    return usage('search takes no --format (use export)');
  }
  if (v.decision !== undefined && v.decision !== 'allowed' && v.decision !== 'denied') {
    return usage('--decision must be allowed or denied');
  }
  const sinceMs = parseTime(v.since);
  const untilMs = parseTime(v.until);
  if (Number.isNaN(sinceMs)) return usage('--since is not an ISO 8601 time');
  if (Number.isNaN(untilMs)) return usage('--until is not an ISO 8601 time');
  const filter: AuditFilter = {
    principal: v.principal,
    tool: v.tool,
    decision: v.decision,
    sinceMs,
    untilMs,
    session: v.session,
  };
  try {
    const summary = await exportAuditRecords(file, filter, format, io.stdout);
    const skipped =
      summary.unparseable > 0 ? `, ${summary.unparseable} unparseable lines skipped` : '';
    io.stderr.write(`${summary.matched} of ${summary.scanned} records matched${skipped}\n`);
    return 0;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    io.stderr.write(`error: cannot read ${file}: ${code ?? (err as Error).message}\n`);
    return 2;
  }
}

async function verify(
  file: string,
  io: CliIo,
  verifier: CheckpointVerifier | undefined,
  strict: boolean,
): Promise<number> {
  let result: Awaited<ReturnType<typeof verifyAuditFile>>;
  try {
    result = await verifyAuditFile(file, { checkpointVerifier: verifier });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    io.stderr.write(`error: cannot read ${file}: ${code ?? (err as Error).message}\n`);
    return 2;
  }
  if (result.ok) {
    const from = result.continuesFrom
      ? `; continues a chain from seq ${result.continuesFrom.seq} (hash ${result.continuesFrom.prevHash})`
      : '';
    io.stdout.write(
      `ok: ${result.records} records, chain intact (last hash ${result.lastHash})${from}\n`,
    );
    if (verifier) {
      io.stdout.write(`${result.checkpoints} signed checkpoints verified\n`);
      if (result.afterLastCheckpoint > 0) {
        io.stderr.write(
          `WARNING: ${result.afterLastCheckpoint} records after the last signed checkpoint: the ` +
            'end of the file is not anchored (a crash, or records cut or rewritten after it)\n',
        );
        if (strict) return 1;
      }
    }
    return 0;
  }
  io.stderr.write(`TAMPERED: line ${result.line}: ${result.code}: ${result.message}\n`);
  return 1;
}

/** `undefined` stays undefined; a time with a date and a zone (or a bare date) becomes ms. */
function parseTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(value)) {
    return Number.NaN;
  }
  return Date.parse(value);
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      format: { type: 'string' },
      principal: { type: 'string' },
      tool: { type: 'string' },
      decision: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      session: { type: 'string' },
      'hmac-key-file': { type: 'string' },
      'public-key-file': { type: 'string' },
      strict: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
