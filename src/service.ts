import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { createApp } from "./app.ts";
import type { CertificateAuthority } from "./ca/authority.ts";
import { BuiltinCa } from "./ca/builtin/builtin-ca.ts";
import { certificateFingerprint } from "./ca/fingerprint.ts";
import { StepCa } from "./ca/step-ca/step-ca.ts";
import type { Config } from "./config.ts";
import { connectDatabase, type Database } from "./db/connect.ts";
import { runMigrations } from "./db/migrate.ts";
import type { AdminKeySource } from "./http/middleware/admin-auth.ts";
import { MemoryRateLimitStore, PostgresRateLimitStore } from "./http/rate-limit-store.ts";
import { type RevocationRetrier, startRevocationRetrier } from "./jobs/revocation-retrier.ts";
import { registerPoolMetrics } from "./metrics/database-pool.ts";
import { ServiceMetrics } from "./metrics/metrics.ts";
import { certRevocationSettings } from "./repository/revoke-grant.ts";
import { loadOrCreateAdminSecret } from "./server/admin-secret.ts";
import { clientIpResolver, listen, type RunningServer } from "./server/listen.ts";
import { serverTls } from "./server/tls.ts";

export interface Service {
  url: string;
  port: number;
  ca: CertificateAuthority;
  caFingerprint: string;
  database: Database;
  /** Stops accepting, lets in-flight requests finish within the grace period, closes the database. */
  stop(): Promise<void>;
}

async function adminKeySource(config: Config): Promise<AdminKeySource> {
  if (config.ADMIN_JWKS_URL) return { kind: "jwks", url: config.ADMIN_JWKS_URL };
  if (config.ADMIN_JWT_SECRET) return { kind: "secret", secret: config.ADMIN_JWT_SECRET };
  return { kind: "secret", secret: await loadOrCreateAdminSecret(config.DATA_DIR) };
}

async function openCa(config: Config, database: Database): Promise<CertificateAuthority> {
  if (
    config.STEP_CA_URL &&
    config.STEP_CA_ROOT &&
    config.STEP_CA_PROVISIONER &&
    config.STEP_CA_PROVISIONER_KEY
  ) {
    return StepCa.open({
      url: config.STEP_CA_URL,
      rootPem: await readFile(config.STEP_CA_ROOT, "utf8"),
      provisionerName: config.STEP_CA_PROVISIONER,
      provisionerKey: JSON.parse(await readFile(config.STEP_CA_PROVISIONER_KEY, "utf8")),
      oidArc: config.CERT_OID_ARC,
    });
  }
  return BuiltinCa.open(database.sql, {
    dir: path.join(config.DATA_DIR, "ca"),
    oidArc: config.CERT_OID_ARC,
    publicUrl: config.publicUrl,
  });
}

/** Starts the service: database, migrations, CA, HTTP(S) listener. */
export async function startService(config: Config, logger: Logger): Promise<Service> {
  await mkdir(config.DATA_DIR, { recursive: true, mode: 0o700 });
  // The first start of the embedded database takes several seconds while PGlite initializes.
  logger.info({ embedded: !config.DATABASE_URL }, "opening database");
  const database = await connectDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolMax: config.DATABASE_POOL_MAX,
  });
  let server: RunningServer | undefined;
  let stopTls = () => {};
  let retrier: RevocationRetrier | undefined;
  try {
    await runMigrations(database.url);
    const ca = await openCa(config, database);
    const metrics = new ServiceMetrics();
    registerPoolMetrics(metrics.registry, database.sql);
    const app = createApp({
      config,
      sql: database.sql,
      ca,
      logger,
      metrics,
      adminKeys: await adminKeySource(config),
      clientIp: await clientIpResolver(config.TRUST_PROXY),
      rateLimitStore:
        config.RATE_LIMIT_STORE === "postgres"
          ? new PostgresRateLimitStore(database.sql)
          : new MemoryRateLimitStore(),
    });
    const tls = await serverTls(config, ca, logger);
    server = await listen({
      fetch: app.fetch,
      port: config.PORT,
      hostname: config.HOST,
      tls: tls?.initial,
    });
    stopTls = tls?.startRenewal(server) ?? stopTls;
    // Retries CA revocations that failed when their grant was revoked.
    retrier = startRevocationRetrier(
      { sql: database.sql, ca, logger, settings: certRevocationSettings(config) },
      { intervalSeconds: config.REVOCATION_RETRY_INTERVAL_SECONDS },
    );
    const runningRetrier = retrier;
    const running = server;
    const scheme = tls ? "https" : "http";
    return {
      url: `${scheme}://${config.HOST.includes(":") ? `[${config.HOST}]` : config.HOST}:${running.port}`,
      port: running.port,
      ca,
      caFingerprint: certificateFingerprint(ca.roots()[0] as string),
      database,
      async stop() {
        stopTls();
        const drained = await running.close(config.SHUTDOWN_GRACE_SECONDS * 1000);
        if (!drained) {
          logger.warn(
            { graceSeconds: config.SHUTDOWN_GRACE_SECONDS },
            "shutdown grace period ended; closed the connections of unfinished requests",
          );
        }
        await runningRetrier.stop();
        await database.close();
      },
    };
  } catch (error) {
    stopTls();
    await retrier?.stop();
    await server?.close().catch(() => {});
    await database.close().catch(() => {});
    throw error;
  }
}
