// Starts src/main.ts as a child process with the benchmark's settings.
import { mkdtemp } from "node:fs/promises";
import path from "node:path";
import type { StepCaInstance } from "../test/support/step-ca.ts";
import { type ChildServer, REPO_ROOT, type Runtime, startChildServer } from "./child-server.ts";
import { freePort, type ServerCertificate } from "./infra.ts";

/** Admin secret of every benchmark service; the services only listen on loopback. */
export const BENCH_ADMIN_SECRET = "bench-admin-secret-0123456789-0123456789";
/**
 * A private enterprise number arc. step-ca 0.19 rejects OID arcs of 2^31 and above, so the
 * default UUID arc cannot be used with it. Both CAs get this arc, so their certificates match.
 */
export const BENCH_OID_ARC = "1.3.6.1.4.1.55555.1";
export const CERT_TTL_SECONDS = 3600;

/**
 * Checkout whose src/main.ts is benchmarked. BENCH_SERVICE_DIR points it at another copy, such
 * as the code before a change, to measure before and after with the same load generator.
 */
const SERVICE_ROOT = path.resolve(process.env.BENCH_SERVICE_DIR ?? REPO_ROOT);

export interface ServiceOptions {
  runtime: Runtime;
  /** Parent directory of the service's data directory and log. */
  workDir: string;
  tls: ServerCertificate;
  /** PostgreSQL URL; PGlite in the data directory when absent. */
  databaseUrl?: string;
  stepCa?: StepCaInstance;
  redeemRateLimit: number;
  /** Use the built-in CA's own server certificate instead of `tls`, as a default install does. */
  defaultTls?: boolean;
  extraEnv?: Record<string, string>;
  /** Data directory of an earlier start, to start again on the same database and CA keys. */
  dataDir?: string;
  /** Directory for a CPU profile of the service, written when it stops. */
  cpuProfileDir?: string;
}

export interface BenchService extends ChildServer {
  dataDir: string;
  logPath: string;
  usesStepCa: boolean;
}

export async function startBenchService(options: ServiceOptions): Promise<BenchService> {
  const dataDir =
    options.dataDir ?? (await mkdtemp(path.join(options.workDir, `service-${options.runtime}-`)));
  const logPath = path.join(dataDir, "service.log");
  const env: Record<string, string> = {
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    LOG_LEVEL: "info",
    ADMIN_JWT_SECRET: BENCH_ADMIN_SECRET,
    CERT_OID_ARC: BENCH_OID_ARC,
    CERT_TTL_SECONDS: String(CERT_TTL_SECONDS),
    REDEEM_RATE_LIMIT: String(options.redeemRateLimit),
    SHUTDOWN_GRACE_SECONDS: "2",
    ...(options.defaultTls
      ? {}
      : { TLS_CERT_FILE: options.tls.certPath, TLS_KEY_FILE: options.tls.keyPath }),
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...(options.stepCa
      ? {
          STEP_CA_URL: options.stepCa.url,
          STEP_CA_ROOT: options.stepCa.rootPath,
          STEP_CA_PROVISIONER: options.stepCa.provisionerName,
          STEP_CA_PROVISIONER_KEY: options.stepCa.provisionerKeyPath,
        }
      : {}),
    ...options.extraEnv,
  };
  const server = await startChildServer({
    runtime: options.runtime,
    script: path.join(SERVICE_ROOT, "src/main.ts"),
    port: await freePort(),
    env,
    runtimeArgs: options.cpuProfileDir
      ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`]
      : [],
    readyPath: "/readyz",
    ca: options.defaultTls ? undefined : options.tls.certPem,
    logPath,
  });
  return { ...server, dataDir, logPath, usesStepCa: options.stepCa !== undefined };
}
