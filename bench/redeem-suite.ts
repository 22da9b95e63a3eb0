// (a) and (b): redeem end to end through the service over HTTPS, against the CA's sign alone.
// (e) peak RSS of the service is read after the step-ca runs.
import path from "node:path";
import type { BuiltinSignJob } from "./baselines/builtin-sign.ts";
import { runChildJob } from "./child-job.ts";
import type { Runtime } from "./child-server.ts";
import {
  type BenchContext,
  CONCURRENCY_LEVELS,
  POOL_MAX,
  preparedCount,
  UNLIMITED_RATE,
} from "./context.ts";
import { cpuMeter, postgresCpuMeter } from "./cpu.ts";
import { createRedeemTokens } from "./fixtures.ts";
import { httpTarget } from "./http-client.ts";
import { createDatabase } from "./infra.ts";
import { type LoadResult, runLoad } from "./load.ts";
import { progress, type Target } from "./report.ts";
import {
  BENCH_OID_ARC,
  type BenchService,
  CERT_TTL_SECONDS,
  startBenchService,
} from "./service.ts";
import { measureDirectSign } from "./step-ca-direct.ts";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");
const MAX_RSS_MB = 150;

/** Redeems prepared tokens through the service; every request uses a token of its own. */
async function redeemThroughService(
  ctx: BenchContext,
  service: BenchService,
  databaseUrl: string,
  options: { name: string; concurrency: number; durationMs: number; count: number },
): Promise<{ result: LoadResult; cpuMs: Record<string, number> }> {
  const tokens = await createRedeemTokens(databaseUrl, options.count);
  const body = JSON.stringify({ csr: ctx.csrPem });
  const target = httpTarget(service.url, { connections: options.concurrency, ca: ctx.tls.certPem });
  const stepCaPid = service.usesStepCa ? ctx.stepCaPid : undefined;
  const stopMeter = cpuMeter({ service: service.pid, stepCa: stepCaPid });
  const stopPostgresMeter = await postgresCpuMeter(databaseUrl);
  try {
    const result = await runLoad({
      name: options.name,
      concurrency: options.concurrency,
      durationMs: options.durationMs,
      maxRequests: tokens.length,
      expectedStatus: 201,
      send: async (index) => {
        const path = `/api/federation/enrollment/${tokens[index]}`;
        return (await target.send({ method: "POST", path, body })).status;
      },
    });
    const cpuMs = stopMeter();
    return { result, cpuMs: { ...cpuMs, postgres: await stopPostgresMeter() } };
  } finally {
    await target.close();
  }
}

