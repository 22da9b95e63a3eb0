import { type Context, Hono } from "hono";
import { z } from "zod";
import { REVOCATION_REASONS, type RevocationReason } from "../../ca/authority.ts";
import type { Sql } from "../../db/connect.ts";
import { createGrant, getGrant } from "../../repository/grants.ts";
import { type CertRevocationDeps, revokeGrant } from "../../repository/revoke-grant.ts";
import type { AppEnv } from "../context.ts";
import { requireJson } from "../middleware/require-json.ts";
import { ProblemError } from "../problem.ts";
import { createGrantBody, idParam } from "../schemas.ts";
import { validate } from "../validate.ts";

const reasonNames = Object.keys(REVOCATION_REASONS) as [RevocationReason, ...RevocationReason[]];

export const revokeGrantBody = z
  .object({
    reason: z
      .enum(reasonNames, { error: `must be one of ${reasonNames.join(", ")}` })
      .default("unspecified")
      .meta({ example: "privilegeWithdrawn" }),
  })
  .strict();

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * Reads the optional revoke body: no body means `{}`, so the reason takes its default. A body
 * that is sent must be JSON and match revokeGrantBody. Values are never echoed back.
 */
async function readRevokeBody(c: Context<AppEnv>): Promise<z.infer<typeof revokeGrantBody>> {
  const text = await c.req.text();
  let body: unknown = {};
  if (text.trim() !== "") {
    const mediaType = (c.req.header("content-type") ?? "").split(";")[0]?.trim() ?? "";
    if (!JSON_MEDIA_TYPE.test(mediaType)) {
      throw new ProblemError("unsupported_media_type", {
        detail: `Content-Type must be application/json, got ${mediaType ? JSON.stringify(mediaType) : "none"}`,
      });
    }
    try {
      body = JSON.parse(text);
    } catch {
      throw new ProblemError("validation_failed", { detail: "the body is not valid JSON" });
    }
  }
  const parsed = revokeGrantBody.safeParse(body);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((issue) => ({
      path: issue.path.join("."),
      message: issue.message,
    }));
    throw new ProblemError("validation_failed", {
      detail: errors.map((error) => `${error.path || "json"}: ${error.message}`).join("; "),
      extensions: { errors },
    });
  }
  return parsed.data;
}

export function grantRoutes(sql: Sql, revocation: CertRevocationDeps) {
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
    })
    .post("/:id/revoke", validate("param", idParam), async (c) => {
      const body = await readRevokeBody(c);
      const grant = await revokeGrant(
        revocation,
        { grantId: c.req.valid("param").id, reason: body.reason },
        { actor: c.get("adminSubject"), requestId: c.get("requestId") },
      );
      return c.json(grant);
    });
}
