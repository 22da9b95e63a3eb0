import { Hono } from "hono";
import { z } from "zod";
import type { CrlPublisher } from "../../ca/builtin/crl.ts";
import type { AppEnv } from "../context.ts";
import { ProblemError } from "../problem.ts";
import { validate } from "../validate.ts";

/** How long shared caches may keep a CRL; short, so that a revocation shows within a minute. */
const CRL_MAX_AGE_SECONDS = 60;

export const crlQuery = z.object({ format: z.enum(["der", "pem"]).default("der") });

/**
 * The built-in CA's CRL, public as RFC 5280 expects of a CRL distribution point: DER as
 * application/pkix-crl (RFC 2585), or PEM with `?format=pem`. With step-ca as the CA there is no
 * CRL here; step-ca 0.19 revokes passively and refuses renewal instead.
 */
export function crlRoutes(publisher: CrlPublisher | undefined) {
  return new Hono<AppEnv>().get("/", validate("query", crlQuery), async (c) => {
    if (!publisher) {
      throw new ProblemError("not_found", {
        detail: "this service's CA is step-ca, which publishes no CRL here",
      });
    }
    const crl = await publisher.current();
    const headers = {
      "cache-control": `public, max-age=${CRL_MAX_AGE_SECONDS}`,
      "last-modified": crl.thisUpdate.toUTCString(),
      etag: `"crl-${crl.number}"`,
    };
    if (c.req.valid("query").format === "pem") {
      return c.body(crl.pem, 200, { ...headers, "content-type": "application/x-pem-file" });
    }
    return c.body(new Uint8Array(crl.der), 200, {
      ...headers,
      "content-type": "application/pkix-crl",
    });
  });
}
