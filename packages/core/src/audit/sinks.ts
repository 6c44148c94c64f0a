/**
 * Where audit lines go: stderr (never stdout — on stdio MCP, stdout is the protocol) and an
 * append-only, hash-chained JSON Lines file.
 *
 * @module
 */
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { StartupError } from '../errors.js';
import { auditRecordSchema, GENESIS_HASH } from './audit-record.js';
import { computeRecordHash } from './hash-chain.js';

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
}

/** Why a sink refused to open or to write. */
export type AuditSinkErrorCode =
  /** The audit path is a symbolic link (opened with `O_NOFOLLOW`). */
  | 'symlink'
  /** The audit path is not a regular file (directory, FIFO, device, …). */
  | 'not_regular_file'
  /** The existing file's permissions are looser than 0600 and could not be tightened. */
  | 'insecure_permissions'
  /** The existing file does not end with a newline: its last line is torn or was edited. */
  | 'torn_tail'
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
  /** An earlier write to this file failed; nothing more is appended (the file may end torn). */
  | 'sink_failed'
  /** The stream was not writable. */
  | 'stream_not_writable';

/**
 * Error thrown by {@link openFileSink} (a {@link StartupError}: one operator-facing line, the path
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

/** Longest last line {@link openFileSink} reads back to continue a chain: 16 MiB. */
export const MAX_AUDIT_LINE_BYTES = 16 * 1024 * 1024;

const TAIL_CHUNK_BYTES = 64 * 1024;

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
  return {
    write(line: string): Promise<void> {
      checkLine(line);
      if (!stream.writable) {
        return Promise.reject(
          new AuditSinkError('stream_not_writable', 'audit stream is not writable'),
        );
      }
      const done = new Promise<void>((resolve, reject) => {
        stream.write(`${line}\n`, (err?: Error | null) => (err ? reject(err) : resolve()));
      });
      pending = done.catch(() => {});
      return done;
    },
    async flush(): Promise<void> {
      await pending;
    },
    async close(): Promise<void> {
      await pending;
    },
  };
}

/** What {@link openFileSink} returns: the sink and where the file's chain left off. */
export interface OpenedFileSink {
  readonly sink: AuditSink;
  /** `hash` of the file's last record, or {@link GENESIS_HASH} for a new / empty file. */
  readonly lastHash: string;
  /** `seq` for the next record: last record's `seq` + 1, or 0 for a new / empty file. */
  readonly nextSeq: number;
}

/**
 * Opens (creating if needed) an append-only audit file and reads where its chain left off.
 *
 * - The file is opened with `O_APPEND | O_CREAT | O_NOFOLLOW` and mode 0600. A symbolic link at
 *   `path` is refused (`symlink`), as is anything but a regular file (`not_regular_file`).
 * - Permissions: an existing file with any mode other than 0600 is **tightened** to 0600 with
 *   `fchmod` (so a file created under a loose umask or copied around is fixed rather than taking
 *   the server down); if that fails (e.g. the file belongs to another user) the open is refused
 *   (`insecure_permissions`).
 * - Chain continuation: the last line is read back from the end of the file (not the whole file)
 *   and must be a complete (newline-terminated) v1 record whose `hash` matches its content;
 *   otherwise the open is refused (`torn_tail`, `unparseable_tail`, `tail_hash_mismatch`,
 *   `tail_too_long`) rather than silently starting a new chain. Repair by hand: run
 *   `hardened-mcp-audit verify`, then move the file aside or cut the torn tail. Only the tail is
 *   checked here; use `verifyAuditFile` for the whole file.
 * - Writes: one `write(2)` per line on the `O_APPEND` descriptor, strictly sequential, so lines
 *   never interleave and file order equals call order. A line reaches the kernel (survives a
 *   process crash) when `write` resolves; `flush()` and `close()` also `fdatasync` (survive a
 *   power loss). After a failed write the sink refuses further writes (`sink_failed`): the file
 *   may end in a torn line that must not be extended.
 * - One writer per file: two processes appending to the same file would fork the chain.
 *
 * @param path Audit file path.
 * @returns The sink plus `lastHash` / `nextSeq` to continue the chain.
 * @throws AuditSinkError (codes above), or the `fs` error (`ENOENT` for a missing directory,
 *   `EACCES`, …) if the file cannot be opened.
 */
