import { Hono } from "hono";
import type { Sql } from "../../db/connect.ts";
import { createPeer, getPeer } from "../../repository/peers.ts";
import type { AppEnv } from "../context.ts";
import { requireJson } from "../middleware/require-json.ts";
import { createPeerBody, idParam } from "../schemas.ts";
import { validate } from "../validate.ts";

export function peerRoutes(sql: Sql) {
  return new Hono<AppEnv>()
    .post("/", requireJson, validate("json", createPeerBody), async (c) => {
      const peer = await createPeer(sql, c.req.valid("json"), {
        actor: c.get("adminSubject"),
        requestId: c.get("requestId"),
      });
      return c.json(peer, 201);
    })
    .get("/:id", validate("param", idParam), async (c) => {
      return c.json(await getPeer(sql, c.req.valid("param").id));
    });
}
