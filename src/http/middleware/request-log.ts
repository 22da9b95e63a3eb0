import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { matchedRoutes } from "hono/route";
import type { Logger } from "pino";
import type { AppEnv } from "../context.ts";

export type RequestObserver = (entry: {
  method: string;
  route: string;
  status: number;
  seconds: number;
  outcome: string;
}) => void;

/**
 * Pattern of the route that served the request, or "unmatched". c.req.routeIndex is the last
 * handler that ran. When that was middleware registered for method ALL, such as admin
 * authentication, the route is the first method route after it. Routes after the handler that
 * responded are never taken: POST .../enrollment/tokens also matches .../enrollment/:token.
 */
export function routePattern(c: Context): string {
  const routes = matchedRoutes(c).slice(c.req.routeIndex);
  return routes.find((route) => route.method !== "ALL")?.path ?? "unmatched";
}

/**
 * Logs one line per request with the route pattern, never the raw URL: the redeem URL carries the
 * enrollment token.
 */
export function requestLog(logger: Logger, observe?: RequestObserver) {
  return createMiddleware<AppEnv>(async function requestLog(c, next) {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const status = c.res.status;
    const route = routePattern(c);
    const outcome =
      c.get("outcome") ?? (status < 400 ? "success" : status < 500 ? "rejected" : "error");
    observe?.({ method: c.req.method, route, status, seconds, outcome });
    const level = status >= 500 ? "error" : "info";
    logger[level](
      {
        requestId: c.get("requestId"),
        method: c.req.method,
        route,
        status,
        durationMs: Math.round(seconds * 10_000) / 10,
        outcome,
      },
      "request",
    );
  });
}
