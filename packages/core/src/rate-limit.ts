import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { ALLOW, type Decision, deny, ErrorCode } from './errors.js';

/** A fixed-window budget: `points` calls per `durationSeconds`. */
export interface RateLimitRule {
  readonly points: number;
  readonly durationSeconds: number;
}

/** Pipeline step 7: one budget per principal and tool. */
export interface RateLimiter {
  /** Consumes one point for `(principal, tool)`. Refusal carries `retryAfterMs`. */
  consume(principal: string, tool: string): Promise<Decision>;
}

/**
 * An in-memory rate limiter (`rate-limiter-flexible`'s `RateLimiterMemory`), one limiter per
 * distinct rule, keyed by principal and tool. A shared (Redis) store plugs in behind the same
 * interface for several replicas.
 *
 * @param defaults - rule for tools without their own
 * @param perTool - rules by tool name
 */
export function createMemoryRateLimiter(
  defaults: RateLimitRule,
  perTool: Readonly<Record<string, RateLimitRule | undefined>> = {},
): RateLimiter {
  const make = (rule: RateLimitRule) =>
    new RateLimiterMemory({
      points: rule.points,
      duration: rule.durationSeconds,
      keyPrefix: 'hmcp',
    });
  const fallback = make(defaults);
  const limiters = new Map<string, RateLimiterMemory>();
  for (const [tool, rule] of Object.entries(perTool)) if (rule) limiters.set(tool, make(rule));
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
        throw err;
      }
    },
  };
}
