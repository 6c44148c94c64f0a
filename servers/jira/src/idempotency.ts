import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, ToolError } from '@hardened-mcp/core';
import { Redis } from 'ioredis';

/** What `jira_create_issue` created. */
export interface CreatedIssue {
  readonly key: string;
  readonly id: string;
}

/**
 * Where `jira_create_issue` remembers idempotency keys for `windowMs`: in process memory, or in
 * Redis (`redis.url`) so that every replica sees the same keys. Entries are keyed by the
 * principal and the client's key; `fingerprint` is a hash of the rest of the input, so the same
 * key with a different issue is told apart.
 */
export interface IdempotencyStore {
  /** `mismatch` when the key was used (within the window) for a different input; else `ok`. */
  check(principal: string, key: string, fingerprint: string): Promise<'ok' | 'mismatch'>;
  /**
   * Runs `create` once per key within the window and returns its result; a repeated call gets
   * the first result with `replayed: true`. A failed create is forgotten (the key may be tried
   * again). With Redis, a call that finds the key claimed by a create still running elsewhere
   * waits for it (up to `waitMs`), then answers `upstream_unavailable`.
   */
  run(
    principal: string,
    key: string,
    fingerprint: string,
    create: () => Promise<CreatedIssue>,
  ): Promise<{ result: CreatedIssue; replayed: boolean }>;
  close(): Promise<void>;
}

/** The fingerprint of an input: hex SHA-256 of its JSON. */
export function fingerprintOf(input: unknown): string {
  return createHash('sha256').update(JSON.stringify(input)).digest('hex');
}

/** The per-process store (the default without `redis.url`): lost on restart, not shared. */
export function memoryIdempotencyStore(windowMs: number): IdempotencyStore {
  const entries = new Map<
    string,
    { at: number; fingerprint: string; result: Promise<CreatedIssue> }
  >();
  const idOf = (principal: string, key: string) => `${principal}\u0000${key}`;
  const live = (id: string) => {
    const now = Date.now();
    for (const [k, v] of entries) if (now - v.at >= windowMs) entries.delete(k);
    return entries.get(id);
  };
  return {
    async check(principal, key, fingerprint) {
      const prior = live(idOf(principal, key));
      return prior && prior.fingerprint !== fingerprint ? 'mismatch' : 'ok';
    },
    async run(principal, key, fingerprint, create) {
      const id = idOf(principal, key);
      const prior = live(id);
      if (prior) {
        if (prior.fingerprint !== fingerprint)
          throw new ToolError(
            ErrorCode.InvalidInput,
            'this idempotencyKey was used for a different issue',
          );
        return { result: await prior.result, replayed: true };
      }
      const result = create();
      entries.set(id, { at: Date.now(), fingerprint, result });
      result.catch(() => entries.delete(id));
      return { result: await result, replayed: false };
    },
    async close() {
      entries.clear();
    },
  };
}

/** A stored entry: claimed (`result` absent) or done. */
interface StoredEntry {
  readonly fingerprint: string;
  readonly result?: CreatedIssue;
}

/**
 * The Redis store: `SET key value NX PX windowMs` claims a key atomically, so two replicas
 * given the same key at once create one issue; the result then replaces the claim (`XX`, same
 * expiry). Keys are `hmcp:jira:idem:<sha256(principal, key)>` (no principal or key in clear).
 * Redis unreachable → `upstream_unavailable` (fail closed: no create without the check).
 *
 * @param url - `redis://[user:password@]host:port[/db]`
 */
export function redisIdempotencyStore(
  url: string,
  windowMs: number,
  waitMs = 10_000,
): IdempotencyStore {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: false,
  });
  client.on('error', () => undefined); // reported per call
  const keyOf = (principal: string, key: string) =>
    `hmcp:jira:idem:${createHash('sha256').update(`${principal}\u0000${key}`).digest('hex')}`;
  const unavailable = (cause: unknown) =>
    new ToolError(ErrorCode.UpstreamUnavailable, 'the idempotency store is unavailable', {
      cause,
    });
  /** Waits (at most 2 s) for the connection: commands are not queued while offline. */
  async function connected(): Promise<void> {
    if (client.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.off('ready', onReady);
        reject(unavailable(new Error('redis not ready')));
      }, 2_000);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      client.once('ready', onReady);
    });
  }
  async function read(k: string): Promise<StoredEntry | undefined> {
    let raw: string | null;
    try {
      await connected();
      raw = await client.get(k);
    } catch (err) {
      throw unavailable(err);
    }
    if (raw === null) return undefined;
    try {
      return JSON.parse(raw) as StoredEntry;
    } catch {
      return undefined;
    }
  }
  return {
    async check(principal, key, fingerprint) {
      const prior = await read(keyOf(principal, key));
      return prior && prior.fingerprint !== fingerprint ? 'mismatch' : 'ok';
    },
    async run(principal, key, fingerprint, create) {
      const k = keyOf(principal, key);
      let claimed: string | null;
      try {
        await connected();
        claimed = await client.set(k, JSON.stringify({ fingerprint }), 'PX', windowMs, 'NX');
      } catch (err) {
        throw unavailable(err);
      }
      if (claimed === 'OK') {
        let result: CreatedIssue;
        try {
          result = await create();
        } catch (err) {
          await client.del(k).catch(() => undefined);
          throw err;
        }
        await client
          .set(k, JSON.stringify({ fingerprint, result }), 'PX', windowMs, 'XX')
          .catch(() => undefined);
        return { result, replayed: false };
      }
      const until = Date.now() + waitMs;
      for (;;) {
        const prior = await read(k);
        if (prior && prior.fingerprint !== fingerprint)
          throw new ToolError(
            ErrorCode.InvalidInput,
            'this idempotencyKey was used for a different issue',
          );
        if (prior?.result) return { result: prior.result, replayed: true };
        // The claim expired or its create failed: claim again.
        if (!prior) return this.run(principal, key, fingerprint, create);
        if (Date.now() > until)
          throw new ToolError(
            ErrorCode.UpstreamUnavailable,
            'a create with this idempotencyKey is still running; retry later',
          );
        await sleep(100);
      }
    },
    async close() {
      client.disconnect();
    },
  };
}
