/**
 * Terminal output shared by the demos: headings, indented blocks, the tool list and the audit
 * trail with its hash-chain verdict. Colour only on a TTY.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AuditRecord, verifyAuditFile } from '@hardened-mcp/core';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { REPO_ROOT } from '../support/server.ts';

const ESC = String.fromCharCode(27);
const styled = (code: number, s: string) =>
  process.stdout.isTTY ? `${ESC}[${code}m${s}${ESC}[0m` : s;

/** Bold text (TTY only). */
export const bold = (s: string) => styled(1, s);
/** Dim text (TTY only). */
export const dim = (s: string) => styled(2, s);

/** Prints a step heading. */
export function step(title: string): void {
  console.log(`\n${bold(`▶ ${title}`)}`);
}

/** Indents a block by four spaces, showing at most `max` lines. */
export function indent(s: string, max = 40): string {
  const lines = s.split('\n');
  const shown = lines.slice(0, max).map((l) => `    ${l}`);
  if (lines.length > max) shown.push(dim(`    … ${lines.length - max} more lines`));
  return shown.join('\n');
}

/** Prints the server's tools with their read-only/write annotation. */
export async function printTools(client: Client): Promise<void> {
  const { tools } = await client.listTools();
  console.log(
    indent(
      tools
        .map((t) => `${t.name}  ${dim(t.annotations?.readOnlyHint ? '(read-only)' : '(write)')}`)
        .join('\n'),
    ),
  );
}

/**
 * Prints every audit record of `auditFile` on one line each, verifies the hash chain (sets a
 * failing exit code if it is broken) and says how to verify it again.
 */
export async function printAuditTrail(auditFile: string): Promise<void> {
  step(`Audit trail (${auditFile})`);
  for (const line of readFileSync(auditFile, 'utf8').trim().split('\n')) {
    const r = JSON.parse(line) as AuditRecord;
    const red = Object.entries(r.redactions)
      .map(([k, v]) => `${k}×${v}`)
      .join(' ');
    const rows = r.rows !== undefined ? `, ${r.rows} row${r.rows === 1 ? '' : 's'}` : '';
    const reason = r.decision.reason ? ` (${r.decision.reason})` : '';
    console.log(
      `    #${r.seq} ${r.principal} ${r.tool} → ${r.decision.result}${reason}, ${r.outcome}${rows}${red ? `, redacted ${red}` : ''} ${dim(r.hash.slice(0, 12))}`,
    );
  }
  const verdict = await verifyAuditFile(auditFile);
  console.log(
    verdict.ok
      ? `    hash chain verified: ${verdict.records} records intact`
      : `    hash chain BROKEN: ${verdict.message}`,
  );
  if (!verdict.ok) process.exitCode = 1;
  console.log(`\n${bold('Done.')} Verify it yourself: pnpm verify-audit ${auditFile}`);
  console.log(dim(`(without a global pnpm: npx ${pinnedPnpm()} verify-audit ${auditFile})`));
}

/** The `packageManager` of the root package.json, e.g. `pnpm@10.34.9` (`pnpm@10` if unreadable). */
function pinnedPnpm(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      packageManager?: unknown;
    };
    if (typeof pkg.packageManager === 'string' && /^pnpm@[\w.+-]+$/.test(pkg.packageManager)) {
      return pkg.packageManager;
    }
  } catch {
    // fall through
  }
  return 'pnpm@10';
}
