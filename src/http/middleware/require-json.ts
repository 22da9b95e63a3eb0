import { createMiddleware } from "hono/factory";
import { ProblemError } from "../problem.ts";

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** Rejects a body that is not declared as JSON with 415 before anything reads it. */
export const requireJson = createMiddleware(async function requireJson(c, next) {
  const mediaType = (c.req.header("content-type") ?? "").split(";")[0]?.trim() ?? "";
  if (!JSON_MEDIA_TYPE.test(mediaType)) {
    throw new ProblemError("unsupported_media_type", {
      detail: `Content-Type must be application/json, got ${mediaType ? JSON.stringify(mediaType) : "none"}`,
    });
  }
  // A compressed body would be parsed as if it were plain JSON; nothing here decompresses it.
  const encoding = c.req.header("content-encoding")?.trim().toLowerCase();
  if (encoding && encoding !== "identity") {
    throw new ProblemError("unsupported_media_type", {
      detail: `Content-Encoding ${JSON.stringify(encoding)} is not supported; send the body uncompressed`,
    });
  }
  await next();
});
