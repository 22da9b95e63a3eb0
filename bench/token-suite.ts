// (c): token creation through the admin API against the same statements sent with raw
// postgres.js, at the same concurrency and pool size.
import path from "node:path";
import { signAdminToken } from "../src/server/admin-secret.ts";
import type { TokenInsertJob } from "./baselines/token-insert.ts";
import { runChildJob } from "./child-job.ts";
import type { Runtime } from "./child-server.ts";
import { type BenchContext, CONCURRENCY_LEVELS, POOL_MAX, UNLIMITED_RATE } from "./context.ts";
import { cpuMeter, postgresCpuMeter } from "./cpu.ts";
import { createPendingGrants } from "./fixtures.ts";
import { httpTarget } from "./http-client.ts";
import { createDatabase } from "./infra.ts";
import { type LoadResult, runLoad } from "./load.ts";
import { progress } from "./report.ts";
import { BENCH_ADMIN_SECRET, type BenchService, startBenchService } from "./service.ts";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");
const TOKEN_TTL_SECONDS = 900;
const MIN_RATIO = 0.5;

async function createThroughApi(
  ctx: BenchContext,
  service: BenchService,
  databaseUrl: string,
  grantIds: string[],
  options: { name: string; concurrency: number; durationMs: number },
): Promise<{ result: LoadResult; cpuMs: Record<string, number> }> {
  const adminJwt = await signAdminToken({
    secret: BENCH_ADMIN_SECRET,
    subject: "bench",
    scope: "federation:admin",
    ttlSeconds: 3600,
  });
  const target = httpTarget(service.url, { connections: options.concurrency, ca: ctx.tls.certPem });
  const headers = { authorization: `Bearer ${adminJwt}` };
  const stopMeter = cpuMeter({ service: service.pid });
  const stopPostgresMeter = await postgresCpuMeter(databaseUrl);
  try {
    const result = await runLoad({
      name: options.name,
      concurrency: options.concurrency,
      durationMs: options.durationMs,
      maxRequests: 1_000_000,
      expectedStatus: 201,
      send: async (index) => {
        const grantId = grantIds[index % grantIds.length];
        const body = JSON.stringify({ grantId, ttlSeconds: TOKEN_TTL_SECONDS });
        const path = "/api/federation/enrollment/tokens";
        return (await target.send({ method: "POST", path, body, headers })).status;
      },
    });
    const cpuMs = stopMeter();
    return { result, cpuMs: { ...cpuMs, postgres: await stopPostgresMeter() } };
  } finally {
    await target.close();
  }
}

export async function tokenCreation(ctx: BenchContext, runtime: Runtime): Promise<void> {
  const { settings, report } = ctx;
  const suite = "token-create";
  const database = await createDatabase();
  const service = await startBenchService({
    runtime,
    workDir: ctx.workDir,
    tls: ctx.tls,
    databaseUrl: database.url,
    redeemRateLimit: UNLIMITED_RATE,
    extraEnv: { DATABASE_POOL_MAX: String(POOL_MAX) },
  });
  try {
    // One grant per worker, so that workers do not queue on one grant's row lock.
    const grantIds = await createPendingGrants(database.url, 16);
    progress(`${suite} ${runtime}: warm-up`);
    await createThroughApi(ctx, service, database.url, grantIds, {
      name: "warmup",
      concurrency: 16,
      durationMs: settings.warmupMs,
    });
    for (const concurrency of CONCURRENCY_LEVELS) {
      for (let repeat = 1; repeat <= settings.repeats; repeat++) {
        progress(`${suite} ${runtime}: concurrency ${concurrency}, repeat ${repeat}`);
        const labels = { suite, runtime, repeat };
        const job: TokenInsertJob = {
          databaseUrl: database.url,
          poolMax: POOL_MAX,
          grantIds,
          ttlSeconds: TOKEN_TTL_SECONDS,
          concurrency,
          warmupMs: settings.warmupMs,
          durationMs: settings.seconds * 1000,
          maxRequests: 1_000_000,
        };
        const script = path.join(REPO_ROOT, "bench/baselines/token-insert.ts");
        const baseline = await runChildJob<LoadResult>(runtime, script, job);
        report.measurement({ ...labels, subject: "postgres-js-transaction" }, baseline);

        const measured = await createThroughApi(ctx, service, database.url, grantIds, {
          name: "create-token",
          concurrency,
          durationMs: settings.seconds * 1000,
        });
        report.measurement({ ...labels, subject: "service" }, measured.result, measured.cpuMs);
        report.compare({ suite, runtime, concurrency, repeat }, "rps", measured.result, baseline, {
          name: `${suite} c${concurrency} throughput ratio (${runtime})`,
          compare: ">=",
          limit: MIN_RATIO,
          unit: "",
        });
      }
    }
  } finally {
    await service.stop();
    await database.drop();
  }
}
