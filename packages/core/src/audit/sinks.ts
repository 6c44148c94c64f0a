/**
 * Where audit lines go besides the file (see `audit-file.ts`): stderr (never stdout — on stdio
 * MCP, stdout is the protocol) and extra sinks.
 *
 * @module
 */
import { StartupError } from '../errors.js';

/**
 * A destination for audit lines.
 *
 * `write` receives one line (canonical JSON, no line terminator; the sink adds `'\n'`). The
 * logger calls `write` for one sink strictly sequentially (the next call only after the previous
 * returned promise settled), so a sink does not need its own queue, although the built-in sinks
 * have one. A rejected `write` is reported through the logger's `onError`.
 */
export interface AuditSink {
  /** Writes one line. Rejects (or throws) if the line could not be written. */
  write(line: string): void | Promise<void>;
  /** Makes previously written lines durable (e.g. `fdatasync`). Optional. */
  flush?(): Promise<void>;
  /** Flushes and releases the sink. Later writes fail. Optional; idempotent for built-in sinks. */
  close?(): Promise<void>;
  /**
   * Writes several lines at once (e.g. one spool append + one sync for a group commit). When
   * present the logger calls it instead of `write`, once per batch. Optional.
   */
  writeBatch?(lines: readonly string[]): Promise<void>;
  /**
   * When true, a failed write always rejects the records (the calls fail closed), whatever the
   * logger's `failClosed`. Set by remote sinks configured `required`.
   */
  readonly required?: boolean | undefined;
  /** Name in failure reports and metrics (default `extra:<index>`). */
  readonly name?: string | undefined;
}

/** Why a sink refused to open or to write. */
export type AuditSinkErrorCode =
  /** The audit path is a symbolic link (opened with `O_NOFOLLOW`). */
  | 'symlink'
  /** The audit path is not a regular file (directory, FIFO, device, …). */
  | 'not_regular_file'
  /** The existing file's permissions are looser than 0600 and could not be tightened. */
  | 'insecure_permissions'
  /** The existing file's last line is empty, not JSON, or not a v1 audit record. */
  | 'unparseable_tail'
  /** The existing file's last record does not match its own hash (it was edited). */
  | 'tail_hash_mismatch'
  /** The existing file's last line exceeds {@link MAX_AUDIT_LINE_BYTES}. */
  | 'tail_too_long'
  /** The line given to `write` contains a line terminator (it would break the framing). */
  | 'invalid_line'
  /** The sink was closed. */
  | 'sink_closed'
  /** A failed append could not be cut back: the file may end torn and is not extended. */
  | 'cut_back_failed'
  /** The stream was not writable. */
  | 'stream_not_writable';

/**
 * Error thrown by `AuditFile.open` (a {@link StartupError}: one operator-facing line, the path
 * but no record content) and by sink writes. `code` is stable.
 */
export class AuditSinkError extends StartupError {
  readonly code: AuditSinkErrorCode;
  constructor(code: AuditSinkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditSinkError';
    this.code = code;
  }
}

/** Longest last line `AuditFile.open` reads back (or cuts as torn) to continue a chain: 16 MiB. */
export const MAX_AUDIT_LINE_BYTES = 16 * 1024 * 1024;

function checkLine(line: string): void {
  if (line.includes('\n') || line.includes('\r')) {
    throw new AuditSinkError('invalid_line', 'audit line contains a line terminator');
  }
}

/**
 * A sink writing each line followed by `'\n'` to `stream` (default `process.stderr`; never pass
 * `process.stdout` of a stdio MCP server). `write` resolves when the stream accepted the chunk
 * (its write callback) and rejects with the stream's error, or with an {@link AuditSinkError}
 * (`invalid_line`, `stream_not_writable`). `close` waits for pending writes but does not end the
 * stream (it is not ours).
 *
 * @param stream Destination stream; must not be ended while the sink is in use.
 */
export function createStderrSink(stream: NodeJS.WritableStream = process.stderr): AuditSink {
  let pending: Promise<void> = Promise.resolve();
  /** Writes checked text plus a newline; resolves on the stream's callback. */
  const put = (text: string): Promise<void> => {
    if (!stream.writable) {
      return Promise.reject(
        new AuditSinkError('stream_not_writable', 'audit stream is not writable'),
      );
    }
    const done = new Promise<void>((resolve, reject) => {
      stream.write(`${text}\n`, (err?: Error | null) => (err ? reject(err) : resolve()));
    });
    pending = done.catch(() => {});
    return done;
  };
  return {
    write(line: string): Promise<void> {
      checkLine(line);
      return put(line);
    },
    /**
     * A group-commit batch as one `write` of all its lines (one system call on a synchronous
     * stderr instead of one per record); the same checks, and all lines fail together.
     */
    writeBatch(lines: readonly string[]): Promise<void> {
      for (const line of lines) checkLine(line);
      return put(lines.join('\n'));
    },
    async flush(): Promise<void> {
      await pending;
    },
    async close(): Promise<void> {
      await pending;
    },
  };
}
