/**
 * A remote audit sink (SIEM): records go through a durable {@link AuditSpool} and are delivered
 * from it in order, in batches, at least once, by a background loop that retries with bounded
 * exponential backoff while the remote end is down.
 *
 * @module
 */

import type { AuditSink } from './sinks.js';
import { type AuditSpool, AuditSpoolFullError } from './spool.js';

/** The wire side of a remote sink: delivers a batch of audit lines or rejects. */
export interface AuditShipper {
  /** Delivers `lines` (canonical JSON audit records, in `seq` order). Rejects on any failure. */
  send(lines: readonly string[]): Promise<void>;
  /** Releases connections. Optional. */
  close?(): Promise<void>;
}

/**
 * `required`: a full spool or a failed spool append rejects the records (calls fail closed).
 * `best-effort`: a full spool drops the records for this sink and counts them.
 */
export type RemoteSinkMode = 'required' | 'best-effort';

/** Delivery state of one remote sink, read by the metrics. */
export interface RemoteSinkStats {
  readonly name: string;
  /** Bytes in the spool waiting for delivery. */
  readonly spoolBytes: number;
  /** Seconds since the oldest undelivered record was stamped (0 when all are delivered). */
  readonly lagSeconds: number;
  readonly delivered: number;
  readonly failures: number;
  readonly dropped: number;
}

/** Options of {@link RemoteAuditSink}. */
export interface RemoteAuditSinkOptions {
  readonly name: string;
  readonly mode: RemoteSinkMode;
  readonly spool: AuditSpool;
  readonly shipper: AuditShipper;
  /** Most records per delivery (default 500). */
  readonly batchRecords?: number | undefined;
  /** Backoff after a failed delivery: first and longest wait, ms (default 200 and 30 000). */
  readonly retryMinMs?: number | undefined;
  readonly retryMaxMs?: number | undefined;
  /** Called for each failed delivery (log it). Must not throw. */
  readonly onError?: ((error: unknown) => void) | undefined;
}

/**
 * An {@link AuditSink} that spools and ships. Give it to `AuditLog` as an extra sink; `close`
 * stops the delivery loop (undelivered records stay in the spool for the next start).
 */
export class RemoteAuditSink implements AuditSink {
  readonly name: string;
  readonly required: boolean;
  readonly #spool: AuditSpool;
  readonly #shipper: AuditShipper;
  readonly #options: RemoteAuditSinkOptions;
  #delivered = 0;
  #failures = 0;
  #dropped = 0;
  #oldestPendingMs: number | undefined;
  #wake: (() => void) | undefined;
  /** True while the loop waits for new records (not while it backs off after a failure). */
  #idle = false;
  #stopped = false;
  readonly #loop: Promise<void>;

  constructor(options: RemoteAuditSinkOptions) {
    this.name = options.name;
    this.required = options.mode === 'required';
    this.#spool = options.spool;
    this.#shipper = options.shipper;
    this.#options = options;
    this.#loop = this.#run();
  }

  /** Current delivery state (see {@link RemoteSinkStats}). */
  stats(): RemoteSinkStats {
    const lag =
      this.#oldestPendingMs === undefined ? 0 : Math.max(0, Date.now() - this.#oldestPendingMs);
    return {
      name: this.name,
      spoolBytes: this.#spool.pendingBytes,
      lagSeconds: lag / 1000,
      delivered: this.#delivered,
      failures: this.#failures,
      dropped: this.#dropped,
    };
  }

  async write(line: string): Promise<void> {
    await this.writeBatch([line]);
  }

  /**
   * Appends the lines to the spool (durably) and wakes the delivery loop.
   *
   * @throws AuditSpoolFullError or the spool's `fs` error, only when `required` (a best-effort
   *   sink drops its copy and counts it instead).
   */
  async writeBatch(lines: readonly string[]): Promise<void> {
    try {
      await this.#spool.append(lines);
    } catch (err) {
      if (!this.required) {
        // best-effort: this sink's copy is dropped and counted; the call is not refused.
        this.#dropped += lines.length;
        if (!(err instanceof AuditSpoolFullError)) this.#report(err);
        return;
      }
      throw err;
    }
    if (this.#idle) this.#wake?.();
  }

  /** Stops delivering after the batch in flight; closes the spool and the shipper. */
  async close(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    await this.#spool.close();
    await this.#shipper.close?.();
  }

  /** Resolves once every spooled record was delivered (tests, shutdown with a deadline). */
  async drained(pollMs = 20): Promise<void> {
    while (this.#spool.pendingBytes > 0 && !this.#stopped) {
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  async #run(): Promise<void> {
    const min = this.#options.retryMinMs ?? 200;
    const max = this.#options.retryMaxMs ?? 30_000;
    let backoff = min;
    while (!this.#stopped) {
      let batch: Awaited<ReturnType<AuditSpool['read']>>;
      try {
        batch = await this.#spool.read(this.#options.batchRecords ?? 500);
      } catch (err) {
        this.#report(err);
        await this.#sleep(backoff);
        continue;
      }
      if (batch.lines.length === 0) {
        this.#oldestPendingMs = undefined;
        this.#idle = true;
        await this.#sleep(1_000);
        this.#idle = false;
        continue;
      }
      this.#oldestPendingMs = timeOf(batch.lines[0] as string);
      try {
        await this.#shipper.send(batch.lines);
        await this.#spool.ack(batch.next);
        this.#delivered += batch.lines.length;
        backoff = min;
      } catch (err) {
        this.#failures += 1;
        this.#report(err);
        await this.#sleep(backoff);
        backoff = Math.min(max, backoff * 2);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref?.();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }

  #report(err: unknown): void {
    try {
      this.#options.onError?.(err);
    } catch {
      // must not throw
    }
  }
}

function timeOf(line: string): number | undefined {
  const m = /"time":"([^"]+)"/.exec(line);
  const t = m ? Date.parse(m[1] as string) : Number.NaN;
  return Number.isNaN(t) ? undefined : t;
}
