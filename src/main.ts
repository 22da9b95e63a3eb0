import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./log.ts";
import { startService } from "./service.ts";

function summary(config: ReturnType<typeof loadConfig>) {
  return {
    publicUrl: config.publicUrl,
    listen: `${config.HOST}:${config.PORT}`,
    tls: config.TLS === "off" ? "off" : config.TLS_CERT_FILE ? "files" : "built-in CA",
    database: config.DATABASE_URL ? "postgresql" : `pglite (${config.DATA_DIR}/pglite)`,
    ca: config.STEP_CA_URL ? `step-ca ${config.STEP_CA_URL}` : `built-in (${config.DATA_DIR}/ca)`,
    adminAuth: config.ADMIN_JWKS_URL
      ? `jwks ${config.ADMIN_JWKS_URL}`
      : config.ADMIN_JWT_SECRET
        ? "hs256 (ADMIN_JWT_SECRET, redacted)"
        : `hs256 (generated in ${config.DATA_DIR})`,
    metrics: config.METRICS_TOKEN ? "bearer (METRICS_TOKEN, redacted)" : "public",
    certTtlSeconds: config.CERT_TTL_SECONDS,
    tokenTtlSeconds: config.TOKEN_TTL_SECONDS,
    redeemRateLimit: `${config.REDEEM_RATE_LIMIT} per ${config.REDEEM_RATE_WINDOW_SECONDS} s (${config.RATE_LIMIT_STORE})`,
    oidArc: config.CERT_OID_ARC,
  };
}

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ level: config.LOG_LEVEL, pretty: config.LOG_PRETTY });
  logger.info({ config: summary(config) }, "starting");
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    service = await startService(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, "start failed");
    process.exit(1);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceSeconds: config.SHUTDOWN_GRACE_SECONDS }, "stopping");
    try {
      await service.stop();
      logger.info("stopped");
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, "stop failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  // Logged only once the signal handlers are in place: supervisors and tests may send SIGTERM as
  // soon as they read this line.
  logger.info(
    { url: service.url, publicUrl: config.publicUrl, caFingerprint: service.caFingerprint },
    "listening",
  );
}

await main();
