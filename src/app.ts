import { Hono } from "hono";
import { requestId } from "hono/request-id";
import type { Logger } from "pino";
import type { CertificateAuthority } from "./ca/authority.ts";
import { BuiltinCa } from "./ca/builtin/builtin-ca.ts";
import { CrlPublisher } from "./ca/builtin/crl.ts";
import { certificateFingerprint } from "./ca/fingerprint.ts";
import type { Config } from "./config.ts";
import type { Sql } from "./db/connect.ts";
import type { AppEnv, ClientIpResolver } from "./http/context.ts";
import { createErrorHandler } from "./http/error-handler.ts";
import { type AdminKeySource, adminAuth } from "./http/middleware/admin-auth.ts";
import { bodyLimit } from "./http/middleware/body-limit.ts";
import { rateLimit } from "./http/middleware/rate-limit.ts";
import { type RequestObserver, requestLog } from "./http/middleware/request-log.ts";
import { ProblemError, problemResponse } from "./http/problem.ts";
import { MemoryRateLimitStore, type RateLimitStore } from "./http/rate-limit-store.ts";
import { auditRoutes } from "./http/routes/audit.ts";
import { caRootsRoutes } from "./http/routes/ca-roots.ts";
import { crlRoutes } from "./http/routes/crl.ts";
import { docsRoutes } from "./http/routes/docs.ts";
import { grantRoutes } from "./http/routes/grants.ts";
import { healthRoutes } from "./http/routes/health.ts";
import { metricsRoutes } from "./http/routes/metrics.ts";
import { peerRoutes } from "./http/routes/peers.ts";
import { redeemRoutes } from "./http/routes/redeem.ts";
import { tokenRoutes } from "./http/routes/tokens.ts";
import { MeasuredCa } from "./metrics/measured-ca.ts";
import type { ServiceMetrics } from "./metrics/metrics.ts";
import type { RedeemOutcome } from "./repository/redeem.ts";
import { certRevocationSettings } from "./repository/revoke-grant.ts";

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
  /**
   * Serves GET /metrics and times CA sign calls. Also counts requests and redeem outcomes, unless
   * observeRequest or onRedeemOutcome is given instead.
   */
  metrics?: ServiceMetrics;
}

/** Builds the HTTP application. Tests pass their own database, CA and key source. */
export function createApp(deps: AppDeps) {
  const { config, sql, ca, logger } = deps;
  const rootFingerprint = certificateFingerprint(ca.roots()[0] as string);
  const app = new Hono<AppEnv>();

  app.use(requestId({ limitLength: 128 }));
  app.use(requestLog(logger, deps.observeRequest ?? deps.metrics?.observeRequest));
  app.onError(createErrorHandler(logger));
  // Returns the problem instead of throwing it: Hono calls notFound outside the handler's error
  // boundary, so a throw here would skip the request log line.
  app.notFound((c) =>
    problemResponse(c, new ProblemError("not_found", { detail: "no such route" })),
  );

  app.route("/", healthRoutes(sql, ca, logger));
  if (deps.metrics) app.route("/metrics", metricsRoutes(deps.metrics, config.METRICS_TOKEN));
  app.route("/", docsRoutes(config.publicUrl));
  // Public: the CRL distribution point that the built-in CA's certificates name.
  const crlPublisher =
    ca instanceof BuiltinCa
      ? new CrlPublisher(sql, ca.keys, { validitySeconds: config.CRL_VALIDITY_SECONDS })
      : undefined;
  app.route("/api/federation/crl", crlRoutes(crlPublisher));
  // Public: peers fetch the roots before they trust the server, and pin one by fingerprint.
  app.route("/api/federation/ca/roots", caRootsRoutes(ca));

  const authenticate = adminAuth({
    keys: deps.adminKeys,
    issuer: config.ADMIN_JWT_ISSUER,
    audience: config.ADMIN_JWT_AUDIENCE,
    scope: config.ADMIN_JWT_SCOPE,
    logger,
  });
  const limitAdminBody = bodyLimit(ADMIN_BODY_LIMIT_BYTES);
  // Each admin group gets its own sub-app, so that authentication never covers the public route.
  const adminGroup = (routes: Hono<AppEnv>) =>
    new Hono<AppEnv>().use(authenticate, limitAdminBody).route("/", routes);

  app.route("/api/federation/peers", adminGroup(peerRoutes(sql)));
  app.route(
    "/api/federation/grants",
    adminGroup(grantRoutes(sql, { sql, ca, logger, settings: certRevocationSettings(config) })),
  );
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
    ca: deps.metrics ? new MeasuredCa(ca, deps.metrics.caSignDuration) : ca,
    logger,
    onOutcome: deps.onRedeemOutcome ?? deps.metrics?.observeRedeemOutcome,
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
