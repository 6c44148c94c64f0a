import type { Client as JiraJsClient } from 'jira.js/core';
import { cloud } from './cloud.js';

/**
 * The site's field list (`GET /rest/api/3/field`, "Get fields" in the Jira Cloud platform REST
 * API v3), reduced to what the JQL label check needs: every name a field answers to in JQL
 * (its `clauseNames`, e.g. `cf[10016]` and `Story Points`, and its display `name`), lower case,
 * mapped to the field ids it reaches (several when custom fields share a name: Jira searches all
 * of them).
 *
 * Cached for `ttlMs`; a name missing from the cache refreshes it, at most once per
 * `missRefreshMs` (so a query naming an unknown field cannot make every call fetch the list).
 * A failed fetch counts as an attempt; it keeps a list still within its TTL and drops an older
 * one (every name is then unknown).
 */
export interface FieldCatalog {
  /**
   * The field ids each of `names` reaches (keys: the names lower case). A name absent from the
   * map is unknown: not in the list even after a refresh, or the list is unavailable. The caller
   * must fail closed for it.
   */
  resolve(api: () => JiraJsClient, names: readonly string[]): Promise<Map<string, string[]>>;
}

/** Options of {@link createFieldCatalog}, in milliseconds. */
export interface FieldCatalogOptions {
  /** How long a fetched list is used before it is fetched again (default 5 minutes). */
  readonly ttlMs?: number;
  /** The least time between two fetches caused by a name missing from the cache (default 30 s). */
  readonly missRefreshMs?: number;
  /** The clock (default `Date.now`). */
  readonly now?: () => number;
}

/** Most fields one answer may hold (a large site has a few thousand); a longer list is not used at all (every name unknown: fail closed). */
export const MAX_FIELDS = 10_000;
/** A field id this server accepts from the list: a system id or `customfield_N`. */
const FIELD_ID = /^(?:[a-z][A-Za-z0-9]{0,63}|customfield_\d{1,9})$/;

/**
 * Builds the name → ids index (names trimmed, lower-cased) of a `GET /rest/api/3/field` answer.
 * Fails closed: a list longer than {@link MAX_FIELDS} gives an empty index, and a name carried by
 * an entry whose id is not a field id is left out (unknown), since Jira searches that entry too.
 */
export function indexFields(list: unknown): Map<string, string[]> {
  const index = new Map<string, string[]>();
  // A list cut short could map a shared name to only some of its fields: use none of it.
  if (!Array.isArray(list) || list.length > MAX_FIELDS) return index;
  // Names of entries skipped for their id: Jira may search them too, so they stay unknown.
  const poisoned = new Set<string>();
  for (const f of list) {
    if (!f || typeof f !== 'object') continue;
    const { id, name, clauseNames } = f as { id?: unknown; name?: unknown; clauseNames?: unknown };
    const names = [
      ...(typeof name === 'string' ? [name] : []),
      ...(Array.isArray(clauseNames) ? clauseNames.filter((n) => typeof n === 'string') : []),
    ];
    const ok = typeof id === 'string' && FIELD_ID.test(id);
    for (const n of names) {
      const key = n.trim().toLowerCase();
      if (key === '' || key.length > 255) continue;
      if (!ok) {
        poisoned.add(key);
        continue;
      }
      const ids = index.get(key);
      if (!ids) index.set(key, [id]);
      else if (!ids.includes(id)) ids.push(id);
    }
  }
  for (const key of poisoned) index.delete(key);
  return index;
}

/** Creates an empty {@link FieldCatalog}; the list is fetched on first use. */
export function createFieldCatalog(options: FieldCatalogOptions = {}): FieldCatalog {
  const ttl = options.ttlMs ?? 300_000;
  const missRefresh = options.missRefreshMs ?? 30_000;
  const now = options.now ?? Date.now;
  let index: Map<string, string[]> | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let inflight: Promise<void> | undefined;

  const refresh = (api: () => JiraJsClient): Promise<void> => {
    inflight ??= (async () => {
      attemptedAt = now();
      try {
        const list = await (await cloud()).getFields(api());
        index = indexFields(list);
        fetchedAt = now();
      } catch {
        // Unavailable: a list within its TTL is kept; an older one is dropped (every name
        // unknown: the caller fails closed).
        if (now() - fetchedAt >= ttl) index = undefined;
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  };

  return {
    async resolve(api, names) {
      const keys = [...new Set(names.map((n) => n.trim().toLowerCase()))];
      const stale = now() - fetchedAt >= ttl;
      const missing = () => !index || keys.some((k) => !index?.has(k));
      if ((stale || missing()) && now() - attemptedAt >= Math.min(missRefresh, ttl))
        await refresh(api);
      else if (inflight) await inflight;
      const out = new Map<string, string[]>();
      for (const k of keys) {
        const ids = index?.get(k);
        if (ids) out.set(k, [...ids]);
      }
      return out;
    },
  };
}
