/**
 * The audit logger: stamps each entry (`v`, `time`, `auditId`, `seq`, `prevHash`, `hash`), chains
 * it to the previous record, makes it durable in the file, then writes the same line to stderr
 * and the extra sinks, in `seq` order. `record` resolves only once the record is durable.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { StartupError } from '../errors.js';
import { AuditFile, type AuditFileChange } from './audit-file.js';
import {
  AUDIT_RECORD_VERSION,
  type AuditEntry,
  type AuditRecord,
  auditEntrySchema,
  GENESIS_HASH,
} from './audit-record.js';
import { CHECKPOINT_TOOL, type CheckpointSigner, checkpointMessage } from './checkpoint.js';
import { isAuditEntryShape } from './entry-shape.js';
import { escapeAuditLine } from './line-escape.js';
import { serializeStampedRecord } from './record-line.js';
import { type AuditSink, createStderrSink } from './sinks.js';

/** Which sink operation failed, reported to {@link AuditLogOptions.onError}. */
export interface AuditSinkFailure {
  /** `'file'`, `'stderr'` or `'extra:<index>'`. */
  readonly sink: string;
  readonly operation: 'write' | 'flush' | 'close' | 'check' | 'reopen';
  /** For `write`: the record that could not be written (its id and position only). */
  readonly seq?: number | undefined;
  readonly auditId?: string | undefined;
}

/**
 * When a record counts as durable (the file sink; without a file, when stderr accepted it).
 *
 * - `fsync`: one `write(2)` + `fdatasync(2)` per record, strictly one after another. Safest
 *   and slowest: calls are serialized on the disk's sync latency.
 * - `group` (default): group commit. Records that arrive while a sync is running are written
 *   together with one `write(2)` and covered by one `fdatasync(2)`; each waits at most for the
 *   sync in flight plus its own batch's (plus `groupCommitWindowMs`). Same guarantee per
 *   record (durable before `record` resolves), a fraction of the syncs under concurrency.
 */
export type AuditDurability = 'fsync' | 'group';

/**
 * What to do when the audit file is deleted, replaced or truncated under the server.
 * - `stay_closed` (default): refuse every record (calls fail closed, not ready) until restart.
 * - `reopen`: move whatever is at the path aside (`<path>.displaced-<time>`), create a new file
 *   and write a `audit:chain_continued` record that continues the chain (its `prevHash` is the
 *   last record written before the change).
 */
export type AuditFileChangeAction = 'stay_closed' | 'reopen';

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  /**
   * Where records go; at least one is required.
   * - `file`: append-only hash-chained file, the durable copy (see `AuditFile`).
   * - `stderr`: JSON Lines on `stderrStream` (default `process.stderr`, never stdout).
   * - `extra`: additional sinks (e.g. the spool of a remote sink), fed the same lines after the
   *   file has them.
   */
  readonly sinks: {
    readonly stderr?: boolean | undefined;
    readonly file?: string | undefined;
    readonly extra?: readonly AuditSink[] | undefined;
  };
  /** Stream for the stderr sink (tests); default `process.stderr`. Ignored unless `sinks.stderr`. */
  readonly stderrStream?: NodeJS.WritableStream | undefined;
  /** See {@link AuditDurability}; default `group`. */
  readonly durability?: AuditDurability | undefined;
  /**
   * With `group`: how long (ms, 0–100) the first record of a batch waits for others before the
   * batch is written. Default 0 (batches form only while a sync is in flight).
   */
  readonly groupCommitWindowMs?: number | undefined;
  /** Most records per batch (default 512). */
  readonly maxBatchRecords?: number | undefined;
  /** See {@link AuditFileChangeAction}; default `stay_closed`. */
  readonly onFileChange?: AuditFileChangeAction | undefined;
  /**
   * Signed checkpoints: every `every` records, and at `close`, an `audit:checkpoint` record
   * signing the chain head (see `checkpoint.ts`).
   */
  readonly checkpoint?: { readonly every: number; readonly signer: CheckpointSigner } | undefined;
  /** `server` of the records the log writes about itself (truncation, continuation). */
  readonly server?: { readonly name: string; readonly version: string } | undefined;
  /**
   * Called for every failed sink operation, with the error and what failed. Without it, failures
   * are emitted as process warnings (`HMCP_AUDIT_SINK`). It must not throw (if it does, the throw
   * is turned into a process warning too).
   */
  readonly onError?: ((error: unknown, failure: AuditSinkFailure) => void) | undefined;
  /**
   * When true, a failed write to stderr or an extra sink also rejects the record (the caller
   * withholds the result). A failed file write always rejects, as does a failed stderr write
   * when there is no file. Default false.
   */
  readonly failClosed?: boolean | undefined;
}

