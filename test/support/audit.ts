import type { AuditRecord } from '@hardened-mcp/core';

/** The audit records (JSON lines with an `auditId`) in a server's stderr; pino log lines are skipped. */
export function auditRecordsIn(stderr: string): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (typeof parsed.auditId === 'string' && typeof parsed.hash === 'string')
        out.push(parsed as unknown as AuditRecord);
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
