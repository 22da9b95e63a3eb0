import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import type { ServiceMetrics } from "../../metrics/metrics.ts";
import type { AppEnv } from "../context.ts";
import { ProblemError } from "../problem.ts";

const REALM = "federation-metrics";

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * GET /metrics in the Prometheus text format. Public unless `bearerToken` (METRICS_TOKEN) is set,
 * when the request must carry `Authorization: Bearer <METRICS_TOKEN>`. Outside the redeem rate
 * limit, so that scrapes never use up the peers' attempts.
 */
export function metricsRoutes(metrics: ServiceMetrics, bearerToken?: string) {
  // Digests have a fixed length, so the comparison time does not depend on the token's length.
  const expected = bearerToken ? digest(bearerToken) : undefined;
  return new Hono<AppEnv>().get("/", async (c) => {
    if (expected) {
      const presented = /^Bearer +(\S+) *$/i.exec(c.req.header("authorization") ?? "")?.[1];
      if (!presented || !timingSafeEqual(digest(presented), expected)) {
        throw new ProblemError("unauthorized", {
          detail: "metrics require Authorization: Bearer with the METRICS_TOKEN value",
          headers: { "www-authenticate": `Bearer realm="${REALM}"` },
        });
      }
    }
    c.header("cache-control", "no-store");
    return c.body(await metrics.render(), 200, { "content-type": metrics.contentType });
  });
}
