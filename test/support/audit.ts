/** Audit records in a server's stderr, and polling: shared with every suite through the test kit. */
import type { AuditRecord } from '@hardened-mcp/core';
import { auditRecordsIn as recordsIn } from '@hardened-mcp/test-kit';

export { waitFor } from '@hardened-mcp/test-kit';

/** The audit records (JSON lines with an `auditId`) in a server's stderr; log lines are skipped. */
export function auditRecordsIn(stderr: string): AuditRecord[] {
  return recordsIn(stderr) as unknown as AuditRecord[];
}
