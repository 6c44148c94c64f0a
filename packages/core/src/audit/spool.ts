/**
 * The durable on-disk spool between the pipeline and one remote audit sink: records are appended
 * (and synced) before the call answers, and delivered from it in order, at least once, by
 * {@link RemoteAuditSink}. Bounded: a full spool refuses appends.
 *
 * Layout of the spool directory (mode 0700, one per remote sink, one writer):
 * `seg-<16 digits>.jsonl` segments of whole lines (the last one is appended to), and `cursor.json`
 * `{ "segment": n, "offset": bytes }`, the first byte not yet delivered (replaced atomically by
 * write + fsync + rename). Delivered segments are deleted.
 *
 * @module
 */
import { constants as fsConstants } from 'node:fs';
import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
} from 'node:fs/promises';
import { join } from 'node:path';

/** Error of {@link AuditSpool.append} when the spool cannot take the lines. */
export class AuditSpoolFullError extends Error {
  readonly code = 'spool_full';
  constructor(message: string) {
    super(message);
    this.name = 'AuditSpoolFullError';
  }
}

/** Where delivery stands: segment number and byte offset in it. */
export interface AuditSpoolPosition {
  readonly segment: number;
  readonly offset: number;
}

/** Options of {@link AuditSpool.open}. */
export interface AuditSpoolOptions {
  /** Most bytes waiting for delivery (default 64 MiB). */
  readonly maxBytes?: number | undefined;
  /** A segment is closed and a new one started past this size (default 4 MiB). */
  readonly segmentBytes?: number | undefined;
}

const SEGMENT = /^seg-(\d{16})\.jsonl$/;
const segName = (n: number) => `seg-${String(n).padStart(16, '0')}.jsonl`;

