import { createRequire } from 'node:module';
import type * as Flexible from 'rate-limiter-flexible';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { ALLOW, type Decision, deny, ErrorCode } from './errors.js';

/** Synchronous `require` for modules loaded on first use only (CommonJS packages). */
const lazyRequire = createRequire(import.meta.url);

// The classes this module uses, from their own files: the package's index loads every store it
// supports (databases, cluster IPC), about 36 modules a server never uses (startup cost, issue 14).
// Each file exports its class (`module.exports = …`); the Redis limiter loads with ioredis.
const RateLimiterMemory = lazyRequire(
  'rate-limiter-flexible/lib/RateLimiterMemory.js',
) as typeof Flexible.RateLimiterMemory;
const RateLimiterRes = lazyRequire(
  'rate-limiter-flexible/lib/RateLimiterRes.js',
) as typeof Flexible.RateLimiterRes;

/** A fixed-window budget: `points` calls per `durationSeconds`. */
export interface RateLimitRule {
  readonly points: number;
  readonly durationSeconds: number;
}

/** Pipeline step 7: one budget per principal and tool. */
export interface RateLimiter {
  /** Consumes one point for `(principal, tool)`. Refusal carries `retryAfterMs`. */
  consume(principal: string, tool: string): Promise<Decision>;
  /**
   * Whether the budget store answers (Redis: connected and a `PING` answered within
   * {@link READY_TIMEOUT_MS}); absent for in-memory limiters, which are always ready. Feeds
   * `/readyz`: a replica whose every call would be refused as rate-limited is not ready.
   */
  ready?(): Promise<boolean>;
  /** Releases connections (Redis). */
  close?(): Promise<void>;
}

/** How long the readiness `PING` may take (ms). */
export const READY_TIMEOUT_MS = 1_000;

/**
 * An in-memory rate limiter (`rate-limiter-flexible`'s `RateLimiterMemory`), one limiter per
 * distinct rule, keyed by principal and tool. Each replica has its own budget.
 *
 * @param defaults - rule for tools without their own
 * @param perTool - rules by tool name
 */
export function createMemoryRateLimiter(
  defaults: RateLimitRule,
  perTool: Readonly<Record<string, RateLimitRule | undefined>> = {},
): RateLimiter {
  return fromLimiters(
    (rule, name) =>
      new RateLimiterMemory({
        points: rule.points,
        duration: rule.durationSeconds,
        keyPrefix: `hmcp:${name}`,
      }),
    defaults,
    perTool,
  );
}

/**
 * A rate limiter whose budgets live in Redis (`RateLimiterRedis` over `ioredis`), so every
 * replica pointing at the same Redis shares one budget per principal and tool. If Redis is
 * unreachable, calls are refused (fail closed) rather than unlimited.
 *
 * @param url - `redis://[user:password@]host:port[/db]`
 */
export function createRedisRateLimiter(
  url: string,
  defaults: RateLimitRule,
  perTool: Readonly<Record<string, RateLimitRule | undefined>> = {},
): RateLimiter {
  // ioredis is loaded only when a Redis store is configured (startup cost, issue 14)
  const { Redis } = lazyRequire('ioredis') as typeof import('ioredis');
  const RateLimiterRedis = lazyRequire(
    'rate-limiter-flexible/lib/RateLimiterRedis.js',
  ) as typeof Flexible.RateLimiterRedis;
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: false,
  });
  client.on('error', () => undefined); // reported per call as a refusal
  const limiter = fromLimiters(
    (rule, name) =>
      new RateLimiterRedis({
        storeClient: client,
        points: rule.points,
        duration: rule.durationSeconds,
        keyPrefix: `hmcp:${name}`,
      }),
    defaults,
    perTool,
  );
  return {
    consume: limiter.consume,
    async ready() {
      if (client.status !== 'ready') return false;
      let timer: NodeJS.Timeout | undefined;
      try {
        const pong = await Promise.race([
          client.ping(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS);
          }),
        ]);
        return pong === 'PONG';
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      client.disconnect();
    },
  };
}

function fromLimiters(
  make: (rule: RateLimitRule, name: string) => RateLimiterAbstract,
  defaults: RateLimitRule,
  perTool: Readonly<Record<string, RateLimitRule | undefined>>,
): RateLimiter {
  const fallback = make(defaults, 'default');
  const limiters = new Map<string, RateLimiterAbstract>();
  for (const [tool, rule] of Object.entries(perTool))
    if (rule) limiters.set(tool, make(rule, tool));
  return {
    async consume(principal, tool) {
      const limiter = limiters.get(tool) ?? fallback;
      try {
        await limiter.consume(`${principal.length}:${principal}|${tool}`);
        return ALLOW;
      } catch (err) {
        if (err instanceof RateLimiterRes) {
          const ms = Math.max(1, Math.ceil(err.msBeforeNext));
          return deny(
            ErrorCode.RateLimited,
            `rate limit exceeded for ${tool}; retry in ${Math.ceil(ms / 1000)} s`,
            ms,
          );
        }
        return deny(
          ErrorCode.RateLimited,
          'the rate limiter is unavailable; try again later',
          1000,
        );
      }
    },
  };
}
