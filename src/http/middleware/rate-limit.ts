import { createMiddleware } from "hono/factory";
import type { AppEnv, ClientIpResolver } from "../context.ts";
import { ProblemError } from "../problem.ts";
import type { RateLimitStore } from "../rate-limit-store.ts";

export interface RateLimitOptions {
  /** Requests allowed per client IP in each window. */
  limit: number;
  windowSeconds: number;
  store: RateLimitStore;
  clientIp: ClientIpResolver;
  /** Separates the counters of different limits in a shared store. */
  prefix?: string;
}

/**
 * Limits requests per client IP in fixed windows, and reports the limit with the RateLimit-Limit,
 * RateLimit-Remaining and RateLimit-Reset headers of the IETF RateLimit header fields draft.
 */
export function rateLimit({
  limit,
  windowSeconds,
  store,
  clientIp,
  prefix = "redeem",
}: RateLimitOptions) {
  return createMiddleware<AppEnv>(async function rateLimit(c, next) {
    const { hits, resetSeconds } = await store.hit(`${prefix}:${clientIp(c)}`, windowSeconds);
    const reset = String(Math.max(resetSeconds, 0));
    const headers = {
      "ratelimit-limit": String(limit),
      "ratelimit-remaining": String(Math.max(limit - hits, 0)),
      "ratelimit-reset": reset,
      "ratelimit-policy": `${limit};w=${windowSeconds}`,
    };
    if (hits > limit) {
      c.set("outcome", "rate_limited");
      throw new ProblemError("rate_limited", {
        detail: `too many enrollment attempts from this address; retry in ${reset} seconds`,
        headers: { ...headers, "retry-after": reset },
      });
    }
    await next();
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  });
}
