// (d): the redeem route's rejections (410 used token, 404 unknown token, 404 bad checksum, 429)
// against a bare Hono app that returns the same statuses over the same TLS setup.
import path from "node:path";
import { generateToken } from "../src/enrollment/token-format.ts";
import { generateKey, makeCsr } from "../test/support/csr.ts";
import { REPO_ROOT, type Runtime, startChildServer } from "./child-server.ts";
import { type BenchContext, POOL_MAX, UNLIMITED_RATE } from "./context.ts";
import { cpuMeter, postgresCpuMeter } from "./cpu.ts";
import { createRedeemTokens } from "./fixtures.ts";
import { httpTarget } from "./http-client.ts";
import { createDatabase, freePort } from "./infra.ts";
import { type LoadResult, runLoad } from "./load.ts";
import { progress } from "./report.ts";
import { type BenchService, startBenchService } from "./service.ts";

const CONCURRENCY = 16;
const MIN_RATIO = 0.5;

interface RejectionCase {
  name: string;
  status: number;
  /** Path on the service. */
  servicePath: string;
  /** Path on the bare app that returns the same status. */
  barePath: string;
  /** Sent to the service with the low rate limit. */
  limited?: boolean;
}

async function hammer(
  url: string,
  ca: string,
  path: string,
  body: string,
  options: { name: string; status: number; durationMs: number; pid: number; databaseUrl?: string },
): Promise<{ result: LoadResult; cpuMs: Record<string, number> }> {
  const target = httpTarget(url, { connections: CONCURRENCY, ca });
  const stopMeter = cpuMeter({ server: options.pid });
  const stopPostgresMeter = options.databaseUrl
    ? await postgresCpuMeter(options.databaseUrl)
    : undefined;
  try {
    const result = await runLoad({
      name: options.name,
      concurrency: CONCURRENCY,
      durationMs: options.durationMs,
      maxRequests: 1_000_000,
      expectedStatus: options.status,
      send: async () => (await target.send({ method: "POST", path, body })).status,
    });
    const cpuMs = stopMeter();
    if (stopPostgresMeter) cpuMs.postgres = await stopPostgresMeter();
    return { result, cpuMs };
  } finally {
    await target.close();
  }
}

/** Redeems one token, so that the service returns 410 when it is presented again. */
async function usedToken(ctx: BenchContext, service: BenchService, databaseUrl: string) {
  const [token] = await createRedeemTokens(databaseUrl, 1);
  const target = httpTarget(service.url, { connections: 1, ca: ctx.tls.certPem });
  try {
    const body = JSON.stringify({ csr: ctx.csrPem });
    const path = `/api/federation/enrollment/${token}`;
    const response = await target.send({ method: "POST", path, body });
    if (response.status !== 201) throw new Error(`redeem returned ${response.status}`);
  } finally {
    await target.close();
  }
  return token as string;
}

export async function rejections(ctx: BenchContext, runtime: Runtime): Promise<void> {
  const { settings, report } = ctx;
  const suite = "rejections";
  const database = await createDatabase();
  const common = {
    runtime,
    workDir: ctx.workDir,
    tls: ctx.tls,
    databaseUrl: database.url,
    extraEnv: { DATABASE_POOL_MAX: String(POOL_MAX) },
  };
  const open = await startBenchService({ ...common, redeemRateLimit: UNLIMITED_RATE });
  // The limit of 1 per window makes every request after the first one a 429.
  const limited = await startBenchService({ ...common, redeemRateLimit: 1 });
  const bare = await startChildServer({
    runtime,
    script: path.join(REPO_ROOT, "bench/baselines/bare-hono.ts"),
    port: await freePort(),
    env: { TLS_CERT_FILE: ctx.tls.certPath, TLS_KEY_FILE: ctx.tls.keyPath },
    readyPath: "/readyz",
    ca: ctx.tls.certPem,
    logPath: path.join(ctx.workDir, `bare-hono-${runtime}.log`),
  });
  try {
    const used = await usedToken(ctx, open, database.url);
    const unknown = generateToken();
    // The last character is part of the CRC-32 checksum, so changing it breaks the checksum.
    const badChecksum = unknown.slice(0, -1) + (unknown.endsWith("0") ? "1" : "0");
    const cases: RejectionCase[] = [
      { name: "410 used token", status: 410, servicePath: used, barePath: "/gone/t" },
      { name: "404 unknown token", status: 404, servicePath: unknown, barePath: "/missing/t" },
      { name: "404 bad checksum", status: 404, servicePath: badChecksum, barePath: "/missing/t" },
      { name: "429 rate limited", status: 429, servicePath: unknown, barePath: "/limited/t" },
    ].map((item) => ({
      ...item,
      servicePath: `/api/federation/enrollment/${item.servicePath}`,
      limited: item.status === 429,
    }));
    // A key other than the one that redeemed the token: the same key would get the certificate
    // again (200) within the replay window instead of 410.
    const body = JSON.stringify({ csr: await makeCsr(await generateKey("ec-p256")) });
    const durationMs = settings.seconds * 1000;
    for (const item of cases) {
      for (let repeat = 0; repeat <= settings.repeats; repeat++) {
        // Repeat 0 is a warm-up of both servers and is not reported.
        const labels = { suite: `${suite} ${item.name}`, runtime, repeat };
        if (repeat > 0) progress(`${labels.suite} ${runtime}: repeat ${repeat}`);
        const runMs = repeat === 0 ? settings.warmupMs : durationMs;
        const service = item.limited ? limited : open;
        const options = { name: item.name, status: item.status, durationMs: runMs };
        const baseline = await hammer(bare.url, ctx.tls.certPem, item.barePath, body, {
          ...options,
          pid: bare.pid,
        });
        const measured = await hammer(service.url, ctx.tls.certPem, item.servicePath, body, {
          ...options,
          pid: service.pid,
          databaseUrl: database.url,
        });
        if (repeat === 0) continue;
        report.measurement({ ...labels, subject: "bare-hono" }, baseline.result, baseline.cpuMs);
        report.measurement({ ...labels, subject: "service" }, measured.result, measured.cpuMs);
        report.compare(
          { suite: labels.suite, runtime, concurrency: CONCURRENCY, repeat },
          "rps",
          measured.result,
          baseline.result,
          {
            name: `${suite} ${item.name} throughput ratio (${runtime})`,
            compare: ">=",
            limit: MIN_RATIO,
            unit: "",
          },
        );
      }
    }
  } finally {
    await Promise.all([open.stop(), limited.stop(), bare.stop()]);
    await database.drop();
  }
}
