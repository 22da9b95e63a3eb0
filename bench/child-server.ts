// Starts a server script (the service, or a baseline) as a child process under Bun or Node and
// times it from spawn to its first 200 on a readiness path.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { httpTarget } from "./http-client.ts";

export type Runtime = "bun" | "node";

export const REPO_ROOT = path.resolve(import.meta.dirname, "..");

const READY_TIMEOUT_MS = 60_000;
const READY_POLL_MS = 10;
const STOP_TIMEOUT_MS = 10_000;

/**
 * Command line that runs a TypeScript file directly under the runtime, without npm in between, so
 * that the child's pid is the runtime's own. `runtimeArgs` go before the script, such as
 * `--cpu-prof`, which both runtimes accept.
 */
export function runtimeCommand(
  runtime: Runtime,
  script: string,
  runtimeArgs: string[] = [],
): [string, string[]] {
  if (runtime === "bun") {
    return [path.join(REPO_ROOT, "node_modules/.bin/bun"), [...runtimeArgs, script]];
  }
  return [process.execPath, [...runtimeArgs, "--import", "tsx", script]];
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

export interface ChildServer {
  pid: number;
  url: string;
  /** Milliseconds from spawn to the first 200 on the readiness path. */
  readyMs: number;
  /** Peak resident set size of the child so far (VmHWM), in kB. */
  peakRssKb(): Promise<number>;
  stop(): Promise<void>;
}

export interface ChildServerOptions {
  runtime: Runtime;
  script: string;
  port: number;
  env: Record<string, string>;
  runtimeArgs?: string[];
  readyPath: string;
  /** PEM that the server's certificate must chain to; without it the poll skips verification. */
  ca?: string;
  logPath: string;
}

/** Reads VmHWM from /proc; Linux only. */
export async function peakRssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmHWM line in /proc/${pid}/status`);
  return Number(match[1]);
}

export async function startChildServer(options: ChildServerOptions): Promise<ChildServer> {
  const [command, args] = runtimeCommand(options.runtime, options.script, options.runtimeArgs);
  const log = openSync(options.logPath, "a");
  const started = performance.now();
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/root",
      ...options.env,
      PORT: String(options.port),
    },
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => children.delete(child));

  const url = `https://127.0.0.1:${options.port}`;
  const poller = httpTarget(url, { connections: 1, ca: options.ca, insecure: !options.ca });
  let readyMs = 0;
  try {
    while (readyMs === 0) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const output = await readFile(options.logPath, "utf8").catch(() => "");
        throw new Error(`${options.script} exited before it was ready:\n${output.slice(-3000)}`);
      }
      if (performance.now() - started > READY_TIMEOUT_MS) {
        child.kill("SIGKILL");
        throw new Error(`${options.script} was not ready within ${READY_TIMEOUT_MS} ms`);
      }
      const response = await poller
        .send({ method: "GET", path: options.readyPath })
        .catch(() => undefined);
      if (response?.status === 200) readyMs = performance.now() - started;
      else await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
  } finally {
    await poller.close();
  }

  return {
    pid: child.pid as number,
    url,
    readyMs: Math.round(readyMs),
    peakRssKb: () => peakRssKb(child.pid as number),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      child.kill("SIGTERM");
      await exited;
      clearTimeout(timer);
    },
  };
}