/** A spool directory. See the module documentation for its layout. */
export class AuditSpool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly #segmentBytes: number;
  #cursor: AuditSpoolPosition;
  /** Segment number → size in bytes, for every segment still on disk. */
  readonly #sizes: Map<number, number>;
  #active: { n: number; handle: FileHandle } | undefined;
  #closed = false;

  private constructor(
    dir: string,
    cursor: AuditSpoolPosition,
    sizes: Map<number, number>,
    options: AuditSpoolOptions,
  ) {
    this.dir = dir;
    this.#cursor = cursor;
    this.#sizes = sizes;
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.#segmentBytes = options.segmentBytes ?? 4 * 1024 * 1024;
  }

  /**
   * Opens (creating with mode 0700) the spool at `dir`. A torn last line in the newest segment
   * (a crash mid-append) is cut off; those records were never acknowledged to a caller.
   *
   * @throws the `fs` error if the directory cannot be created or read.
   */
  static async open(dir: string, options: AuditSpoolOptions = {}): Promise<AuditSpool> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const sizes = new Map<number, number>();
    for (const name of await readdir(dir)) {
      const m = SEGMENT.exec(name);
      if (m) sizes.set(Number(m[1]), (await stat(join(dir, name))).size);
    }
    let cursor: AuditSpoolPosition = { segment: 0, offset: 0 };
    try {
      const parsed = JSON.parse(await readFile(join(dir, 'cursor.json'), 'utf8')) as unknown;
      const c = parsed as Partial<AuditSpoolPosition>;
      if (Number.isSafeInteger(c.segment) && Number.isSafeInteger(c.offset)) {
        cursor = { segment: c.segment as number, offset: c.offset as number };
      }
    } catch {
      // no cursor yet: deliver from the oldest segment
      const first = [...sizes.keys()].sort((a, b) => a - b)[0];
      if (first !== undefined) cursor = { segment: first, offset: 0 };
    }
    const spool = new AuditSpool(dir, cursor, sizes, options);
    await spool.#repairNewest();
    return spool;
  }

  /** Bytes appended and not yet delivered. */
  get pendingBytes(): number {
    let total = 0;
    for (const [n, size] of this.#sizes) {
      if (n < this.#cursor.segment) continue;
      total += n === this.#cursor.segment ? Math.max(0, size - this.#cursor.offset) : size;
    }
    return total;
  }

  /** True when `bytes` more would fit under `maxBytes`. */
  canTake(bytes: number): boolean {
    return this.pendingBytes + bytes <= this.maxBytes;
  }

  /**
   * Appends whole lines (each without a terminator) and `fdatasync`s them. On failure the
   * segment is cut back to its size before the call (no torn line) and the error rethrown.
   *
   * @throws AuditSpoolFullError when the lines do not fit under `maxBytes` (nothing written);
   *   the `fs` error otherwise.
   */
  async append(lines: readonly string[]): Promise<void> {
    if (this.#closed) throw new Error('audit spool is closed');
    const data = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    if (!this.canTake(data.length)) {
      throw new AuditSpoolFullError(
        `audit spool ${this.dir} is full (${this.pendingBytes} of ${this.maxBytes} bytes pending)`,
      );
    }
    const active = await this.#activeSegment(data.length);
    const before = this.#sizes.get(active.n) ?? 0;
    try {
      let offset = 0;
      while (offset < data.length) {
        const { bytesWritten } = await active.handle.write(
          data,
          offset,
          data.length - offset,
          null,
        );
        offset += bytesWritten;
      }
      await active.handle.datasync();
      this.#sizes.set(active.n, before + data.length);
    } catch (err) {
      await active.handle.truncate(before).catch(() => {});
      throw err;
    }
  }

  /**
   * Reads up to `maxLines` undelivered lines (at most about `maxBytes` bytes) from the cursor.
   *
   * @returns The lines and the position after them (pass it to {@link AuditSpool.ack} once they
   *   are delivered); no lines when everything was delivered.
   */
  async read(
    maxLines: number,
    maxBytes = 1024 * 1024,
  ): Promise<{ lines: string[]; next: AuditSpoolPosition }> {
    let { segment, offset } = this.#cursor;
    const lines: string[] = [];
    let bytes = 0;
    const segments = [...this.#sizes.keys()].filter((n) => n >= segment).sort((a, b) => a - b);
    for (const n of segments) {
      if (n > segment) {
        if (lines.length > 0 && offset < (this.#sizes.get(segment) ?? 0)) break;
        segment = n;
        offset = 0;
      }
      const size = this.#sizes.get(n) ?? 0;
      if (offset >= size) continue;
      const handle = await open(join(this.dir, segName(n)), 'r');
      try {
        const length = Math.min(size - offset, Math.max(64 * 1024, maxBytes - bytes));
        const buf = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buf, 0, length, offset);
        let start = 0;
        for (;;) {
          const nl = buf.indexOf(0x0a, start);
          if (nl === -1 || nl >= bytesRead) break;
          lines.push(buf.subarray(start, nl).toString('utf8'));
          bytes += nl + 1 - start;
          start = nl + 1;
          if (lines.length >= maxLines || bytes >= maxBytes) break;
        }
        offset += start;
      } finally {
        await handle.close();
      }
      if (lines.length >= maxLines || bytes >= maxBytes) break;
    }
    return { lines, next: { segment, offset } };
  }

  /**
   * Records that everything before `next` was delivered (atomic cursor replace), and deletes
   * segments that are fully delivered and no longer appended to.
   */
  async ack(next: AuditSpoolPosition): Promise<void> {
    const tmp = join(this.dir, 'cursor.json.tmp');
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify(next));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, join(this.dir, 'cursor.json'));
    this.#cursor = next;
    for (const n of [...this.#sizes.keys()]) {
      if (n < next.segment && n !== this.#active?.n) {
        await rm(join(this.dir, segName(n)), { force: true });
        this.#sizes.delete(n);
      }
    }
  }

  /** Closes the segment being appended to. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#active?.handle.close().catch(() => {});
    this.#active = undefined;
  }

  async #activeSegment(incoming: number): Promise<{ n: number; handle: FileHandle }> {
    const newest = Math.max(-1, ...this.#sizes.keys());
    let n = newest === -1 ? Math.max(1, this.#cursor.segment) : newest;
    if (
      (this.#sizes.get(n) ?? 0) + incoming > this.#segmentBytes &&
      (this.#sizes.get(n) ?? 0) > 0
    ) {
      n += 1;
    }
    if (this.#active?.n === n) return this.#active;
    await this.#active?.handle.close().catch(() => {});
    const flags =
      fsConstants.O_WRONLY |
      fsConstants.O_APPEND |
      fsConstants.O_CREAT |
      (fsConstants.O_NOFOLLOW ?? 0);
    const handle = await open(join(this.dir, segName(n)), flags, 0o600);
    if (!this.#sizes.has(n)) this.#sizes.set(n, (await handle.stat()).size);
    this.#active = { n, handle };
    return this.#active;
  }

  async #repairNewest(): Promise<void> {
    const newest = Math.max(-1, ...this.#sizes.keys());
    if (newest === -1) return;
    const size = this.#sizes.get(newest) ?? 0;
    if (size === 0) return;
    const handle = await open(join(this.dir, segName(newest)), 'r+');
    try {
      const tail = Buffer.alloc(Math.min(size, 64 * 1024 * 1024));
      await handle.read(tail, 0, tail.length, size - tail.length);
      if (tail[tail.length - 1] === 0x0a) return;
      const nl = tail.lastIndexOf(0x0a);
      const keep = nl === -1 ? size - tail.length : size - tail.length + nl + 1;
      await handle.truncate(keep);
      await handle.datasync();
      this.#sizes.set(newest, keep);
    } finally {
      await handle.close();
    }
  }
}
