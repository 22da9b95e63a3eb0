import { createMiddleware } from "hono/factory";
import {
  createRemoteJWKSet,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from "jose";
import type { Logger } from "pino";
import type { AppEnv } from "../context.ts";
import { ProblemError } from "../problem.ts";

const REALM = "federation-admin";
/** Tolerated clock difference for exp and nbf. */
const CLOCK_TOLERANCE_SECONDS = 30;
const ASYMMETRIC_ALGORITHMS = ["RS256", "PS256", "ES256", "ES384", "EdDSA"];

export type AdminKeySource = { kind: "secret"; secret: string } | { kind: "jwks"; url: string };

export interface AdminAuthOptions {
  keys: AdminKeySource;
  issuer?: string;
  audience?: string;
  scope: string;
  logger: Logger;
}

function challenge(error?: string, description?: string, scope?: string): string {
  let value = `Bearer realm="${REALM}"`;
  if (error) value += `, error="${error}"`;
  if (description) value += `, error_description="${description.replace(/["\\]/g, "")}"`;
  if (scope) value += `, scope="${scope}"`;
  return value;
}

function unauthorized(description?: string): ProblemError {
  return new ProblemError("unauthorized", {
    detail: description ? `invalid admin token: ${description}` : "a Bearer token is required",
    headers: {
      "www-authenticate": challenge(description ? "invalid_token" : undefined, description),
    },
  });
}

function grantedScopes(payload: JWTPayload): string[] {
  const scopes: string[] = [];
  if (typeof payload.scope === "string") scopes.push(...payload.scope.split(" "));
  if (Array.isArray(payload.scp)) scopes.push(...payload.scp.filter((s) => typeof s === "string"));
  if (typeof payload.scp === "string") scopes.push(...payload.scp.split(" "));
  return scopes;
}

/** Tells whether a jose error means the key set could not be fetched, rather than a bad token. */
function isKeySourceFailure(error: unknown): boolean {
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid)
    return true;
  // jose 6 throws the base JOSEError, with no subclass, only when the JWKS endpoint answers
  // with a status other than 200 or with a body that is not JSON.
  if (error instanceof joseErrors.JOSEError) return error.code === "ERR_JOSE_GENERIC";
  return true;
}

function describe(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return "the token has expired";
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return `the ${error.claim} claim is invalid`;
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return "the signing algorithm is not allowed";
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "the signature is invalid";
  if (error instanceof joseErrors.JWKSNoMatchingKey) return "no key matches the token";
  return "the token is malformed";
}

/**
 * Verifies `Authorization: Bearer <JWT>` on admin routes. HS256 with a shared secret, or RS256,
 * ES256 or EdDSA from a JWKS; the algorithm list is fixed per mode, so a token signed with HS256
 * cannot pass when a JWKS is configured. A token in the query string is never read. Failures
 * answer 401 or 403 with a WWW-Authenticate challenge (RFC 6750), and an unreachable JWKS 503.
 */
export function adminAuth(options: AdminAuthOptions) {
  const key: Uint8Array | JWTVerifyGetKey =
    options.keys.kind === "secret"
      ? new TextEncoder().encode(options.keys.secret)
      : createRemoteJWKSet(new URL(options.keys.url), {
          timeoutDuration: 3000,
          cooldownDuration: 10_000,
        });
  const algorithms = options.keys.kind === "secret" ? ["HS256"] : ASYMMETRIC_ALGORITHMS;

  return createMiddleware<AppEnv>(async function adminAuth(c, next) {
    const header = c.req.header("authorization");
    const match = header ? /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i.exec(header) : null;
    if (!match)
      throw unauthorized(header ? "the Authorization header is not a Bearer token" : undefined);

    let payload: JWTPayload;
    try {
      const verifyOptions = {
        algorithms,
        issuer: options.issuer,
        audience: options.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ["sub", "exp"],
      };
      payload =
        key instanceof Uint8Array
          ? (await jwtVerify(match[1] as string, key, verifyOptions)).payload
          : (await jwtVerify(match[1] as string, key, verifyOptions)).payload;
    } catch (error) {
      if (options.keys.kind === "jwks" && isKeySourceFailure(error)) {
        options.logger.error(
          { err: error, requestId: c.get("requestId") },
          "admin JWKS is unavailable",
        );
        throw new ProblemError("auth_unavailable", { cause: error });
      }
      throw unauthorized(describe(error));
    }
    if (!grantedScopes(payload).includes(options.scope)) {
      throw new ProblemError("forbidden", {
        detail: `the admin token lacks the ${options.scope} scope`,
        headers: { "www-authenticate": challenge("insufficient_scope", undefined, options.scope) },
      });
    }
    c.set("adminSubject", String(payload.sub));
    await next();
  });
}
