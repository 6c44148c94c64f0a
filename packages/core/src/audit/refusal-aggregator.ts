/**
 * Aggregation of refusals before authentication: an unauthenticated flood must not fill the
 * disk, so such refusals are counted per peer and reason and written as one audit record per
 * interval.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { AuditEntry } from './audit-record.js';

/** Options of {@link createRefusalAggregator}. */
export interface RefusalAggregatorOptions {
  /** Writes an aggregated record (e.g. `entry => audit.record(entry)`); failures go to `onError`. */
  readonly record: (entry: AuditEntry) => Promise<unknown>;
  /** Length of one aggregation interval, ms (default 60 000). */
  readonly intervalMs?: number | undefined;
  /** Most distinct (peer, reason) keys held per interval; more are counted under peer `other`. */
  readonly maxKeys?: number | undefined;
  readonly onError?: ((error: unknown) => void) | undefined;
}

/** See {@link createRefusalAggregator}. */
export interface RefusalAggregator {
  /**
   * Counts one refusal. The first refusal of a (peer, reason) key in an interval is written at
   * once (so a single failed login is visible immediately); the rest are summed and written at
   * the end of the interval as one record whose `arguments` are
   * `{ aggregated: true, peer, count, firstAt, lastAt, sample }`.
   *
   * @param entry The refusal's audit entry (`decision.result` `denied`).
   * @param peer The client's address (or `unknown`).
   */
  add(entry: AuditEntry, peer?: string): void;
  /** Writes the pending counts now and stops the timer. */
  close(): Promise<void>;
}

interface Bucket {
  readonly sample: AuditEntry;
  count: number;
  firstAt: string;
  lastAt: string;
}

/**
 * Creates an aggregator. The timer is unref'd (it never keeps the process alive).
 */
export function createRefusalAggregator(options: RefusalAggregatorOptions): RefusalAggregator {
  const intervalMs = options.intervalMs ?? 60_000;
  const maxKeys = options.maxKeys ?? 1000;
  let buckets = new Map<string, Bucket>();
  let seen = new Set<string>();
  const write = (entry: AuditEntry) => {
    options.record(entry).catch((err: unknown) => options.onError?.(err));
  };
  const flush = () => {
    const done = buckets;
    buckets = new Map();
    seen = new Set();
    const writes: Promise<unknown>[] = [];
    for (const [key, b] of done) {
      if (b.count === 0) continue;
      const peer = key.slice(0, key.indexOf('\n'));
      const args = b.sample.arguments;
      writes.push(
        options
          .record({
            ...b.sample,
            arguments: {
              aggregated: true,
              peer,
              count: b.count,
              firstAt: b.firstAt,
              lastAt: b.lastAt,
              sample: args,
            },
            correlationId: randomUUID(),
          })
          .catch((err: unknown) => options.onError?.(err)),
      );
    }
    return Promise.all(writes);
  };
  const timer = setInterval(() => void flush(), intervalMs);
  timer.unref?.();
  return {
    add(entry, peer = 'unknown') {
      const reason = entry.decision.reason ?? 'denied';
      let key = `${peer}\n${reason}`;
      if (!seen.has(key) && seen.size >= maxKeys) key = `other\n${reason}`;
      const now = new Date().toISOString();
      if (!seen.has(key)) {
        seen.add(key);
        buckets.set(key, { sample: entry, count: 0, firstAt: now, lastAt: now });
        write({
          ...entry,
          arguments: {
            peer: key.slice(0, key.indexOf('\n')),
            first: true,
            sample: entry.arguments,
          },
        });
        return;
      }
      const b = buckets.get(key);
      if (b) {
        b.count += 1;
        b.lastAt = now;
      }
    },
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
