/**
 * The audit logger: stamps each entry (`v`, `time`, `auditId`, `seq`, `prevHash`, `hash`), chains
 * it to the previous record and writes the same line to every configured sink, in `seq` order.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { StartupError } from '../errors.js';
import {
  AUDIT_RECORD_VERSION,
  type AuditEntry,
  type AuditRecord,
  auditEntrySchema,
  GENESIS_HASH,
} from './audit-record.js';
import { canonicalJson, computeRecordHash } from './hash-chain.js';
import { type AuditSink, createStderrSink, openFileSink } from './sinks.js';

/** Which sink operation failed, reported to {@link AuditLogOptions.onError}. */
export interface AuditSinkFailure {
  /** `'file'`, `'stderr'` or `'extra:<index>'`. */
  readonly sink: string;
  readonly operation: 'write' | 'flush' | 'close';
  /** For `write`: the record that could not be written (its id and position only). */
  readonly seq?: number | undefined;
  readonly auditId?: string | undefined;
}

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  /**
   * Where records go; at least one is required.
   * - `stderr`: JSON Lines on `stderrStream` (default `process.stderr`, never stdout).
   * - `file`: append-only hash-chained file (see `openFileSink`); the chain continues the file's.
   * - `extra`: additional sinks (e.g. a log shipper), fed the same lines.
   */
  readonly sinks: {
    readonly stderr?: boolean | undefined;
    readonly file?: string | undefined;
    readonly extra?: readonly AuditSink[] | undefined;
  };
  /** Stream for the stderr sink (tests); default `process.stderr`. Ignored unless `sinks.stderr`. */
  readonly stderrStream?: NodeJS.WritableStream | undefined;
  /**
   * Called for every failed sink operation, with the error and what failed. Without it, failures
   * are emitted as process warnings (`HMCP_AUDIT_SINK`). It must not throw (if it does, the throw
   * is turned into a process warning too). Typical use: log it and decide whether to fail closed.
   */
  readonly onError?: ((error: unknown, failure: AuditSinkFailure) => void) | undefined;
  /**
   * When true, once any sink operation has failed, {@link AuditLog.record} throws
   * {@link AuditLogError} `unavailable`, so callers that withhold results when auditing fails
   * (the pipeline does) fail closed. The record whose write failed was already returned. Default
   * false: keep recording and report each failure through `onError`.
   */
  readonly failClosed?: boolean | undefined;
}

/** Why {@link AuditLog.record} refused an entry. */
export type AuditLogErrorCode =
  /** The entry does not match the `AuditEntry` shape (or is not JSON-serializable). */
  | 'invalid_entry'
  /** `close()` was called. */
  | 'closed'
  /** `failClosed` is on and a sink operation failed earlier. */
  | 'unavailable';

/** Error thrown synchronously by {@link AuditLog.record}; `code` is stable, no record content. */
export class AuditLogError extends Error {
  readonly code: AuditLogErrorCode;
  constructor(code: AuditLogErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditLogError';
    this.code = code;
  }
}

interface SinkSlot {
  readonly name: string;
  readonly sink: AuditSink;
  /** Settles when every operation queued on this sink so far has settled (never rejects). */
  tail: Promise<void>;
}

/**
 * The hash-chained audit log. Create it with {@link AuditLog.open}.
 *
 * `record` is synchronous: it validates, stamps and chains the entry immediately (so `seq` order
 * is call order, also for concurrent callers), queues the line on every sink and returns the
 * record. Each sink writes its lines one at a time, in `seq` order. Await {@link AuditLog.flush}
 * or {@link AuditLog.close} before exiting, or queued lines are lost.
 */
export class AuditLog {
  readonly #slots: SinkSlot[];
  readonly #onError: AuditLogOptions['onError'];
  readonly #failClosed: boolean;
  #lastHash: string;
  #nextSeq: number;
  #failure: unknown;
  #failed = false;
  #closing: Promise<void> | undefined;

  private constructor(
    slots: SinkSlot[],
    lastHash: string,
    nextSeq: number,
    options: AuditLogOptions,
  ) {
    this.#slots = slots;
    this.#lastHash = lastHash;
    this.#nextSeq = nextSeq;
    this.#onError = options.onError;
    this.#failClosed = options.failClosed ?? false;
  }

  /**
   * Opens the configured sinks. With a file sink, the chain continues the file's chain (its last
   * record's `hash` and `seq` + 1); otherwise it starts at `seq` 0 with 64 zeros as `prevHash`.
   * The stderr and extra sinks get the same records.
   *
   * @throws StartupError if no sink is configured; `AuditSinkError` or an `fs` error if the file
   *   sink cannot be opened (see `openFileSink`).
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const { sinks } = options;
    const slots: SinkSlot[] = [];
    let lastHash = GENESIS_HASH;
    let nextSeq = 0;
    if (sinks.file !== undefined) {
      const opened = await openFileSink(sinks.file);
      slots.push({ name: 'file', sink: opened.sink, tail: Promise.resolve() });
      lastHash = opened.lastHash;
      nextSeq = opened.nextSeq;
    }
    if (sinks.stderr === true) {
      slots.push({
        name: 'stderr',
        sink: createStderrSink(options.stderrStream),
        tail: Promise.resolve(),
      });
    }
    for (const [i, sink] of (sinks.extra ?? []).entries()) {
      slots.push({ name: `extra:${i}`, sink, tail: Promise.resolve() });
    }
    if (slots.length === 0) {
      throw new StartupError(
        'audit: no sink configured; enable audit.stderr or set audit.file (every call is audited)',
      );
    }
    return new AuditLog(slots, lastHash, nextSeq, options);
  }

  /** `hash` of the last record (or where the chain starts): the next record's `prevHash`. */
  get lastHash(): string {
    return this.#lastHash;
  }

