import { Hono, type MiddlewareHandler } from "hono";
import { type RedeemDeps, redeem } from "../../repository/redeem.ts";
import type { AppEnv } from "../context.ts";
import { bodyLimit } from "../middleware/body-limit.ts";
import { requireJson } from "../middleware/require-json.ts";
import { redeemBody, redeemParam } from "../schemas.ts";
import { validate } from "../validate.ts";

/** Largest redeem body; checked before the body is parsed. */
export const REDEEM_BODY_LIMIT_BYTES = 64 * 1024;

/**
 * The public redeem route. The rate limiter runs first, as route middleware, so that it counts
 * only redeem requests and runs before the body is read.
 */
export function redeemRoutes(deps: RedeemDeps, limiter: MiddlewareHandler<AppEnv>) {
  return new Hono<AppEnv>().post(
    "/:token",
    limiter,
    bodyLimit(REDEEM_BODY_LIMIT_BYTES),
    requireJson,
    validate("param", redeemParam),
    validate("json", redeemBody),
    async (c) => {
      const result = await redeem(
        {
          ...deps,
          onOutcome: (outcome) => {
            c.set("outcome", outcome);
            deps.onOutcome?.(outcome);
          },
        },
        {
          token: c.req.valid("param").token,
          csrPem: c.req.valid("json").csr,
          requestId: c.get("requestId"),
        },
      );
      c.header("cache-control", "no-store");
      return c.json(result.body, result.replayed ? 200 : 201);
    },
  );
}
