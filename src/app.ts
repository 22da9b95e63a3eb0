import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import type { Logger } from "pino";
import type { CertificateAuthority } from "./ca/authority.ts";
import { certificateFingerprint } from "./ca/fingerprint.ts";
import type { Config } from "./config.ts";
import type { Sql } from "./db/connect.ts";
import type { AppEnv, ClientIpResolver } from "./http/context.ts";
import { createErrorHandler } from "./http/error-handler.ts";
import { type AdminKeySource, adminAuth } from "./http/middleware/admin-auth.ts";
import { rateLimit } from "./http/middleware/rate-limit.ts";
import { type RequestObserver, requestLog } from "./http/middleware/request-log.ts";
import { ProblemError } from "./http/problem.ts";
import { MemoryRateLimitStore, type RateLimitStore } from "./http/rate-limit-store.ts";
import { auditRoutes } from "./http/routes/audit.ts";
import { grantRoutes } from "./http/routes/grants.ts";
import { healthRoutes } from "./http/routes/health.ts";
import { peerRoutes } from "./http/routes/peers.ts";
import { redeemRoutes } from "./http/routes/redeem.ts";
import { tokenRoutes } from "./http/routes/tokens.ts";
import type { RedeemOutcome } from "./repository/redeem.ts";

/** Largest admin request body. */
const ADMIN_BODY_LIMIT_BYTES = 64 * 1024;

export interface AppDeps {
  config: Config;
  sql: Sql;
  ca: CertificateAuthority;
  logger: Logger;
  adminKeys: AdminKeySource;
  clientIp: ClientIpResolver;
  rateLimitStore?: RateLimitStore;
  observeRequest?: RequestObserver;
  onRedeemOutcome?: (outcome: RedeemOutcome) => void;
}

/** Builds the HTTP application. Tests pass their own database, CA and key source. */
export function createApp(deps: AppDeps) {
  const { config, sql, ca, logger } = deps;
  const rootFingerprint = certificateFingerprint(ca.roots()[0] as string);
  const app = new Hono<AppEnv>();

  app.use(requestId({ limitLength: 128 }));
  app.use(requestLog(logger, deps.observeRequest));
  app.onError(createErrorHandler(logger));
  app.notFound(() => {
    throw new ProblemError("not_found", { detail: "no such route" });
  });

  app.route("/", healthRoutes(sql, ca));

  const authenticate = adminAuth({
    keys: deps.adminKeys,
    issuer: config.ADMIN_JWT_ISSUER,
    audience: config.ADMIN_JWT_AUDIENCE,
    scope: config.ADMIN_JWT_SCOPE,
    logger,
  });
  const limitAdminBody = bodyLimit({
    maxSize: ADMIN_BODY_LIMIT_BYTES,
    onError: () => {
      throw new ProblemError("payload_too_large", {
        detail: `the request body must be at most ${ADMIN_BODY_LIMIT_BYTES} bytes`,
      });
    },
  });
  // Each admin group gets its own sub-app, so that authentication never covers the public route.
  const adminGroup = (routes: Hono<AppEnv>) =>
    new Hono<AppEnv>().use(authenticate, limitAdminBody).route("/", routes);

  app.route("/api/federation/peers", adminGroup(peerRoutes(sql)));
  app.route("/api/federation/grants", adminGroup(grantRoutes(sql)));
  app.route("/api/federation/audit", adminGroup(auditRoutes(sql)));
  // Registered before the redeem route: a POST to ".../enrollment/tokens" also matches "/:token".
  app.route(
    "/api/federation/enrollment/tokens",
    adminGroup(
      tokenRoutes(sql, {
        publicUrl: config.publicUrl,
        defaultTtlSeconds: config.TOKEN_TTL_SECONDS,
        maxTtlSeconds: config.TOKEN_TTL_MAX_SECONDS,
        caFingerprint: () => rootFingerprint,
      }),
    ),
  );

  const limiter = rateLimit({
    limit: config.REDEEM_RATE_LIMIT,
    windowSeconds: config.REDEEM_RATE_WINDOW_SECONDS,
    store: deps.rateLimitStore ?? new MemoryRateLimitStore(),
    clientIp: deps.clientIp,
  });
  const redeemDeps = {
    sql,
    ca,
    logger,
    onOutcome: deps.onRedeemOutcome,
    settings: {
      certTtlSeconds: config.CERT_TTL_SECONDS,
      caTimeoutSeconds: config.CA_TIMEOUT_SECONDS,
      claimLeaseSeconds: config.claimLeaseSeconds,
      maxFailedAttempts: config.TOKEN_MAX_FAILED_ATTEMPTS,
      replayWindowSeconds: config.REPLAY_WINDOW_SECONDS,
      oidArc: config.CERT_OID_ARC,
    },
  };
  app.route("/api/federation/enrollment", redeemRoutes(redeemDeps, limiter));
  return app;
}