export async function openFileSink(path: string): Promise<OpenedFileSink> {
  const flags =
    fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_CREAT | (fsConstants.O_NOFOLLOW ?? 0);
  let handle: FileHandle;
  try {
    handle = await open(path, flags, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new AuditSinkError('symlink', `audit file ${path} is a symbolic link; refusing it`, {
        cause: err,
      });
    }
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      throw new AuditSinkError('not_regular_file', `audit file ${path} is not a regular file`);
    }
    if ((stat.mode & 0o777) !== 0o600) {
      try {
        await handle.chmod(0o600);
      } catch (err) {
        throw new AuditSinkError(
          'insecure_permissions',
          `audit file ${path} has mode ${(stat.mode & 0o777).toString(8)} and cannot be set to 600`,
          { cause: err },
        );
      }
    }
    const { lastHash, nextSeq } = await readChainTail(handle, stat.size, path);
    return { sink: fileSink(handle), lastHash, nextSeq };
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
}

/** Reads and checks the last record of the file, returning where its chain continues. */
async function readChainTail(
  handle: FileHandle,
  size: number,
  path: string,
): Promise<{ lastHash: string; nextSeq: number }> {
  if (size === 0) return { lastHash: GENESIS_HASH, nextSeq: 0 };
  const last = Buffer.alloc(1);
  await readExactly(handle, last, size - 1);
  if (last[0] !== 0x0a) {
    throw new AuditSinkError(
      'torn_tail',
      `audit file ${path} does not end with a newline (torn or edited last line); refusing to ` +
        'append. Verify it with `hardened-mcp-audit verify` and repair it by hand',
    );
  }
  // Walk back from the final newline to the previous one.
  const chunks: Buffer[] = [];
  let end = size - 1;
  let length = 0;
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK_BYTES);
    const chunk = Buffer.alloc(end - start);
    await readExactly(handle, chunk, start);
    const nl = chunk.lastIndexOf(0x0a);
    const piece = nl === -1 ? chunk : chunk.subarray(nl + 1);
    chunks.unshift(piece);
    length += piece.length;
    if (length > MAX_AUDIT_LINE_BYTES) {
      throw new AuditSinkError(
        'tail_too_long',
        `audit file ${path}: last line is longer than ${MAX_AUDIT_LINE_BYTES} bytes`,
      );
    }
    if (nl !== -1) break;
    end = start;
  }
  const line = Buffer.concat(chunks).toString('utf8');
  const unparseable = (why: string) =>
    new AuditSinkError(
      'unparseable_tail',
      `audit file ${path}: last line ${why}; refusing to start a new chain. ` +
        'Verify it with `hardened-mcp-audit verify` and repair it by hand',
    );
  if (line.trim() === '') throw unparseable('is empty');
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw unparseable('is not valid JSON');
  }
  const checked = auditRecordSchema.safeParse(parsed);
  if (!checked.success) throw unparseable('is not a v1 audit record');
  if (computeRecordHash(parsed as object) !== checked.data.hash) {
    throw new AuditSinkError(
      'tail_hash_mismatch',
      `audit file ${path}: last record (seq ${checked.data.seq}) does not match its hash; ` +
        'the file was edited. Verify it with `hardened-mcp-audit verify`',
    );
  }
  return { lastHash: checked.data.hash, nextSeq: checked.data.seq + 1 };
}

async function readExactly(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error('audit file shrank while it was being read');
    done += bytesRead;
  }
}

function fileSink(handle: FileHandle): AuditSink {
  let tail: Promise<void> = Promise.resolve();
  let failure: unknown;
  let closing: Promise<void> | undefined;

  const enqueue = (task: () => Promise<void>): Promise<void> => {
    const run = tail.then(task);
    tail = run.catch(() => {});
    return run;
  };

  return {
    write(line: string): Promise<void> {
      checkLine(line);
      if (closing) {
        return Promise.reject(new AuditSinkError('sink_closed', 'audit file sink is closed'));
      }
      const data = Buffer.from(`${line}\n`, 'utf8');
      return enqueue(async () => {
        if (failure !== undefined) {
          throw new AuditSinkError('sink_failed', 'an earlier audit file write failed', {
            cause: failure,
          });
        }
        try {
          let offset = 0;
          while (offset < data.length) {
            // position null + O_APPEND: each write lands at the current end of the file.
            const { bytesWritten } = await handle.write(data, offset, data.length - offset, null);
            offset += bytesWritten;
          }
        } catch (err) {
          failure = err;
          throw err;
        }
      });
    },
    flush(): Promise<void> {
      if (closing) return closing;
      return enqueue(async () => {
        if (failure === undefined) await handle.datasync();
      });
    },
    close(): Promise<void> {
      closing ??= (async () => {
        await tail;
        try {
          if (failure === undefined) await handle.datasync();
        } finally {
          await handle.close();
        }
      })();
      return closing;
    },
  };
}
