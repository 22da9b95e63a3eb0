// Baseline for redeem with the built-in CA: BuiltinCa.sign called in-process, with the CSR the
// service gets, at the same concurrency. No HTTP, database or CSR check is involved.
import "reflect-metadata";
import { randomUUID } from "node:crypto";
import { BuiltinCa } from "../../src/ca/builtin/builtin-ca.ts";
import { createPool } from "../../src/db/connect.ts";
import { readJob } from "../child-job.ts";
import { runLoad } from "../load.ts";

export interface BuiltinSignJob {
  caDir: string;
  /** Only handed to BuiltinCa.open, which needs it for revocations; signing never queries it. */
  databaseUrl: string;
  csrPem: string;
  oidArc: string;
  lifetimeSeconds: number;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  maxRequests: number;
}

const job = readJob<BuiltinSignJob>();
const sql = createPool(job.databaseUrl, 1);
const ca = await BuiltinCa.open(sql, {
  dir: job.caDir,
  oidArc: job.oidArc,
  publicUrl: "https://127.0.0.1",
});
const load = (name: string, durationMs: number) =>
  runLoad({
    name,
    concurrency: job.concurrency,
    durationMs,
    maxRequests: job.maxRequests,
    expectedStatus: 201,
    send: async () => {
      await ca.sign({
        csrPem: job.csrPem,
        commonName: "bench-peer",
        peerId: randomUUID(),
        grantId: randomUUID(),
        lifetimeSeconds: job.lifetimeSeconds,
      });
      return 201;
    },
  });

await load("warmup", job.warmupMs);
const result = await load("builtin-sign", job.durationMs);
await sql.end({ timeout: 1 });
console.log(JSON.stringify(result));
