// CPU time of processes from /proc (Linux only), to report how much CPU each request costs in the
// service, in step-ca and in the load generator.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import postgres from "postgres";
import { SERVER_URL } from "./infra.ts";

const CLOCK_TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

/** User plus system CPU time of `pid` in milliseconds, or NaN once it has exited. */
export function processCpuMs(pid: number): number {
  try {
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    const fields = (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** Pids of this process's children whose command name is `comm`, such as "step-ca". */
export function childPids(comm: string): number[] {
  const pids: number[] = [];
  for (const task of readdirSync("/proc/self/task")) {
    const children = readFileSync(`/proc/self/task/${task}/children`, "utf8").trim();
    for (const pid of children.split(" ").filter(Boolean).map(Number)) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === comm) pids.push(pid);
      } catch {
        // The child exited between the two reads.
      }
    }
  }
  return pids;
}

/** CPU milliseconds used by each named process between start() and the returned stop(). */
export function cpuMeter(pids: Record<string, number | undefined>) {
  const ownStart = process.cpuUsage();
  const start = Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, pid ? processCpuMs(pid) : Number.NaN]),
  );
  return function stop(): Record<string, number> {
    const own = process.cpuUsage(ownStart);
    const used: Record<string, number> = {
      loadGenerator: Math.round((own.user + own.system) / 1000),
    };
    for (const [name, pid] of Object.entries(pids)) {
      if (pid) used[name] = Math.round(processCpuMs(pid) - (start[name] as number));
    }
    return used;
  };
}

/**
 * Measures the CPU time of the PostgreSQL backends connected to the database of `databaseUrl`.
 * Backends that connect during the run count in full. The query goes through the server's
 * maintenance database, so the meter's own connection is not counted.
 */
export async function postgresCpuMeter(databaseUrl: string): Promise<() => Promise<number>> {
  const database = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  const sql = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  const backendPids = async () => {
    const rows = await sql<{ pid: number }[]>`
      select pid from pg_stat_activity where datname = ${database}
    `;
    return rows.map((row) => row.pid);
  };
  const start = new Map((await backendPids()).map((pid) => [pid, processCpuMs(pid)]));
  return async function stop() {
    let total = 0;
    try {
      for (const pid of await backendPids()) {
        const used = processCpuMs(pid) - (start.get(pid) ?? 0);
        if (Number.isFinite(used)) total += used;
      }
    } finally {
      await sql.end();
    }
    return Math.round(total);
  };
}