/** Why {@link AuditLog.record} refused an entry. */
export type AuditLogErrorCode =
  /** The entry does not match the `AuditEntry` shape (or is not JSON-serializable). */
  | 'invalid_entry'
  /** `close()` was called. */
  | 'closed'
  /** The record could not be made durable (e.g. disk full); the next one is tried afresh. */
  | 'unavailable'
  /** The audit file was deleted, replaced or truncated; see {@link AuditFileChangeAction}. */
  | 'file_changed';

/** Error {@link AuditLog.record} rejects with; `code` is stable, no record content. */
export class AuditLogError extends Error {
  readonly code: AuditLogErrorCode;
  constructor(code: AuditLogErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditLogError';
    this.code = code;
  }
}

/** A record the log writes about itself. */
export type AuditEventTool = 'audit:tail_truncated' | 'audit:chain_continued' | 'audit:checkpoint';

interface Pending {
  /** A checkpoint: its arguments are made when it is stamped (they sign the head then). */
  readonly checkpoint?: true;
  readonly entry: AuditEntry;
  readonly args: unknown;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (err: unknown) => void;
}

interface SinkSlot {
  readonly name: string;
  readonly sink: AuditSink;
}

const DEFAULT_SERVER = { name: 'hardened-mcp', version: '0' } as const;

/**
 * The hash-chained audit log. Create it with {@link AuditLog.open}.
 *
 * `record` validates and snapshots the entry synchronously and queues it; a single writer takes
 * queued entries in call order, stamps and chains them, appends them to the file (cut back on
 * failure), syncs per the durability, and only then advances the chain and resolves. So `seq`
 * order is call order, a failed record never leaves a torn line nor a gap in the chain, and the
 * log resumes by itself when writing works again.
 */
export class AuditLog {
  readonly #options: AuditLogOptions;
  readonly #slots: SinkSlot[];
  readonly #primary: 'file' | 'stderr' | 'extra';
  readonly #durability: AuditDurability;
  readonly #windowMs: number;
  readonly #maxBatch: number;
  #file: AuditFile | undefined;
  #lastHash: string;
  #nextSeq: number;
  #queue: Pending[] = [];
  #draining: Promise<void> | undefined;
  #failed = false;
  #fileChange: AuditFileChange | undefined;
  #closing: Promise<void> | undefined;
  /** Records written since the last checkpoint. */
  #sinceCheckpoint = 0;

  private constructor(
    file: AuditFile | undefined,
    slots: SinkSlot[],
    lastHash: string,
    nextSeq: number,
    options: AuditLogOptions,
  ) {
    this.#file = file;
    this.#slots = slots;
    this.#lastHash = lastHash;
    this.#nextSeq = nextSeq;
    this.#options = options;
    this.#primary = file ? 'file' : options.sinks.stderr === true ? 'stderr' : 'extra';
    this.#durability = options.durability ?? 'group';
    this.#windowMs = Math.min(100, Math.max(0, options.groupCommitWindowMs ?? 0));
    this.#maxBatch = Math.max(1, options.maxBatchRecords ?? 512);
  }

  /**
   * Opens the configured sinks. With a file, the chain continues the file's (its last record's
   * `hash` and `seq` + 1); a torn last line left by a crash is cut off and an
   * `audit:tail_truncated` record (bytes cut and their SHA-256) is written first. Without a file
   * the chain starts at `seq` 0 with 64 zeros as `prevHash`.
   *
   * @throws StartupError if no sink is configured; `AuditSinkError` or an `fs` error if the file
   *   cannot be opened (see `AuditFile.open`); AuditLogError if the truncation record cannot be
   *   written.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const { sinks } = options;
    const slots: SinkSlot[] = [];
    let lastHash = GENESIS_HASH;
    let nextSeq = 0;
    let file: AuditFile | undefined;
    let truncated: { bytes: number; sha256: string } | undefined;
    if (sinks.file !== undefined) {
      const opened = await AuditFile.open(sinks.file);
      file = opened.file;
      lastHash = opened.lastHash;
      nextSeq = opened.nextSeq;
      truncated = opened.truncatedTail;
    }
    if (sinks.stderr === true) {
      slots.push({ name: 'stderr', sink: createStderrSink(options.stderrStream) });
    }
    for (const [i, sink] of (sinks.extra ?? []).entries()) {
      slots.push({ name: sink.name ?? `extra:${i}`, sink });
    }
    if (!file && slots.length === 0) {
      throw new StartupError(
        'audit: no sink configured; enable audit.stderr or set audit.file (every call is audited)',
      );
    }
    const log = new AuditLog(file, slots, lastHash, nextSeq, options);
    if (truncated) {
      await log.record(log.#event('audit:tail_truncated', { ...truncated, reason: 'torn_tail' }));
    }
    return log;
  }

  /** `hash` of the last durable record (or where the chain starts): the next `prevHash`. */
  get lastHash(): string {
    return this.#lastHash;
  }

