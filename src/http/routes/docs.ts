import { Hono } from "hono";
import { renderDocsPage } from "../../openapi/docs-page.ts";
import { buildOpenApiDocument } from "../../openapi/document.ts";
import type { AppEnv } from "../context.ts";

/** The page loads nothing: its only style is inline and it has no script. */
const DOCS_CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** GET /openapi.json and GET /docs, both public. The document is built once, at start. */
export function docsRoutes(serverUrl: string) {
  const document = buildOpenApiDocument({ serverUrl });
  const page = renderDocsPage(document);
  return new Hono<AppEnv>()
    .get("/openapi.json", (c) => c.json(document))
    .get("/docs", (c) => {
      c.header("content-security-policy", DOCS_CONTENT_SECURITY_POLICY);
      return c.html(page);
    });
}
