// Benchmark entry point (npm run bench): starts PostgreSQL if needed, step-ca, and the service
// under each runtime, then prints one JSON line per measurement, ratio and target. Runs under
// Node, because the load generator uses undici with a custom CA, which Bun's undici shim ignores.
// Every load goes to 127.0.0.1 and every run is bounded in time and in requests.
import "reflect-metadata";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateKey, makeCsr } from "../test/support/csr.ts";
import { locateStepCa, startStepCa } from "../test/support/step-ca.ts";
import type { Runtime } from "./child-server.ts";
import type { BenchContext, BenchSettings } from "./context.ts";
import { childPids } from "./cpu.ts";
import { createServerCertificate, ensurePostgres } from "./infra.ts";
import { describeMachine } from "./machine.ts";
import { redeemWithBuiltinCa, redeemWithStepCa } from "./redeem-suite.ts";
import { rejections } from "./rejection-suite.ts";
import { progress, Report } from "./report.ts";
import { coldStart } from "./startup-suite.ts";
import { tokenCreation } from "./token-suite.ts";

const SUITES: Record<string, (ctx: BenchContext, runtime: Runtime) => Promise<void>> = {
  "redeem-step-ca": redeemWithStepCa,
  "redeem-builtin": redeemWithBuiltinCa,
  "token-create": tokenCreation,
  rejections,
  startup: coldStart,
};

function readSettings(): BenchSettings {
  const list = (name: string, fallback: string) =>
    (process.env[name] ?? fallback).split(",").filter(Boolean);
  const positive = (name: string, fallback: number) => {
    const value = Number(process.env[name] ?? fallback);
    if (!(value > 0))
      throw new Error(`${name} must be a positive number, got ${process.env[name]}`);
    return value;
  };
  const runtimes = list("BENCH_RUNTIMES", "bun,node");
  for (const runtime of runtimes) {
    if (runtime !== "bun" && runtime !== "node") {
      throw new Error(`BENCH_RUNTIMES may list bun and node, got ${runtime}`);
    }
  }
  const suites = list("BENCH_SUITES", Object.keys(SUITES).join(","));
  for (const suite of suites) {
    if (!SUITES[suite]) {
      throw new Error(`unknown suite ${suite} in BENCH_SUITES; known: ${Object.keys(SUITES)}`);
    }
  }
  return {
    runtimes: runtimes as Runtime[],
    seconds: positive("BENCH_SECONDS", 4),
    repeats: Math.round(positive("BENCH_REPEATS", 2)),
    warmupMs: positive("BENCH_WARMUP_MS", 1500),
    suites,
    cpuProfileDir: process.env.BENCH_CPU_PROFILE_DIR,
  };
}

async function main(): Promise<number> {
  const settings = readSettings();
  const timeoutMinutes = Number(process.env.BENCH_TIMEOUT_MINUTES ?? 20);
  // A watchdog for the whole run, on top of the bounds of each load loop.
  setTimeout(() => {
    progress(`stopping: the run took longer than ${timeoutMinutes} minutes`);
    process.exit(1);
  }, timeoutMinutes * 60_000).unref();

  progress("starting PostgreSQL if needed and locating step-ca");
  await ensurePostgres();
  const located = await locateStepCa();
  if ("skip" in located) throw new Error(located.skip);

  const workDir = await mkdtemp(path.join(tmpdir(), "fe-bench-"));
  const report = new Report();
  const stepCa = await startStepCa({ maxCertDurationSeconds: 86_400 });
  try {
    const ctx: BenchContext = {
      settings,
      workDir,
      tls: await createServerCertificate(workDir),
      stepCa,
      stepCaPid: childPids("step-ca")[0],
      csrPem: await makeCsr(await generateKey("ec-p256")),
      report,
    };
    console.log(JSON.stringify({ kind: "machine", ...(await describeMachine(located.bin)) }));
    console.log(JSON.stringify({ kind: "settings", ...settings }));
    for (const runtime of settings.runtimes) {
      for (const suite of settings.suites) await SUITES[suite]?.(ctx, runtime);
    }
  } finally {
    await stepCa.stop();
    await rm(workDir, { recursive: true, force: true });
  }
  const missed = report.summary();
  progress(`done; ${missed} target(s) missed (see the "target" lines)`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
