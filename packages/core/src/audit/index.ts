/**
 * The hash-chained audit trail: one record per tool call, JSON Lines, tamper-evident.
 *
 * @module
 */

export {
  AuditLog,
  AuditLogError,
  type AuditLogErrorCode,
  type AuditLogOptions,
  type AuditSinkFailure,
} from './audit-log.js';
export {
  AUDIT_RECORD_VERSION,
  type AuditAccess,
  type AuditApproval,
  type AuditDecision,
  type AuditEntry,
  type AuditRecord,
  type AuditTransport,
  auditEntrySchema,
  auditRecordSchema,
  GENESIS_HASH,
} from './audit-record.js';
export {
  type AuditChainFailureCode,
  type AuditChainVerification,
  canonicalJson,
  computeRecordHash,
  verifyAuditChain,
  verifyAuditFile,
} from './hash-chain.js';
export {
  type AuditSink,
  AuditSinkError,
  type AuditSinkErrorCode,
  createStderrSink,
  MAX_AUDIT_LINE_BYTES,
  type OpenedFileSink,
  openFileSink,
} from './sinks.js';
