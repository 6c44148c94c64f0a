/**
 * The append-only audit file: opened with a torn tail repaired, appended in whole batches that
 * are cut back on failure, synced, and watched for being deleted, replaced or truncated.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, fstatSync, lstatSync } from 'node:fs';
import { type FileHandle, open, rename } from 'node:fs/promises';
import { auditRecordSchema, GENESIS_HASH } from './audit-record.js';
import { computeRecordHash } from './hash-chain.js';
import { AuditSinkError, MAX_AUDIT_LINE_BYTES } from './sinks.js';

const TAIL_CHUNK_BYTES = 64 * 1024;

/** A torn last line cut off when the file was opened (left by a crash mid-write). */
export interface TruncatedTail {
  /** Bytes cut off (the partial line, without a newline). */
  readonly bytes: number;
  /** Hex SHA-256 of the bytes cut off (evidence; the bytes themselves are not kept). */
  readonly sha256: string;
}

/** How the file at the audit path no longer matches the one being appended to. */
export type AuditFileChange =
  /** No file at the path, or the open file has no links left. */
  | 'deleted'
  /** The path names another file (different device or inode). */
  | 'replaced'
  /** The file is shorter than what was written to it. */
  | 'truncated'
  /** The file is longer than what was written to it (another writer). */
  | 'extended';

/**
 * An open audit file. One writer per file: two processes appending to the same file would fork
 * the chain.
 */
export class AuditFile {
  readonly path: string;
  readonly #handle: FileHandle;
  readonly #dev: number;
  readonly #ino: number;
  #size: number;
  #broken: unknown;
  #closed: Promise<void> | undefined;

  private constructor(path: string, handle: FileHandle, dev: number, ino: number, size: number) {
    this.path = path;
    this.#handle = handle;
    this.#dev = dev;
    this.#ino = ino;
    this.#size = size;
  }

  /**
   * Opens (creating if needed) the audit file and reads where its chain left off.
   *
   * - Opened `O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW`, mode 0600; a symbolic link (`symlink`)
   *   or anything but a regular file (`not_regular_file`) is refused; looser permissions are
   *   tightened with `fchmod` (`insecure_permissions` if that fails).
   * - A last line without its final newline (a crash between `write(2)` calls, or a full disk
   *   in an older version) is cut off (`ftruncate` + `fdatasync`) and reported as
   *   `truncatedTail`, so the caller records the truncation as an audit event. The complete
   *   line before it must then be a v1 record matching its own hash; otherwise the open is
   *   refused (`unparseable_tail`, `tail_hash_mismatch`, `tail_too_long`): that is an edit,
   *   not a crash, and is never repaired automatically.
   *
   * @returns The file, the chain head (`lastHash`, `nextSeq`), and `truncatedTail` if one was cut.
   * @throws AuditSinkError (codes above), or the `fs` error (`ENOENT` for a missing directory,
   *   `EACCES`, …).
   */
  static async open(path: string): Promise<{
    file: AuditFile;
    lastHash: string;
    nextSeq: number;
    truncatedTail?: TruncatedTail | undefined;
  }> {
    const flags =
      fsConstants.O_RDWR |
      fsConstants.O_APPEND |
      fsConstants.O_CREAT |
      (fsConstants.O_NOFOLLOW ?? 0);
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
      let size = stat.size;
      const truncatedTail = await cutTornTail(handle, size, path);
      if (truncatedTail) size -= truncatedTail.bytes;
      const { lastHash, nextSeq } = await readChainTail(handle, size, path);
      const file = new AuditFile(path, handle, stat.dev, stat.ino, size);
      return { file, lastHash, nextSeq, truncatedTail };
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }

