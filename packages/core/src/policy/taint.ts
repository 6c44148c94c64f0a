import { createRequire } from 'node:module';
import { LABELS, type Label, labelRank } from './labels.js';

/** Synchronous `require` for modules loaded on first use only (CommonJS packages). */
const lazyRequire = createRequire(import.meta.url);

/**
 * The `_meta` key under which a client names the conversation a call belongs to, so that servers
 * sharing Redis share its taint: `{"_meta": {"io.hardened-mcp/conversation": "c-123"}}`. A string
 * of 1–128 characters `[A-Za-z0-9._:-]`; anything else is ignored.
 */
export const CONVERSATION_META_KEY = 'io.hardened-mcp/conversation';

/** The conversation id of a request's `_meta`, or undefined. */
export function conversationIdFromMeta(meta: unknown): string | undefined {
  if (meta === null || typeof meta !== 'object') return undefined;
  const value = (meta as Record<string, unknown>)[CONVERSATION_META_KEY];
  return typeof value === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(value) ? value : undefined;
}

/** What a tainted session has received: its highest label and the classified paths read. */
export interface Taint {
  readonly label: Label;
  /** Classified paths read (at most {@link MAX_TAINT_PATHS}). */
  readonly paths: readonly string[];
}

/** Paths kept per tainted session (what an approval prompt names). */
export const MAX_TAINT_PATHS = 20;

/** Where session taint lives: per process, or in Redis to span servers. */
export interface TaintStore {
  /** Records that `key` received data labelled `label` from `paths`. */
  mark(key: string, label: Label, paths: readonly string[]): Promise<void>;
  /** The taint of `key`, if any. @throws when the store cannot answer (callers fail closed). */
  get(key: string): Promise<Taint | undefined>;
  close?(): Promise<void>;
}

/** Sessions remembered by the in-memory store at most (oldest forgotten first). */
const MAX_MEMORY_SESSIONS = 100_000;

/** An in-process taint store (one server: its MCP sessions). */
export function createMemoryTaintStore(ttlSeconds: number): TaintStore {
  const entries = new Map<string, { label: Label; paths: Set<string>; expires: number }>();
  return {
    async mark(key, label, paths) {
      const now = Date.now();
      let e = entries.get(key);
      if (!e || e.expires < now) {
        if (entries.size >= MAX_MEMORY_SESSIONS) {
          const oldest = entries.keys().next().value;
          if (oldest !== undefined) entries.delete(oldest);
        }
        e = { label, paths: new Set(), expires: 0 };
        entries.set(key, e);
      }
      if (labelRank(label) > labelRank(e.label)) e.label = label;
      for (const p of paths) if (e.paths.size < MAX_TAINT_PATHS) e.paths.add(p);
      e.expires = now + ttlSeconds * 1000;
    },
    async get(key) {
      const e = entries.get(key);
      if (!e || e.expires < Date.now()) return undefined;
      return { label: e.label, paths: [...e.paths] };
    },
  };
}

/**
 * A taint store in Redis: key `hmcp:taint:<key>` is a set of `<label>|<path>` members with a TTL
 * of `ttlSeconds`, renewed on each mark. Every server pointing at the same Redis sees the taint.
 *
 * @param url - `redis://[user:password@]host:port[/db]`
 */
export function createRedisTaintStore(url: string, ttlSeconds: number): TaintStore {
  // ioredis is loaded only when a Redis taint store is configured (startup cost, issue 14).
  const { Redis } = lazyRequire('ioredis') as typeof import('ioredis');
  const client = new Redis(url, {
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    lazyConnect: false,
  });
  client.on('error', () => undefined); // surfaced per call: get/mark reject, callers fail closed
  const redisKey = (key: string) => `hmcp:taint:${key}`;
  return {
    async mark(key, label, paths) {
      const k = redisKey(key);
      const members = [`${label}|`, ...paths.slice(0, MAX_TAINT_PATHS).map((p) => `${label}|${p}`)];
      await client
        .multi()
        .sadd(k, ...members)
        .expire(k, ttlSeconds)
        .exec();
    },
    async get(key) {
      const members = await client.srandmember(redisKey(key), 200);
      if (!members || members.length === 0) return undefined;
      let label: Label = 'public';
      const paths: string[] = [];
      for (const m of members) {
        const bar = m.indexOf('|');
        const l = m.slice(0, bar) as Label;
        if (!LABELS.includes(l)) continue;
        if (labelRank(l) > labelRank(label)) label = l;
        const path = m.slice(bar + 1);
        if (path && paths.length < MAX_TAINT_PATHS) paths.push(path);
      }
      return { label, paths };
    },
    async close() {
      client.disconnect();
    },
  };
}
