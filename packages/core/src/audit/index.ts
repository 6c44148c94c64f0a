/**
 * The hash-chained audit trail: one record per tool call, JSON Lines, tamper-evident, durable
 * before the answer.
 *
 * @module
 */

export { AuditFile, type AuditFileChange, type TruncatedTail } from './audit-file.js';
export {
  type AuditDurability,
  type AuditEventTool,
  type AuditFileChangeAction,
  AuditLog,
  AuditLogError,
  type AuditLogErrorCode,
  type AuditLogOptions,
  type AuditSinkFailure,
} from './audit-log.js';
export {
  AUDIT_CSV_COLUMNS,
  type AuditExportFormat,
  type AuditExportSummary,
  type AuditFilter,
  type AuditOutput,
  exportAuditRecords,
  matchesAuditFilter,
} from './audit-query.js';
export {
  AUDIT_RECORD_VERSION,
  type AuditAccess,
  type AuditApproval,
  type AuditDecision,
  type AuditEntry,
  type AuditRecord,
  type AuditSession,
  type AuditTransport,
  auditEntrySchema,
  auditRecordSchema,
  GENESIS_HASH,
  MAX_AUDIT_INTENT_CHARS,
} from './audit-record.js';
export {
  CHECKPOINT_TOOL,
  type CheckpointAlgorithm,
  type CheckpointArguments,
  type CheckpointSigner,
  type CheckpointVerifier,
  checkpointMessage,
  createCheckpointSigner,
  createCheckpointVerifier,
} from './checkpoint.js';
export {
  AUDIT_INTENT_META_KEY,
  auditIntentFromMeta,
  resultDigest,
  resultDigestOfJson,
} from './forensics.js';
export {
  type AuditChainFailureCode,
  type AuditChainVerification,
  CHAIN_CONTINUED_TOOL,
  canonicalJson,
  computeRecordHash,
  verifyAuditChain,
  verifyAuditFile,
} from './hash-chain.js';
export {
  AuditShipError,
  createHttpsJsonShipper,
  type HttpsJsonShape,
  type HttpsJsonShipperOptions,
} from './https-shipper.js';
export { escapeAuditLine } from './line-escape.js';
export { type AuditTrail, type AuditTrailDeps, openAuditTrail } from './open-audit-trail.js';
export {
  AUDIT_OTLP_SCOPE,
  createOtlpLogsShipper,
  type OtlpLogsShipperOptions,
} from './otlp-shipper.js';
export { openRemoteAuditSinks, type RemoteAuditSinkDeps } from './remote-config.js';
export {
  type AuditShipper,
  RemoteAuditSink,
  type RemoteAuditSinkOptions,
  type RemoteSinkMode,
  type RemoteSinkStats,
} from './remote-sink.js';
export {
  type AuditSink,
  AuditSinkError,
  type AuditSinkErrorCode,
  createStderrSink,
  MAX_AUDIT_LINE_BYTES,
} from './sinks.js';
export {
  AuditSpool,
  AuditSpoolFullError,
  type AuditSpoolOptions,
  type AuditSpoolPosition,
} from './spool.js';
export {
  createSyslogTlsShipper,
  formatSyslogRecord,
  type SyslogTlsShipperOptions,
} from './syslog-shipper.js';
