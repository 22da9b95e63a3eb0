import { Hono } from "hono";
import type { CertificateAuthority } from "../../ca/authority.ts";
import type { AppEnv } from "../context.ts";

/** Cache lifetime of the roots response, in seconds; roots change rarely. */
const ROOTS_MAX_AGE_SECONDS = 300;

/**
 * Serves the CA's root certificates as one PEM bundle. Public: a peer fetches it before it trusts the
 * server, and trusts it only after checking a root's SHA-256 fingerprint against the one the
 * admin handed over with the enrollment token.
 */
export function caRootsRoutes(ca: CertificateAuthority) {
  return new Hono<AppEnv>().get("/", (c) => {
    c.header("content-type", "application/x-pem-file");
    c.header("cache-control", `public, max-age=${ROOTS_MAX_AGE_SECONDS}`);
    return c.body(ca.roots().join(""));
  });
}
