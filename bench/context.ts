// Settings and shared resources of one benchmark run.
import type { StepCaInstance } from "../test/support/step-ca.ts";
import type { Runtime } from "./child-server.ts";
import type { ServerCertificate } from "./infra.ts";
import type { Report } from "./report.ts";

export interface BenchSettings {
  runtimes: Runtime[];
  /** Length of each measured run. */
  seconds: number;
  /** Each service/baseline pair is measured this many times, back to back. */
  repeats: number;
  /** Unmeasured load before the first measured run of each service or baseline. */
  warmupMs: number;
  /** Suites to run, by name; all when empty. */
  suites: string[];
  /** Directory for CPU profiles of the service, written when each service stops. */
  cpuProfileDir?: string;
}

export interface BenchContext {
  settings: BenchSettings;
  workDir: string;
  tls: ServerCertificate;
  stepCa: StepCaInstance;
  stepCaPid?: number;
  /** One ECDSA P-256 CSR without subject or SANs, valid for any peer. */
  csrPem: string;
  report: Report;
}

/** Concurrency of the latency runs and of the throughput runs. */
export const CONCURRENCY_LEVELS = [1, 16] as const;

/** Connections in the service's PostgreSQL pool, also used by the raw postgres.js baseline. */
export const POOL_MAX = 10;

/** Far above what any run sends from one address, so that only the 429 run is limited. */
export const UNLIMITED_RATE = 1_000_000_000;

/**
 * Requests to prepare for a run at `expectedRps`: single-use tokens have to exist before the
 * clock starts. Twice the expected count, so that a faster run than the estimate still lasts its
 * full duration in most cases.
 */
export function preparedCount(expectedRps: number, seconds: number): number {
  return Math.min(Math.ceil(Math.max(expectedRps, 20) * seconds * 2) + 50, 50_000);
}