  /** `seq` the next record will get. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** False once any sink operation has failed. */
  get healthy(): boolean {
    return !this.#failed;
  }

  /**
   * Stamps, chains and queues one record on every sink; returns it.
   *
   * Only the fields of {@link AuditEntry} are copied from `entry` (unknown keys are dropped, so
   * nothing unredacted leaks through an extra property); `arguments` is snapshotted as plain JSON
   * data (`toJSON` applied, `undefined` properties dropped), so mutating it afterwards changes
   * nothing. Fields that are `undefined` are omitted from the line and from the hash. Write
   * failures are asynchronous and go to `onError`.
   *
   * @returns The record, exactly as written (`time` is ISO 8601 UTC with ms).
   * @throws AuditLogError `invalid_entry` (bad shape, or `arguments` not JSON-serializable: a
   *   bigint, a cycle, a function; the chain is not advanced), `closed` after
   *   {@link AuditLog.close}, or `unavailable` when `failClosed` is on and a sink has failed.
   */
  record(entry: AuditEntry): AuditRecord {
    if (this.#closing) throw new AuditLogError('closed', 'audit log is closed');
    if (this.#failClosed && this.#failed) {
      throw new AuditLogError('unavailable', 'audit log is unavailable: an audit sink failed', {
        cause: this.#failure,
      });
    }
    const checked = auditEntrySchema.safeParse(entry);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'entry';
      throw new AuditLogError(
        'invalid_entry',
        `invalid audit entry: ${where}: ${issue?.message ?? 'invalid'}`,
      );
    }
    let args: unknown;
    try {
      // Snapshot as plain JSON data: the hash and the line must see the same value, whatever
      // getters, toJSON() or later mutation by the caller would do.
      args = entry.arguments === undefined ? undefined : JSON.parse(canonicalJson(entry.arguments));
    } catch (err) {
      const message = 'invalid audit entry: arguments: not JSON-serializable';
      throw new AuditLogError('invalid_entry', message, { cause: err });
    }
    const unsigned = {
      v: AUDIT_RECORD_VERSION,
      time: new Date().toISOString(),
      auditId: randomUUID(),
      seq: this.#nextSeq,
      prevHash: this.#lastHash,
      server: { name: entry.server.name, version: entry.server.version },
      principal: entry.principal,
      roles: [...entry.roles],
      client: { name: entry.client.name, version: entry.client.version },
      transport: entry.transport,
      tool: entry.tool,
      access: entry.access,
      arguments: args,
      decision: {
        result: entry.decision.result,
        reason: entry.decision.reason,
        approval: entry.decision.approval,
      },
      outcome: entry.outcome,
      durationMs: entry.durationMs,
      rows: entry.rows,
      bytes: entry.bytes,
      truncated: entry.truncated,
      redactions: { ...entry.redactions },
      errorClass: entry.errorClass,
      bearerCredential: entry.bearerCredential && {
        field: entry.bearerCredential.field,
        sha256: entry.bearerCredential.sha256,
      },
      correlationId: entry.correlationId,
    } as const;
    let record: AuditRecord;
    let line: string;
    try {
      const hash = computeRecordHash(unsigned);
      record = { ...unsigned, hash };
      line = canonicalJson(record);
    } catch (err) {
      throw new AuditLogError('invalid_entry', 'invalid audit entry: not JSON-serializable', {
        cause: err,
      });
    }
    this.#nextSeq += 1;
    this.#lastHash = record.hash;
    for (const slot of this.#slots) {
      this.#enqueue(slot, 'write', () => slot.sink.write(line), record);
    }
    return record;
  }

  /**
   * Resolves when every record queued so far has been written (or has failed and been reported)
   * and each sink's `flush` (file: `fdatasync`) has run. Never rejects: failures go to `onError`.
   */
  async flush(): Promise<void> {
    if (this.#closing) return this.#closing;
    for (const slot of this.#slots) {
      this.#enqueue(slot, 'flush', () => slot.sink.flush?.());
    }
    await Promise.all(this.#slots.map((slot) => slot.tail));
  }

  /**
   * Stops accepting records, writes everything queued, then flushes and closes every sink (the
   * stderr stream itself is left open). Idempotent. Never rejects: failures go to `onError`.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const slot of this.#slots) {
        this.#enqueue(slot, 'close', () => slot.sink.close?.());
      }
      await Promise.all(this.#slots.map((slot) => slot.tail));
    })();
    return this.#closing;
  }

  #enqueue(
    slot: SinkSlot,
    operation: AuditSinkFailure['operation'],
    task: () => void | Promise<void>,
    record?: AuditRecord,
  ): void {
    slot.tail = slot.tail.then(task).then(
      () => {},
      (err: unknown) =>
        this.#report(err, {
          sink: slot.name,
          operation,
          seq: record?.seq,
          auditId: record?.auditId,
        }),
    );
  }

  #report(error: unknown, failure: AuditSinkFailure): void {
    if (!this.#failed) {
      this.#failed = true;
      this.#failure = error;
    }
    const onError = this.#onError;
    if (onError) {
      try {
        onError(error, failure);
        return;
      } catch (thrown) {
        warn('onError threw', thrown);
      }
    }
    const at = failure.seq === undefined ? '' : ` (record seq ${failure.seq})`;
    warn(`audit sink "${failure.sink}" ${failure.operation} failed${at}`, error);
  }
}

function warn(message: string, error: unknown): void {
  const code = (error as { code?: unknown } | null)?.code;
  const suffix = typeof code === 'string' ? `: ${code}` : '';
  process.emitWarning(`${message}${suffix}`, { code: 'HMCP_AUDIT_SINK' });
}
