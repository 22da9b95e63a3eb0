// Baseline for the rejection paths: a Hono app with nothing but routes that return the service's
// problem+json 404, 410 and 429, served by the service's own listen() with the same certificate.
import { readFileSync } from "node:fs";
import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { listen } from "../../src/server/listen.ts";

const port = Number(process.env.PORT);
const certPath = process.env.TLS_CERT_FILE;
const keyPath = process.env.TLS_KEY_FILE;
if (!port || !certPath || !keyPath) {
  throw new Error("PORT, TLS_CERT_FILE and TLS_KEY_FILE must be set; bench/main.ts sets them");
}

/** Builds a body of the same shape and about the same size as the service's problem responses. */
function problem(code: string, status: ContentfulStatusCode, title: string) {
  const body = JSON.stringify({
    type: `urn:federation-enrollment:problem:${code}`,
    title,
    status,
    detail: title,
    code,
    requestId: crypto.randomUUID(),
  });
  return new Response(body, {
    status,
    headers: { "content-type": "application/problem+json" },
  });
}

const app = new Hono()
  .get("/readyz", (c) => c.json({ status: "ready" }))
  .post("/gone/:token", () => problem("token_gone", 410, "Enrollment token is no longer valid"))
  .post("/missing/:token", () => problem("token_not_found", 404, "Enrollment token not found"))
  .post("/limited/:token", () => problem("rate_limited", 429, "Too many requests"));

await listen({
  fetch: app.fetch,
  port,
  hostname: "127.0.0.1",
  tls: { cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8") },
});
console.log(JSON.stringify({ msg: "listening", port }));
