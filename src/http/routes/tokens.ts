import { Hono } from "hono";
import type { Sql } from "../../db/connect.ts";
import { createToken, listTokens, revokeToken } from "../../repository/tokens.ts";
import type { AppEnv } from "../context.ts";
import { requireJson } from "../middleware/require-json.ts";
import { createTokenBody, idParam, listTokensQuery } from "../schemas.ts";
import { validate } from "../validate.ts";

export interface TokenRouteSettings {
  publicUrl: string;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  /** SHA-256 of the CA root, hex, for peers to pin before they send the token. */
  caFingerprint: () => string;
}

export function tokenRoutes(sql: Sql, settings: TokenRouteSettings) {
  return new Hono<AppEnv>()
    .post("/", requireJson, validate("json", createTokenBody), async (c) => {
      const body = c.req.valid("json");
      const ttlSeconds = Math.min(
        body.ttlSeconds ?? settings.defaultTtlSeconds,
        settings.maxTtlSeconds,
      );
      const created = await createToken(
        sql,
        { grantId: body.grantId, ttlSeconds },
        { actor: c.get("adminSubject"), requestId: c.get("requestId") },
      );
      c.header("cache-control", "no-store");
      return c.json(
        {
          ...created,
          redeemUrl: `${settings.publicUrl}/api/federation/enrollment/${created.token}`,
          caFingerprint: settings.caFingerprint(),
        },
        201,
      );
    })
    .get("/", validate("query", listTokensQuery), async (c) => {
      return c.json({ items: await listTokens(sql, c.req.valid("query").grantId) });
    })
    .delete("/:id", validate("param", idParam), async (c) => {
      await revokeToken(sql, c.req.valid("param").id, {
        actor: c.get("adminSubject"),
        requestId: c.get("requestId"),
      });
      return c.body(null, 204);
    });
}