  /** Bytes of complete records in the file, as this writer knows it. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends `data` (whole lines) with `write(2)` on the `O_APPEND` descriptor and, when `sync`,
   * `fdatasync`s it. On any failure (e.g. `ENOSPC` after a partial write, `EIO` from the sync)
   * the file is cut back with `ftruncate` to its size before the call, so it never ends in a
   * torn line, and the error is rethrown; the next append may succeed (self-resuming). If the
   * cut-back itself fails the file is unusable (`cut_back_failed` from then on).
   *
   * @throws the `fs` error, or AuditSinkError `cut_back_failed` / `sink_closed`.
   */
  async append(data: Buffer, sync: boolean): Promise<void> {
    if (this.#closed) throw new AuditSinkError('sink_closed', 'audit file is closed');
    if (this.#broken !== undefined) {
      throw new AuditSinkError('cut_back_failed', 'the audit file could not be cut back', {
        cause: this.#broken,
      });
    }
    const before = this.#size;
    try {
      let offset = 0;
      while (offset < data.length) {
        // position null + O_APPEND: each write lands at the current end of the file.
        const { bytesWritten } = await this.#handle.write(data, offset, data.length - offset, null);
        offset += bytesWritten;
      }
      if (sync) await this.#handle.datasync();
      this.#size = before + data.length;
    } catch (err) {
      try {
        await this.#handle.truncate(before);
      } catch (cutErr) {
        this.#broken = cutErr;
        throw err;
      }
      // Best effort: the next successful append's fdatasync persists the new size anyway.
      await this.#handle.datasync().catch(() => {});
      throw err;
    }
  }

  /**
   * Checks that the path still names this file with exactly the bytes written to it (`fstat`
   * of the descriptor and `lstat` of the path: two system calls).
   *
   * Both are synchronous: metadata of an open, recently written local file comes from the inode
   * and dentry caches in about a microsecond, while each `fs/promises` call is a round trip
   * through libuv's thread pool (a handoff and a wakeup each way), paid per commit (issue 14:
   * ~6% of the HTTP server's CPU per call). Same checks, same answers, in the same order.
   *
   * @returns `undefined` when unchanged, else how it changed.
   * @throws the `fstat` error, or an `lstat` error other than `ENOENT` (as a rejection).
   */
  async change(): Promise<AuditFileChange | undefined> {
    const own = fstatSync(this.#handle.fd);
    if (own.nlink === 0) return 'deleted';
    let named: ReturnType<typeof lstatSync>;
    try {
      named = lstatSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'deleted';
      throw err;
    }
    if (named.dev !== this.#dev || named.ino !== this.#ino) return 'replaced';
    if (own.size < this.#size) return 'truncated';
    if (own.size > this.#size) return 'extended';
    return undefined;
  }

  /**
   * Moves whatever is now at the path aside to `<path>.displaced-<ISO time>` (evidence is never
   * deleted) and closes this file.
   *
   * @returns The path it was moved to, or `undefined` if nothing was at the path.
   */
  async displace(): Promise<string | undefined> {
    await this.close();
    const aside = `${this.path}.displaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    try {
      await rename(this.path, aside);
      return aside;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** `fdatasync`s (unless broken) and closes the descriptor. Idempotent; never rejects. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        if (this.#broken === undefined) await this.#handle.datasync();
      } catch {
        // nothing more can be done; the records were synced when appended
      } finally {
        await this.#handle.close().catch(() => {});
      }
    })();
    return this.#closed;
  }
}

/** Cuts a last line that lacks its newline; returns what was cut. */
async function cutTornTail(
  handle: FileHandle,
  size: number,
  path: string,
): Promise<TruncatedTail | undefined> {
  if (size === 0) return undefined;
  const last = Buffer.alloc(1);
  await readExactly(handle, last, size - 1);
  if (last[0] === 0x0a) return undefined;
  // Find the last newline; the torn piece after it is at most one line long.
  const hash = createHash('sha256');
  const pieces: Buffer[] = [];
  let end = size;
  let cutFrom = 0;
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK_BYTES);
    const chunk = Buffer.alloc(end - start);
    await readExactly(handle, chunk, start);
    const nl = chunk.lastIndexOf(0x0a);
    if (nl !== -1) {
      pieces.unshift(chunk.subarray(nl + 1));
      cutFrom = start + nl + 1;
      break;
    }
    pieces.unshift(chunk);
    if (size - start > MAX_AUDIT_LINE_BYTES) {
      throw new AuditSinkError(
        'tail_too_long',
        `audit file ${path}: torn last line is longer than ${MAX_AUDIT_LINE_BYTES} bytes; ` +
          'refusing to cut it. Verify it with `hardened-mcp-audit verify`',
      );
    }
    end = start;
  }
  for (const piece of pieces) hash.update(piece);
  await handle.truncate(cutFrom);
  await handle.datasync();
  return { bytes: size - cutFrom, sha256: hash.digest('hex') };
}

/** Reads and checks the last record of the file, returning where its chain continues. */
async function readChainTail(
  handle: FileHandle,
  size: number,
  path: string,
): Promise<{ lastHash: string; nextSeq: number }> {
  if (size === 0) return { lastHash: GENESIS_HASH, nextSeq: 0 };
  // The byte at size - 1 is a newline (checked or cut back to by cutTornTail).
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
