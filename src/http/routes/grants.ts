import { Hono } from "hono";
import type { Sql } from "../../db/connect.ts";
import { createGrant, getGrant } from "../../repository/grants.ts";
import type { AppEnv } from "../context.ts";
import { requireJson } from "../middleware/require-json.ts";
import { createGrantBody, idParam } from "../schemas.ts";
import { validate } from "../validate.ts";

export function grantRoutes(sql: Sql) {
  return new Hono<AppEnv>()
    .post("/", requireJson, validate("json", createGrantBody), async (c) => {
      const grant = await createGrant(sql, c.req.valid("json"), {
        actor: c.get("adminSubject"),
        requestId: c.get("requestId"),
      });
      return c.json(grant, 201);
    })
    .get("/:id", validate("param", idParam), async (c) => {
      return c.json(await getGrant(sql, c.req.valid("param").id));
    });
}
