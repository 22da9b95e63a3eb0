// (e): cold start, from spawn to the first 200 on /readyz, on embedded PGlite and on PostgreSQL,
// with the default configuration (built-in CA, which also issues the server certificate).
import { rm } from "node:fs/promises";
import type { Runtime } from "./child-server.ts";
import { type BenchContext, UNLIMITED_RATE } from "./context.ts";
import { createDatabase } from "./infra.ts";
import { progress } from "./report.ts";
import { startBenchService } from "./service.ts";

type Database = "pglite" | "postgresql";

/**
 * Starts the service twice on one data directory: "first" creates the database schema and the
 * CA's keys, "restart" finds them in place.
 */
async function startTwice(ctx: BenchContext, runtime: Runtime, database: Database) {
  const postgres = database === "postgresql" ? await createDatabase() : undefined;
  const options = {
    runtime,
    workDir: ctx.workDir,
    tls: ctx.tls,
    databaseUrl: postgres?.url,
    redeemRateLimit: UNLIMITED_RATE,
    defaultTls: true,
  };
  try {
    const first = await startBenchService(options);
    await first.stop();
    const restart = await startBenchService({ ...options, dataDir: first.dataDir });
    await restart.stop();
    await rm(first.dataDir, { recursive: true, force: true });
    return { first: first.readyMs, restart: restart.readyMs };
  } finally {
    await postgres?.drop();
  }
}

export async function coldStart(ctx: BenchContext, runtime: Runtime): Promise<void> {
  for (const database of ["pglite", "postgresql"] as const) {
    progress(`startup ${runtime}: ${database}`);
    const times = await startTwice(ctx, runtime, database);
    for (const [start, ms] of Object.entries(times)) {
      ctx.report.value(
        { suite: "startup", runtime, database, start, metric: "spawnToReady" },
        ms,
        "ms",
      );
    }
  }
}
