// Description of the machine behind the numbers: CPU, memory, load at the start and versions.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { REPO_ROOT } from "./child-server.ts";
import { SERVER_URL } from "./infra.ts";

const execFileAsync = promisify(execFile);

async function commandOutput(command: string, args: string[]): Promise<string> {
  try {
    return (await execFileAsync(command, args)).stdout.trim();
  } catch (error) {
    return `unavailable (${error instanceof Error ? error.message : String(error)})`;
  }
}

async function postgresVersion(): Promise<string> {
  const sql = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ version: string }[]>`select version()`;
    return row?.version ?? "unknown";
  } finally {
    await sql.end();
  }
}

export async function describeMachine(stepCaBin: string) {
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown";
  return {
    nproc: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    cpuModel,
    kernel: os.release(),
    loadAverageAtStart: os.loadavg().map((value) => Math.round(value * 100) / 100),
    node: process.version,
    bun: await commandOutput(path.join(REPO_ROOT, "node_modules/.bin/bun"), ["--version"]),
    postgres: await postgresVersion(),
    stepCa: await commandOutput(stepCaBin, ["--version"]),
  };
}