  /** `seq` the next record will get. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /**
   * False while the last attempt to write failed (until a later record succeeds), and for good
   * once the file changed under a `stay_closed` log or the log was closed. Feed it to readiness.
   */
  get healthy(): boolean {
    return !this.#failed && this.#fileChange === undefined && this.#closing === undefined;
  }

  /**
   * Validates, snapshots and queues one entry; resolves with the record once it is durable
   * (see {@link AuditDurability}) and written to the other sinks.
   *
   * Only the fields of {@link AuditEntry} are copied from `entry` (unknown keys are dropped, so
   * nothing unredacted leaks through an extra property); `arguments` is snapshotted as plain JSON
   * data (`toJSON` applied, `undefined` properties dropped), so mutating it afterwards changes
   * nothing. Fields that are `undefined` are omitted from the line and from the hash. Control,
   * C1, DEL, bidi and zero-width characters are written as `\uXXXX` (see `escapeAuditLine`).
   *
   * @returns The record, exactly as written (`time` is ISO 8601 UTC with ms, when it was
   *   stamped by the writer).
   * @throws AuditLogError (as a rejection) `invalid_entry` (bad shape, or `arguments` not
   *   JSON-serializable; the chain is not advanced), `closed` after {@link AuditLog.close},
   *   `unavailable` when the record could not be made durable (the file was cut back; nothing
   *   of it remains; the chain is not advanced), or `file_changed`.
   */
  record(entry: AuditEntry): Promise<AuditRecord> {
    if (this.#closing) {
      return Promise.reject(new AuditLogError('closed', 'audit log is closed'));
    }
    // The hand-written check accepts only what the schema accepts; anything else (and every
    // refusal's wording) is left to the schema.
    const checked = isAuditEntryShape(entry) ? undefined : auditEntrySchema.safeParse(entry);
    if (checked && !checked.success) {
      const issue = checked.error.issues[0];
      const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'entry';
      return Promise.reject(
        new AuditLogError(
          'invalid_entry',
          `invalid audit entry: ${where}: ${issue?.message ?? 'invalid'}`,
        ),
      );
    }
    let args: unknown;
    try {
      // Snapshot as plain JSON data: the hash and the line must see the same value, whatever
      // getters, toJSON() or later mutation by the caller would do.
      // (JSON.stringify reads and drops exactly what canonicalJson would; key order does not
      // matter here, the record is serialized canonically when stamped)
      args =
        entry.arguments === undefined ? undefined : JSON.parse(JSON.stringify(entry.arguments));
    } catch (err) {
      const message = 'invalid audit entry: arguments: not JSON-serializable';
      return Promise.reject(new AuditLogError('invalid_entry', message, { cause: err }));
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#queue.push({ entry, args, resolve, reject });
      this.#draining ??= this.#drain();
    });
  }

  /**
   * Resolves when every record queued so far has been settled (durable, or rejected). Never
   * rejects.
   */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /**
   * Stops accepting records, settles everything queued, then syncs and closes the file and every
   * sink (the stderr stream itself is left open). Idempotent. Never rejects: failures go to
   * `onError`.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.flush();
      if (this.#options.checkpoint && this.#sinceCheckpoint > 0) {
        await this.#writeCheckpoint().catch(() => {});
      }
      await this.#file?.close();
      for (const slot of this.#slots) {
        try {
          await slot.sink.close?.();
        } catch (err) {
          this.#report(err, { sink: slot.name, operation: 'close' });
        }
      }
    })();
    return this.#closing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        if (this.#durability === 'group' && this.#windowMs > 0) {
          if (this.#queue.length < this.#maxBatch) {
            await new Promise((r) => setTimeout(r, this.#windowMs));
          }
        }
        const size = this.#durability === 'fsync' ? 1 : this.#maxBatch;
        const batch = this.#queue.splice(0, size);
        await this.#commit(batch);
        const every = this.#options.checkpoint?.every;
        if (every !== undefined && this.#sinceCheckpoint >= every) {
          await this.#commit([
            this.#checkpointPending(
              () => {},
              () => {},
            ),
          ]);
        }
      }
    } finally {
      this.#draining = undefined;
    }
  }

  /** Stamps, writes and syncs one batch; settles every pending entry of it. */
  async #commit(batch: Pending[]): Promise<void> {
    // 1. The file must still be the one we append to.
    if (this.#file && this.#fileChange === undefined) {
      let change: AuditFileChange | undefined;
      try {
        change = await this.#file.change();
      } catch (err) {
        this.#report(err, { sink: 'file', operation: 'check' });
        change = 'deleted';
      }
      if (change) {
        this.#failed = true;
        const refusal = await this.#onChange(change);
        for (const p of batch) p.reject(refusal);
        return;
      }
    }
    if (this.#fileChange !== undefined) {
      const err = new AuditLogError(
        'file_changed',
        `audit file was ${this.#fileChange} under the server; records are refused until restart`,
      );
      for (const p of batch) p.reject(err);
      return;
    }
    // 2. Stamp the batch against the current head (not advanced until durable).
    const records: AuditRecord[] = [];
    const owners: Pending[] = [];
    const lines: string[] = [];
    let prevHash = this.#lastHash;
    let seq = this.#nextSeq;
    for (const p of batch) {
      try {
        const args = p.checkpoint ? this.#checkpointArgs(seq - 1, prevHash) : p.args;
        const { record, line } = this.#stamp(p.entry, args, seq, prevHash);
        lines.push(escapeAuditLine(line));
        records.push(record);
        owners.push(p);
        prevHash = record.hash;
        seq += 1;
      } catch (err) {
        p.reject(
          new AuditLogError('invalid_entry', 'invalid audit entry: not JSON-serializable', {
            cause: err,
          }),
        );
      }
    }
    if (records.length === 0) return;
    // 3. Durable copy first.
    if (this.#file) {
      try {
        await this.#file.append(Buffer.from(`${lines.join('\n')}\n`, 'utf8'), true);
      } catch (err) {
        this.#failed = true;
        this.#report(err, { sink: 'file', operation: 'write', seq: records[0]?.seq });
        const code = (err as { code?: unknown }).code;
        const why = typeof code === 'string' ? `: ${code}` : '';
        const refusal = new AuditLogError(
          'unavailable',
          `audit record could not be made durable${why}`,
          { cause: err },
        );
        for (const p of owners) p.reject(refusal);
        return;
      }
    }
    // 4. Then the other sinks, in seq order.
    let failure: unknown;
    for (const slot of this.#slots) {
      const mustHold =
        this.#options.failClosed === true ||
        this.#primary !== 'file' ||
        slot.sink.required === true;
      if (slot.sink.writeBatch) {
        try {
          await slot.sink.writeBatch(lines);
        } catch (err) {
          this.#report(err, { sink: slot.name, operation: 'write', seq: records[0]?.seq });
          if (mustHold) failure ??= err;
        }
        continue;
      }
      for (const [i, line] of lines.entries()) {
        try {
          await slot.sink.write(line);
        } catch (err) {
          const record = records[i];
          this.#report(err, {
            sink: slot.name,
            operation: 'write',
            seq: record?.seq,
            auditId: record?.auditId,
          });
          if (mustHold) failure ??= err;
        }
      }
      if (!this.#file && this.#durability === 'fsync') {
        try {
          await slot.sink.flush?.();
        } catch (err) {
          this.#report(err, { sink: slot.name, operation: 'flush' });
          failure ??= err;
        }
      }
    }
    // The lines may have left the process: the chain advances whatever happened next.
    this.#lastHash = prevHash;
    this.#nextSeq = seq;
    if (failure !== undefined) {
      this.#failed = true;
      const refusal = new AuditLogError('unavailable', 'an audit sink failed', { cause: failure });
      for (const p of owners) p.reject(refusal);
      return;
    }
    this.#failed = false;
    this.#sinceCheckpoint = owners.some((p) => p.checkpoint)
      ? 0
      : this.#sinceCheckpoint + owners.length;
    for (const [i, p] of owners.entries()) p.resolve(records[i] as AuditRecord);
  }

  /**
   * Handles a changed file per {@link AuditFileChangeAction}; returns the refusal for the batch
   * that found it (that batch is never written: the calls behind it fail closed).
   */
  async #onChange(change: AuditFileChange): Promise<AuditLogError> {
    const file = this.#file as AuditFile;
    this.#report(new AuditLogError('file_changed', `audit file ${change}`), {
      sink: 'file',
      operation: 'check',
    });
    if ((this.#options.onFileChange ?? 'stay_closed') === 'stay_closed') {
      this.#fileChange = change;
      await file.close();
      return new AuditLogError(
        'file_changed',
        `audit file was ${change} under the server; records are refused until restart`,
      );
    }
    try {
      const aside = await file.displace();
      const opened = await AuditFile.open(file.path);
      this.#file = opened.file;
      const event = this.#event('audit:chain_continued', {
        reason: change,
        displacedTo: aside ?? null,
        previousSeq: this.#nextSeq - 1,
      });
      const stamped = this.#stamp(event, event.arguments, this.#nextSeq, this.#lastHash);
      const record = stamped.record;
      const line = escapeAuditLine(stamped.line);
      await opened.file.append(Buffer.from(`${line}\n`, 'utf8'), true);
      this.#lastHash = record.hash;
      this.#nextSeq += 1;
      // The configured action is done: the log is writable again (the continuation is durable).
      this.#failed = false;
      for (const slot of this.#slots) {
        try {
          await slot.sink.write(line);
        } catch (err) {
          this.#report(err, { sink: slot.name, operation: 'write', seq: record.seq });
        }
      }
      return new AuditLogError(
        'file_changed',
        `audit file was ${change} under the server; a new file continues the chain`,
      );
    } catch (err) {
      this.#report(err, { sink: 'file', operation: 'reopen' });
      this.#fileChange = change;
      return new AuditLogError(
        'file_changed',
        `audit file was ${change} and could not be reopened; records are refused until restart`,
        { cause: err },
      );
    }
  }

  /** Writes a checkpoint now (the queue is drained first); resolves with its record. */
  #writeCheckpoint(): Promise<AuditRecord> {
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#queue.push(this.#checkpointPending(resolve, reject));
      this.#draining ??= this.#drain();
    });
  }

  #checkpointPending(
    resolve: (record: AuditRecord) => void,
    reject: (err: unknown) => void,
  ): Pending {
    return {
      checkpoint: true,
      entry: this.#event(CHECKPOINT_TOOL, {}),
      args: {},
      resolve,
      reject,
    };
  }

  #checkpointArgs(headSeq: number, headHash: string): Record<string, unknown> {
    const signer = this.#options.checkpoint?.signer;
    if (!signer) throw new Error('no checkpoint signer');
    return {
      alg: signer.algorithm,
      keyId: signer.keyId,
      seq: headSeq,
      hash: headHash,
      sig: signer.sign(checkpointMessage(headSeq, headHash)).toString('base64'),
    };
  }

  #event(tool: AuditEventTool, args: Record<string, unknown>): AuditEntry {
    return {
      server: this.#options.server ?? DEFAULT_SERVER,
      principal: 'system',
      roles: [],
      client: {},
      transport: 'internal',
      tool,
      access: 'none',
      arguments: args,
      decision: { result: 'allowed' },
      outcome: 'success',
      durationMs: 0,
      redactions: {},
      correlationId: randomUUID(),
    };
  }

  /** The record for `entry` at `seq` after `prevHash`, and its canonical JSON line (unescaped). */
  #stamp(
    entry: AuditEntry,
    args: unknown,
    seq: number,
    prevHash: string,
  ): { record: AuditRecord; line: string } {
    const session = entry.session
      ? {
          mcpSessionId: entry.session.mcpSessionId,
          requestId: entry.session.requestId,
          intent: entry.session.intent,
          client: entry.session.client
            ? { name: entry.session.client.name, version: entry.session.client.version }
            : undefined,
        }
      : undefined;
    const unsigned = {
      v: AUDIT_RECORD_VERSION,
      time: isoNow(),
      auditId: randomUUID(),
      seq,
      prevHash,
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
        policies: entry.decision.policies && [...entry.decision.policies],
      },
      classification: entry.classification && {
        label: entry.classification.label,
        paths: entry.classification.paths && [...entry.classification.paths],
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
      session,
      resultSha256: entry.resultSha256,
      notes: entry.notes && { ...entry.notes },
      // set below: the serializer ignores it, and the record needs no second copy
      hash: '',
    } as const;
    const { hash, line } = serializeStampedRecord(unsigned);
    (unsigned as { hash: string }).hash = hash;
    return { record: unsigned, line };
  }

  #report(error: unknown, failure: AuditSinkFailure): void {
    const onError = this.#options.onError;
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

let lastMs = Number.NaN;
let lastIso = '';
/**
 * `new Date().toISOString()`, formatted once per millisecond (records stamped in the same
 * millisecond share the string; the clock is read each time).
 */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

function warn(message: string, error: unknown): void {
  const code = (error as { code?: unknown } | null)?.code;
  const suffix = typeof code === 'string' ? `: ${code}` : '';
  process.emitWarning(`${message}${suffix}`, { code: 'HMCP_AUDIT_SINK' });
}