/** (a): the service with step-ca against POST /1.0/sign sent straight to step-ca. */
export async function redeemWithStepCa(ctx: BenchContext, runtime: Runtime): Promise<void> {
  const { settings, report } = ctx;
  const suite = "redeem-step-ca";
  const database = await createDatabase();
  const service = await startBenchService({
    runtime,
    workDir: ctx.workDir,
    tls: ctx.tls,
    databaseUrl: database.url,
    stepCa: ctx.stepCa,
    redeemRateLimit: UNLIMITED_RATE,
    extraEnv: { DATABASE_POOL_MAX: String(POOL_MAX) },
    cpuProfileDir: settings.cpuProfileDir,
  });
  try {
    const direct = (name: string, concurrency: number, durationMs: number, count: number) =>
      measureDirectSign(name, {
        stepCa: ctx.stepCa,
        csrPem: ctx.csrPem,
        oidArc: BENCH_OID_ARC,
        lifetimeSeconds: CERT_TTL_SECONDS,
        concurrency,
        durationMs,
        maxRequests: count,
      });
    const warmCount = preparedCount(300, settings.warmupMs / 1000);
    progress(`${suite} ${runtime}: warm-up`);
    const directWarm = await direct("warmup", 16, settings.warmupMs, warmCount);
    const serviceWarm = await redeemThroughService(ctx, service, database.url, {
      name: "warmup",
      concurrency: 16,
      durationMs: settings.warmupMs,
      count: warmCount,
    });

    for (const concurrency of CONCURRENCY_LEVELS) {
      for (let repeat = 1; repeat <= settings.repeats; repeat++) {
        progress(`${suite} ${runtime}: concurrency ${concurrency}, repeat ${repeat}`);
        const durationMs = settings.seconds * 1000;
        const labels = { suite, runtime, repeat };
        const stopMeter = cpuMeter({ stepCa: ctx.stepCaPid });
        const count = preparedCount(directWarm.rps, settings.seconds);
        const baseline = await direct("step-ca-sign", concurrency, durationMs, count);
        report.measurement({ ...labels, subject: "step-ca-direct" }, baseline, stopMeter());

        const measured = await redeemThroughService(ctx, service, database.url, {
          name: "redeem",
          concurrency,
          durationMs,
          count: preparedCount(serviceWarm.result.rps, settings.seconds),
        });
        report.measurement({ ...labels, subject: "service" }, measured.result, measured.cpuMs);
        const compared = { suite, runtime, concurrency, repeat };
        const throughputTarget: Target = {
          name: `${suite} c16 throughput ratio (${runtime})`,
          compare: ">=",
          limit: 0.8,
          unit: "",
        };
        const target = concurrency === 16 ? throughputTarget : undefined;
        report.compare(compared, "rps", measured.result, baseline, target);
        if (concurrency === 1) {
          report.compare(compared, "p50Ms", measured.result, baseline, {
            name: `${suite} c1 added p50 (${runtime})`,
            compare: "<=",
            limit: 1.5,
            unit: "ms",
          });
        }
      }
    }
    const peakMb = (await service.peakRssKb()) / 1024;
    report.value({ suite: "resources", runtime, metric: "peakRss", during: suite }, peakMb, "MB", {
      name: `service peak RSS during ${suite} (${runtime})`,
      compare: "<=",
      limit: MAX_RSS_MB,
      unit: "MB",
    });
  } finally {
    await service.stop();
    await database.drop();
  }
}

/** (b): the service with the built-in CA against BuiltinCa.sign in a process of the runtime. */
export async function redeemWithBuiltinCa(ctx: BenchContext, runtime: Runtime): Promise<void> {
  const { settings, report } = ctx;
  const suite = "redeem-builtin";
  const database = await createDatabase();
  const service = await startBenchService({
    runtime,
    workDir: ctx.workDir,
    tls: ctx.tls,
    databaseUrl: database.url,
    redeemRateLimit: UNLIMITED_RATE,
    extraEnv: { DATABASE_POOL_MAX: String(POOL_MAX) },
    cpuProfileDir: settings.cpuProfileDir,
  });
  try {
    progress(`${suite} ${runtime}: warm-up`);
    const warm = await redeemThroughService(ctx, service, database.url, {
      name: "warmup",
      concurrency: 16,
      durationMs: settings.warmupMs,
      count: preparedCount(500, settings.warmupMs / 1000),
    });
    for (const concurrency of CONCURRENCY_LEVELS) {
      for (let repeat = 1; repeat <= settings.repeats; repeat++) {
        progress(`${suite} ${runtime}: concurrency ${concurrency}, repeat ${repeat}`);
        const labels = { suite, runtime, repeat };
        const job: BuiltinSignJob = {
          caDir: path.join(service.dataDir, "ca"),
          databaseUrl: database.url,
          csrPem: ctx.csrPem,
          oidArc: BENCH_OID_ARC,
          lifetimeSeconds: CERT_TTL_SECONDS,
          concurrency,
          warmupMs: settings.warmupMs,
          durationMs: settings.seconds * 1000,
          maxRequests: 1_000_000,
        };
        const script = path.join(REPO_ROOT, "bench/baselines/builtin-sign.ts");
        const baseline = await runChildJob<LoadResult>(runtime, script, job);
        report.measurement({ ...labels, subject: "builtin-sign-in-process" }, baseline);

        const measured = await redeemThroughService(ctx, service, database.url, {
          name: "redeem",
          concurrency,
          durationMs: settings.seconds * 1000,
          count: preparedCount(warm.result.rps, settings.seconds),
        });
        report.measurement({ ...labels, subject: "service" }, measured.result, measured.cpuMs);
        const compared = { suite, runtime, concurrency, repeat };
        report.compare(compared, "rps", measured.result, baseline);
        if (concurrency === 1) report.compare(compared, "p50Ms", measured.result, baseline);
      }
    }
  } finally {
    await service.stop();
    await database.drop();
  }
}
