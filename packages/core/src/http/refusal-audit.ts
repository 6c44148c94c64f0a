import type { EdgeRefusal } from '../pipeline.js';

/** The pseudo-tool name of refusals before authentication in the audit trail. */
export const AUTHENTICATE_TOOL = 'http:authenticate';

/** Options of {@link createRefusalAggregator}. */
export interface RefusalAggregatorOptions {
  /** Length of one aggregation interval (`http.unauthenticatedAudit.intervalSeconds`), ms. */
  readonly intervalMs: number;
  /** Distinct (peer, reason) keys tracked per interval; further peers share one `*` key. */
  readonly maxPeers: number;
  /** Records one refusal (the pipeline's `recordRefusal`). */
  readonly record: (refusal: EdgeRefusal) => unknown;
}

/** Aggregates refusals before authentication; see {@link createRefusalAggregator}. */
export interface RefusalAggregator {
  /** Counts one refusal of `peer` (an IP address) for `reason` (an RFC 6750 error or `unauthenticated`). */
  refuse(peer: string, reason: string): void;
  /** Writes the pending aggregates now (shutdown) and stops the timer. */
  close(): void;
}

/**
 * Refusals before authentication, aggregated per peer and interval so that an unauthenticated
 * flood cannot fill the audit disk (issue 13 §3): the first refusal of a (peer, reason) in an
 * interval is recorded at once with `count: 1`; the rest of that interval become one record with
 * their `count` when the interval ends. Memory is bounded: at most `maxPeers` keys per interval;
 * past that, refusals from new peers are counted under the peer `*`.
 *
 * Each record is a denied call of the pseudo-tool `http:authenticate` by principal
 * `unauthenticated`, with `arguments: { peer, count, intervalMs }`, written by the pipeline's
 * recorder.
 */
export function createRefusalAggregator(opts: RefusalAggregatorOptions): RefusalAggregator {
  /** Key `reason peer` → refusals not yet recorded in this interval. */
  let pending = new Map<string, { peer: string; reason: string; count: number }>();
  const write = (peer: string, reason: string, count: number) =>
    opts.record({
      tool: AUTHENTICATE_TOOL,
      code: 'unauthenticated',
      reason,
      arguments: { peer, count, intervalMs: opts.intervalMs },
    });
  const flush = () => {
    const done = pending;
    pending = new Map();
    for (const { peer, reason, count } of done.values()) if (count > 0) write(peer, reason, count);
  };
  const timer = setInterval(flush, opts.intervalMs);
  timer.unref();
  return {
    refuse(peer, reason) {
      const key = `${reason} ${peer}`;
      const seen = pending.get(key);
      if (seen) {
        seen.count++;
        return;
      }
      if (pending.size < opts.maxPeers) {
        pending.set(key, { peer, reason, count: 0 });
        write(peer, reason, 1);
        return;
      }
      const overflow = `${reason} *`;
      const shared = pending.get(overflow);
      if (shared) shared.count++;
      // The one key allowed past the bound, per reason (a handful of reasons exist).
      else pending.set(overflow, { peer: '*', reason, count: 1 });
    },
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
