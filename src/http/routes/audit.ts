import { Hono } from "hono";
import type { Sql } from "../../db/connect.ts";
import { listAudit } from "../../repository/audit.ts";
import type { AppEnv } from "../context.ts";
import { auditQuery } from "../schemas.ts";
import { validate } from "../validate.ts";

export function auditRoutes(sql: Sql) {
  return new Hono<AppEnv>().get("/", validate("query", auditQuery), async (c) => {
    return c.json(await listAudit(sql, c.req.valid("query")));
  });
}
